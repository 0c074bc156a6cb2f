// Pure: the quiet-hours window (daylight-saving days included), the merge of setPushPreferences,
// its validation, the stored-size bound, mentions and the group title (no emulator).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Timestamp } from "firebase-admin/firestore";
import { zodIssues } from "../../functions/src/common/callable.ts";
import { insideWindow, localMinutes, preferenceVerdict } from "../../functions/src/preferences/decide.ts";
import {
  MAX_CONVERSATION_ID_CHARS,
  MAX_CONVERSATION_SETTINGS,
  MAX_CONVERSATION_SETTINGS_BYTES,
  NO_PREFERENCES,
  SetPushPreferencesRequestSchema,
  preferencesView,
  type StoredConversationSetting,
} from "../../functions/src/preferences/schemas.ts";
import { conversationSettingsBytes, mergePreferences } from "../../functions/src/preferences/store.ts";
import { isMentioned, mentionsOf } from "../../functions/src/fanout/mentions.ts";
import { buildFcmMessage, conversationOf, defaultTitle, messageDecision } from "../../functions/src/fanout/message.ts";
import { PushEventSchema, contentOf } from "../../functions/src/fanout/schemas.ts";

const berlin = (start: string, end: string) => ({ start, end, timeZone: "Europe/Berlin" });

describe("the do-not-disturb window, in the user's zone", () => {
  it("reads the wall clock of the zone", () => {
    assert.equal(localMinutes(new Date("2026-07-01T20:30:00Z"), "Europe/Berlin"), 22 * 60 + 30); // summer: UTC+2
    assert.equal(localMinutes(new Date("2026-01-01T20:30:00Z"), "Europe/Berlin"), 21 * 60 + 30); // winter: UTC+1
    assert.equal(localMinutes(new Date("2026-01-01T23:59:00Z"), "UTC"), 23 * 60 + 59);
    assert.equal(localMinutes(new Date("2026-01-01T00:00:00Z"), "Asia/Kolkata"), 5 * 60 + 30);
  });

  it("crosses midnight: 22:00-07:00 holds 23:00 and 06:59, not 07:00 or 21:59", () => {
    const w = berlin("22:00", "07:00");
    assert.equal(insideWindow(w, new Date("2026-01-10T22:00:00Z")).inside, true); // 23:00
    assert.equal(insideWindow(w, new Date("2026-01-11T05:59:00Z")).inside, true); // 06:59
    assert.equal(insideWindow(w, new Date("2026-01-11T06:00:00Z")).inside, false); // 07:00
    assert.equal(insideWindow(w, new Date("2026-01-10T20:59:00Z")).inside, false); // 21:59
    assert.equal(insideWindow(w, new Date("2026-01-10T21:00:00Z")).inside, true); // 22:00: the start is inside
  });

  it("a window within a day, and start == end for the whole day", () => {
    assert.equal(insideWindow(berlin("12:00", "14:00"), new Date("2026-01-10T12:30:00Z")).inside, true); // 13:30
    assert.equal(insideWindow(berlin("12:00", "14:00"), new Date("2026-01-10T13:00:00Z")).inside, false); // 14:00
    for (const h of [0, 6, 12, 23]) assert.equal(insideWindow(berlin("08:00", "08:00"), new Date(Date.UTC(2026, 0, 10, h))).inside, true);
  });

  it("spring forward (Berlin, 2026-03-29, 02:00 -> 03:00): the window follows the wall clock", () => {
    const w = berlin("22:00", "07:00");
    // 06:59 local summer time is 04:59Z (UTC+2 after the change), 07:00 is 05:00Z: an hour earlier in UTC than the day before.
    assert.equal(insideWindow(w, new Date("2026-03-29T04:59:00Z")).inside, true);
    assert.equal(insideWindow(w, new Date("2026-03-29T05:00:00Z")).inside, false);
    assert.equal(insideWindow(w, new Date("2026-03-28T05:59:00Z")).inside, true, "the day before (UTC+1): 06:59 is 05:59Z");
    // A window starting inside the skipped hour (02:30) starts with 03:00, the first local time after it.
    const skipped = berlin("02:30", "04:00");
    assert.equal(insideWindow(skipped, new Date("2026-03-29T00:59:00Z")).inside, false); // 01:59 CET
    assert.equal(insideWindow(skipped, new Date("2026-03-29T01:00:00Z")).inside, true); // 03:00 CEST
    assert.equal(insideWindow(skipped, new Date("2026-03-29T02:00:00Z")).inside, false); // 04:00 CEST
  });

  it("fall back (Berlin, 2026-10-25, 03:00 -> 02:00): the repeated hour is inside twice", () => {
    const w = berlin("02:00", "03:00");
    assert.equal(insideWindow(w, new Date("2026-10-25T00:30:00Z")).inside, true); // 02:30 CEST
    assert.equal(insideWindow(w, new Date("2026-10-25T01:30:00Z")).inside, true); // 02:30 CET, the second time
    assert.equal(insideWindow(w, new Date("2026-10-25T02:00:00Z")).inside, false); // 03:00 CET
    // 22:00-07:00 ends at 07:00 CET = 06:00Z, an hour later in UTC than the day before (05:00Z).
    const night = berlin("22:00", "07:00");
    assert.equal(insideWindow(night, new Date("2026-10-24T05:00:00Z")).inside, false);
    assert.equal(insideWindow(night, new Date("2026-10-25T05:30:00Z")).inside, true);
    assert.equal(insideWindow(night, new Date("2026-10-25T06:00:00Z")).inside, false);
  });

  it("the southern hemisphere and a US zone change on their own days", () => {
    // New York springs forward on 2026-03-08: 07:00 EDT is 11:00Z, the day before 07:00 EST is 12:00Z.
    const ny = { start: "22:00", end: "07:00", timeZone: "America/New_York" };
    assert.equal(insideWindow(ny, new Date("2026-03-08T11:30:00Z")).inside, false);
    assert.equal(insideWindow(ny, new Date("2026-03-07T11:30:00Z")).inside, true);
    // Sydney falls back on 2026-04-05 at 03:00 AEDT (16:00Z the day before; UTC+11 -> UTC+10).
    const sydney = { start: "06:00", end: "08:00", timeZone: "Australia/Sydney" };
    assert.equal(insideWindow(sydney, new Date("2026-04-03T19:30:00Z")).inside, true); // 06:30 AEDT
    assert.equal(insideWindow(sydney, new Date("2026-04-04T19:30:00Z")).inside, false); // 05:30 AEST: the same UTC time, an hour earlier locally
    assert.equal(insideWindow(sydney, new Date("2026-04-04T20:30:00Z")).inside, true); // 06:30 AEST
  });
});

describe("preferenceVerdict", () => {
  const now = new Date("2026-01-10T12:00:00Z");
  it("no preferences: no verdict", () => {
    assert.equal(preferenceVerdict(NO_PREFERENCES, { conversation: "c2c_a", mentioned: false }, now), null);
  });
  it("a mute wins over mentions and the window", () => {
    const prefs = { ...NO_PREFERENCES, conversation: { mode: "none" as const }, doNotDisturb: { ...berlin("00:00", "00:00"), allowMentions: true } };
    assert.equal(preferenceVerdict(prefs, { conversation: "c2c_a", mentioned: true }, now)?.reason, "muted");
  });
});

describe("setPushPreferences: validation names the field", () => {
  const field = (data: unknown) => {
    const r = SetPushPreferencesRequestSchema.safeParse(data);
    assert.equal(r.success, false, JSON.stringify(data).slice(0, 200));
    return r.success ? "" : zodIssues(r.error)[0]!.field;
  };
  it("bad times, zones, locales, modes, conversation IDs, unknown fields", () => {
    assert.equal(field({ doNotDisturb: { start: "24:00", end: "07:00", timeZone: "UTC" } }), "doNotDisturb.start");
    assert.equal(field({ doNotDisturb: { start: "22:00", end: "7:00", timeZone: "UTC" } }), "doNotDisturb.end");
    assert.equal(field({ doNotDisturb: { start: "22:00", end: "07:00", timeZone: "Mars/Olympus_Mons" } }), "doNotDisturb.timeZone");
    assert.equal(field({ doNotDisturb: { start: "22:00", end: "07:00", timeZone: "+01:00" } }), "doNotDisturb.timeZone");
    assert.equal(field({ doNotDisturb: { start: "22:00", end: "07:00" } }), "doNotDisturb.timeZone");
    assert.equal(field({ doNotDisturb: { start: "22:00", end: "07:00", timeZone: "UTC", allowMentions: "yes" } }), "doNotDisturb.allowMentions");
    assert.equal(field({ locale: "not a locale!" }), "locale");
    assert.equal(field({ conversations: { c2c_bob: { mode: "some" } } }), "conversations.c2c_bob.mode");
    assert.equal(field({ conversations: { c2c_bob: { mutedUntil: "tomorrow" } } }), "conversations.c2c_bob.mutedUntil");
    assert.equal(field({ conversations: { bob: { mode: "none" } } }), "conversations.bob");
    assert.equal(field({ conversations: { [`group_${"g".repeat(MAX_CONVERSATION_ID_CHARS)}`]: { mode: "none" } } }).startsWith("conversations."), true);
    assert.equal(field({ conversations: { c2c_bob: { mode: "none", extra: 1 } } }), "conversations.c2c_bob.extra");
    assert.equal(field({ quietHours: {} }), "quietHours");
  });
  it("more than MAX_CONVERSATION_SETTINGS conversations in one request: refused without walking them", () => {
    const many = Object.fromEntries(Array.from({ length: MAX_CONVERSATION_SETTINGS + 1 }, (_, i) => [`c2c_u${i}`, { mode: "none" }]));
    const r = SetPushPreferencesRequestSchema.safeParse({ conversations: many });
    assert.equal(r.success, false);
    assert.deepEqual(!r.success && zodIssues(r.error)[0], { field: "conversations", message: `has more than ${MAX_CONVERSATION_SETTINGS} conversations` });
  });
  it("canonical zone and locale are stored", () => {
    const r = SetPushPreferencesRequestSchema.parse({ doNotDisturb: { start: "22:00", end: "07:00", timeZone: "europe/berlin" }, locale: "de-de" });
    assert.equal(r.doNotDisturb?.timeZone, "Europe/Berlin");
    assert.equal(r.locale, "de-DE");
    // ICU's canonical ID for Kolkata is the older alias Asia/Calcutta: the user's name is kept.
    assert.equal(SetPushPreferencesRequestSchema.parse({ doNotDisturb: { start: "22:00", end: "07:00", timeZone: "Asia/Kolkata" } }).doNotDisturb?.timeZone, "Asia/Kolkata");
  });
});

describe("setPushPreferences: merge", () => {
  const t0 = Timestamp.fromMillis(Date.UTC(2026, 0, 1));
  const parse = (data: unknown) => SetPushPreferencesRequestSchema.parse(data);
  it("given fields replace, null removes, the rest is kept; a conversation's fields merge", () => {
    let p = mergePreferences(null, parse({ doNotDisturb: { start: "22:00", end: "07:00", timeZone: "UTC" }, locale: "fr", conversations: { group_a: { mode: "mentions" } } }), t0);
    assert.deepEqual(p.doNotDisturb, { start: "22:00", end: "07:00", timeZone: "UTC", allowMentions: false });
    p = mergePreferences(p, parse({ conversations: { group_a: { mutedUntil: "2026-02-01T00:00:00+01:00" }, c2c_b: { mode: "none" } } }), t0);
    assert.equal(p.conversations?.group_a?.mode, "mentions", "kept");
    assert.equal(p.conversations?.group_a?.mutedUntil?.toMillis(), Date.UTC(2026, 0, 31, 23));
    assert.equal(p.locale, "fr");
    p = mergePreferences(p, parse({ conversations: { group_a: { mutedUntil: null }, c2c_b: null }, locale: null, doNotDisturb: null }), t0);
    assert.deepEqual(preferencesView(p), { doNotDisturb: null, conversations: { group_a: { mode: "mentions", mutedUntil: null } }, locale: null, updatedAt: "2026-01-01T00:00:00.000Z" });
    // A setting equal to no setting is dropped, not kept.
    p = mergePreferences(p, parse({ conversations: { group_a: { mode: "all" } } }), t0);
    assert.equal(p.conversations, undefined);
  });
});

describe("the stored size of 2,000 conversation settings", () => {
  const setting: StoredConversationSetting = { mode: "mentions", mutedUntil: Timestamp.now() };
  const settings = (idOf: (i: number) => string) => Object.fromEntries(Array.from({ length: MAX_CONVERSATION_SETTINGS }, (_, i) => [idOf(i), setting]));
  it("ASCII IDs of a typical length fit well within the byte bound; the longest multi-byte IDs reach it", () => {
    const typical = conversationSettingsBytes(settings((i) => `group_@TGS#${String(i).padStart(10, "0")}`));
    assert.ok(typical < 150_000, `${typical} bytes`);
    const longest = conversationSettingsBytes(settings((i) => `group_${String(i).padStart(4, "0")}${"界".repeat(124)}`));
    assert.ok(longest > MAX_CONVERSATION_SETTINGS_BYTES, `${longest} bytes: refused (invalid-argument naming conversations)`);
    // The worst case kept: MAX_CONVERSATION_SETTINGS_BYTES (400 KiB) of settings, beside the device map at its bounds (20 devices with 4,096-character tokens, about 100 KB) and a do-not-disturb window and locale (under 200 bytes): under half of Firestore's 1 MiB.
    assert.ok(MAX_CONVERSATION_SETTINGS_BYTES + 110_000 + 200 < 1_048_576 / 2 + 110_000);
  });
});

describe("mentions and the group message's title", () => {
  const event = (extra: Record<string, unknown>) => contentOf(PushEventSchema.parse({ MsgKey: "k", From_Account: "alice", To_Account: ["bob", "carol"], ...extra }));
  it("GroupAtInfo names members or everyone; only its two fields travel in the batches", () => {
    const c = event({ GroupId: "team", GroupAtInfo: [{ GroupAtAllFlag: 0, GroupAt_Account: "bob", Other: 1 }] });
    assert.deepEqual(c.GroupAtInfo, [{ GroupAtAllFlag: 0, GroupAt_Account: "bob" }]);
    const m = mentionsOf(c);
    assert.equal(isMentioned(m, "bob"), true);
    assert.equal(isMentioned(m, "carol"), false);
    assert.equal(isMentioned(mentionsOf(event({ GroupAtInfo: [{ GroupAtAllFlag: 1 }] })), "carol"), true);
    assert.equal(isMentioned(mentionsOf(event({})), "bob"), false);
  });
  it("GroupAtInfo bounds: entries, flag and account are checked, naming the field", () => {
    const first = (extra: Record<string, unknown>) => {
      const r = PushEventSchema.safeParse({ MsgKey: "k", From_Account: "alice", To_Account: "bob", ...extra });
      return r.success ? null : zodIssues(r.error)[0]!.field;
    };
    assert.equal(first({ GroupAtInfo: [{ GroupAtAllFlag: 2 }] }), "GroupAtInfo.0.GroupAtAllFlag");
    assert.equal(first({ GroupAtInfo: [{ GroupAtAllFlag: 0, GroupAt_Account: "a/b" }] }), "GroupAtInfo.0.GroupAt_Account");
    assert.equal(first({ GroupAtInfo: Array.from({ length: 1001 }, () => ({ GroupAtAllFlag: 1 })) }), "GroupAtInfo");
    assert.equal(first({ GroupAtInfo: "bob" }), "GroupAtInfo");
  });
  it("a group message without Title: sender and group; with a Title or one-to-one: as before", () => {
    assert.equal(defaultTitle({ From_Account: "alice", GroupId: "team" }, "Alice"), "Alice (team)");
    assert.equal(defaultTitle({ From_Account: "alice", GroupId: "team" }), "alice (team)");
    assert.equal(defaultTitle({ From_Account: "alice" }, "Alice"), "Alice");
    const group = event({ GroupId: "team", MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: "hi" } }] });
    const d = messageDecision(group);
    assert.equal(d.push && d.title, "alice (team)");
    const titled = messageDecision({ ...group, OfflinePushInfo: { Title: "Team chat" } });
    assert.equal(titled.push && titled.title, "Team chat");
    assert.equal(conversationOf(group), "group_team");
    const m = buildFcmMessage(group, { title: "t", body: "b" }, "tok");
    assert.equal(m.android?.collapse_key, "group_team");
    assert.equal(m.data?.conversation, "group_team");
  });
});
