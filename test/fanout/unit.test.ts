// Pure parts of the fan-out: event validation, the push decision, the FCM message, batching and
// the exactly-once bookkeeping rules. The emulator tests (fanout.test.ts, errors.test.ts,
// scale.test.ts) cover the same paths end to end.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Timestamp } from "firebase-admin/firestore";
import { fieldOf } from "../../functions/src/common/callable.ts";
import {
  DEFAULT_PLACEHOLDERS,
  buildFcmMessage,
  checkedFcmMessage,
  messageDecision,
  placeholdersFrom,
} from "../../functions/src/fanout/message.ts";
import { claimDecision, countOutcomes, entryKey, mergeEntries } from "../../functions/src/fanout/progress.ts";
import { batchLogId, msgKeyId, recipientsOf, splitIntoBatches } from "../../functions/src/fanout/recipients.ts";
import {
  BatchMessageSchema,
  PushEventSchema,
  SendMessageRequestSchema,
  contentOf,
  type PushContent,
  type PushLogEntry,
} from "../../functions/src/fanout/schemas.ts";

const text = (t: string) => ({ MsgType: "TIMTextElem" as const, MsgContent: { Text: t } });

function content(extra: Partial<PushContent> = {}): PushContent {
  return PushEventSchema.parse({ MsgKey: "k1", From_Account: "alice", To_Account: "bob", MsgBody: [text("hi")], ...extra }) as PushContent;
}

function firstIssueField(input: unknown): string | undefined {
  const res = PushEventSchema.safeParse(input);
  return res.success ? undefined : fieldOf(res.error.issues[0]!);
}

describe("the Pub/Sub event (original REST field names)", () => {
  it("accepts the contract's example, To_Account as a string or an array, and unknown top-level fields", () => {
    const example = {
      MsgKey: "msg-123",
      From_Account: "alice",
      To_Account: ["bob", "carol"],
      MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: "hi" } }],
      OfflinePushInfo: { PushFlag: 0, Title: "Alice", Desc: "hi", Ext: '{"conv":"c2c_alice"}', AndroidInfo: { GoogleChannelID: "chat", Sound: "a.mp3" } },
      SyncOtherMachine: 1,
      MsgRandom: 1287657,
    };
    assert.ok(PushEventSchema.safeParse(example).success);
    assert.ok(PushEventSchema.safeParse({ ...example, To_Account: "bob" }).success);
    assert.ok(PushEventSchema.safeParse({ ...example, OfflinePushInfo: { ...example.OfflinePushInfo, ApnsInfo: { Sound: "x", BadgeMode: 1 } } }).success);
  });

  it("names the wrong field", () => {
    assert.equal(firstIssueField({ From_Account: "a", To_Account: "b" }), "MsgKey");
    assert.equal(firstIssueField({ MsgKey: "k", From_Account: "a", To_Account: [] }), "To_Account");
    assert.equal(firstIssueField({ MsgKey: "k", From_Account: "a", To_Account: "b", MsgBody: [{ MsgType: "TIMTextElem", MsgContent: {} }] }), "MsgBody.0.MsgContent.Text");
    assert.equal(firstIssueField({ MsgKey: "k", From_Account: "a", To_Account: "b", MsgBody: [{ MsgType: "TIMNopeElem", MsgContent: {} }] }), "MsgBody.0.MsgType");
    assert.equal(firstIssueField({ MsgKey: "k", From_Account: "a", To_Account: "b", OfflinePushInfo: { PushFlag: 2 } }), "OfflinePushInfo.PushFlag");
    assert.equal(firstIssueField({ MsgKey: "k", From_Account: "a", To_Account: "b", MsgLifeTime: 604801 }), "MsgLifeTime");
    assert.equal(firstIssueField({ MsgKey: "k", From_Account: "a/b", To_Account: "b" }), "From_Account");
  });

  it("contentOf drops the recipients (a batch carries its own)", () => {
    const event = PushEventSchema.parse({ MsgKey: "k", From_Account: "a", To_Account: ["b", "c"], MsgBody: [text("x")] });
    assert.equal("To_Account" in contentOf(event), false);
  });

  it("batch messages and sendMessage requests are validated", () => {
    const batch = { v: 1, content: content(), batchIndex: 0, batchCount: 1, uids: ["b"], publishTime: new Date().toISOString(), eventId: "1" };
    assert.ok(BatchMessageSchema.safeParse(batch).success);
    assert.equal(BatchMessageSchema.safeParse({ ...batch, uids: [] }).success, false);
    assert.ok(SendMessageRequestSchema.safeParse({ to: "bob", body: "hi" }).success);
    assert.ok(SendMessageRequestSchema.safeParse({ to: ["bob"], body: [text("hi")], offlinePushInfo: { Title: "t" } }).success);
    const bad = SendMessageRequestSchema.safeParse({ to: "bob", extra: 1 });
    assert.equal(bad.success ? undefined : fieldOf(bad.error.issues[0]!), "extra");
  });
});

describe("the push decision and the notification text", () => {
  it("Title and Desc win", () => {
    const d = messageDecision(content({ OfflinePushInfo: { Title: "Alice", Desc: "new message" } }));
    assert.deepEqual(d, { push: true, title: "Alice", body: "new message", notes: [] });
  });

  it("without them: the sender, and the first text element", () => {
    const d = messageDecision(content({ MsgBody: [{ MsgType: "TIMImageElem", MsgContent: {} }, text("look")] }));
    assert.equal(d.push && d.title, "alice");
    assert.equal(d.push && d.body, "look");
  });

  it("no text: a generic text by element type, configurable", () => {
    const image = content({ MsgBody: [{ MsgType: "TIMImageElem", MsgContent: { UUID: "x" } }] });
    assert.equal((messageDecision(image) as { body: string }).body, "[Image]");
    const custom = placeholdersFrom('{"TIMImageElem":"[Photo]"}');
    assert.equal((messageDecision(image, custom) as { body: string }).body, "[Photo]");
    assert.equal(custom.TIMSoundElem, DEFAULT_PLACEHOLDERS.TIMSoundElem);
    assert.deepEqual(placeholdersFrom("not json"), DEFAULT_PLACEHOLDERS);
    assert.deepEqual(placeholdersFrom('{"TIMImageElem": 3}'), DEFAULT_PLACEHOLDERS);
  });

  it("PushFlag 1: no push", () => {
    const d = messageDecision(content({ OfflinePushInfo: { PushFlag: 1, Desc: "x" } }));
    assert.equal(d.push, false);
    assert.equal(!d.push && d.reason, "push-disabled");
  });

  it("a custom message without Desc: no push; with a Desc (either place): pushed with it", () => {
    const custom = { MsgType: "TIMCustomElem" as const, MsgContent: { Data: "{}" } };
    const d = messageDecision(content({ MsgBody: [custom] }));
    assert.equal(!d.push && d.reason, "custom-without-desc");
    const withInfoDesc = messageDecision(content({ MsgBody: [custom], OfflinePushInfo: { Desc: "You got a gift" } }));
    assert.equal(withInfoDesc.push && withInfoDesc.body, "You got a gift");
    const withElemDesc = messageDecision(content({ MsgBody: [{ MsgType: "TIMCustomElem", MsgContent: { Data: "{}", Desc: "A gift" } }] }));
    assert.equal(withElemDesc.push && withElemDesc.body, "A gift");
  });

  it("a Sound is not applied, and says so", () => {
    const d = messageDecision(content({ OfflinePushInfo: { AndroidInfo: { Sound: "a.mp3" } } }));
    assert.equal(d.notes.length, 1);
    assert.match(d.notes[0]!, /a\.mp3.*not applied.*FCM does not support custom notification sounds/);
  });
});

describe("the FCM message", () => {
  const token = "tok:APA91b-abc";
  it("carries title, body, data.ext exactly, message key, sender, channel, priority, ttl, collapse key", () => {
    const c = content({ MsgLifeTime: 3600, OfflinePushInfo: { Title: "Alice", Desc: "hi", Ext: '{"conv":"c2c_alice"}', AndroidInfo: { GoogleChannelID: "chat", Sound: "a.mp3" } } });
    assert.deepEqual(buildFcmMessage(c, { title: "Alice", body: "hi" }, token), {
      token,
      notification: { title: "Alice", body: "hi" },
      data: { msgKey: "k1", sender: "alice", ext: '{"conv":"c2c_alice"}' },
      android: { priority: "HIGH", ttl: "3600s", collapse_key: "c2c_alice", notification: { channel_id: "chat", tag: "k1" } },
    });
  });

  it("without MsgLifeTime: the original service's 7 days; without Ext/channel: none", () => {
    const m = buildFcmMessage(content(), { title: "a", body: "b" }, token);
    assert.equal(m.android?.ttl, "604800s");
    assert.deepEqual(m.data, { msgKey: "k1", sender: "alice" });
    assert.deepEqual(m.android?.notification, { tag: "k1" });
  });

  it("over 4096 bytes: not sent, with the size", () => {
    const c = content({ OfflinePushInfo: { Ext: "x".repeat(4000) } });
    const checked = checkedFcmMessage(c, { title: "a", body: "b" }, token);
    assert.equal(checked.ok, false);
    assert.equal(!checked.ok && checked.reason, "payload-too-large");
    assert.match(!checked.ok ? checked.detail : "", /\d+ bytes, over FCM's 4096-byte limit/);
    assert.equal(checkedFcmMessage(content(), { title: "a", body: "b" }, token).ok, true);
  });
});

describe("recipients and batches", () => {
  it("deduplicates in order and splits deterministically", () => {
    assert.deepEqual(recipientsOf({ To_Account: ["b", "c", "b", "d", "c"] }), ["b", "c", "d"]);
    assert.deepEqual(recipientsOf({ To_Account: "b" }), ["b"]);
    assert.deepEqual(splitIntoBatches([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
  });

  it("log IDs: readable keys as they are, anything else hashed (no collision between the forms)", () => {
    assert.equal(batchLogId("msg-123", 4), "msg-123__4");
    assert.match(msgKeyId("a/b"), /^~[0-9a-f]{64}$/);
    assert.match(msgKeyId("__x__"), /^~/);
    assert.notEqual(msgKeyId("a/b"), msgKeyId("a/c"));
  });
});

describe("exactly-once bookkeeping", () => {
  const at = Timestamp.fromMillis(0);
  const sent = (uid: string, deviceId: string): PushLogEntry => ({ outcome: "sent", uid, deviceId, reason: "sent", certificateId: 1, fcmName: "n", attempts: 1, at });
  const skipped = (uid: string, deviceId: string | null): PushLogEntry => ({ outcome: "skipped", uid, deviceId, reason: "foreground", detail: "d", at });

  it("a device's first recorded outcome is final", () => {
    const merged = mergeEntries([sent("u", "d1")], [skipped("u", "d1"), skipped("u", "d2"), skipped("u", null)]);
    assert.deepEqual(merged.map((e) => [entryKey(e), e.outcome]), [
      [entryKey({ uid: "u", deviceId: "d1" }), "sent"],
      [entryKey({ uid: "u", deviceId: "d2" }), "skipped"],
      [entryKey({ uid: "u", deviceId: null }), "skipped"],
    ]);
    assert.deepEqual(countOutcomes(merged), { sent: 1, skipped: 2, failed: 0 });
  });

  it("claims: create when new, done is final, a live lease is busy (ours or another message's), an expired one is taken over", () => {
    const now = 1_000_000;
    const lease = (ms: number) => ({ owner: "o1", deliveryId: "m1", until: Timestamp.fromMillis(ms) });
    assert.deepEqual(claimDecision(undefined, now, "m1"), { action: "create" });
    assert.deepEqual(claimDecision({ state: "done", lease: null }, now, "m1"), { action: "done" });
    assert.deepEqual(claimDecision({ state: "running", lease: lease(now + 1) }, now, "m1"), { action: "busy", owner: "o1", untilMs: now + 1, sameDelivery: true });
    assert.deepEqual(claimDecision({ state: "running", lease: lease(now + 1) }, now, "m2"), { action: "busy", owner: "o1", untilMs: now + 1, sameDelivery: false });
    assert.deepEqual(claimDecision({ state: "running", lease: lease(now - 1) }, now, "m2"), { action: "take-over", previousOwner: "o1" });
  });
});
