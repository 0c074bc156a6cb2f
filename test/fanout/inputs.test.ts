// Inputs at and past their bounds, end to end: a 500,000-entry sendMessage refused at once while
// the instance keeps answering, a 12 KB body in 200 elements pushed, a body that cannot be a
// message refused naming the field, and an event of 100,000 unknown recipients recorded and
// acknowledged while the next event is pushed. (The bounds themselves: bounds.test.ts.)
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { MAX_MSG_BODY_ELEMENTS } from "../../functions/src/fanout/schemas.ts";
import { adminDb, callOk, callSerialized, clearFirestore, createUser, eventually, publish, type TestUser } from "../helpers/emulators.ts";
import { PUSH_TOPIC, entryFor, killedDevice, msgKey, sendsTo, waitForMessage, waitForRejected } from "../helpers/fanout.ts";
import { registerCertificate, type TestCertificate } from "../helpers/certificates.ts";
import { trace } from "../diagnostics/helpers.ts";

let admin: TestUser;
let cert: TestCertificate;
let alice: TestUser;

before(async () => {
  await clearFirestore();
  admin = await createUser({ admin: true });
  cert = await registerCertificate(admin);
  alice = await createUser();
});

const text = (t: string) => ({ MsgType: "TIMTextElem", MsgContent: { Text: t } });
const notification = async (token: string, key: string) =>
  eventually(
    async () => ((await sendsTo(token)).find((s) => (s.message as { data?: { msgKey?: string } }).data?.msgKey === key)?.message as { notification: { title: string; body: string } } | undefined)?.notification,
    { timeoutMs: 60_000, what: `the push of ${key} at the fake FCM` },
  );

describe("sendMessage with 500,000 recipients", () => {
  it("is refused as INVALID_ARGUMENT naming to, and the next call is served", async (t) => {
    const bob = await createUser();
    const token = await killedDevice(bob, cert.certificateId);
    // A warm instance, and requests serialized beforehand: the timings are the requests' own.
    await callOk("sendMessage", { to: "nobody-warm-up", body: "warm-up" }, alice);
    const huge = JSON.stringify({ data: { to: Array.from({ length: 500_000 }, (_, i) => `user-${i}`), body: "to everyone" } });
    // The floor: a request as large that any code refuses by one length comparison (what the HTTP
    // layers cost to receive and parse 6.9 MB on this machine, before any function code runs).
    const floor = JSON.stringify({ data: { to: "bob", body: "x".repeat(huge.length - 40) } });
    const timed = async (body: string) => {
      const started = performance.now();
      const res = await callSerialized("sendMessage", body, alice);
      return { res, ms: performance.now() - started };
    };
    const floorRun = await timed(floor);
    assert.equal(floorRun.res.error?.details?.field, "body");
    const { res, ms } = await timed(huge);
    t.diagnostic(`500,000-entry to (${(huge.length / 1e6).toFixed(1)} MB) refused in ${ms.toFixed(0)} ms; a request as large refused by a length check: ${floorRun.ms.toFixed(0)} ms`);
    assert.equal(res.error?.status, "INVALID_ARGUMENT");
    assert.equal(res.error?.details?.field, "to");
    assert.equal(res.error?.message, "to: has more than 500 accounts");
    // The time is a figure, not an assertion (a loaded 2-core machine makes any bound flaky): that
    // no element is read before the refusal is proven in bounds.test.ts (an array that throws when
    // read), and `npm run bench` prints this refusal beside the same-size floor.

    const sent = await callOk<{ msgKey: string }>("sendMessage", { to: bob.uid, body: "still here" }, alice);
    assert.equal((await notification(token, sent.msgKey)).body, "still here");
  });
});

describe("message bodies within the original service's limits", () => {
  it("a 12 KB body in 200 short text elements is pushed, with its first text", async () => {
    const bob = await createUser();
    const token = await killedDevice(bob, cert.certificateId);
    const key = msgKey("two-hundred");
    const body = Array.from({ length: 200 }, (_, i) => text(`part ${String(i).padStart(3, "0")} ${"x".repeat(51)}`));
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: alice.uid, To_Account: bob.uid, MsgBody: body, OfflinePushInfo: { Title: "Alice" } });
    const docs = await waitForMessage(key);
    assert.equal(entryFor(docs, bob.uid).outcome, "sent");
    assert.deepEqual(await notification(token, key), { title: "Alice", body: body[0]!.MsgContent.Text });
  });

  it("a body of more elements than 64 KiB can hold is recorded as invalid naming MsgBody, and nothing is sent", async () => {
    const bob = await createUser();
    const token = await killedDevice(bob, cert.certificateId);
    const key = msgKey("too-many-elements");
    const body = Array.from({ length: MAX_MSG_BODY_ELEMENTS + 1 }, () => ({ MsgType: "TIMFaceElem", MsgContent: {} }));
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: alice.uid, To_Account: bob.uid, MsgBody: body });
    const rejected = await waitForRejected(key);
    assert.equal(rejected.reason, "invalid-event");
    assert.deepEqual(rejected.issues, [{ field: "MsgBody", message: `has more than ${MAX_MSG_BODY_ELEMENTS} elements` }]);
    assert.equal((await sendsTo(token)).length, 0);
  });
});

describe("an event of 100,000 unknown recipients", () => {
  it("is recorded and acknowledged (500 batches, every recipient no-device), and the event published after it is pushed meanwhile", async (t) => {
    const bob = await createUser();
    const token = await killedDevice(bob, cert.certificateId);
    const big = msgKey("broadcast");
    const to = Array.from({ length: 100_000 }, (_, i) => `unknown-${String(i).padStart(6, "0")}`);
    const started = Date.now();
    await publish(PUSH_TOPIC, { MsgKey: big, From_Account: alice.uid, To_Account: to, MsgBody: [text("to all")] });
    const small = msgKey("after-broadcast");
    await publish(PUSH_TOPIC, { MsgKey: small, From_Account: alice.uid, To_Account: bob.uid, MsgBody: [text("just for bob")] });
    assert.equal((await notification(token, small)).body, "just for bob");
    const smallMs = Date.now() - started;

    // One aggregation a few seconds apart while the batches run; the operator's view once they are done.
    const doneBatches = adminDb().collection("pushLog").where("msgKey", "==", big).where("state", "==", "done");
    await eventually(async () => ((await doneBatches.count().get()).data().count === 500 ? true : undefined), {
      timeoutMs: 480_000,
      intervalMs: 3_000,
      what: "the 500 batches of the broadcast to be done",
    });
    const done = await trace(admin, big);
    t.diagnostic(`the next event was pushed ${smallMs} ms after the broadcast's publication; the broadcast was done after ${Date.now() - started} ms`);
    assert.equal(done.counts.batches, 500);
    assert.ok(done.batches.every((b) => b.state === "done"));
    assert.equal(done.counts.recipients, 100_000);
    assert.equal(done.counts.skipped, 100_000);
    assert.equal(done.counts.sent + done.counts.failed, 0);
    assert.ok(done.devices.length > 0 && done.devices.every((d) => d.reason === "no-device"));
    // The counts by reason cover the whole message, not only the devices listed (at most 2,000):
    // each done batch's document says them, so no shard beyond the listed batches' was read.
    assert.equal(done.devicesTruncated, true);
    assert.deepEqual(done.counts.byReason, { "no-device": 100_000 });
    assert.equal(done.counts.reasonsPending, 0);
    assert.match(done.summary, /: 0 sent, 100000 skipped \(no-device 100000\), 0 failed/);
    assert.equal(done.rejected.length, 0);
  });
});
