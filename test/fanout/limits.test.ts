// The review's findings, end to end: bounded event strings, exactly-once keyed by the recipients
// too, long texts truncated to fit FCM, and Firestore errors that no retry can fix acknowledged.
// (The remaining-ttl rule is a pure function: unit.test.ts; the ttl a send carries: fanout.test.ts.)
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { Timestamp } from "firebase-admin/firestore";
import { FCM_MAX_PAYLOAD_BYTES, fcmPayloadSize, type FcmMessage } from "../../functions/src/fcm/message.ts";
import { batchLogId } from "../../functions/src/fanout/recipients.ts";
import { adminDb, clearFirestore, createUser, eventually, publish, type TestUser } from "../helpers/emulators.ts";
import { PUSH_TOPIC, entryFor, killedDevice, logDocs, msgKey, seedRunningBatch, sendsTo, waitForMessage, waitForRejected, type BatchDoc } from "../helpers/fanout.ts";
import { registerCertificate, type TestCertificate } from "../helpers/certificates.ts";

let cert: TestCertificate;
let alice: TestUser;

before(async () => {
  await clearFirestore();
  cert = await registerCertificate(await createUser({ admin: true }));
  alice = await createUser();
});

const textBody = (t: string) => [{ MsgType: "TIMTextElem", MsgContent: { Text: t } }];

describe("oversized strings in the event", () => {
  it("a 1.5 MB AndroidInfo.Sound: rejected as invalid-event naming the field, recorded (bounded), acknowledged, nothing sent", async () => {
    const bob = await createUser();
    const token = await killedDevice(bob, cert.certificateId);
    const key = msgKey("big-sound");
    await publish(PUSH_TOPIC, {
      MsgKey: key,
      From_Account: alice.uid,
      To_Account: bob.uid,
      MsgBody: textBody("hi"),
      OfflinePushInfo: { Desc: "hi", AndroidInfo: { Sound: "s".repeat(1_500_000) } },
    });
    const rejected = await waitForRejected(key);
    assert.equal(rejected.reason, "invalid-event");
    assert.deepEqual(rejected.issues, [{ field: "OfflinePushInfo.AndroidInfo.Sound", message: "is longer than 256 characters" }]);
    assert.deepEqual(rejected.uids, [bob.uid]);
    assert.ok(rejected.detail.length < 2_100, "the record does not copy the oversized value");
    assert.equal((await sendsTo(token)).length, 0);
  });
});

describe("the same MsgKey published with different recipients", () => {
  it("each event's recipients are pushed, as two publications of one message; the same event again is still a duplicate", async () => {
    const [bob, carol] = [await createUser(), await createUser()];
    const bobToken = await killedDevice(bob, cert.certificateId);
    const carolToken = await killedDevice(carol, cert.certificateId);
    const key = msgKey("group");
    // One event per recipient of a group message, as some IM backends publish them.
    const toBob = { MsgKey: key, From_Account: alice.uid, To_Account: bob.uid, MsgBody: textBody("hello group") };
    await publish(PUSH_TOPIC, toBob);
    await publish(PUSH_TOPIC, { ...toBob, To_Account: carol.uid });
    const docs = await eventually(
      async () => {
        const all = (await logDocs(key)).filter((d): d is BatchDoc => d.kind === "batch");
        return all.length === 2 && all.every((d) => d.state === "done") ? all : undefined;
      },
      { what: "both events' batches to be done" },
    );
    // Two publications of one message (one epoch), in the order they registered: each its own batch.
    const [epoch] = new Set(docs.map((d) => d.epoch));
    assert.ok(epoch && docs.every((d) => d.epoch === epoch));
    assert.deepEqual(docs.map((d) => d.generation).sort(), [0, 1]);
    assert.deepEqual(docs.map((d) => d.id).sort(), [batchLogId(key, { epoch, generation: 0 }, 0), batchLogId(key, { epoch, generation: 1 }, 0)]);
    const bobsBatch = docs.find((d) => d.uids.includes(bob.uid));
    assert.ok(bobsBatch);
    assert.equal((await sendsTo(bobToken)).length, 1);
    assert.equal((await sendsTo(carolToken)).length, 1, "the second event's recipient is pushed too");

    await publish(PUSH_TOPIC, toBob);
    await eventually(async () => {
      const snap = await adminDb().doc(`pushLog/${bobsBatch.id}`).get();
      return (snap.data()?.duplicates ?? 0) >= 1 ? true : undefined;
    }, { what: "the redelivery to be recorded as a duplicate" });
    assert.equal((await sendsTo(bobToken)).length, 1, "the same event again pushes nothing");
    assert.equal((await sendsTo(carolToken)).length, 1);
  });
});

describe("a long text", () => {
  it("a 5,000-character CJK message arrives truncated to fit FCM's 4096 bytes, and the log notes it", async () => {
    const bob = await createUser();
    const token = await killedDevice(bob, cert.certificateId);
    const key = msgKey("long");
    const long = "今天的会议改到下午三点请大家准时参加".repeat(300).slice(0, 5_000);
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: alice.uid, To_Account: bob.uid, MsgBody: textBody(long), OfflinePushInfo: { Ext: '{"conv":"c2c_alice"}' } });
    const docs = await waitForMessage(key);
    assert.equal(entryFor(docs, bob.uid).outcome, "sent");
    const [send] = await sendsTo(token);
    const message = send!.message as FcmMessage;
    const body = message.notification?.body ?? "";
    assert.ok(body.endsWith("…"), body.slice(-10));
    assert.ok(long.startsWith(body.slice(0, -1)));
    assert.ok(body.length > 1_000, `${body.length} characters kept`);
    assert.ok(fcmPayloadSize(message) <= FCM_MAX_PAYLOAD_BYTES);
    assert.equal(message.data?.ext, '{"conv":"c2c_alice"}', "Ext is never truncated");
    assert.ok(docs[0]!.notes.some((n) => n.startsWith("notification body truncated from 5000 to")), JSON.stringify(docs[0]!.notes));
  });
});

describe("a Firestore error no retry can fix", () => {
  it("INVALID_ARGUMENT (a hand-edited batch document at 1 MiB that any update overflows): recorded as unprocessable and acknowledged", async () => {
    // Outcomes live in bounded shards, so the fan-out never grows a document near the limit by
    // itself; a document filled to the last byte by hand still meets Firestore's refusal, and that
    // must end in a record, not an hour of retries.
    const key = msgKey("too-large");
    const uids = Array.from({ length: 20 }, (_, i) => `too-large-${i}`);
    const past = Timestamp.fromMillis(Date.now() - 60_000);
    const { logId } = await seedRunningBatch({ msgKey: key, from: alice.uid, uids, owner: "crashed", deliveryId: "crashed-message", leaseUntilMs: past.toMillis(), at: past });
    const ref = adminDb().doc(`pushLog/${logId}`);
    // The largest `notes` the emulator accepts, found by bisection: the document is then exactly full.
    let lo = 0;
    let hi = 1_048_576;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      try {
        await ref.update({ notes: ["n".repeat(mid)] });
        lo = mid;
      } catch {
        hi = mid - 1;
      }
    }
    await ref.update({ notes: ["n".repeat(lo)] });
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: alice.uid, To_Account: uids, MsgBody: textBody("x"), OfflinePushInfo: { PushFlag: 1 } });
    const rejected = await waitForRejected(key);
    assert.equal(rejected.reason, "unprocessable");
    assert.match(rejected.detail, /Firestore refused a write that no retry can fix/);
    assert.deepEqual(rejected.uids, [...uids].sort(), "found by user");
  });
});
