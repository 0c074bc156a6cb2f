// A push followed from publication to the tap (traceMessage, reportPushOpened) and counted per day
// (pushStats): the receipt is idempotent and silent about messages that are not the caller's, and
// each batch is counted exactly once.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { PROJECT, adminDb, call, callOk, clearFirestore, createUser, mapLimit, publish, type TestUser } from "../helpers/emulators.ts";
import { fakeFcm } from "../helpers/fakeFcm.ts";
import { PUSH_TOPIC, foregroundDevice, killedDevice, msgKey, sendsTo, waitForMessage } from "../helpers/fanout.ts";
import { registerCertificate, type TestCertificate } from "../helpers/certificates.ts";
import { stats, textBody, todayUtc, traced, tracedDevice, traceUntil } from "./helpers.ts";

let admin: TestUser;
let cert: TestCertificate;
let alice: TestUser;

before(async () => {
  await clearFirestore();
  admin = await createUser({ admin: true });
  cert = await registerCertificate(admin);
  alice = await createUser();
});

const receipts = async (key: string) => (await adminDb().collection("pushOpened").where("msgKey", "==", key).get()).docs.map((d) => d.data());

describe("traceMessage: the stages of a push, up to the tap", () => {
  it("published -> received -> decided -> accepted, then opened once the app reports the tap; latency from publication to FCM", async () => {
    const bob = await createUser();
    const token = await killedDevice(bob, cert.certificateId);
    const key = msgKey();
    const before = Date.now();
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: alice.uid, To_Account: bob.uid, MsgBody: textBody("hi"), OfflinePushInfo: { Title: "Alice", Desc: "hi" } });
    const { trace: t } = await traced(admin, key);
    const d = tracedDevice(t, bob.uid, "phone");
    assert.equal(d.outcome, "sent");
    assert.deepEqual(d.stages.map((s) => s.stage), ["published", "received", "decided", "accepted"]);
    const [send] = await sendsTo(token);
    assert.equal(d.fcmName, send!.name);
    assert.equal(d.attempts, 1);
    assert.equal(d.openedAt, null);
    const times = d.stages.map((s) => Date.parse(s.at));
    assert.deepEqual([...times].sort((a, b) => a - b), times, "stages in time order");
    assert.ok(times[0]! >= before - 5_000 && times[0]! <= Date.now());
    assert.ok(t.latency && t.latency.samples === 1 && t.latency.p50Ms === d.latencyMs && t.latency.maxMs === d.latencyMs);
    assert.equal(d.latencyMs, Date.parse(d.stages[3]!.at) - Date.parse(d.stages[0]!.at));
    assert.match(t.summary, /1 sent \(0 opened\)/);

    assert.deepEqual(await callOk("reportPushOpened", { msgKey: key, deviceId: "phone" }, bob), { ok: true });
    const opened = await traceUntil(admin, key, (x) => x.counts.opened === 1, "the trace to show the tap");
    const od = tracedDevice(opened, bob.uid, "phone");
    assert.deepEqual(od.stages.map((s) => s.stage), ["published", "received", "decided", "accepted", "opened"]);
    assert.equal(od.openedAt, od.stages[4]!.at);
    assert.match(opened.summary, /1 sent \(1 opened\)/);
  });
});

describe("reportPushOpened", () => {
  it("is idempotent: repeated and concurrent reports make one receipt and count one open", async () => {
    const bob = await createUser();
    await killedDevice(bob, cert.certificateId);
    const key = msgKey();
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: alice.uid, To_Account: bob.uid, MsgBody: textBody("hi") });
    await waitForMessage(key);
    const statsBefore = await stats(admin, { from: todayUtc(-1), to: todayUtc(1) });
    await mapLimit([1, 2, 3, 4], 4, () => callOk("reportPushOpened", { msgKey: key, deviceId: "phone" }, bob));
    await callOk("reportPushOpened", { msgKey: key, deviceId: "phone" }, bob);
    const docs = await receipts(key);
    assert.equal(docs.length, 1);
    assert.equal(docs[0]!.uid, bob.uid);
    assert.equal(docs[0]!.certificateId, cert.certificateId);
    const statsAfter = await stats(admin, { from: todayUtc(-1), to: todayUtc(1) });
    assert.equal(statsAfter.totals.opened - statsBefore.totals.opened, 1);
  });

  it("ignores, with the same answer, an unknown msgKey, another user's message, a device that was not sent to, and a skipped device", async () => {
    const bob = await createUser();
    const carol = await createUser();
    await killedDevice(bob, cert.certificateId);
    await foregroundDevice(carol, cert.certificateId);
    const key = msgKey();
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: alice.uid, To_Account: [bob.uid, carol.uid], MsgBody: textBody("hi") });
    await waitForMessage(key);
    const statsBefore = await stats(admin, { from: todayUtc(-1), to: todayUtc(1) });

    const answers = [
      await call("reportPushOpened", { msgKey: msgKey("unknown"), deviceId: "phone" }, bob),
      await call("reportPushOpened", { msgKey: key, deviceId: "phone" }, alice), // the sender: not a recipient
      await call("reportPushOpened", { msgKey: key, deviceId: "tablet" }, bob), // bob's, but not sent to that device
      await call("reportPushOpened", { msgKey: key, deviceId: "phone" }, carol), // carol was skipped (foreground)
    ];
    for (const a of answers) assert.deepEqual([a.httpStatus, a.result, a.error], [200, { ok: true }, undefined]);
    assert.deepEqual(await receipts(key), []);
    const statsAfter = await stats(admin, { from: todayUtc(-1), to: todayUtc(1) });
    assert.equal(statsAfter.totals.opened, statsBefore.totals.opened);
  });

  it("needs a signed-in user and a valid request", async () => {
    const anonymous = await call("reportPushOpened", { msgKey: "k", deviceId: "phone" });
    assert.equal(anonymous.error?.status, "UNAUTHENTICATED");
    const bad = await call("reportPushOpened", { msgKey: "k", deviceId: "no/slashes" }, alice);
    assert.equal(bad.error?.status, "INVALID_ARGUMENT");
    assert.equal(bad.error?.details?.field, "deviceId");
    const missing = await call("reportPushOpened", { deviceId: "phone" }, alice);
    assert.equal(missing.error?.details?.field, "msgKey");
  });
});

describe("pushStats", () => {
  it("counts events, recipients, sent, skipped by reason, failed by reason and FCM code, and opened, once per batch; per certificate too", async () => {
    const other = await registerCertificate(admin, "second app");
    const [bob, carol, dave, erin] = await Promise.all([createUser(), createUser(), createUser(), createUser()]);
    await killedDevice(bob!, cert.certificateId);
    await foregroundDevice(carol!, cert.certificateId);
    const daveToken = await killedDevice(dave!, other.certificateId);
    await fakeFcm.addErrorRule({ token: daveToken, preset: "unregistered" });
    await killedDevice(erin!, other.certificateId);
    const range = { from: todayUtc(-1), to: todayUtc(1) };
    const before = await stats(admin, range);
    const beforeOther = await stats(admin, { ...range, certificateId: other.certificateId });

    const key = msgKey();
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: alice.uid, To_Account: [bob!.uid, carol!.uid, dave!.uid, erin!.uid, "never-logged-in"], MsgBody: textBody("hi") });
    const [doc] = await waitForMessage(key);
    assert.equal(doc!.state, "done");
    await callOk("reportPushOpened", { msgKey: key, deviceId: "phone" }, erin!);

    const after = await stats(admin, range);
    const diff = (k: "events" | "recipients" | "sent" | "skipped" | "failed" | "opened") => (after.totals[k] ?? 0) - (before.totals[k] ?? 0);
    assert.deepEqual(
      { events: diff("events"), recipients: diff("recipients"), sent: diff("sent"), skipped: diff("skipped"), failed: diff("failed"), opened: diff("opened") },
      { events: 1, recipients: 5, sent: 2, skipped: 2, failed: 1, opened: 1 },
    );
    const delta = (m: Record<string, number>, b: Record<string, number>, k: string) => (m[k] ?? 0) - (b[k] ?? 0);
    assert.equal(delta(after.totals.skippedByReason, before.totals.skippedByReason, "foreground"), 1);
    assert.equal(delta(after.totals.skippedByReason, before.totals.skippedByReason, "no-device"), 1);
    assert.equal(delta(after.totals.failedByReason, before.totals.failedByReason, "token-unregistered"), 1);
    assert.equal(delta(after.totals.failedByErrorCode, before.totals.failedByErrorCode, "UNREGISTERED"), 1);
    assert.ok(after.explanations.some((e) => e.category === "fcm-error" && e.code === "UNREGISTERED"));
    assert.ok(after.explanations.some((e) => e.category === "skip-reason" && e.code === "foreground"));
    assert.equal(after.days.length, 3);
    assert.deepEqual(after.days.map((d) => d.date), [todayUtc(-1), todayUtc(), todayUtc(1)]);
    assert.ok(after.totals.openRate !== null && after.totals.openRate > 0);

    const afterOther = await stats(admin, { ...range, certificateId: other.certificateId });
    assert.equal(afterOther.certificateId, other.certificateId);
    assert.equal(afterOther.totals.events, null, "events and skips are not per certificate");
    assert.equal(afterOther.totals.sent - beforeOther.totals.sent, 1);
    assert.equal(afterOther.totals.failed - beforeOther.totals.failed, 1);
    assert.equal(afterOther.totals.opened - beforeOther.totals.opened, 1);

    // A redelivery of the same event finds the batch done and counts nothing again.
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: alice.uid, To_Account: [bob!.uid, carol!.uid, dave!.uid, erin!.uid, "never-logged-in"], MsgBody: textBody("hi") });
    await traceUntil(admin, key, (t) => t.batches[0]!.duplicates >= 1, "the duplicate to be seen");
    const again = await stats(admin, range);
    assert.equal(again.totals.sent, after.totals.sent);
    assert.equal(again.totals.events, after.totals.events);
  });

  it("reads a 30-day range in one call, every day present, zeros where nothing happened", async () => {
    const r = await stats(admin, { from: todayUtc(-29), to: todayUtc() });
    assert.equal(r.days.length, 30);
    assert.equal(r.days[0]!.sent, 0);
    assert.equal(r.days[0]!.openRate, null);
    const stored = await adminDb().collection("pushStats").get();
    assert.ok(stored.size <= 8, `a month is at most 4 shard documents (found ${stored.size})`);
  });
});

describe("the notification title of a message without Title", () => {
  it("is the sender's Firebase Auth displayName", async () => {
    const named = await createUser();
    const auth = process.env.FIREBASE_AUTH_EMULATOR_HOST ?? "127.0.0.1:9099";
    const res = await fetch(`http://${auth}/identitytoolkit.googleapis.com/v1/projects/${PROJECT}/accounts:update`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer owner" },
      body: JSON.stringify({ localId: named.uid, displayName: "Alice Liddell" }),
      signal: AbortSignal.timeout(30_000),
    });
    assert.equal(res.status, 200);
    const bob = await createUser();
    const token = await killedDevice(bob, cert.certificateId);
    const key = msgKey();
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: named.uid, To_Account: bob.uid, MsgBody: textBody("tea?") });
    await waitForMessage(key);
    const [send] = await sendsTo(token);
    assert.deepEqual((send!.message as { notification: unknown }).notification, { title: "Alice Liddell", body: "tea?" });

    // sendMessage from the app: a non-admin's Title is ignored, the sender's display name is used.
    const sent = await callOk<{ msgKey: string }>("sendMessage", { to: bob.uid, body: "lunch?", offlinePushInfo: { Title: "System" } }, named);
    await waitForMessage(sent.msgKey);
    const fromApp = (await sendsTo(token)).find((r) => (r.message as { data: { msgKey: string } }).data.msgKey === sent.msgKey);
    assert.deepEqual((fromApp!.message as { notification: unknown }).notification, { title: "Alice Liddell", body: "lunch?" });
  });
});
