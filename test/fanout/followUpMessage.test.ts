// What a Read's clear and a Recall's replacement are on the wire (pure), and the event schemas'
// edges: valid by FCM's v1 schema, small, the replacement carrying the original's tag.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FCM_MAX_PAYLOAD_BYTES, fcmMessageSchema, fcmPayloadSize } from "../../functions/src/fcm/message.ts";
import { clearMessage, recallMessage } from "../../functions/src/fanout/followUpMessage.ts";
import { buildFcmMessage } from "../../functions/src/fanout/message.ts";
import { ReadEventSchema, RecallEventSchema } from "../../functions/src/fanout/schemas.ts";
import { DEFAULT_LOCALE_TEXTS, textsFor } from "../../functions/src/fanout/localeTexts.ts";

const token = "t".repeat(160);

describe("follow-up FCM messages", () => {
  it("a clear is data only, normal priority, with the conversation's collapse key", () => {
    const m = clearMessage(token, "group_team");
    fcmMessageSchema.parse(m);
    assert.equal(m.notification, undefined);
    assert.deepEqual(m.data, { type: "clear", conversation: "group_team" });
    assert.equal(m.android?.priority, "NORMAL");
    assert.equal(m.android?.collapse_key, "group_team");
  });

  it("a recall replaces the original: the same tag and collapse key, the recipient locale's text", () => {
    const original = buildFcmMessage({ MsgKey: "msg-1", From_Account: "alice", GroupId: "team", MsgBody: [] }, { title: "Alice", body: "hi" }, token);
    const body = textsFor(DEFAULT_LOCALE_TEXTS, "fr-CA").texts.recalled;
    const m = recallMessage(token, { msgKey: "msg-1", sender: "alice", conversation: "group_team", title: "Alice", body });
    fcmMessageSchema.parse(m);
    assert.equal(m.android?.notification?.tag, original.android?.notification?.tag);
    assert.equal(m.android?.collapse_key, original.android?.collapse_key);
    assert.equal(m.notification?.body, "Ce message a été retiré");
    assert.deepEqual(m.data, { type: "recall", msgKey: "msg-1", sender: "alice", conversation: "group_team" });
    // Every field at its bound still fits FCM's payload limit.
    const longest = recallMessage(token, { msgKey: "k".repeat(512), sender: "a".repeat(128), conversation: `group_${"g".repeat(128)}`, title: "t".repeat(300), body });
    assert.ok(fcmPayloadSize(longest) < FCM_MAX_PAYLOAD_BYTES);
  });
});

describe("Read and Recall schemas", () => {
  it("name the wrong field", () => {
    const read = ReadEventSchema.safeParse({ Event: "Read", EventKey: "", Account: "a/b", Conversation: "x", DeviceId: "bad device" });
    assert.ok(!read.success);
    assert.deepEqual(read.error.issues.map((i) => i.path.join(".")).sort(), ["Account", "Conversation", "DeviceId", "EventKey"]);
    assert.ok(ReadEventSchema.safeParse({ Event: "Read", EventKey: "e", Account: "bob", Conversation: "c2c_alice" }).success);
    const recall = RecallEventSchema.safeParse({ Event: "Recall", MsgKey: "m" });
    assert.ok(!recall.success);
    assert.deepEqual(recall.error.issues.map((i) => i.path.join(".")), ["From_Account"]);
  });
});
