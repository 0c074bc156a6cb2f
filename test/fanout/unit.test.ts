// Pure parts of the fan-out: event validation, the push decision, the FCM message, batching and
// the exactly-once bookkeeping rules. The emulator tests (fanout.test.ts, errors.test.ts,
// scale.test.ts) cover the same paths end to end.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Timestamp } from "firebase-admin/firestore";
import { fieldOf } from "../../functions/src/common/callable.ts";
import { FCM_MAX_PAYLOAD_BYTES, fcmPayloadSize } from "../../functions/src/fcm/message.ts";
import {
  DEFAULT_PLACEHOLDERS,
  MAX_QUOTED_CHARS,
  buildFcmMessage,
  checkedFcmMessage,
  messageDecision,
  placeholdersFrom,
  remainingTtlSeconds,
  truncateToJsonBytes,
} from "../../functions/src/fanout/message.ts";
import { claimDecision } from "../../functions/src/fanout/claim.ts";
import { SHARD_ENTRIES, boundedEntry, countOutcomes } from "../../functions/src/fanout/pushLog.ts";
import { batchLogId, generationId, legacyBatchLogId, msgKeyId, recipientsOf, splitIntoBatches } from "../../functions/src/fanout/recipients.ts";
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
  it("deduplicates and sorts, so any order of the same recipients makes the same batches", () => {
    assert.deepEqual(recipientsOf({ To_Account: ["d", "c", "b", "d", "c"] }), ["b", "c", "d"]);
    assert.deepEqual(recipientsOf({ To_Account: ["c", "b", "d"] }), recipientsOf({ To_Account: ["b", "d", "c", "b"] }));
    assert.deepEqual(recipientsOf({ To_Account: "b" }), ["b"]);
    assert.deepEqual(splitIntoBatches([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
  });

  it("a publication is its whole recipient list, in any order and with repeats: a changed list is another publication", () => {
    assert.equal(generationId(["bob", "carol"]), generationId(["carol", "bob", "bob"]));
    assert.notEqual(generationId(["bob"]), generationId(["carol"]));
    assert.notEqual(generationId(["bob", "carol"]), generationId(["bob"]));
    assert.notEqual(generationId(["a,b"]), generationId(["a", "b"]));
    assert.match(generationId(["bob"]), /^[0-9a-f]{16}$/);
  });

  it("batch log IDs: the MsgKey, the message record's epoch, the publication and the batch index", () => {
    assert.equal(batchLogId("msg-123", { epoch: "0a1b2c3d4e", generation: 0 }, 4), "msg-123__0a1b2c3d4e__0__4");
    assert.notEqual(batchLogId("k", { epoch: "e1", generation: 0 }, 0), batchLogId("k", { epoch: "e2", generation: 0 }, 0), "a reused MsgKey (a new epoch) never meets its old batches");
    assert.notEqual(batchLogId("k", { epoch: "e1", generation: 0 }, 0), batchLogId("k", { epoch: "e1", generation: 1 }, 0));
    // A batch message of the version before message records keeps its old ID.
    assert.match(legacyBatchLogId("msg-123", 4, ["bob"]), /^msg-123__4__[0-9a-f]{16}$/);
    assert.equal(legacyBatchLogId("k", 0, ["carol", "bob"]), legacyBatchLogId("k", 0, ["bob", "carol"]));
  });

  it("log IDs: readable keys as they are, anything else hashed (no collision between the forms)", () => {
    assert.match(msgKeyId("a/b"), /^~[0-9a-f]{64}$/);
    assert.match(msgKeyId("__x__"), /^~/);
    assert.notEqual(msgKeyId("a/b"), msgKeyId("a/c"));
  });
});

describe("string bounds (an oversized event is rejected naming the field)", () => {
  const base = { MsgKey: "k", From_Account: "a", To_Account: "b" };
  const long = (n: number) => "x".repeat(n);
  it("rejects each oversized field by name", () => {
    const cases: Array<[unknown, string]> = [
      [{ ...base, OfflinePushInfo: { AndroidInfo: { Sound: long(1_500_000) } } }, "OfflinePushInfo.AndroidInfo.Sound"],
      [{ ...base, OfflinePushInfo: { AndroidInfo: { GoogleChannelID: long(257) } } }, "OfflinePushInfo.AndroidInfo.GoogleChannelID"],
      [{ ...base, OfflinePushInfo: { Title: long(1_001) } }, "OfflinePushInfo.Title"],
      [{ ...base, OfflinePushInfo: { Desc: long(12_001) } }, "OfflinePushInfo.Desc"],
      [{ ...base, OfflinePushInfo: { Ext: long(4_097) } }, "OfflinePushInfo.Ext"],
      [{ ...base, MsgKey: long(513) }, "MsgKey"],
      [{ ...base, From_Account: long(129) }, "From_Account"],
      [{ ...base, To_Account: ["b", long(129)] }, "To_Account.1"],
      [{ ...base, MsgBody: [text(long(12_001))] }, "MsgBody.0.MsgContent.Text"],
      [{ ...base, MsgBody: [{ MsgType: "TIMCustomElem", MsgContent: { Data: long(12_001) } }] }, "MsgBody.0.MsgContent.Data"],
      [{ ...base, MsgBody: [{ MsgType: "TIMCustomElem", MsgContent: { Sound: long(257) } }] }, "MsgBody.0.MsgContent.Sound"],
    ];
    for (const [event, field] of cases) assert.equal(firstIssueField(event), field);
  });

  it("accepts a long chat message (12,000 characters) and the largest Ext", () => {
    assert.ok(PushEventSchema.safeParse({ ...base, MsgBody: [text("字".repeat(12_000))], OfflinePushInfo: { Ext: long(4_096) } }).success);
  });

  it("a user-provided string quoted in the log is clipped", () => {
    const d = messageDecision(content({ OfflinePushInfo: { AndroidInfo: { Sound: "s".repeat(256) } } }));
    assert.equal(d.notes.length, 1);
    assert.ok(d.notes[0]!.includes(`${"s".repeat(MAX_QUOTED_CHARS)}…`));
    assert.ok(!d.notes[0]!.includes("s".repeat(MAX_QUOTED_CHARS + 1)));
  });
});

describe("long texts are truncated to fit FCM's 4096 bytes", () => {
  const token = `${"t".repeat(11)}:APA91b${"x".repeat(140)}`;
  const cjk = "你好世界消息".repeat(834).slice(0, 5_000);

  it("a 5,000-character CJK text: the body is a prefix with an ellipsis, the message fits, the log notes it", () => {
    const c = content({ MsgBody: [text(cjk)], OfflinePushInfo: { Ext: '{"conv":"c2c_alice"}' } });
    const d = messageDecision(c);
    assert.ok(d.push);
    assert.ok(d.body.endsWith("…"));
    assert.ok(cjk.startsWith(d.body.slice(0, -1)));
    assert.ok(d.body.length > 1_000, `${d.body.length} characters kept`);
    assert.equal(d.title, "alice");
    assert.deepEqual(d.notes, [`notification body truncated from 5000 to ${Array.from(d.body).length} characters to fit FCM's 4096-byte payload limit`]);
    const checked = checkedFcmMessage(c, d, token);
    assert.ok(checked.ok);
    assert.ok(checked.bytes <= FCM_MAX_PAYLOAD_BYTES);
    assert.equal(checked.message.notification?.body, d.body, "every device gets the text fitted once per message");
    assert.equal(checked.message.data?.ext, '{"conv":"c2c_alice"}');
  });

  it("a long title too: it keeps at most a quarter of the room, the body the rest", () => {
    const c = content({ MsgBody: [text(cjk)], OfflinePushInfo: { Title: "标".repeat(1_000) } });
    const d = messageDecision(c);
    assert.ok(d.push && d.title.endsWith("…") && d.body.endsWith("…"));
    assert.ok(Buffer.byteLength(d.title) < Buffer.byteLength(d.body) / 2);
    assert.equal(d.notes.length, 2);
    const checked = checkedFcmMessage(c, d, token);
    assert.ok(checked.ok && checked.bytes <= FCM_MAX_PAYLOAD_BYTES);
  });

  it("cuts on character boundaries (no split emoji), counting JSON escapes", () => {
    const family = "👨‍👩‍👧";
    const cut = truncateToJsonBytes(family.repeat(10), 40);
    assert.ok(cut.endsWith("…"));
    assert.equal(cut.slice(0, -1), family.repeat((cut.length - 1) / family.length));
    assert.ok(Buffer.byteLength(JSON.stringify(cut)) - 2 <= 40);
    const quotes = truncateToJsonBytes('"'.repeat(100), 21);
    assert.equal(quotes, `${'"'.repeat(9)}…`, 'each " is 2 bytes in JSON');
    assert.equal(truncateToJsonBytes("short", 40), "short");
  });

  it("a message that cannot fit even with a shortened text (a huge Ext, never truncated) is still skipped", () => {
    const c = content({ MsgBody: [text(cjk)], OfflinePushInfo: { Ext: "e".repeat(4_000) } });
    const d = messageDecision(c);
    assert.ok(d.push);
    const checked = checkedFcmMessage(c, d, token);
    assert.equal(!checked.ok && checked.reason, "payload-too-large");
    assert.match(!checked.ok ? checked.detail : "", /\d+ bytes, over FCM's 4096-byte limit even with a shortened title and body: shorten Ext/);
  });

  it("a token longer than the one the text was fitted for: fitted again for that device", () => {
    const c = content({ MsgBody: [text(cjk)] });
    const d = messageDecision(c);
    assert.ok(d.push);
    const checked = checkedFcmMessage(c, d, "t".repeat(600));
    assert.ok(checked.ok);
    assert.ok(fcmPayloadSize(checked.message) <= FCM_MAX_PAYLOAD_BYTES);
    assert.ok((checked.message.notification?.body ?? "").length < d.body.length);
  });
});

describe("ttl: what is left of MsgLifeTime", () => {
  const token = "tok:APA91b-abc";
  it("counts the time since publication off the lifetime, never below 0", () => {
    assert.equal(remainingTtlSeconds(3600, 0), 3600);
    assert.equal(remainingTtlSeconds(3600, 50 * 60_000), 600);
    assert.equal(remainingTtlSeconds(3600, 50 * 60_000 + 1), 599, "never promises more than is left");
    assert.equal(remainingTtlSeconds(3600, 2 * 3600_000), 0);
    assert.equal(remainingTtlSeconds(undefined, 60_000), 604_740);
    assert.equal(remainingTtlSeconds(3600, -5_000), 3600, "a publish time ahead of our clock gives no extra time");
  });

  it("a message processed 50 minutes late gets the 10 minutes left; an expired one \"0s\" (deliver now or drop)", () => {
    const c = content({ MsgLifeTime: 3600 });
    assert.equal(buildFcmMessage(c, { title: "a", body: "b" }, token, { ageMs: 50 * 60_000 }).android?.ttl, "600s");
    const late = checkedFcmMessage(c, { title: "a", body: "b" }, token, { ageMs: 2 * 3600_000 });
    assert.ok(late.ok);
    assert.equal(late.message.android?.ttl, "0s");
  });
});

describe("exactly-once bookkeeping", () => {
  const at = Timestamp.fromMillis(0);
  const sent = (uid: string, deviceId: string): PushLogEntry => ({ outcome: "sent", uid, deviceId, reason: "sent", certificateId: 1, fcmName: "n", attempts: 1, at });
  const skipped = (uid: string, deviceId: string | null): PushLogEntry => ({ outcome: "skipped", uid, deviceId, reason: "foreground", detail: "d", at });

  it("every free-text field of an entry is clipped, so a shard of SHARD_ENTRIES stays far below 1 MiB", () => {
    const long = "x".repeat(100_000);
    const failed: PushLogEntry = {
      outcome: "failed",
      uid: "u".repeat(128),
      deviceId: "d".repeat(128),
      reason: "fcm-error",
      detail: long,
      certificateId: 1,
      error: { kind: long, httpStatus: 500, status: long, errorCode: long, message: long },
      attempts: 1,
      at,
    };
    const shard = Array.from({ length: SHARD_ENTRIES }, () => boundedEntry(failed));
    const bytes = Buffer.byteLength(JSON.stringify(shard));
    assert.ok(bytes < 250_000, `a full shard of worst-case entries is ${bytes} bytes`);
    assert.equal(boundedEntry(sent("u", "d")).outcome, "sent");
    assert.deepEqual(countOutcomes([sent("u", "d1"), skipped("u", "d2"), skipped("u", null)]), { sent: 1, skipped: 2, failed: 0 });
  });

  it("claims: create when new, done is final, a live lease is busy (our message's or another's), an expired one is taken over, our own lease resumed", () => {
    const now = 1_000_000;
    const lease = (ms: number) => ({ owner: "o1", deliveryId: "m1", until: Timestamp.fromMillis(ms) });
    assert.deepEqual(claimDecision(undefined, now, "m1"), { action: "create" });
    assert.deepEqual(claimDecision({ state: "done", lease: null }, now, "m1"), { action: "done" });
    assert.deepEqual(claimDecision({ state: "running", lease: lease(now + 1) }, now, "m1"), { action: "busy", owner: "o1", untilMs: now + 1, sameDelivery: true });
    assert.deepEqual(claimDecision({ state: "running", lease: lease(now + 1) }, now, "m2"), { action: "busy", owner: "o1", untilMs: now + 1, sameDelivery: false });
    assert.deepEqual(claimDecision({ state: "running", lease: lease(now - 1) }, now, "m2"), { action: "take-over", previousOwner: "o1" });
    // Our own lease (a claim whose answer was lost): resumed at once, live or not; done is still final.
    assert.deepEqual(claimDecision({ state: "running", lease: lease(now + 1) }, now, "m1", "o1"), { action: "resume" });
    assert.deepEqual(claimDecision({ state: "running", lease: lease(now - 1) }, now, "m1", "o1"), { action: "resume" });
    assert.deepEqual(claimDecision({ state: "running", lease: lease(now + 1) }, now, "m1", "o2"), { action: "busy", owner: "o1", untilMs: now + 1, sameDelivery: true });
    assert.deepEqual(claimDecision({ state: "done", lease: null }, now, "m1", "o1"), { action: "done" });
  });
});
