/** The fake FCM itself: control API, web page, and the `main.ts` process. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { FakeFcmClient, FakeFcmControlError } from "../../tools/fake-fcm/client.js";
import { startFakeFcm, type FakeFcm } from "../../tools/fake-fcm/server.js";
import { fetchAccessToken, Http2Pool, sendFcmMessage } from "../../functions/src/fcm/index.js";
import { repoRoot } from "./helpers.js";

describe("fake FCM control API", () => {
  let fake: FakeFcm;
  let ctl: FakeFcmClient;
  let pool: Http2Pool;
  before(async () => {
    fake = await startFakeFcm({ apiPort: 0, controlPort: 0 });
    ctl = new FakeFcmClient(fake.controlOrigin);
    pool = new Http2Pool();
  });
  after(async () => {
    await pool.close();
    await fake.close();
  });

  test("origins and token URL", () => {
    assert.match(fake.apiOrigin, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(fake.controlOrigin, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(fake.tokenUrl, `${fake.controlOrigin}/token`);
    assert.equal(ctl.tokenUrl, fake.tokenUrl);
  });

  test("default project ids are unique demo-fcm-*", async () => {
    const a = await ctl.createServiceAccount();
    const b = await ctl.createServiceAccount();
    assert.match(a.project_id, /^demo-fcm-[a-z0-9]+$/);
    assert.notEqual(a.project_id, b.project_id);
    assert.notEqual(a.private_key_id, b.private_key_id);
  });

  test("bad control requests are refused with 400/404", async () => {
    await assert.rejects(ctl.createServiceAccount("Not_A_Project"), (e: unknown) => e instanceof FakeFcmControlError && e.status === 400);
    await assert.rejects(ctl.addErrorRule({ token: "t" }), (e: unknown) => e instanceof FakeFcmControlError && e.status === 400);
    await assert.rejects(
      ctl.registerKey({ clientEmail: "a@demo-x1.iam.gserviceaccount.com", projectId: "demo-x1", privateKeyId: "k", publicKeyPem: "nope" }),
      (e: unknown) => e instanceof FakeFcmControlError && e.status === 400,
    );
    assert.deepEqual(await ctl.revoke("nobody@example.com"), { deleted: false, revokedTokens: 0 });
    const res = await fetch(`${fake.controlOrigin}/control/nothing`);
    assert.equal(res.status, 404);
  });

  test("the token endpoint refuses other grant types and missing assertions like Google", async () => {
    const post = (body: string) =>
      fetch(fake.tokenUrl, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body });
    const a = await post("grant_type=client_credentials");
    assert.equal(a.status, 400);
    assert.deepEqual(await a.json(), { error: "unsupported_grant_type", error_description: "Invalid grant_type: client_credentials" });
    const b = await post("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer");
    assert.equal(b.status, 400);
    assert.equal(((await b.json()) as { error: string }).error, "invalid_request");
    const c = await post("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=abc");
    assert.equal(((await c.json()) as { error: string }).error, "invalid_grant");
  });

  test("requests are filtered by project and token, cleared per project; the page lists them newest first", async () => {
    await ctl.reset();
    const sa1 = await ctl.createServiceAccount("demo-page-one");
    const sa2 = await ctl.createServiceAccount("demo-page-two");
    for (const [sa, token, title] of [
      [sa1, "token-aaaaaaaaaaaa-0001", "First <b>"],
      [sa2, "token-bbbbbbbbbbbb-0002", "Second"],
      [sa1, "token-aaaaaaaaaaaa-0003", "Third"],
    ] as const) {
      const { accessToken } = await fetchAccessToken(sa, { tokenUrl: fake.tokenUrl });
      const r = await sendFcmMessage(
        {
          apiOrigin: fake.apiOrigin,
          projectId: sa.project_id,
          accessToken,
          message: { token, notification: { title, body: `body of ${title}` }, data: { ext: "{}" } },
        },
        pool,
      );
      assert.equal(r.ok, true);
    }
    assert.equal((await ctl.requests()).length, 3);
    assert.equal((await ctl.requests({ projectId: "demo-page-one" })).length, 2);
    assert.deepEqual(
      (await ctl.requests({ token: "token-bbbbbbbbbbbb-0002" })).map((r) => r.projectId),
      ["demo-page-two"],
    );

    const html = await (await fetch(`${fake.controlOrigin}/`)).text();
    assert.match(html, /<title>Fake FCM/);
    const iThird = html.indexOf("Third");
    const iSecond = html.indexOf("Second");
    const iFirst = html.indexOf("First &lt;b&gt;");
    assert.ok(iThird > 0 && iThird < iSecond && iSecond < iFirst, "newest first, HTML escaped");
    assert.ok(html.includes("…bbbbb-0002"), "token tail");
    assert.ok(html.includes("body of Second"));
    assert.ok(html.includes("demo-page-two"));

    assert.deepEqual(await ctl.clearRequests({ projectId: "demo-page-one" }), { cleared: 2 });
    assert.equal((await ctl.requests()).length, 1);
    await ctl.reset();
    assert.equal((await ctl.requests()).length, 0);
    const stats = await ctl.stats();
    assert.equal(stats.tokensIssued, 0);
    // accounts are gone after a full reset
    await assert.rejects(fetchAccessToken(sa1, { tokenUrl: fake.tokenUrl }), /account not found/);
  });
});

describe("tools/fake-fcm/main.ts", () => {
  test("starts on the configured ports, prints the URLs and one line per push, exits cleanly on SIGTERM", async () => {
    const root = repoRoot;
    const proc = spawn(process.execPath, ["--import", "tsx", "tools/fake-fcm/main.ts"], {
      cwd: root,
      env: { ...process.env, FAKE_FCM_API_PORT: "0", FAKE_FCM_CONTROL_PORT: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    proc.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
    proc.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const waitForOutput = async (re: RegExp): Promise<RegExpMatchArray> => {
      const until = Date.now() + 15_000;
      for (;;) {
        const m = out.match(re);
        if (m) return m;
        if (Date.now() > until) throw new Error(`timed out waiting for ${re}; stdout=${out} stderr=${err}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const pool = new Http2Pool();
    try {
      const [, apiOrigin] = await waitForOutput(/FCM API \(HTTP\/2 cleartext\): (http:\/\/\S+)/);
      const [, tokenUrl] = await waitForOutput(/OAuth token endpoint:\s+(http:\/\/\S+)/);
      const controlOrigin = (tokenUrl ?? "").replace(/\/token$/, "");
      const ctl = new FakeFcmClient(controlOrigin);
      const sa = await ctl.createServiceAccount("demo-main-test");
      const { accessToken } = await fetchAccessToken(sa, { tokenUrl: tokenUrl ?? "" });
      const r = await sendFcmMessage(
        {
          apiOrigin: apiOrigin ?? "",
          projectId: sa.project_id,
          accessToken,
          message: { token: "device-token-xyz-12345678", notification: { title: "Alice", body: "hello bob" } },
        },
        pool,
      );
      assert.equal(r.ok, true);
      const [line] = await waitForOutput(/\[fake-fcm\] .*demo-main-test.*\n/);
      assert.match(line ?? "", /…12345678 "Alice" "hello bob" -> delivered/);
    } finally {
      await pool.close();
      proc.kill("SIGTERM");
    }
    assert.equal(await exited, 0, err);
  });
});
