// iOS through FCM, end to end on the emulators and the fake FCM: an iPhone and an Android phone of
// the same user each get the message in their own platform's form (asserted field by field at the
// fake), the iPhone's badge counts from the app's unreadCount, BadgeMode 1 leaves it, loc keys reach
// both platforms, an iOS-only failure fails that device only, and a Read's badge side
// (lowerBadges + the silent update). The per-platform kick is in test/sessions/platforms.test.ts.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { before, describe, it } from "node:test";
import { Timestamp } from "firebase-admin/firestore";
import { PUSH_BADGES, lowerBadges, type BadgeEntry } from "../../functions/src/badges/store.ts";
import { processBatch } from "../../functions/src/fanout/batch.ts";
import { buildApnsClearMessage } from "../../functions/src/fanout/apnsMessage.ts";
import { DEFAULT_PLACEHOLDERS } from "../../functions/src/fanout/message.ts";
import { PushEventSchema, contentOf } from "../../functions/src/fanout/schemas.ts";
import { USERS } from "../../functions/src/sessions/schemas.ts";
import { validateSendBody } from "../../tools/fake-fcm/fcmSchema.ts";
import { adminDb, callOk, clearFirestore, createUser, eventually, publish, type TestUser } from "../helpers/emulators.ts";
import { fakeFcm, type RecordedRequest } from "../helpers/fakeFcm.ts";
import { PUSH_TOPIC, entriesOf, entryFor, msgKey, sendsTo, waitForMessage } from "../helpers/fanout.ts";
import { countFirestoreCalls } from "../helpers/firestoreProxy.ts";
import { registerCertificate, type TestCertificate } from "../helpers/certificates.ts";
import { seedDevice, seedToken } from "../helpers/fanoutSeed.ts";
import { dotenv, runAsEmulatedFunctions } from "../helpers/functionsEnv.ts";
import { fakeFcmToken, readDevice } from "../helpers/sessions.ts";

// lowerBadges and the badges-off batch run in this process, as the emulated functions do (through the proxy).
runAsEmulatedFunctions();

const DAY = 86_400_000;
let admin: TestUser;
let cert: TestCertificate;

before(async () => {
  await clearFirestore();
  admin = await createUser({ admin: true });
  cert = await registerCertificate(admin);
});

/** A logged-in, backgrounded device with a token; an iPhone's token is registered as iOS at the fake. */
async function device(user: TestUser, deviceId: string, platform: "android" | "ios", certificateId = cert.certificateId, unreadCount?: number): Promise<string> {
  const token = fakeFcmToken();
  if (platform === "ios") await fakeFcm.apns({ iosTokens: [token] });
  await callOk("login", { deviceId, platform }, user);
  await callOk("setOfflinePushToken", { deviceId, certificateId, token }, user);
  await callOk("doBackground", { deviceId, ...(unreadCount !== undefined ? { unreadCount } : {}) }, user);
  return token;
}

const text = (t: string) => [{ MsgType: "TIMTextElem", MsgContent: { Text: t } }];

/**
 * The demo settings push no device while another of the user's was in front of them within 10 s
 * (ACTIVE_ELSEWHERE_SECONDS): the devices' app-state times are moved a minute back, as if the user
 * had put the phones away then, instead of waiting.
 */
async function putAway(user: TestUser): Promise<void> {
  const ref = adminDb().collection(USERS).doc(user.uid);
  const devices = (await ref.get()).get("devices") as Record<string, Record<string, Timestamp>>;
  const back = (t: Timestamp) => Timestamp.fromMillis(t.toMillis() - 60_000);
  for (const d of Object.values(devices)) Object.assign(d, { appStateAt: back(d.appStateAt!), lastHeartbeatAt: back(d.lastHeartbeatAt!), loggedInAt: back(d.loggedInAt!) });
  await ref.update({ devices });
}

/** Publishes and waits for the push log; the request each token got for this MsgKey. */
async function push(event: Record<string, unknown>): Promise<Awaited<ReturnType<typeof waitForMessage>>> {
  await publish(PUSH_TOPIC, event);
  return waitForMessage(event.MsgKey as string);
}

const keyOf = (r: RecordedRequest): string | undefined => {
  const m = r.message as { data?: { msgKey?: string }; apns?: { payload?: { msgKey?: string } } } | null;
  return m?.data?.msgKey ?? m?.apns?.payload?.msgKey;
};
async function requestFor(token: string, key: string): Promise<RecordedRequest> {
  const found = (await sendsTo(token)).filter((r) => keyOf(r) === key);
  assert.equal(found.length, 1, `one request to the token for ${key}`);
  return found[0]!;
}
const apsOf = (r: RecordedRequest) => (r.message as { apns: { payload: { aps: Record<string, unknown> } } }).apns.payload.aps;
const badgeDoc = async (uid: string) => (await adminDb().collection(PUSH_BADGES).doc(uid).get()).data() as { devices: Record<string, BadgeEntry>; expireAt: Timestamp } | undefined;

describe("an iPhone and an Android phone of the same user", () => {
  it("each gets the message in its own platform's form, field by field, with loc keys on both", async () => {
    const [sender, user] = [await createUser(), await createUser()];
    const pixel = await device(user, "pixel", "android");
    const iphone = await device(user, "iphone", "ios", cert.certificateId, 2);
    await putAway(user);
    const key = msgKey("both");
    const publishedAt = Date.now();
    const docs = await push({
      MsgKey: key,
      From_Account: sender.uid,
      To_Account: [user.uid],
      GroupId: "team-7",
      MsgLifeTime: 600,
      MsgBody: text("hello"),
      OfflinePushInfo: {
        Title: "Sender",
        Desc: "hello team",
        Ext: '{"conv":"group_team-7"}',
        AndroidInfo: { GoogleChannelID: "chat", Sound: "a.mp3" },
        ApnsInfo: { Title: "Sender (iPhone)", SubTitle: "Team 7", Sound: "ping.caf", Image: "https://example.com/p.png" },
        TitleLocKey: "MSG_FROM",
        TitleLocArgs: ["Sender"],
        DescLocKey: "MSG_BODY",
        DescLocArgs: ["hello team"],
      },
    });
    assert.equal(entryFor(docs, user.uid, "pixel").outcome, "sent");
    assert.equal(entryFor(docs, user.uid, "iphone").outcome, "sent");

    const android = (await requestFor(pixel, key)).message;
    assert.deepEqual(android, {
      token: pixel,
      notification: { title: "Sender", body: "hello team" },
      data: { msgKey: key, sender: sender.uid, conversation: "group_team-7", ext: '{"conv":"group_team-7"}' },
      android: {
        priority: "HIGH",
        ttl: (android as { android: { ttl: string } }).android.ttl,
        collapse_key: "group_team-7",
        notification: { channel_id: "chat", tag: key, title_loc_key: "MSG_FROM", title_loc_args: ["Sender"], body_loc_key: "MSG_BODY", body_loc_args: ["hello team"] },
      },
    });
    assert.match((android as { android: { ttl: string } }).android.ttl, /^(59\d|600)s$/);

    const ios = (await requestFor(iphone, key)).message as { apns: { headers: Record<string, string> } };
    const expiration = Number(ios.apns.headers["apns-expiration"]);
    assert.ok(Math.abs(expiration - (Math.floor(publishedAt / 1000) + 600)) <= 5, `apns-expiration ${expiration} is publication + MsgLifeTime`);
    assert.deepEqual(ios, {
      token: iphone,
      apns: {
        headers: { "apns-priority": "10", "apns-push-type": "alert", "apns-expiration": String(expiration), "apns-collapse-id": "group_team-7" },
        payload: {
          aps: {
            alert: { title: "Sender (iPhone)", subtitle: "Team 7", body: "hello team", "title-loc-key": "MSG_FROM", "title-loc-args": ["Sender"], "loc-key": "MSG_BODY", "loc-args": ["hello team"] },
            sound: "ping.caf",
            badge: 3,
            "thread-id": "group_team-7",
            "mutable-content": 1,
          },
          ext: '{"conv":"group_team-7"}',
          msgKey: key,
          sender: sender.uid,
          conversation: "group_team-7",
        },
        fcm_options: { image: "https://example.com/p.png" },
      },
    });
  });
});

describe("the iPhone's badge", () => {
  it("counts from doBackground's unreadCount, one more per push; a new unreadCount resets it; BadgeMode 1 leaves it out", async () => {
    const [alice, carol, user] = [await createUser(), await createUser(), await createUser()];
    const iphone = await device(user, "iphone", "ios", cert.certificateId, 5);
    const pixel = await device(user, "pixel", "android");
    await putAway(user);
    const badges: Array<number | undefined> = [];
    const send = async (from: TestUser, extra: Record<string, unknown> = {}) => {
      const key = msgKey("badge");
      await push({ MsgKey: key, From_Account: from.uid, To_Account: [user.uid], MsgBody: text("hi"), ...extra });
      const aps = apsOf(await requestFor(iphone, key));
      badges.push(aps.badge as number | undefined);
      const android = (await requestFor(pixel, key)).message as { android: { notification: Record<string, unknown> }; apns?: unknown };
      assert.equal(android.apns, undefined, "the Android phone has no apns block");
      assert.equal(android.android.notification.notification_count, undefined, "nor a badge of its own");
      return key;
    };
    await send(alice);
    await send(alice);
    await send(carol);
    assert.deepEqual(badges, [6, 7, 8]);
    const doc = await badgeDoc(user.uid);
    assert.equal(doc?.devices.iphone?.count, 8);
    assert.deepEqual(doc?.devices.iphone?.conversations, { [`c2c_${alice.uid}`]: 2, [`c2c_${carol.uid}`]: 1 });
    assert.ok(doc && doc.expireAt.toMillis() > Date.now() + 20 * DAY, "the badge document expires (TTL)");
    assert.equal(doc?.devices.pixel, undefined, "Android devices have no badge entry");

    // BadgeMode 1: no badge key, and the count does not move.
    await send(alice, { OfflinePushInfo: { ApnsInfo: { BadgeMode: 1 } } });
    assert.equal(badges[3], undefined);
    assert.equal((await badgeDoc(user.uid))?.devices.iphone?.count, 8);

    // The user opened the app and read everything: the app reports 0 when it goes to the background.
    await callOk("doForeground", { deviceId: "iphone" }, user);
    await callOk("doBackground", { deviceId: "iphone", unreadCount: 0 }, user);
    await putAway(user);
    await send(carol);
    assert.equal(badges[4], 1);

    // Operators see it: diagnosePush shows the platform and, for the iPhone, the badge.
    const diag = await callOk<{ devices: Array<{ deviceId: string; platform: string; badge: { count: number; reportedAt: string | null; conversations: Record<string, number> } | null }>; settings: { iosBadges: string } }>("diagnosePush", { uid: user.uid }, admin);
    const shown = Object.fromEntries(diag.devices.map((d) => [d.deviceId, d]));
    assert.deepEqual([shown.iphone?.platform, shown.iphone?.badge?.count, shown.iphone?.badge?.conversations], ["ios", 1, { [`c2c_${carol.uid}`]: 1 }]);
    assert.ok(shown.iphone?.badge?.reportedAt, "counted from the app's report");
    assert.deepEqual([shown.pixel?.platform, shown.pixel?.badge], ["android", null]);
    assert.equal(diag.settings.iosBadges, "on");
  });

  it("a Read lowers it by the conversation's pushes, atomically, and the silent update carries the new badge", async () => {
    const [alice, carol, user] = [await createUser(), await createUser(), await createUser()];
    const iphone = await device(user, "iphone", "ios", cert.certificateId, 1);
    for (const from of [alice, alice, carol]) await push({ MsgKey: msgKey("read"), From_Account: from.uid, To_Account: [user.uid], MsgBody: text("hi") });
    assert.equal((await badgeDoc(user.uid))?.devices.iphone?.count, 4);

    const lowered = await lowerBadges(user.uid, `c2c_${alice.uid}`, DAY);
    assert.deepEqual(lowered.map(({ deviceId, badge, cleared }) => ({ deviceId, badge, cleared })), [{ deviceId: "iphone", badge: 2, cleared: 2 }]);
    assert.deepEqual((await badgeDoc(user.uid))?.devices.iphone?.conversations, { [`c2c_${carol.uid}`]: 1 });
    const again = await lowerBadges(user.uid, `c2c_${alice.uid}`, DAY);
    assert.deepEqual(again.map(({ badge, cleared }) => ({ badge, cleared })), [{ badge: 2, cleared: 0 }], "the same Read again takes nothing more off, and still says the badge");
    assert.deepEqual(await lowerBadges(user.uid, `c2c_${alice.uid}`, DAY, "iphone"), [], "the device it was read on is left out of the answer");

    const device_ = await readDevice(user.uid, "iphone");
    assert.equal(device_?.token?.token, iphone);
    const silent = buildApnsClearMessage(iphone, `c2c_${alice.uid}`, lowered[0]!.badge);
    assert.ok(validateSendBody({ message: silent }).ok, "FCM accepts the silent update");

    // Two Reads at once (two devices of the user, say) serialize: each conversation is taken off once.
    await push({ MsgKey: msgKey("read"), From_Account: alice.uid, To_Account: [user.uid], MsgBody: text("again") });
    const both = await Promise.all([lowerBadges(user.uid, `c2c_${alice.uid}`, DAY), lowerBadges(user.uid, `c2c_${carol.uid}`, DAY)]);
    assert.deepEqual(both.flat().map((l) => l.cleared).sort(), [1, 1]);
    assert.equal((await badgeDoc(user.uid))?.devices.iphone?.count, 1, "only what the app reported stays");
  });
});

describe("a Read and a Recall on an iPhone", () => {
  it("the Recall replaces by collapse ID, silently; the Read's clear is a silent update with the lowered badge; the Android phone gets its own forms", async () => {
    const [alice, carol, user] = [await createUser(), await createUser(), await createUser()];
    const iphone = await device(user, "iphone", "ios", cert.certificateId, 0);
    const pixel = await device(user, "pixel", "android");
    await putAway(user);
    const [first, second] = [msgKey("follow"), msgKey("follow")];
    for (const key of [first, second]) await push({ MsgKey: key, From_Account: alice.uid, To_Account: [user.uid], MsgBody: text("hi") });
    await push({ MsgKey: msgKey("follow"), From_Account: carol.uid, To_Account: [user.uid], MsgBody: text("other chat") });
    assert.equal(apsOf(await requestFor(iphone, second)).badge, 2);
    const conversation = `c2c_${alice.uid}`;
    const typed = async (token: string, type: string) =>
      eventually(
        async () =>
          (await sendsTo(token)).find((r) => {
            const m = r.message as { data?: { type?: string }; apns?: { payload?: { type?: string } } };
            return (m.data?.type ?? m.apns?.payload?.type) === type;
          }),
        { what: `a ${type} to the ${token === iphone ? "iPhone" : "Android phone"}`, timeoutMs: 60_000 },
      );

    const original = (await requestFor(iphone, first)).message as { apns: { headers: Record<string, string> } };
    await publish(PUSH_TOPIC, { Event: "Recall", MsgKey: first, From_Account: alice.uid });
    const recall = (await typed(iphone, "recall")).message as { apns: { headers: Record<string, string>; payload: Record<string, unknown> }; android?: unknown; data?: unknown };
    assert.equal(recall.apns.headers["apns-collapse-id"], original.apns.headers["apns-collapse-id"], "the same collapse ID replaces the shown notification");
    assert.deepEqual([recall.apns.headers["apns-priority"], recall.apns.headers["apns-push-type"]], ["10", "alert"]);
    const recallAps = recall.apns.payload.aps as Record<string, unknown>;
    assert.equal((recallAps.alert as { body: string }).body, DEFAULT_PLACEHOLDERS.recalled);
    assert.equal(recallAps["thread-id"], conversation);
    assert.deepEqual([recallAps.sound, recallAps.badge], [undefined, undefined], "no sound, the badge left alone");
    assert.deepEqual([recall.apns.payload.type, recall.apns.payload.msgKey, recall.android, recall.data], ["recall", first, undefined, undefined]);
    const androidRecall = (await typed(pixel, "recall")).message as { android: { notification: { tag: string } }; apns?: unknown };
    assert.deepEqual([androidRecall.android.notification.tag, androidRecall.apns], [first, undefined]);

    await publish(PUSH_TOPIC, { Event: "Read", EventKey: msgKey("follow-read"), Account: user.uid, Conversation: conversation });
    const clear = (await typed(iphone, "clear")).message as { apns: unknown; android?: unknown; data?: unknown };
    assert.deepEqual(clear, {
      token: iphone,
      apns: { headers: { "apns-priority": "5", "apns-push-type": "alert" }, payload: { aps: { "content-available": 1, badge: 1 }, type: "clear", conversation } },
    });
    assert.ok(validateSendBody({ message: clear }).ok, "FCM accepts the silent update");
    const androidClear = (await typed(pixel, "clear")).message as { data: Record<string, string>; apns?: unknown };
    assert.deepEqual([androidClear.data, androidClear.apns], [{ type: "clear", conversation }, undefined]);
    assert.equal((await badgeDoc(user.uid))?.devices.iphone?.count, 1, "carol's message is still unread");
  });
});

describe("iOS-only failures fail that device only", () => {
  it("a project without an APNs key: THIRD_PARTY_AUTH_ERROR for the iPhone, the Android phone is sent, the certificate stays healthy, the badge is given back", async () => {
    const noKey = await registerCertificate(admin, "no APNs key");
    await fakeFcm.apns({ projectId: noKey.sa.project_id, apnsAuthKey: false });
    const [sender, user] = [await createUser(), await createUser()];
    const pixel = await device(user, "pixel", "android", noKey.certificateId);
    const iphone = await device(user, "iphone", "ios", noKey.certificateId, 0);
    await putAway(user);
    const key = msgKey("no-apns-key");
    const docs = await push({ MsgKey: key, From_Account: sender.uid, To_Account: [user.uid], MsgBody: text("hi") });
    const failed = entryFor(docs, user.uid, "iphone");
    assert.deepEqual([failed.outcome, failed.outcome === "failed" && failed.reason, failed.outcome === "failed" && failed.error?.errorCode], ["failed", "third-party-auth", "THIRD_PARTY_AUTH_ERROR"]);
    assert.equal(entryFor(docs, user.uid, "pixel").outcome, "sent");
    assert.equal((await requestFor(pixel, key)).answeredStatus, 200);
    assert.equal((await requestFor(iphone, key)).answeredStatus, 401);
    const { certificates } = await callOk<{ certificates: Array<{ certificateId: number; health: { state: string } }> }>("listPushCertificates", {}, admin);
    assert.equal(certificates.find((c) => c.certificateId === noKey.certificateId)?.health.state, "healthy");
    assert.equal((await readDevice(user.uid, "iphone"))?.token?.token, iphone, "the token stays bound: the key is missing, not the token");
    await eventually(async () => ((await badgeDoc(user.uid))?.devices.iphone?.count === 0 ? true : undefined), { what: "the badge given back" });
  });

  it("APNs BadDeviceToken: the iPhone's token is unbound as invalid, nothing else changes", async () => {
    const [sender, user] = [await createUser(), await createUser()];
    const pixel = await device(user, "pixel", "android");
    const iphone = await device(user, "iphone", "ios");
    await putAway(user);
    await fakeFcm.addErrorRule({ token: iphone, preset: "apns-bad-device-token" });
    const key = msgKey("bad-device-token");
    const docs = await push({ MsgKey: key, From_Account: sender.uid, To_Account: [user.uid], MsgBody: text("hi") });
    const failed = entryFor(docs, user.uid, "iphone");
    assert.equal(failed.outcome, "failed");
    assert.equal(failed.outcome === "failed" && failed.reason, "token-invalid");
    assert.match(failed.outcome === "failed" ? (failed.error?.message ?? "") : "", /APNs: BadDeviceToken/);
    assert.equal(entryFor(docs, user.uid, "pixel").outcome, "sent");
    await eventually(async () => ((await readDevice(user.uid, "iphone"))?.token === null ? true : undefined), { what: "the iPhone's token unbound" });
    assert.equal((await readDevice(user.uid, "pixel"))?.token?.token, pixel);
  });
});

describe("what iPhones cost", () => {
  it("a batch of 100 iPhones costs one read call and one commit more than 100 Android phones: 1 document read and written per iOS recipient", async () => {
    const run = randomUUID().slice(0, 8);
    const seed = async (platform: "android" | "ios") => {
      const uids = Array.from({ length: 100 }, (_, i) => `cost-${platform}-${run}-${String(i).padStart(3, "0")}`);
      const writer = adminDb().bulkWriter();
      for (const uid of uids) {
        const phone = seedDevice("phone", { platform, unreadCount: 2, token: seedToken(cert.certificateId) });
        void writer.set(adminDb().collection(USERS).doc(uid), { devices: { phone }, updatedAt: Timestamp.now() });
      }
      await writer.close();
      return uids;
    };
    const measure = async (uids: string[]) => {
      const key = msgKey("cost");
      const { result: docs, calls } = await countFirestoreCalls(() => push({ MsgKey: key, From_Account: "cost-sender", To_Account: uids, MsgBody: text("hi") }));
      assert.equal(entriesOf(docs).filter((e) => e.outcome === "sent").length, 100);
      const recorded = docs.reduce((n, d) => ({ reads: n.reads + d.cost.firestoreReads, writes: n.writes + d.cost.firestoreWrites }), { reads: 0, writes: 0 });
      return { calls, recorded };
    };
    const android = await measure(await seed("android"));
    const iosUids = await seed("ios");
    const ios = await measure(iosUids);
    process.stdout.write(`[cost] 100 recipients, one batch: android ${JSON.stringify(android.calls.byMethod)}, ios ${JSON.stringify(ios.calls.byMethod)}\n`);
    assert.equal(ios.calls.reads, android.calls.reads + 1, "one more read call: the badge documents, in one getAll");
    assert.equal(ios.calls.writes, android.calls.writes + 1, "one more commit: the badges, before the first send");
    assert.deepEqual(ios.recorded, { reads: ios.calls.reads, writes: ios.calls.writes }, "the push log's recorded cost is the cost");
    const badgeDocs = await adminDb().getAll(...iosUids.map((uid) => adminDb().collection(PUSH_BADGES).doc(uid)));
    assert.ok(badgeDocs.every((d) => (d.get("devices") as Record<string, BadgeEntry>).phone?.count === 3), "each iPhone's badge: its unreadCount 2, plus one");
  });
});

describe("IOS_BADGES=off", () => {
  it("no badge key and no badge document (the batch run in this process with the switch off)", async () => {
    const uid = `ios-off-${randomUUID()}`;
    const token = fakeFcmToken();
    const iphone = seedDevice("iphone", { platform: "ios", token: seedToken(cert.certificateId, Date.now(), 60_000, token) });
    await adminDb().collection(USERS).doc(uid).set({ devices: { iphone }, updatedAt: Timestamp.now() });
    const key = msgKey("badges-off");
    const event = PushEventSchema.parse({ MsgKey: key, From_Account: "someone", To_Account: [uid], MsgBody: text("hi") });
    const kek = Buffer.from(dotenv("functions/.secret.local").PUSH_KEY_ENCRYPTION_KEY!, "base64");
    const id = `local-${randomUUID()}`;
    const result = await processBatch(
      { content: contentOf(event), uids: [uid], batchIndex: 0, batchCount: 1, eventId: id, deliveryId: id, publishTimeMs: Date.now() },
      {
        settings: { batchSize: 200, maxEventAgeMs: 3_600_000, leaseMs: 60_000, checkpointEvery: 100, sendConcurrency: 10, retryBaseDelayMs: 100, retryMaxDelayMs: 1000, pushLogTtlMs: DAY, invocationBudgetMs: 60_000, inlineBatches: 5, maxInlineWaitMs: 5_000, maxReadAgeMs: 1_000, iosBadges: false },
        placeholders: DEFAULT_PLACEHOLDERS,
        kek: () => kek,
        handOn: () => Promise.reject(new Error("not handed on")),
      },
    );
    assert.equal(result.status, "done");
    const aps = apsOf(await requestFor(token, key));
    assert.equal("badge" in aps, false);
    assert.equal(await badgeDoc(uid), undefined);
  });
});
