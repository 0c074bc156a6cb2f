// Push preferences end to end: set and read through the real callables, messages published to the
// Pub/Sub emulator as an IM backend does, pushes observed at the fake FCM, decisions read from the
// push log, diagnosePush and pushStats, and the fan-out's Firestore read calls counted at the proxy.
// No test depends on the time of day: a do-not-disturb window is built around the current local
// time of its zone (or away from it).
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { localMinutes } from "../../functions/src/preferences/decide.ts";
import { MAX_CONVERSATION_SETTINGS } from "../../functions/src/preferences/schemas.ts";
import type { PushPreferencesView } from "../../functions/src/preferences/schemas.ts";
import { adminDb, call, callOk, clearFirestore, createUser, eventually, mapLimit, publish, type TestUser } from "../helpers/emulators.ts";
import { PUSH_TOPIC, entryFor, killedDevice, msgKey, sendsTo, waitForMessage } from "../helpers/fanout.ts";
import { registerCertificate, type TestCertificate } from "../helpers/certificates.ts";
import { countFirestoreCalls } from "../helpers/firestoreProxy.ts";
import { readRecipients } from "../../functions/src/fanout/recipientReads.ts";
import { CostCounter } from "../../functions/src/fanout/cost.ts";
import { diagnose, stats, todayUtc } from "../diagnostics/helpers.ts";
import { DiagnosePushResponseSchema, type DiagnosePushResponse } from "../../functions/src/diagnostics/schemas.ts";

let admin: TestUser;
let cert: TestCertificate;
let alice: TestUser; // the sender, "Alice" in Firebase Auth

before(async () => {
  await clearFirestore();
  admin = await createUser({ admin: true });
  cert = await registerCertificate(admin);
  alice = await createUser({ displayName: "Alice" });
});

const textBody = (t: string) => [{ MsgType: "TIMTextElem", MsgContent: { Text: t } }];
const hhmm = (minutes: number) => {
  const m = ((minutes % 1440) + 1440) % 1440;
  return `${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
};
/** A window of the zone's local time that contains now (for the next two hours at least), or one that does not. */
const windowAroundNow = (timeZone: string, allowMentions = false) => {
  const m = localMinutes(new Date(), timeZone);
  return { start: hhmm(m - 120), end: hhmm(m + 120), timeZone, allowMentions };
};
const windowAwayFromNow = (timeZone: string) => {
  const m = localMinutes(new Date(), timeZone);
  return { start: hhmm(m + 180), end: hhmm(m + 300), timeZone };
};

const setPrefs = (user: TestUser, prefs: unknown) => callOk<PushPreferencesView>("setPushPreferences", prefs, user);

describe("setPushPreferences / getPushPreferences", () => {
  it("merge into the caller's own preferences; null removes a setting; nothing else is touched", async () => {
    const bob = await createUser();
    const carol = await createUser();
    await killedDevice(bob, cert.certificateId);
    const empty = await callOk<PushPreferencesView>("getPushPreferences", {}, bob);
    assert.deepEqual(empty, { doNotDisturb: null, conversations: {}, locale: null, updatedAt: null });

    const first = await setPrefs(bob, {
      doNotDisturb: { start: "22:00", end: "07:00", timeZone: "europe/berlin" },
      conversations: { "group_team.42": { mode: "mentions" }, c2c_mallory: { mode: "none" } },
      locale: "de-at",
    });
    assert.deepEqual(first.doNotDisturb, { start: "22:00", end: "07:00", timeZone: "Europe/Berlin", allowMentions: false });
    assert.equal(first.locale, "de-AT");
    const second = await setPrefs(bob, { conversations: { "group_team.42": { mutedUntil: "2030-01-01T00:00:00Z" }, c2c_mallory: null } });
    assert.deepEqual(second.conversations, { "group_team.42": { mode: "mentions", mutedUntil: "2030-01-01T00:00:00.000Z" } }, "a conversation's fields merge; null removes one");
    assert.equal(second.locale, "de-AT", "fields not given are kept");
    assert.deepEqual(await callOk("getPushPreferences", {}, bob), second);

    // Stored where the fan-out reads it, beside the devices (a conversation ID with a dot is one key).
    const doc = await adminDb().doc(`users/${bob.uid}`).get();
    assert.equal(doc.get("prefs.locale"), "de-AT");
    assert.deepEqual(Object.keys(doc.get("prefs.conversations") as object), ["group_team.42"]);
    assert.ok(doc.get("devices.phone"), "the device is still there");

    const third = await setPrefs(bob, { doNotDisturb: null, locale: null });
    assert.equal(third.doNotDisturb, null);
    assert.equal(third.locale, null);
    assert.deepEqual((await callOk<PushPreferencesView>("getPushPreferences", {}, carol)).conversations, {}, "another user's preferences are their own");

    // A user who never logged in: the preferences are kept, and the login that follows keeps them.
    await setPrefs(carol, { locale: "fr" });
    await killedDevice(carol, cert.certificateId);
    assert.equal((await callOk<PushPreferencesView>("getPushPreferences", {}, carol)).locale, "fr");
  });

  it("invalid times, zones and locales, and settings over the bounds: invalid-argument naming the field, nothing written", async () => {
    const bob = await createUser();
    const refused = async (data: unknown, field: string) => {
      const res = await call("setPushPreferences", data, bob);
      assert.equal(res.error?.status, "INVALID_ARGUMENT", JSON.stringify(res.error));
      assert.ok(res.error!.message.startsWith(`${field}:`), res.error!.message);
    };
    await refused({ doNotDisturb: { start: "25:00", end: "07:00", timeZone: "UTC" } }, "doNotDisturb.start");
    await refused({ doNotDisturb: { start: "22:00", end: "07:60", timeZone: "UTC" } }, "doNotDisturb.end");
    await refused({ doNotDisturb: { start: "22:00", end: "07:00", timeZone: "Europe/Atlantis" } }, "doNotDisturb.timeZone");
    await refused({ locale: "@@" }, "locale");
    await refused({ conversations: { c2c_bob: { mode: "silent" } } }, "conversations.c2c_bob.mode");
    await refused({ conversations: { c2c_bob: { mutedUntil: "soon" } } }, "conversations.c2c_bob.mutedUntil");

    const many = (from: number, n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`group_g${from + i}`, { mode: "none" }]));
    await refused({ conversations: many(0, MAX_CONVERSATION_SETTINGS + 1) }, "conversations");
    const full = await setPrefs(bob, { conversations: many(0, MAX_CONVERSATION_SETTINGS) });
    assert.equal(Object.keys(full.conversations).length, MAX_CONVERSATION_SETTINGS);
    await refused({ conversations: many(MAX_CONVERSATION_SETTINGS, 1), locale: "ja" }, "conversations");
    const after = await callOk<PushPreferencesView>("getPushPreferences", {}, bob);
    assert.equal(after.locale, null, "a refused request writes nothing");
    assert.equal(Object.keys(after.conversations).length, MAX_CONVERSATION_SETTINGS);
    // Removing one makes room for another.
    const swapped = await setPrefs(bob, { conversations: { group_g0: null, group_new: { mode: "mentions" } } });
    assert.equal(Object.keys(swapped.conversations).length, MAX_CONVERSATION_SETTINGS);
  });

  it("needs a signed-in user", async () => {
    const res = await call("getPushPreferences", {});
    assert.equal(res.error?.status, "UNAUTHENTICATED");
  });
});

describe("a group message with mentions, to members with every kind of preference", () => {
  it("reaches each member once with the group conversation, and skips with muted / not-mentioned / quiet-hours", async () => {
    const group = `team.${msgKey("g").slice(2, 10)}`; // a dot: the preference is read through a FieldPath, not a dotted string
    const conv = `group_${group}`;
    const names = ["plain", "muted", "mutedMentioned", "mentionsOnly", "mentionsOnlyMentioned", "quiet", "quietAllowed", "pastMute", "futureMute", "otherConversation", "outsideWindow"] as const;
    const users = Object.fromEntries(await mapLimit([...names], 4, async (n) => [n, await createUser()] as const)) as Record<(typeof names)[number], TestUser>;
    const tokens = Object.fromEntries(await mapLimit([...names], 4, async (n) => [n, await killedDevice(users[n], cert.certificateId)] as const)) as Record<(typeof names)[number], string>;
    const zone = "Asia/Kolkata"; // UTC+05:30, no daylight saving: a zone other than the machine's
    await Promise.all([
      setPrefs(users.muted, { conversations: { [conv]: { mode: "none" } } }),
      setPrefs(users.mutedMentioned, { conversations: { [conv]: { mode: "none" } } }),
      setPrefs(users.mentionsOnly, { conversations: { [conv]: { mode: "mentions" } } }),
      setPrefs(users.mentionsOnlyMentioned, { conversations: { [conv]: { mode: "mentions" } } }),
      setPrefs(users.quiet, { doNotDisturb: windowAroundNow(zone, true) }),
      setPrefs(users.quietAllowed, { doNotDisturb: windowAroundNow(zone, true) }),
      setPrefs(users.pastMute, { conversations: { [conv]: { mutedUntil: new Date(Date.now() - 60_000).toISOString() } } }),
      setPrefs(users.futureMute, { conversations: { [conv]: { mutedUntil: new Date(Date.now() + 3_600_000).toISOString() } } }),
      setPrefs(users.otherConversation, { conversations: { [`c2c_${alice.uid}`]: { mode: "none" } } }),
      setPrefs(users.outsideWindow, { doNotDisturb: windowAwayFromNow(zone) }),
    ]);
    const mentioned = [users.mutedMentioned, users.mentionsOnlyMentioned, users.quietAllowed];
    const key = msgKey("group");
    await publish(PUSH_TOPIC, {
      MsgKey: key,
      From_Account: alice.uid,
      GroupId: group,
      To_Account: names.map((n) => users[n].uid),
      GroupAtInfo: mentioned.map((u) => ({ GroupAtAllFlag: 0, GroupAt_Account: u.uid })),
      MsgBody: textBody("standup in 5"),
    });
    const docs = await waitForMessage(key);

    const expected: Record<(typeof names)[number], string> = {
      plain: "sent",
      muted: "muted",
      mutedMentioned: "muted",
      mentionsOnly: "not-mentioned",
      mentionsOnlyMentioned: "sent",
      quiet: "quiet-hours",
      quietAllowed: "sent",
      pastMute: "sent",
      futureMute: "muted",
      otherConversation: "sent",
      outsideWindow: "sent",
    };
    for (const n of names) {
      const entry = entryFor(docs, users[n].uid);
      assert.equal(entry.reason, expected[n], `${n}: ${entry.outcome === "skipped" ? entry.detail : entry.reason}`);
      const sends = await sendsTo(tokens[n]);
      assert.equal(sends.length, expected[n] === "sent" ? 1 : 0, `${n}: one push or none`);
      if (expected[n] !== "sent") continue;
      const message = sends[0]!.message as { notification: { title: string; body: string }; data: Record<string, string>; android: { collapse_key: string } };
      assert.equal(message.android.collapse_key, conv);
      assert.equal(message.data.conversation, conv);
      assert.equal(message.notification.title, `Alice (${group})`, "sender's display name and the group");
      assert.equal(message.notification.body, "standup in 5");
    }
    const quiet = entryFor(docs, users.quiet.uid);
    assert.ok(quiet.outcome === "skipped" && quiet.detail.includes(zone) && quiet.detail.includes("mentions would pass"), quiet.outcome === "skipped" ? quiet.detail : "");

    // pushStats counts the new reasons.
    const day = await eventually(
      async () => {
        const s = await stats(admin, { from: todayUtc(-1), to: todayUtc(1) });
        return (s.totals.skippedByReason["quiet-hours"] ?? 0) >= 1 ? s : undefined;
      },
      { what: "pushStats to count the message" },
    );
    assert.ok((day.totals.skippedByReason.muted ?? 0) >= 3, JSON.stringify(day.totals.skippedByReason));
    assert.ok((day.totals.skippedByReason["not-mentioned"] ?? 0) >= 1);
    for (const reason of ["muted", "not-mentioned", "quiet-hours"]) assert.ok(day.explanations.some((e) => e.code === reason), `${reason} explained`);
  });

  it("@all mentions everyone: a mentions-only member gets it; a one-to-one message from a muted chat is skipped", async () => {
    const [bob, carol] = [await createUser(), await createUser()];
    const [bobToken, carolToken] = [await killedDevice(bob, cert.certificateId), await killedDevice(carol, cert.certificateId)];
    const group = `all-${msgKey("g").slice(2, 10)}`;
    await setPrefs(bob, { conversations: { [`group_${group}`]: { mode: "mentions" } } });
    await setPrefs(carol, { conversations: { [`c2c_${alice.uid}`]: { mode: "none" } } });
    const key = msgKey("all");
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: alice.uid, GroupId: group, To_Account: [bob.uid], GroupAtInfo: [{ GroupAtAllFlag: 1 }], MsgBody: textBody("@all lunch") });
    await waitForMessage(key);
    assert.equal((await sendsTo(bobToken)).length, 1);
    const direct = msgKey("c2c");
    await publish(PUSH_TOPIC, { MsgKey: direct, From_Account: alice.uid, To_Account: carol.uid, MsgBody: textBody("hi") });
    const docs = await waitForMessage(direct);
    assert.equal(entryFor(docs, carol.uid).reason, "muted");
    assert.equal((await sendsTo(carolToken)).length, 0);
  });
});

describe("placeholders follow the recipient's locale", () => {
  it("one file message: German, French, Japanese and the default texts, each recipient its own", async () => {
    const locales = [["de-AT", "[Datei]"], ["fr", "[Fichier]"], ["ja-JP", "[ファイル]"], [null, "[File]"], ["it", "[File]"]] as const;
    const users = await mapLimit([...locales], 3, async ([locale]) => {
      const u = await createUser();
      const token = await killedDevice(u, cert.certificateId);
      if (locale) await setPrefs(u, { locale });
      return { u, token };
    });
    const key = msgKey("file");
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: alice.uid, To_Account: users.map((x) => x.u.uid), MsgBody: [{ MsgType: "TIMFileElem", MsgContent: { FileName: "a.pdf" } }] });
    await waitForMessage(key);
    for (const [i, [locale, body]] of locales.entries()) {
      const [send] = await sendsTo(users[i]!.token);
      assert.equal((send!.message as { notification: { body: string } }).notification.body, body, `locale ${locale}`);
    }
  });
});

describe("preferences cost no extra read in the fan-out", () => {
  it("the same Firestore read calls for recipients with 2,000 conversation settings, a window and a locale as for recipients with none", async () => {
    const setUp = async (withPrefs: boolean) =>
      mapLimit([0, 1, 2], 3, async () => {
        const u = await createUser();
        await killedDevice(u, cert.certificateId);
        if (withPrefs) {
          const conversations = Object.fromEntries(Array.from({ length: MAX_CONVERSATION_SETTINGS - 1 }, (_, i) => [`group_busy-${i}`, { mode: "mentions" }]));
          await setPrefs(u, { conversations: { ...conversations, [`c2c_${alice.uid}`]: { mode: "all", mutedUntil: new Date(Date.now() - 1000).toISOString() } }, doNotDisturb: windowAwayFromNow("Europe/Berlin"), locale: "de" });
        }
        return u.uid;
      });
    const [plain, withPrefs, warm] = [await setUp(false), await setUp(true), await setUp(false)];
    const message = async (to: string[]) => {
      const key = msgKey("cost");
      const { result: docs, calls } = await countFirestoreCalls(async () => {
        await publish(PUSH_TOPIC, { MsgKey: key, From_Account: alice.uid, To_Account: to, MsgBody: [{ MsgType: "TIMImageElem", MsgContent: {} }] });
        return waitForMessage(key);
      });
      return { docs, calls };
    };
    await message(warm); // the instance has read the certificate since
    const without = await message(plain);
    const withP = await message(withPrefs);
    assert.deepEqual(
      without.docs.flatMap((d) => d.entries.map((e) => e.reason)),
      ["sent", "sent", "sent"],
    );
    assert.deepEqual(withP.docs.flatMap((d) => d.entries.map((e) => e.reason)), ["sent", "sent", "sent"], "none of the settings applies to this message");
    process.stdout.write(`[cost] 3 recipients without preferences: ${JSON.stringify(without.calls.byMethod)}; with 2,000 conversation settings each: ${JSON.stringify(withP.calls.byMethod)}\n`);
    assert.equal(withP.calls.reads, without.calls.reads, "read calls");
    assert.equal(withP.calls.byMethod.BatchGetDocuments, without.calls.byMethod.BatchGetDocuments);
    assert.equal(withP.docs[0]!.cost.firestoreReads, without.docs[0]!.cost.firestoreReads, "as the batch counted them");

    // The same read as the fan-out's: the mask brings the devices and this conversation's setting,
    // not the 1,999 others.
    const read = await readRecipients(withPrefs, () => assert.fail("no certificate is read here"), new CostCounter(), `c2c_${alice.uid}`);
    for (const snap of read.users) {
      assert.deepEqual(Object.keys(snap.get("prefs.conversations") as object), [`c2c_${alice.uid}`]);
      assert.ok(snap.get("devices.phone"));
      assert.equal(snap.get("prefs.locale"), "de");
      assert.equal(snap.get("prefs.updatedAt"), undefined, "only the masked fields");
    }
    const full = await adminDb().doc(`users/${withPrefs[0]}`).get();
    assert.equal(Object.keys(full.get("prefs.conversations") as object).length, MAX_CONVERSATION_SETTINGS);
  });
});

describe("diagnosePush for a conversation, mentioned or not", () => {
  const ask = async (data: Record<string, unknown>): Promise<DiagnosePushResponse> => DiagnosePushResponseSchema.parse(await callOk("diagnosePush", data, admin));

  it("answers with the conversation's preference and the window, and shows the preferences", async () => {
    const dave = await createUser();
    await killedDevice(dave, cert.certificateId);
    await setPrefs(dave, { conversations: { group_ops: { mode: "mentions" }, group_noise: { mode: "none" } }, locale: "de" });
    const anyMessage = await diagnose(admin, dave.uid);
    assert.equal(anyMessage.wouldPushNow, true);
    assert.deepEqual(anyMessage.message, { conversation: null, mentioned: false });
    assert.deepEqual(anyMessage.preferences.conversations.group_ops, { mode: "mentions", mutedUntil: null });
    assert.equal(anyMessage.preferences.locale, "de");

    const ops = await ask({ uid: dave.uid, conversation: "group_ops" });
    assert.equal(ops.wouldPushNow, false);
    assert.equal(ops.devices[0]!.eligibility.reason, "not-mentioned");
    assert.equal(ops.devices[0]!.eligibility.explanation?.code, "not-mentioned");
    assert.match(ops.summary, /mentions only/);
    assert.equal((await ask({ uid: dave.uid, conversation: "group_ops", mentioned: true })).wouldPushNow, true);
    const noise = await ask({ uid: dave.uid, conversation: "group_noise", mentioned: true });
    assert.equal(noise.devices[0]!.eligibility.reason, "muted");

    await setPrefs(dave, { doNotDisturb: windowAroundNow("UTC", true) });
    const quiet = await diagnose(admin, dave.uid);
    assert.equal(quiet.devices[0]!.eligibility.reason, "quiet-hours");
    assert.equal((await ask({ uid: dave.uid, conversation: "c2c_x", mentioned: true })).wouldPushNow, true, "allowMentions");

    const bad = await call("diagnosePush", { uid: dave.uid, conversation: "ops" }, admin);
    assert.equal(bad.error?.status, "INVALID_ARGUMENT");
    assert.ok(bad.error!.message.startsWith("conversation:"), bad.error!.message);
  });
});
