// The iPhone's message (apnsMessage.ts), the loc keys on both platforms, the badge counting rules
// (badges/store.ts) and FCM's iOS answers, without the emulators; ios.test.ts runs them end to end.
// And the Android message, byte for byte what it was before iOS got its own builder.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { Timestamp } from "firebase-admin/firestore";
import { FCM_MAX_PAYLOAD_BYTES, fcmPayloadSize } from "../../functions/src/fcm/message.ts";
import { classifyFcmResponse } from "../../functions/src/fcm/send.ts";
import {
  BADGE_RESERVE,
  apnsCollapseId,
  apnsExpiration,
  apnsText,
  buildApnsClearMessage,
  buildApnsFcmMessage,
  checkedApnsMessage,
  withToken,
} from "../../functions/src/fanout/apnsMessage.ts";
import { DEFAULT_PLACEHOLDERS, buildFcmMessage, checkedFcmMessage, messageDecision } from "../../functions/src/fanout/message.ts";
import { PushEventSchema, contentOf, type PushContent } from "../../functions/src/fanout/schemas.ts";
import { countPush, currentEntry, type BadgeEntry } from "../../functions/src/badges/store.ts";
import { validateSendBody } from "../../tools/fake-fcm/fcmSchema.ts";

const text = (t: string) => ({ MsgType: "TIMTextElem" as const, MsgContent: { Text: t } });
const content = (extra: Record<string, unknown> = {}): PushContent =>
  contentOf(PushEventSchema.parse({ MsgKey: "k1", From_Account: "alice", To_Account: "bob", MsgBody: [text("hi")], ...extra }));
const token = "token:APA91b-ios";

/**
 * The one deliberate change since a4fdf1c, made by the conversations work (issue 19), not the iOS
 * work: a group message without Title is titled "<sender> (<GroupId>)" (message.ts). Every other
 * byte is compared as built then.
 */
function groupTitled(c: ReturnType<typeof contentOf>, message: unknown): unknown {
  const m = message as { notification?: { title?: string } };
  if (c.GroupId === undefined || c.OfflinePushInfo?.Title || !m.notification?.title) return message;
  return { ...m, notification: { ...m.notification, title: `${m.notification.title} (${c.GroupId})` } };
}

describe("the Android message is unchanged by the iOS work", () => {
  // Built by main at a4fdf1c (before this work) from the same events, with the same code path the
  // batch uses (contentOf, messageDecision, checkedFcmMessage): compared as JSON, byte for byte.
  // (Tests run from the repository root: scripts/emulators.mjs.)
  const fixture = JSON.parse(readFileSync("test/fanout/fixtures/android-messages-a4fdf1c.json", "utf8")) as Array<{
    name: string;
    ageMs: number;
    event: unknown;
    message: unknown;
  }>;
  for (const { name, ageMs, event, message } of fixture) {
    it(`${name}: the same bytes`, () => {
      const c = contentOf(PushEventSchema.parse(event));
      const d = messageDecision(c, DEFAULT_PLACEHOLDERS);
      assert.ok(d.push);
      const checked = checkedFcmMessage(c, { title: d.title, body: d.body }, "token:APA91b-android-fixture", { ageMs });
      assert.ok(checked.ok);
      assert.equal(JSON.stringify(checked.message), JSON.stringify(groupTitled(c, message)));
    });
  }
});

describe("the iPhone's message", () => {
  it("carries the apns block, field by field, and nothing else", () => {
    const c = content({
      GroupId: "team-42",
      MsgLifeTime: 3600,
      OfflinePushInfo: {
        Title: "Alice",
        Desc: "hi there",
        Ext: '{"conv":"group_team-42"}',
        AndroidInfo: { GoogleChannelID: "chat", Sound: "a.mp3" },
        ApnsInfo: { Title: "Alice (iOS)", SubTitle: "in Team 42", Sound: "ping.caf", Image: "https://example.com/a.png" },
      },
    });
    const nowMs = Date.UTC(2026, 11, 4, 2, 0, 0);
    const m = buildApnsFcmMessage(c, apnsText(c, { title: "Alice", body: "hi there" }), token, { ageMs: 10_000, nowMs, badge: 3 });
    assert.deepEqual(m, {
      token,
      apns: {
        headers: {
          "apns-priority": "10",
          "apns-push-type": "alert",
          "apns-expiration": String(nowMs / 1000 + 3590),
          "apns-collapse-id": "group_team-42",
        },
        payload: {
          aps: {
            alert: { title: "Alice (iOS)", subtitle: "in Team 42", body: "hi there" },
            sound: "ping.caf",
            badge: 3,
            "thread-id": "group_team-42",
            "mutable-content": 1,
          },
          ext: '{"conv":"group_team-42"}',
          msgKey: "k1",
          sender: "alice",
          conversation: "group_team-42",
        },
        fcm_options: { image: "https://example.com/a.png" },
      },
    });
    // checkedApnsMessage applies ApnsInfo.Title itself (apnsText, before fitting); buildApnsFcmMessage takes the text it is given.
    const checked = checkedApnsMessage(c, { title: "Alice", body: "hi there" }, token, { ageMs: 10_000, nowMs, badge: 3 });
    assert.ok(checked.ok);
    assert.equal((checked.message.apns?.payload?.aps as { alert: { title: string } }).alert.title, "Alice (iOS)");
    assert.ok(validateSendBody({ message: checked.message }).ok, "the fake FCM accepts it");
  });

  it("defaults: sound default, no subtitle, no badge key, no mutable-content, c2c conversation", () => {
    const m = buildApnsFcmMessage(content(), { title: "alice", body: "hi" }, token);
    const aps = m.apns?.payload?.aps as Record<string, unknown>;
    assert.deepEqual(aps, { alert: { title: "alice", body: "hi" }, sound: "default", "thread-id": "c2c_alice" });
    assert.equal(m.apns?.headers?.["apns-collapse-id"], "c2c_alice");
    assert.equal(m.notification, undefined);
    assert.equal(m.data, undefined, "the custom data is in the payload, not carried twice");
    assert.equal(m.apns?.fcm_options, undefined);
  });

  it("MutableContent 1 alone sets mutable-content; a custom element's Sound plays on iOS", () => {
    const m = buildApnsFcmMessage(content({ OfflinePushInfo: { ApnsInfo: { MutableContent: 1 } } }), { title: "a", body: "b" }, token);
    assert.equal((m.apns?.payload?.aps as Record<string, unknown>)["mutable-content"], 1);
    const custom = content({ MsgBody: [{ MsgType: "TIMCustomElem", MsgContent: { Desc: "gift", Sound: "gift.caf" } }] });
    assert.equal((buildApnsFcmMessage(custom, { title: "a", body: "b" }, token).apns?.payload?.aps as Record<string, unknown>).sound, "gift.caf");
  });

  it("apns-collapse-id stays within APNs' 64 bytes: a longer conversation is hashed", () => {
    assert.equal(apnsCollapseId("c2c_bob"), "c2c_bob");
    const long = `group_${"g".repeat(128)}`;
    const id = apnsCollapseId(long);
    assert.ok(Buffer.byteLength(id) <= 64);
    assert.equal(id, apnsCollapseId(long), "stable");
    assert.notEqual(id, apnsCollapseId(`${long}x`));
  });

  it("apns-expiration: epoch seconds of what is left of MsgLifeTime; 0 when nothing is left", () => {
    assert.equal(apnsExpiration(600, 0, 1_000_000_000), String(1_000_000 + 600));
    assert.equal(apnsExpiration(600, 600_000, 1_000_000_000), "0");
    assert.equal(apnsExpiration(0, 0, 1_000_000_000), "0");
    assert.equal(apnsExpiration(undefined, 0, 1_000_000_000), String(1_000_000 + 604_800));
  });

  it("fits FCM's 4 KB on its own: a long text is shortened, measured with the largest badge", () => {
    const c = content({ MsgBody: [text("日本語".repeat(1500))], OfflinePushInfo: { Ext: "e".repeat(2000) } });
    const checked = checkedApnsMessage(c, { title: "alice", body: "日本語".repeat(1500) }, token, { badge: 7 });
    assert.ok(checked.ok);
    assert.ok(fcmPayloadSize(withToken(checked.message, token, BADGE_RESERVE)) <= FCM_MAX_PAYLOAD_BYTES);
    assert.match((checked.message.apns?.payload?.aps as { alert: { body: string } }).alert.body, /…$/);
    assert.equal(checked.message.apns?.payload?.ext, "e".repeat(2000), "Ext is never shortened");
    const tooBig = checkedApnsMessage(content({ OfflinePushInfo: { Ext: "e".repeat(4096) } }), { title: "a", body: "b" }, token);
    assert.deepEqual([tooBig.ok, !tooBig.ok && tooBig.reason], [false, "payload-too-large"]);
  });

  it("withToken sets a device's badge, or leaves the key out", () => {
    const t = buildApnsFcmMessage(content(), { title: "a", body: "b" }, "x", { badge: BADGE_RESERVE });
    assert.equal((withToken(t, token, 4).apns?.payload?.aps as Record<string, unknown>).badge, 4);
    const none = withToken(t, token, undefined);
    assert.equal("badge" in (none.apns?.payload?.aps as Record<string, unknown>), false);
    assert.equal(none.token, token);
    assert.equal((t.apns?.payload?.aps as Record<string, unknown>).badge, BADGE_RESERVE, "the template is not changed");
  });

  it("the silent update of a Read: content-available, the badge, priority 5; background without a badge", () => {
    const withBadge = buildApnsClearMessage(token, "c2c_alice", 2);
    assert.deepEqual(withBadge, {
      token,
      apns: { headers: { "apns-priority": "5", "apns-push-type": "alert" }, payload: { aps: { "content-available": 1, badge: 2 }, type: "clear", conversation: "c2c_alice" } },
    });
    assert.deepEqual(buildApnsClearMessage(token, "c2c_alice").apns?.headers, { "apns-priority": "5", "apns-push-type": "background" });
    assert.ok(validateSendBody({ message: withBadge }).ok);
  });
});

describe("loc keys on both platforms", () => {
  const c = content({ OfflinePushInfo: { Title: "Alice", Desc: "hi", TitleLocKey: "NEW_MESSAGE_FROM", TitleLocArgs: ["Alice"], DescLocKey: "MESSAGE_BODY", DescLocArgs: ["hi", "2"] } });

  it("Android: title_loc_key / body_loc_key and their args, with the literal texts as fallback", () => {
    const m = buildFcmMessage(c, { title: "Alice", body: "hi" }, token);
    assert.deepEqual(m.notification, { title: "Alice", body: "hi" });
    assert.deepEqual(m.android?.notification, {
      tag: "k1",
      title_loc_key: "NEW_MESSAGE_FROM",
      title_loc_args: ["Alice"],
      body_loc_key: "MESSAGE_BODY",
      body_loc_args: ["hi", "2"],
    });
  });

  it("iOS: aps.alert title-loc-key / loc-key and their args, with the literal texts as fallback", () => {
    const alert = (buildApnsFcmMessage(c, { title: "Alice", body: "hi" }, token).apns?.payload?.aps as { alert: unknown }).alert;
    assert.deepEqual(alert, { title: "Alice", body: "hi", "title-loc-key": "NEW_MESSAGE_FROM", "title-loc-args": ["Alice"], "loc-key": "MESSAGE_BODY", "loc-args": ["hi", "2"] });
  });

  it("args without their key are not sent; bounds are checked naming the field", () => {
    const argsOnly = content({ OfflinePushInfo: { TitleLocArgs: ["x"] } });
    assert.deepEqual(buildFcmMessage(argsOnly, { title: "a", body: "b" }, token).android?.notification, { tag: "k1" });
    const field = (info: unknown) => {
      const r = PushEventSchema.safeParse({ MsgKey: "k", From_Account: "a", To_Account: "b", OfflinePushInfo: info });
      return r.success ? null : r.error.issues[0]?.path.join(".");
    };
    assert.equal(field({ DescLocArgs: Array(11).fill("a") }), "OfflinePushInfo.DescLocArgs");
    assert.equal(field({ TitleLocKey: "" }), "OfflinePushInfo.TitleLocKey");
    assert.equal(field({ DescLocArgs: ["a".repeat(257)] }), "OfflinePushInfo.DescLocArgs.0");
    assert.equal(field({ ApnsInfo: { BadgeMode: 2 } }), "OfflinePushInfo.ApnsInfo.BadgeMode");
    assert.equal(field({ ApnsInfo: { Image: "file:///etc/passwd" } }), "OfflinePushInfo.ApnsInfo.Image");
    assert.equal(field({ ApnsInfo: "loud" }), "OfflinePushInfo.ApnsInfo");
    assert.equal(field({ ApnsInfo: { Sound: "x", BadgeMode: 1, IsVoip: 0 } }), null, "the original's other ApnsInfo fields are accepted");
  });
});

describe("badge counting", () => {
  const at = (ms: number) => Timestamp.fromMillis(ms);
  const device = (over: Partial<{ sessionId: string; unreadCount: number | null; appStateAt: Timestamp }> = {}) => ({
    deviceId: "iphone",
    sessionId: "s1",
    unreadCount: 3 as number | null,
    appStateAt: at(1_000),
    ...over,
  });

  it("starts from the app's unreadCount, one more per message, once per MsgKey", () => {
    let entry: BadgeEntry = currentEntry(undefined, device());
    assert.equal(entry.count, 3);
    const first = countPush(entry, "c2c_alice", "m1");
    assert.equal(first.badge, 4);
    entry = currentEntry(first.entry, device());
    const second = countPush(entry, "group_g", "m2");
    assert.equal(second.badge, 5);
    const again = countPush(second.entry, "group_g", "m2");
    assert.deepEqual([again.badge, again.entry], [5, second.entry], "a repeated message counts nothing");
    assert.deepEqual(second.entry.conversations, { c2c_alice: 1, group_g: 1 });
  });

  it("a newer unreadCount resets the count; a new session starts over", () => {
    const counted = countPush(currentEntry(undefined, device()), "c", "m1").entry;
    assert.equal(currentEntry(counted, device({ unreadCount: 0, appStateAt: at(2_000) })).count, 0);
    assert.equal(currentEntry(counted, device({ unreadCount: null, appStateAt: at(2_000) })).count, 4, "a doBackground without unreadCount keeps counting");
    assert.equal(currentEntry(counted, device({ sessionId: "s2", unreadCount: null })).count, 0);
  });
});

describe("FCM's iOS answers", () => {
  const answer = (status: number, error: unknown) => classifyFcmResponse({ status, headers: {}, body: JSON.stringify({ error }) });
  it("APNs BadDeviceToken (INVALID_ARGUMENT + ApnsError) is the token's failure, with APNs' reason kept", () => {
    const r = answer(400, {
      code: 400,
      status: "INVALID_ARGUMENT",
      message: "Request contains an invalid argument.",
      details: [
        { "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode: "INVALID_ARGUMENT" },
        { "@type": "type.googleapis.com/google.firebase.fcm.v1.ApnsError", statusCode: 400, reason: "BadDeviceToken" },
      ],
    });
    assert.ok(!r.ok);
    assert.equal(r.kind, "token-invalid");
    assert.match(r.message, /APNs: BadDeviceToken/);
  });
  it("APNs Unregistered is token-unregistered; THIRD_PARTY_AUTH_ERROR is third-party-auth, not the certificate's", () => {
    const gone = answer(404, { code: 404, status: "NOT_FOUND", message: "x", details: [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.ApnsError", statusCode: 410, reason: "Unregistered" }] });
    assert.equal(!gone.ok && gone.kind, "token-unregistered");
    const noKey = answer(401, { code: 401, status: "UNAUTHENTICATED", message: "Auth error from APNS or Web Push Service", details: [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode: "THIRD_PARTY_AUTH_ERROR" }] });
    assert.equal(!noKey.ok && noKey.kind, "third-party-auth");
    const odd = answer(400, { code: 400, status: "INVALID_ARGUMENT", message: "bad", details: [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.ApnsError", reason: "constructor" }] });
    assert.equal(!odd.ok && odd.kind, "invalid-message", "an unknown APNs reason is not taken for a token verdict");
  });
});

describe("the fake FCM validates the apns block as FCM does", () => {
  const send = (apns: unknown) => validateSendBody({ message: { token, apns } });
  it("refuses header values that are not strings, unknown priorities and push types, a long collapse id", () => {
    assert.equal(send({ headers: { "apns-priority": 10 } }).ok, false);
    assert.equal(send({ headers: { "apns-priority": "7" } }).ok, false);
    assert.equal(send({ headers: { "apns-push-type": "loud" } }).ok, false);
    assert.equal(send({ headers: { "apns-collapse-id": "x".repeat(65) } }).ok, false);
  });
  it("refuses an aps with keys of the wrong type, naming the field", () => {
    const r = send({ payload: { aps: { badge: "3" } } });
    assert.ok(!r.ok);
    assert.equal(r.error.fieldViolations?.[0]?.field, "message.apns.payload.aps.badge");
    assert.equal(send({ payload: { aps: { "mutable-content": true } } }).ok, false);
    assert.equal(send({ payload: { aps: { alert: { title: 1 } } } }).ok, false);
    assert.equal(send({ payload: { aps: { "thread-id": 5 } } }).ok, false);
    assert.equal(send({ payload: { aps: { "content-available": 1, badge: 0 }, type: "clear" } }).ok, true);
  });
});
