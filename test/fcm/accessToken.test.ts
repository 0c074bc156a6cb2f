import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { createServer, type AddressInfo } from "node:net";
import { after, before, beforeEach, describe, test } from "node:test";
import { inspect } from "node:util";
import { startFakeFcm, type FakeFcm } from "../../tools/fake-fcm/server.js";
import { FakeFcmClient, type ServiceAccountJson } from "../../tools/fake-fcm/client.js";
import {
  AccessTokenCache,
  FcmAuthError,
  FcmTokenEndpointError,
  fetchAccessToken,
  Http2Pool,
  sendFcmMessage,
} from "../../functions/src/fcm/index.js";

/** Every representation of an error that could end up in a log. */
function renderings(err: unknown): string {
  const e = err as Error;
  return [String(e), e.message, e.stack ?? "", inspect(e, { depth: 10 }), JSON.stringify(e), JSON.stringify(Object.entries(e))].join("\n");
}

function keyBody(pem: string): string {
  return pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
}

/** A port on which nothing listens. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.fail("expected a rejection");
}

describe("OAuth JWT-bearer grant against the fake token endpoint", () => {
  let fake: FakeFcm;
  let ctl: FakeFcmClient;
  let sa: ServiceAccountJson;
  let pool: Http2Pool;

  before(async () => {
    fake = await startFakeFcm({ apiPort: 0, controlPort: 0 });
    ctl = new FakeFcmClient(fake.controlOrigin);
    sa = await ctl.createServiceAccount("demo-grant-test");
    pool = new Http2Pool();
  });
  after(async () => {
    await pool.close();
    await fake.close();
  });
  beforeEach(async () => {
    await ctl.reset({ keepAccounts: true });
  });

  test("the service-account JSON looks like the Firebase console download", () => {
    assert.deepEqual(Object.keys(sa).sort(), [
      "auth_provider_x509_cert_url",
      "auth_uri",
      "client_email",
      "client_id",
      "client_x509_cert_url",
      "private_key",
      "private_key_id",
      "project_id",
      "token_uri",
      "type",
      "universe_domain",
    ]);
    assert.equal(sa.type, "service_account");
    assert.equal(sa.project_id, "demo-grant-test");
    assert.match(sa.client_email, /^firebase-adminsdk-[a-z0-9]{5}@demo-grant-test\.iam\.gserviceaccount\.com$/);
    assert.match(sa.private_key, /^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);
    assert.match(sa.private_key_id, /^[0-9a-f]{40}$/);
    assert.match(sa.client_id, /^\d{21}$/);
    assert.equal(sa.token_uri, fake.tokenUrl);
  });

  test("a registered key gets a Bearer token that FCM accepts", async () => {
    const t0 = Date.now();
    const token = await fetchAccessToken(sa, { tokenUrl: fake.tokenUrl });
    assert.match(token.accessToken, /^ya29\.fake-/);
    assert.ok(token.expiresAt >= t0 + 3599_000 && token.expiresAt <= Date.now() + 3599_000);
    const result = await sendFcmMessage(
      { apiOrigin: fake.apiOrigin, projectId: sa.project_id, accessToken: token.accessToken, message: { token: "t" } },
      pool,
    );
    assert.equal(result.ok, true);
    const [rec] = await ctl.requests({ projectId: sa.project_id });
    assert.equal(rec?.clientEmail, sa.client_email);
    assert.equal(rec?.accessToken, token.accessToken);
  });

  test("the cache makes one grant for many sends, and one grant for concurrent callers", async () => {
    const cache = new AccessTokenCache();
    const key = "6768:1";
    for (let i = 0; i < 5; i++) {
      const { accessToken } = await cache.getForServiceAccount(key, sa, { tokenUrl: fake.tokenUrl });
      const r = await sendFcmMessage(
        { apiOrigin: fake.apiOrigin, projectId: sa.project_id, accessToken, message: { token: `t${i}` } },
        pool,
      );
      assert.equal(r.ok, true);
    }
    assert.equal((await ctl.stats()).tokensIssued, 1);

    const other = new AccessTokenCache();
    const tokens = await Promise.all(
      Array.from({ length: 50 }, () => other.getForServiceAccount(key, sa, { tokenUrl: fake.tokenUrl })),
    );
    assert.equal(new Set(tokens.map((t) => t.accessToken)).size, 1);
    assert.equal((await ctl.stats()).tokensIssued, 2);

    // A different key (rotated certificate version) misses the cache at once.
    await cache.getForServiceAccount("6768:2", sa, { tokenUrl: fake.tokenUrl });
    assert.equal((await ctl.stats()).tokensIssued, 3);
  });

  test("cached until 5 minutes before expiry; invalidate forces a new grant", async () => {
    let now = 1_000_000;
    const cache = new AccessTokenCache({ now: () => now });
    let grants = 0;
    const fetcher = async () => ({ accessToken: `tok${++grants}`, expiresAt: now + 3600_000 });
    assert.equal((await cache.get("k", fetcher)).accessToken, "tok1");
    now += 3600_000 - 5 * 60_000 - 1;
    assert.equal((await cache.get("k", fetcher)).accessToken, "tok1");
    now += 1;
    assert.equal((await cache.get("k", fetcher)).accessToken, "tok2");
    cache.invalidate("k");
    assert.equal((await cache.get("k", fetcher)).accessToken, "tok3");
    assert.equal(grants, 3);
  });

  test("failures are not cached and are shared by concurrent callers", async () => {
    const cache = new AccessTokenCache();
    let calls = 0;
    const failing = async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 20));
      throw new FcmAuthError("invalid_grant", "nope", 400);
    };
    const results = await Promise.allSettled([cache.get("k", failing), cache.get("k", failing), cache.get("k", failing)]);
    assert.equal(calls, 1);
    assert.ok(results.every((r) => r.status === "rejected" && r.reason instanceof FcmAuthError));
    assert.equal(cache.size, 0);
    const ok = await cache.get("k", async () => ({ accessToken: "fresh", expiresAt: Date.now() + 3600_000 }));
    assert.equal(ok.accessToken, "fresh");
  });

  test("a key that was never registered -> FcmAuthError invalid_grant (account not found)", async () => {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const err = await rejection(
      fetchAccessToken(
        { client_email: "nobody@demo-x.iam.gserviceaccount.com", private_key: pem, private_key_id: "abc" },
        { tokenUrl: fake.tokenUrl },
      ),
    );
    assert.ok(err instanceof FcmAuthError);
    assert.equal(err.oauthError, "invalid_grant");
    assert.equal(err.oauthErrorDescription, "Invalid grant: account not found");
    assert.equal(err.httpStatus, 400);
    assert.equal(err.message, "invalid_grant: Invalid grant: account not found");
    assert.ok(!renderings(err).includes(keyBody(pem)));
  });

  test("a key signed with the wrong private key -> Invalid JWT Signature.", async () => {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const wrong = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const err = await rejection(fetchAccessToken({ ...sa, private_key: wrong }, { tokenUrl: fake.tokenUrl }));
    assert.ok(err instanceof FcmAuthError);
    assert.equal(err.message, "invalid_grant: Invalid JWT Signature.");
    const text = renderings(err);
    assert.ok(!text.includes(keyBody(wrong)));
    assert.ok(!text.includes(keyBody(sa.private_key)));
    assert.ok(!text.includes("eyJ"), "no JWT in the error");
  });

  test("an externally generated key registered with /control/keys works; deleting it breaks new grants", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const creds = {
      client_email: "firebase-adminsdk-ext00@demo-grant-test.iam.gserviceaccount.com",
      private_key: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      private_key_id: "external-key-1",
    };
    await ctl.registerKey({
      clientEmail: creds.client_email,
      projectId: "demo-grant-test",
      privateKeyId: creds.private_key_id,
      publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    });
    const token = await fetchAccessToken(creds, { tokenUrl: fake.tokenUrl });
    const r = await sendFcmMessage(
      { apiOrigin: fake.apiOrigin, projectId: "demo-grant-test", accessToken: token.accessToken, message: { token: "t" } },
      pool,
    );
    assert.equal(r.ok, true);
    assert.deepEqual(await ctl.deleteKey(creds.private_key_id), { deleted: true, revokedTokens: 0 });
    const err = await rejection(fetchAccessToken(creds, { tokenUrl: fake.tokenUrl }));
    assert.ok(err instanceof FcmAuthError);
    assert.equal(err.oauthErrorDescription, "Invalid JWT Signature.");
  });

  test("a revoked service account: new grants fail and its issued tokens get 401", async () => {
    const victim = await ctl.createServiceAccount("demo-grant-test");
    const token = await fetchAccessToken(victim, { tokenUrl: fake.tokenUrl });
    assert.deepEqual(await ctl.revoke(victim.client_email), { deleted: true, revokedTokens: 1 });
    const err = await rejection(fetchAccessToken(victim, { tokenUrl: fake.tokenUrl }));
    assert.ok(err instanceof FcmAuthError);
    assert.equal(err.oauthError, "invalid_grant");
    const r = await sendFcmMessage(
      { apiOrigin: fake.apiOrigin, projectId: victim.project_id, accessToken: token.accessToken, message: { token: "t" } },
      pool,
    );
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.kind, "auth");
    assert.equal(!r.ok && r.httpStatus, 401);
    assert.equal(!r.ok && r.status, "UNAUTHENTICATED");
  });

  test("an unparseable private key -> FcmAuthError invalid_private_key, key material not echoed", async () => {
    const broken = sa.private_key.replace(/[A-Za-z]{8}\n/, "!!!!????\n");
    const err = await rejection(fetchAccessToken({ ...sa, private_key: broken }, { tokenUrl: fake.tokenUrl }));
    assert.ok(err instanceof FcmAuthError);
    assert.equal(err.oauthError, "invalid_private_key");
    assert.equal(err.httpStatus, 0);
    const text = renderings(err);
    assert.ok(!text.includes(keyBody(broken).slice(0, 40)));
    assert.ok(!text.includes("PRIVATE KEY-----"));
  });

  test("a token endpoint that echoes the request: no assertion or key in FcmAuthError / FcmTokenEndpointError", async () => {
    let lastAssertion = "";
    const echo = (status: number): typeof fetch =>
      async (_url, init) => {
        const body = String(init?.body);
        lastAssertion = new URLSearchParams(body).get("assertion") ?? "";
        return new Response(`upstream said: ${body}`, { status });
      };
    const e4 = await rejection(fetchAccessToken(sa, { tokenUrl: fake.tokenUrl, fetch: echo(400) }));
    assert.ok(e4 instanceof FcmAuthError);
    assert.ok(lastAssertion.length > 100);
    const e5 = await rejection(fetchAccessToken(sa, { tokenUrl: fake.tokenUrl, fetch: echo(502) }));
    assert.ok(e5 instanceof FcmTokenEndpointError);
    assert.equal(e5.httpStatus, 502);
    const oauthEcho: typeof fetch = async (_url, init) =>
      Response.json({ error: "invalid_grant", error_description: String(init?.body) }, { status: 400 });
    const e6 = await rejection(fetchAccessToken(sa, { tokenUrl: fake.tokenUrl, fetch: oauthEcho }));
    assert.ok(e6 instanceof FcmAuthError);
    for (const err of [e4, e5, e6]) {
      const text = renderings(err);
      assert.ok(!text.includes(lastAssertion.split(".")[1] ?? "x"), "assertion payload leaked");
      assert.ok(!text.includes(lastAssertion.split(".")[2] ?? "x"), "assertion signature leaked");
      assert.ok(!text.includes(keyBody(sa.private_key).slice(0, 64)));
    }
  });

  test("token endpoint unreachable or answering garbage -> FcmTokenEndpointError (retryable)", async () => {
    const down = await rejection(fetchAccessToken(sa, { tokenUrl: `http://127.0.0.1:${await closedPort()}/token` }));
    assert.ok(down instanceof FcmTokenEndpointError);
    assert.equal(down.retryable, true);
    assert.equal(down.httpStatus, 0);
    assert.match(down.message, /ECONNREFUSED/);
    const garbage = await rejection(
      fetchAccessToken(sa, {
        tokenUrl: fake.tokenUrl,
        fetch: async () => Response.json({ access_token: "x", token_type: "mac" }),
      }),
    );
    assert.ok(garbage instanceof FcmTokenEndpointError);
    assert.match(garbage.message, /expires_in/);
    assert.ok(!garbage.message.includes('"x"'));
  });

  test("the fake verifies aud, scope and lifetime of the assertion", async () => {
    // The assertion is signed for another audience than the fake's token URL.
    const wrongAud: typeof fetch = (_url, init) => fetch(fake.tokenUrl, init);
    const err = await rejection(fetchAccessToken(sa, { tokenUrl: `${fake.controlOrigin}/other-token`, fetch: wrongAud }));
    assert.ok(err instanceof FcmAuthError);
    assert.equal(err.oauthError, "invalid_grant");
    assert.match(err.message, /aud/);

    const scope = await rejection(fetchAccessToken(sa, { tokenUrl: fake.tokenUrl, scope: "https://www.googleapis.com/auth/userinfo.email" }));
    assert.ok(scope instanceof FcmAuthError);
    assert.equal(scope.oauthError, "invalid_scope");

    const cloud = await fetchAccessToken(sa, { tokenUrl: fake.tokenUrl, scope: "https://www.googleapis.com/auth/cloud-platform" });
    assert.match(cloud.accessToken, /^ya29\./);

    // A clock two hours behind: the assertion is already expired.
    const stale = await rejection(fetchAccessToken(sa, { tokenUrl: fake.tokenUrl, now: () => Date.now() - 2 * 3600_000 }));
    assert.ok(stale instanceof FcmAuthError);
    assert.match(stale.message, /iat and exp/);
  });
});
