// Events that follow the conversation, end to end: messages pushed through the Pub/Sub emulator to
// devices set up with the real callables, then Read and Recall events published on the same topic;
// the clears and replacements observed at the fake FCM, the decisions read from the push log.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { BatchLogSchema, type BatchLog } from "../../functions/src/fanout/schemas.ts";
import { readBatchEntries } from "../../functions/src/fanout/pushLog.ts";
import { readLogId } from "../../functions/src/fanout/readEvent.ts";
import { recallLogId } from "../../functions/src/fanout/recallEvent.ts";
import { traceMessage } from "../../functions/src/diagnostics/trace.ts";
import { readStats } from "../../functions/src/diagnostics/stats.ts";
import { randomUUID } from "node:crypto";
import { Timestamp } from "firebase-admin/firestore";
import type { Device } from "../../functions/src/sessions/schemas.ts";
import { adminDb, clearFirestore, createUser, eventually, publish, type TestUser } from "../helpers/emulators.ts";
import { PUSH_TOPIC, msgKey, sendsTo, waitForMessage, waitForRejected } from "../helpers/fanout.ts";
import { seedDevice, seedToken } from "../helpers/fanoutSeed.ts";
import { registerCertificate, type TestCertificate } from "../helpers/certificates.ts";
import type { RecordedRequest } from "../helpers/fakeFcm.ts";

let cert: TestCertificate;
let alice: TestUser; // the sender
let dave: TestUser; // another sender: another conversation

before(async () => {
  await clearFirestore();
  const admin = await createUser({ admin: true });
  cert = await registerCertificate(admin);
  [alice, dave] = [await createUser(), await createUser()];
});

const textBody = (t: string) => [{ MsgType: "TIMTextElem", MsgContent: { Text: t } }];

/**
 * A user with a phone (android) and a browser (web), both in the background for a minute, each
 * with a token: written directly (fanoutSeed.ts), because devices set up through the callables
 * one after the other are each in the foreground within ACTIVE_ELSEWHERE_SECONDS of the other.
 */
async function seedUser(name: string, deviceIds: Array<"phone" | "browser"> = ["phone", "browser"], prefs?: Record<string, unknown>): Promise<{ uid: string; tokens: Record<string, string> }> {
  const uid = `${name}-${randomUUID()}`;
  const tokens: Record<string, string> = {};
  const devices: Record<string, Device> = {};
  for (const deviceId of deviceIds) {
    const token = seedToken(cert.certificateId);
    tokens[deviceId] = token.token;
    devices[deviceId] = seedDevice(deviceId, { platform: deviceId === "phone" ? "android" : "web", token });
  }
  await adminDb().collection("users").doc(uid).set({ devices, updatedAt: Timestamp.now(), ...(prefs ? { prefs } : {}) });
  return { uid, tokens };
}

/** A device's token last reported 40 days ago: stale, so the next message skips it (token-stale). */
const makeStale = (uid: string, deviceId: string) =>
  adminDb().collection("users").doc(uid).update({ [`devices.${deviceId}.token.refreshedAt`]: Timestamp.fromMillis(Date.now() - 40 * 86_400_000) });

type Logged = BatchLog & { id: string };

async function doneLog(id: string, what: string, check: (doc: Logged) => boolean = () => true): Promise<Logged> {
  return eventually(
    async () => {
      const snap = await adminDb().collection("pushLog").doc(id).get();
      if (!snap.exists) return undefined;
      const doc = { id, ...BatchLogSchema.parse(snap.data()) };
      return doc.state === "done" && check(doc) ? doc : undefined;
    },
    { what, timeoutMs: 60_000 },
  );
}

const ofType = (sends: RecordedRequest[], type: string) => sends.filter((s) => (s.message as { data?: { type?: string } }).data?.type === type);

describe("Read", () => {
  let bob: { uid: string };
  let phone: string;
  let browser: string;
  let carolPhone: string;
  const conversation = () => `c2c_${alice.uid}`;
  const first = msgKey("read-m1");

  before(async () => {
    const seededBob = await seedUser("bob");
    bob = seededBob;
    [phone, browser] = [seededBob.tokens.phone!, seededBob.tokens.browser!];
    const carol = await seedUser("carol", ["phone"]);
    carolPhone = carol.tokens.phone!;
    // Alice writes to Bob (and Carol); Dave writes to Bob: two conversations of Bob's.
    await publish(PUSH_TOPIC, { MsgKey: first, From_Account: alice.uid, To_Account: [bob.uid, carol.uid], MsgBody: textBody("hi") });
    const other = msgKey("read-other");
    await publish(PUSH_TOPIC, { MsgKey: other, From_Account: dave.uid, To_Account: bob.uid, MsgBody: textBody("yo") });
    await Promise.all([waitForMessage(first), waitForMessage(other)]);
    assert.equal((await sendsTo(phone)).length, 2);
    assert.equal((await sendsTo(browser)).length, 2);
  });

  it("clears the devices pushed in that conversation but the one it was read on, once per EventKey", async () => {
    const eventKey = msgKey("read-e1");
    const event = { Event: "Read", EventKey: eventKey, Account: bob.uid, Conversation: conversation(), DeviceId: "browser" };
    await publish(PUSH_TOPIC, event);
    const doc = await doneLog(readLogId(eventKey), "the Read to be done");
    const clears = ofType(await sendsTo(phone), "clear");
    assert.equal(clears.length, 1);
    assert.deepEqual(clears[0]!.message, {
      token: phone,
      data: { type: "clear", conversation: conversation() },
      android: { priority: "NORMAL", ttl: "604800s", collapse_key: conversation() },
    });
    assert.equal(ofType(await sendsTo(browser), "clear").length, 0, "the device it was read on is not cleared");
    assert.equal(ofType(await sendsTo(carolPhone), "clear").length, 0, "another user's device is not cleared");
    assert.equal(doc.event, "read");
    assert.equal(doc.conversation, conversation());
    assert.deepEqual(doc.follows, [first]);
    assert.deepEqual(doc.counts, { sent: 1, skipped: 0, failed: 0 });
    // A Read's cost: the push log's scan and the message batch found (2), the user and the
    // certificate (2) read; its claim and its final record written; one FCM request per device cleared.
    process.stdout.write(`[read] cost ${JSON.stringify(doc.cost)}, publish to done ${doc.completedAt!.toMillis() - Date.parse(doc.publishTime!)} ms\n`);
    assert.deepEqual(doc.cost, { firestoreReads: 4, firestoreWrites: 2, fcmRequests: 1, publishes: 0 });
    const entries = await readBatchEntries(adminDb().collection("pushLog").doc(doc.id));
    assert.deepEqual(entries.map((e) => [e.uid, e.deviceId, e.outcome]), [[bob.uid, "phone", "sent"]]);

    // The same EventKey again: found done, nothing more sent.
    await publish(PUSH_TOPIC, event);
    await doneLog(readLogId(eventKey), "the repeated Read to be counted as a duplicate", (d) => d.duplicates >= 1);
    assert.equal(ofType(await sendsTo(phone), "clear").length, 1);

    // The message's trace shows the Read that followed it.
    const trace = await traceMessage(first);
    assert.equal(trace.conversation, conversation());
    assert.deepEqual(
      trace.followUps.map((f) => [f.kind, f.key, f.counts.sent]),
      [["read", eventKey, 1]],
    );
  });

  it("a second Read clears only the devices pushed since the last one; another conversation is untouched", async () => {
    // The browser's token goes stale: the next message reaches the phone only.
    await makeStale(bob.uid, "browser");
    const next = msgKey("read-m2");
    await publish(PUSH_TOPIC, { MsgKey: next, From_Account: alice.uid, To_Account: bob.uid, MsgBody: textBody("again") });
    await waitForMessage(next);
    const eventKey = msgKey("read-e2");
    await publish(PUSH_TOPIC, { Event: "Read", EventKey: eventKey, Account: bob.uid, Conversation: conversation() });
    const doc = await doneLog(readLogId(eventKey), "the second Read to be done");
    assert.equal(ofType(await sendsTo(phone), "clear").length, 2);
    assert.equal(ofType(await sendsTo(browser), "clear").length, 0, "the browser got nothing since it read the conversation");
    assert.deepEqual(doc.follows, [next]);

    // A Read of a conversation nobody pushed this user in sends nothing.
    const none = msgKey("read-none");
    await publish(PUSH_TOPIC, { Event: "Read", EventKey: none, Account: bob.uid, Conversation: "group_nobody" });
    const empty = await doneLog(readLogId(none), "the empty Read to be done");
    assert.deepEqual(empty.counts, { sent: 0, skipped: 0, failed: 0 });
    assert.equal(ofType(await sendsTo(phone), "clear").length, 2);
  });
});

describe("Recall", () => {
  it("replaces the notification on exactly the devices that were pushed, in each recipient's locale, once", async () => {
    // Bob reads German; his browser's token is stale, so it is not pushed the message.
    const bob = await seedUser("bob", ["phone", "browser"], { locale: "de-AT" });
    await makeStale(bob.uid, "browser");
    const [bobPhone, bobBrowser] = [bob.tokens.phone!, bob.tokens.browser!];
    const carol = await seedUser("carol", ["phone"]);
    const carolPhone = carol.tokens.phone!;
    const erin = await seedUser("erin", ["phone"]);
    const erinPhone = erin.tokens.phone!;

    const key = msgKey("recall");
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: alice.uid, To_Account: [bob.uid, carol.uid, erin.uid], GroupId: "team", MsgBody: textBody("oops") });
    const [batch] = await waitForMessage(key);
    assert.equal(batch!.conversation, "group_team");
    // Erin logs out after the push: her phone has left since.
    await adminDb().collection("users").doc(erin.uid).update({ "devices.phone.session": "logged-out", "devices.phone.endedAt": Timestamp.now(), "devices.phone.token": null });

    await publish(PUSH_TOPIC, { Event: "Recall", MsgKey: key, From_Account: alice.uid });
    const doc = await doneLog(recallLogId(batch!.id), "the Recall to be done");
    const recallOf = async (token: string) => ofType(await sendsTo(token), "recall");
    const [toBob] = await recallOf(bobPhone);
    assert.deepEqual(toBob?.message, {
      token: bobPhone,
      notification: { title: alice.uid, body: "Diese Nachricht wurde zurückgerufen" },
      data: { type: "recall", msgKey: key, sender: alice.uid, conversation: "group_team" },
      android: { priority: "HIGH", ttl: "604800s", collapse_key: "group_team", notification: { tag: key } },
    });
    const [toCarol] = await recallOf(carolPhone);
    assert.equal((toCarol?.message as { notification: { body: string } }).notification.body, "This message was recalled");
    assert.equal((await recallOf(bobBrowser)).length, 0, "a device that was not pushed (token-stale) gets nothing");
    assert.equal((await recallOf(erinPhone)).length, 0);
    const entries = await readBatchEntries(adminDb().collection("pushLog").doc(doc.id));
    const outcome = (uid: string) => entries.filter((e) => e.uid === uid).map((e) => [e.deviceId, e.outcome, e.reason]);
    assert.deepEqual(outcome(bob.uid), [["phone", "sent", "sent"]]);
    assert.deepEqual(outcome(carol.uid), [["phone", "sent", "sent"]]);
    assert.deepEqual(outcome(erin.uid), [["phone", "skipped", "left-since-push"]]);
    assert.equal(doc.event, "recall");

    // Redelivered: nothing more.
    await publish(PUSH_TOPIC, { Event: "Recall", MsgKey: key, From_Account: alice.uid });
    await doneLog(recallLogId(batch!.id), "the repeated Recall to be counted as a duplicate", (d) => d.duplicates >= 1);
    assert.equal((await recallOf(bobPhone)).length, 1);

    // Someone else's recall is refused and recorded; nothing is sent.
    const mallory = `mallory-${key}`;
    await publish(PUSH_TOPIC, { Event: "Recall", MsgKey: key, From_Account: mallory });
    const refused = await eventually(
      async () => {
        const snaps = await adminDb().collection("pushLog").where("msgKey", "==", key).where("kind", "==", "rejected").get();
        return snaps.docs.map((d) => d.data()).find((d) => d.reason === "recall-not-sender");
      },
      { what: "the refused recall" },
    );
    assert.equal(refused.from, mallory);
    assert.match(refused.detail as string, new RegExp(`sent by ${alice.uid}`));
    assert.equal((await recallOf(bobPhone)).length, 1);

    // The trace shows the recall, counted apart from the message's own outcomes.
    const trace = await traceMessage(key);
    assert.equal(trace.counts.sent, 3);
    assert.deepEqual(
      trace.followUps.map((f) => [f.kind, f.counts.sent, f.counts.skipped]),
      [["recall", 2, 1]],
    );
    assert.ok(trace.rejected.some((r) => r.reason === "recall-not-sender"));

    // pushStats counts the events by kind, not as messages.
    const today = new Date().toISOString().slice(0, 10);
    const stats = await readStats(today, today);
    assert.ok((stats.totals.byEvent.recall?.events ?? 0) >= 1);
    assert.ok((stats.totals.byEvent.recall?.sent ?? 0) >= 2);
    assert.ok((stats.totals.byEvent.read?.events ?? 0) >= 1);
  });

  it("a Recall of a message the push log does not know is recorded and acknowledged", async () => {
    const key = msgKey("recall-unknown");
    await publish(PUSH_TOPIC, { Event: "Recall", MsgKey: key, From_Account: alice.uid });
    const rejected = await waitForRejected(key);
    assert.equal(rejected.reason, "recall-unknown-message");
  });
});

describe("malformed follow-up events", () => {
  it("are recorded as invalid events naming the field, and acknowledged", async () => {
    const key = msgKey("bad-read");
    await publish(PUSH_TOPIC, { Event: "Read", EventKey: key, Account: "bob", Conversation: "alice" });
    const bad = await waitForRejected(key);
    assert.equal(bad.reason, "invalid-event");
    assert.deepEqual(bad.issues.map((i) => i.field), ["Conversation"]);

    const unknown = msgKey("bad-kind");
    await publish(PUSH_TOPIC, { Event: "Delete", MsgKey: unknown, From_Account: alice.uid });
    const rejected = await waitForRejected(unknown);
    assert.equal(rejected.reason, "invalid-event");
    assert.deepEqual(rejected.issues.map((i) => i.field), ["Event"]);

    const recall = msgKey("bad-recall");
    await publish(PUSH_TOPIC, { Event: "Recall", MsgKey: recall });
    assert.deepEqual((await waitForRejected(recall)).issues.map((i) => i.field), ["From_Account"]);
  });
});
