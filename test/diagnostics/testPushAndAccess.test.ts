// sendTestPush observed at the fake FCM (a real send and a validate_only dry run), and the
// operator-only access and input validation of every diagnostics callable.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { call, callOk, clearFirestore, createUser, type TestUser } from "../helpers/emulators.ts";
import { fakeFcm } from "../helpers/fakeFcm.ts";
import { foregroundDevice, killedDevice } from "../helpers/fanout.ts";
import { registerCertificate, type TestCertificate } from "../helpers/certificates.ts";
import { readDevice } from "../helpers/sessions.ts";
import { tokenHash } from "../../functions/src/sessions/schemas.ts";
import { EXPLANATIONS } from "../../functions/src/diagnostics/explain.ts";
import { ExplanationTableSchema } from "../../functions/src/diagnostics/schemas.ts";
import { testPush } from "./helpers.ts";

let admin: TestUser;
let cert: TestCertificate;

before(async () => {
  await clearFirestore();
  admin = await createUser({ admin: true });
  cert = await registerCertificate(admin);
});

describe("sendTestPush", () => {
  it("sends now to a logged-in device with a token, app state ignored; kicked, logged-out and token-less devices are skipped", async () => {
    // One Android device per user (SESSION_POLICY default): logging in on "phone" kicks "old-phone".
    const bob = await createUser();
    const oldToken = await killedDevice(bob, cert.certificateId, "old-phone");
    const token = await foregroundDevice(bob, cert.certificateId, "phone");

    const r = await testPush(admin, { uid: bob.uid, title: "Hello", body: "from support" });
    assert.equal(r.dryRun, false);
    assert.match(r.msgKey, /^test-/);
    const by = new Map(r.devices.map((d) => [d.deviceId, d]));
    const d = by.get("phone")!;
    assert.equal(d.result, "sent", JSON.stringify(d));
    const recorded = (await fakeFcm.requests({ token })).filter((x) => !x.validateOnly);
    assert.equal(recorded.length, 1);
    assert.equal(d.fcm?.name, recorded[0]!.name);
    assert.deepEqual((recorded[0]!.message as { notification: unknown }).notification, { title: "Hello", body: "from support" });
    assert.equal((recorded[0]!.message as { data: { msgKey: string } }).data.msgKey, r.msgKey);
    // The message as built, without the token: only its hash prefix.
    assert.equal(d.message?.token, `sha256:${tokenHash(token).slice(0, 12)}`);
    assert.deepEqual(d.message?.notification, { title: "Hello", body: "from support" });
    assert.ok(!JSON.stringify(r).includes(token), "no token in the answer");
    assert.equal(by.get("old-phone")?.result, "skipped");
    assert.equal(by.get("old-phone")?.reason, "kicked");
    assert.equal((await fakeFcm.requests({ token: oldToken })).length, 0);
    assert.match(r.summary, /^1 of 2 devices of .* accepted by FCM; old-phone skipped \(kicked\)$/);

    const carol = await createUser();
    await callOk("login", { deviceId: "watch", platform: "android" }, carol);
    const dave = await createUser();
    await killedDevice(dave, cert.certificateId);
    await callOk("logout", { deviceId: "phone" }, dave);
    const noToken = await testPush(admin, { uid: carol.uid });
    assert.deepEqual(noToken.devices.map((x) => [x.deviceId, x.result, x.reason, x.explanation?.code]), [["watch", "skipped", "no-token", "no-token"]]);
    const loggedOut = await testPush(admin, { uid: dave.uid });
    assert.deepEqual(loggedOut.devices.map((x) => [x.deviceId, x.result, x.reason]), [["phone", "skipped", "logged-out"]]);
  });

  it("dryRun asks FCM with validate_only: nothing is delivered, and a dead token is reported but left bound", async () => {
    const bob = await createUser();
    const token = await killedDevice(bob, cert.certificateId);
    const ok = await testPush(admin, { uid: bob.uid, deviceId: "phone", dryRun: true });
    assert.equal(ok.devices.length, 1);
    assert.equal(ok.devices[0]!.result, "validated");
    const recorded = await fakeFcm.requests({ token });
    assert.deepEqual(recorded.map((x) => x.validateOnly), [true]);

    await fakeFcm.addErrorRule({ token, preset: "unregistered" });
    const dead = await testPush(admin, { uid: bob.uid, dryRun: true });
    const d = dead.devices[0]!;
    assert.equal(d.result, "failed");
    assert.equal(d.reason, "token-unregistered");
    assert.equal(d.fcm?.error?.errorCode, "UNREGISTERED");
    assert.equal(d.fcmErrorExplanation?.code, "UNREGISTERED");
    assert.ok(d.fcmErrorExplanation?.action);
    assert.ok((await readDevice(bob.uid, "phone"))?.token, "a dry run changes nothing");

    // The same answer to a real test push unbinds the token, as the fan-out does.
    const real = await testPush(admin, { uid: bob.uid });
    assert.equal(real.devices[0]!.reason, "token-unregistered");
    assert.equal((await readDevice(bob.uid, "phone"))?.token, null);
  });

  it("a device the user does not have is reported, not an error", async () => {
    const r = await testPush(admin, { uid: "someone", deviceId: "ghost" });
    assert.deepEqual(r.devices.map((d) => [d.deviceId, d.result, d.reason]), [["ghost", "skipped", "no-device"]]);
  });
});

describe("operator-only access and validated input", () => {
  const requests: Array<[string, Record<string, unknown>]> = [
    ["diagnosePush", { uid: "bob" }],
    ["traceMessage", { msgKey: "msg-1" }],
    ["sendTestPush", { uid: "bob", dryRun: true }],
    ["pushStats", { from: "2026-01-01", to: "2026-01-07" }],
  ];

  it("a signed-in user without the admin claim gets PERMISSION_DENIED; no token, UNAUTHENTICATED", async () => {
    const user = await createUser();
    for (const [name, data] of requests) {
      assert.equal((await call(name, data, user)).error?.status, "PERMISSION_DENIED", name);
      assert.equal((await call(name, data)).error?.status, "UNAUTHENTICATED", name);
    }
  });

  it("bad input: INVALID_ARGUMENT naming the field", async () => {
    const cases: Array<[string, unknown, string]> = [
      ["diagnosePush", { uid: "" }, "uid"],
      ["diagnosePush", { uid: "a/b" }, "uid"],
      ["diagnosePush", {}, "uid"],
      ["diagnosePush", { uid: "bob", extra: 1 }, "extra"],
      ["diagnosePush", { uid: "bob", account: "bob@example.com" }, "account"],
      ["traceMessage", { msgKey: 42 }, "msgKey"],
      ["traceMessage", { msgKey: "x".repeat(513) }, "msgKey"],
      ["sendTestPush", { uid: "bob", dryRun: "yes" }, "dryRun"],
      ["sendTestPush", { uid: "bob", deviceId: "constructor" }, "deviceId"],
      ["sendTestPush", { uid: "bob", title: "" }, "title"],
      ["sendTestPush", { uid: "bob", body: "x".repeat(1001) }, "body"],
      ["pushStats", { from: "2026-13-01", to: "2026-12-01" }, "from"],
      ["pushStats", { from: "2026-02-01", to: "2026-01-01" }, "to"],
      ["pushStats", { from: "2024-01-01", to: "2026-01-01" }, "to"],
      ["pushStats", { from: "2026-01-01", to: "2026-01-02", certificateId: "6768" }, "certificateId"],
    ];
    for (const [name, data, field] of cases) {
      const res = await call(name, data, admin);
      assert.equal(res.error?.status, "INVALID_ARGUMENT", `${name} ${JSON.stringify(data).slice(0, 80)}`);
      assert.equal(res.error?.details?.field, field, `${name} ${JSON.stringify(data).slice(0, 80)}: ${res.error?.message}`);
    }
  });
});

describe("the explanation table", () => {
  it("explains every code once, each with a meaning and an action", () => {
    ExplanationTableSchema.parse(EXPLANATIONS);
    const keys = EXPLANATIONS.map((e) => `${e.category}:${e.code}`);
    assert.equal(new Set(keys).size, keys.length);
    for (const e of EXPLANATIONS) assert.ok(e.title && e.meaning && e.action, e.code);
    for (const code of ["kicked", "foreground", "push-disabled", "custom-without-desc", "event-too-old", "certificate-missing", "token-stale", "no-token", "logged-out"]) {
      assert.ok(keys.includes(`skip-reason:${code}`), code);
    }
    for (const code of ["token-unregistered", "certificate-auth", "expired"]) assert.ok(keys.includes(`fail-reason:${code}`), code);
    for (const code of ["UNREGISTERED", "SENDER_ID_MISMATCH", "QUOTA_EXCEEDED", "THIRD_PARTY_AUTH_ERROR", "invalid_grant"]) assert.ok(keys.includes(`fcm-error:${code}`), code);
  });
});
