// offline-push cert add / list / update / rm and admin grant, as subprocesses against the emulators:
// the human form and --json, exit codes, and no key material in any output.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { getApps, initializeApp } from "firebase-admin/app";
import { getAuth } from "firebase-admin/auth";
import { createUser, PROJECT } from "../helpers/emulators.ts";
import { fakeFcm, type ServiceAccountJson } from "../helpers/fakeFcm.ts";
import { ANSI, runCli, runHuman, runJson } from "./run.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "offline-push-cli-"));
const keys: ServiceAccountJson[] = [];

async function keyFile(name: string, projectId?: string): Promise<string> {
  const sa = await fakeFcm.createServiceAccount(projectId);
  keys.push(sa);
  const file = path.join(dir, name);
  writeFileSync(file, JSON.stringify(sa, null, 2), { mode: 0o600 });
  return file;
}

/** No output may carry key material: neither the PEM nor its body. */
function assertNoKey(...outputs: string[]): void {
  for (const out of outputs) {
    assert.doesNotMatch(out, /PRIVATE KEY/);
    for (const k of keys) assert.ok(!out.includes(k.private_key.split("\n")[1] ?? "-"), "a private key line appeared in the output");
  }
}

after(() => rmSync(dir, { recursive: true, force: true }));

describe("offline-push cert", () => {
  let fileCertId: number;

  it("--help lists every command and exits 0", async () => {
    const out = await runHuman(["--help"]);
    for (const cmd of ["cert", "user \\[options\\] <uid", "trace <msgKey>", "test-push", "stats", "publish", "admin"]) assert.match(out, new RegExp(cmd.replace(/[<>]/g, ".")));
  });

  it("explain reads the functions' explanation table offline (human and --json)", async () => {
    const human = await runHuman(["explain", "kicked"]);
    assert.match(human, /^kicked \(skip-reason\)/);
    assert.match(human, /what to do:/);
    const json = await runJson<{ explanations: Array<{ code: string; category: string }> }>(["explain", "UNREGISTERED"]);
    assert.deepEqual(json.explanations.map((e) => [e.category, e.code]), [["fcm-error", "UNREGISTERED"]]);
    const unknown = await runCli(["explain", "no-such-code"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no explanation for "no-such-code"/);
  });

  it("cert add <file> prints the certificate ID large, without colour off a terminal and without the key", async () => {
    const file = await keyFile("key.json", "demo-cli-app");
    const res = await runCli(["cert", "add", file, "--label", "cli test"]);
    assert.equal(res.code, 0, res.stderr);
    const id = /Certificate ID (\d+)/.exec(res.stdout);
    assert.ok(id, res.stdout);
    fileCertId = Number(id[1]);
    assert.match(res.stdout, /█/, "the ID is drawn large");
    assert.match(res.stdout, /demo-cli-app/);
    assert.match(res.stdout, /cli test/);
    assert.doesNotMatch(res.stdout, ANSI);
    assertNoKey(res.stdout, res.stderr);
  });

  it("cert add <file> --json answers the registration only, on stdout", async () => {
    const file = await keyFile("key2.json", "demo-cli-app");
    const res = await runJson<Record<string, unknown>>(["cert", "add", file]);
    assert.equal(typeof res.certificateId, "number");
    assert.equal(res.projectId, "demo-cli-app");
    assert.deepEqual(Object.keys(res).sort(), ["certificateId", "clientEmail", "createdAt", "label", "privateKeyId", "projectId"]);
    assertNoKey(JSON.stringify(res));
  });

  it("cert add --demo registers a key the fake FCM made (human and --json)", async () => {
    const human = await runHuman(["cert", "add", "--demo"]);
    assert.match(human, /Certificate ID \d+/);
    assert.match(human, /demo \(fake FCM\)/);
    const json = await runJson<{ certificateId: number; label: string }>(["cert", "add", "--demo", "--label", "second demo"]);
    assert.equal(json.label, "second demo");
    assertNoKey(human);
  });

  it("cert list shows every certificate with its health (table and --json)", async () => {
    const json = await runJson<{ certificates: Array<{ certificateId: number; label: string | null; health: { state: string } }> }>(["cert", "list"]);
    const mine = json.certificates.find((c) => c.certificateId === fileCertId);
    assert.ok(mine);
    assert.equal(mine.label, "cli test");
    assert.equal(mine.health.state, "healthy");
    assert.ok(json.certificates.length >= 4);
    const human = await runHuman(["cert", "list"]);
    assert.match(human, /ID\s+│\s+Label/);
    assert.match(human, new RegExp(`│ ${fileCertId}\\s+│ cli test`));
    assert.match(human, /healthy/);
  });

  it("cert update relabels, and replaces the key (version 2)", async () => {
    const relabelled = await runJson<{ label: string; version: number }>(["cert", "update", String(fileCertId), "--label", "renamed"]);
    assert.equal(relabelled.label, "renamed");
    const file = await keyFile("rotated.json", "demo-cli-app");
    const res = await runCli(["cert", "update", String(fileCertId), "--key", file]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, new RegExp(`Updated certificate ${fileCertId}: new key in use`));
    assert.match(res.stdout, /version\s+2/);
    assertNoKey(res.stdout, res.stderr);
  });

  it("cert add of a key a certificate already holds: says which one and the flag that registers it again", async () => {
    const file = await keyFile("twice.json", "demo-cli-app");
    const first = await runJson<{ certificateId: number }>(["cert", "add", file, "--label", "first"]);
    const again = await runCli(["cert", "add", file]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`already registered as certificate ${first.certificateId} \\("first"\\).*pass --allow-duplicate-key`));
    assert.doesNotMatch(again.stderr, /allowDuplicateKey/);
    const forced = await runJson<{ certificateId: number }>(["cert", "add", file, "--allow-duplicate-key"]);
    assert.ok(forced.certificateId > first.certificateId);
    assertNoKey(again.stdout, again.stderr);
  });

  it("cert update with another project's key names --allow-project-change; --label \"\" removes the label", async () => {
    const other = await keyFile("other-project.json", "demo-other-app");
    const refused = await runCli(["cert", "update", String(fileCertId), "--key", other]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /demo-cli-app.*demo-other-app.*--allow-project-change/);
    assert.doesNotMatch(refused.stderr, /allowProjectChange/);
    const cleared = await runJson<{ label: string | null }>(["cert", "update", String(fileCertId), "--label", ""]);
    assert.equal(cleared.label, null);
    const human = await runHuman(["cert", "update", String(fileCertId), "--label", "renamed"]);
    assert.match(human, /label\s+renamed/);
  });

  it("cert rm deletes (human and --json); the list no longer has it", async () => {
    const extra = await runJson<{ certificateId: number }>(["cert", "add", "--demo"]);
    const json = await runJson<{ deleted: boolean; certificateId: number; boundTokens: number }>(["cert", "rm", String(extra.certificateId), "--yes"]);
    assert.deepEqual(json, { deleted: true, certificateId: extra.certificateId, boundTokens: 0 });
    const human = await runHuman(["cert", "rm", String(fileCertId), "-y"]);
    assert.match(human, new RegExp(`Deleted certificate ${fileCertId}\\. 0 device token`));
    const list = await runJson<{ certificates: Array<{ certificateId: number }> }>(["cert", "list"]);
    assert.ok(!list.certificates.some((c) => c.certificateId === fileCertId || c.certificateId === extra.certificateId));
  });

  it("bad input: a clear error on stderr, exit 2 before any call; --json puts the error on stdout", async () => {
    const missing = await runCli(["cert", "add", path.join(dir, "nope.json")]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read .*nope\.json: ENOENT/);
    assert.equal(missing.stdout, "");

    const broken = path.join(dir, "broken.json");
    const sa = await fakeFcm.createServiceAccount();
    keys.push(sa);
    writeFileSync(broken, JSON.stringify({ ...sa, private_key: sa.private_key.replace("MII", "xxx") }), { mode: 0o600 });
    const bad = await runCli(["cert", "add", broken, "--json"]);
    assert.equal(bad.code, 2);
    const err = JSON.parse(bad.stdout) as { error: { code: string; message: string } };
    assert.equal(err.error.code, "usage");
    assert.match(err.error.message, /private_key is not a PEM-encoded RSA private key/);
    assertNoKey(bad.stdout, bad.stderr);

    const id = await runCli(["cert", "rm", "12abc"]);
    assert.equal(id.code, 2);
    assert.match(id.stderr, /<id> must be a certificate ID/);

    const both = await runCli(["cert", "add", broken, "--demo"]);
    assert.equal(both.code, 2);

    const unknown = await runCli(["cert", "frobnicate"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command/);
  });

  it("a certificate that does not exist: the callable's error, exit 1", async () => {
    const res = await runCli(["cert", "rm", "987654321", "--yes"]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /deletePushCertificate: NOT_FOUND/);
    const json = await runCli(["cert", "update", "987654321", "--label", "x", "--json"]);
    assert.equal(json.code, 1);
    assert.equal((JSON.parse(json.stdout) as { error: { code: string } }).error.code, "not-found");
  });

  it("--demo is refused for a real project, before any network call", async () => {
    const res = await runCli(["cert", "add", "--demo", "--project", "my-chat-app"]);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /--demo .* not a real project/);
  });
});

describe("offline-push admin grant", () => {
  const auth = () => getAuth(getApps().find((a) => a.name === "cli-test") ?? initializeApp({ projectId: PROJECT }, "cli-test"));

  it("grants the admin claim by email (human) and by uid (--json), keeping other claims", async () => {
    const alice = await createUser();
    await auth().setCustomUserClaims(alice.uid, { tier: "gold" });
    const human = await runHuman(["admin", "grant", alice.email]);
    assert.match(human, new RegExp(`${alice.email.replace(/[.]/g, "\\.")} \\(uid ${alice.uid}\\) now has admin: true`));
    assert.deepEqual((await auth().getUser(alice.uid)).customClaims, { tier: "gold", admin: true });

    const bob = await createUser();
    const json = await runJson<{ uid: string; admin: boolean; customClaims: Record<string, unknown> }>(["admin", "grant", bob.uid]);
    assert.deepEqual(json, { uid: bob.uid, email: bob.email, admin: true, customClaims: { admin: true } });
    assert.equal((await auth().getUser(bob.uid)).customClaims?.admin, true);

    const revoked = await runJson<{ admin: boolean }>(["admin", "revoke", bob.uid]);
    assert.equal(revoked.admin, false);
    assert.equal((await auth().getUser(bob.uid)).customClaims?.admin, undefined);
  });

  it("an unknown user: exit 1 and says so", async () => {
    const res = await runCli(["admin", "grant", "nobody-here@example.com"]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /no user nobody-here@example\.com/);
  });
});
