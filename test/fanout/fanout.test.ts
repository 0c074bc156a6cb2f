// The fan-out end to end: recipients set up through the real callables (login, setOfflinePushToken,
// doBackground, logout), events published to the Pub/Sub emulator, the pushes observed at the
// fake FCM, the decisions read from the push log.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { Timestamp } from "firebase-admin/firestore";
import { pushLogForMessage, pushLogForUser } from "../../functions/src/fanout/pushLog.ts";
import { sendAsApp } from "../../functions/src/fanout/functions.ts";
import { toHttpsError } from "../../functions/src/common/callable.ts";
import { sendMessageSettings } from "../../functions/src/config.ts";
import { batchLogId } from "../../functions/src/fanout/recipients.ts";
import { adminDb, call, callOk, clearFirestore, createUser, createUsers, eventually, publish, type TestUser } from "../helpers/emulators.ts";
import {
  PUSH_TOPIC,
  entryFor,
  foregroundDevice,
  killedDevice,
  logDocs,
  msgKey,
  printCost,
  seedRunningBatch,
  sendsTo,
  waitForMessage,
  waitForRejected,
} from "../helpers/fanout.ts";
import { registerCertificate, type TestCertificate } from "../helpers/certificates.ts";

let cert: TestCertificate;
let alice: TestUser; // the sender, with a killed device of her own
let aliceToken: string;

before(async () => {
  await clearFirestore();
  const admin = await createUser({ admin: true });
  cert = await registerCertificate(admin);
  alice = await createUser();
  aliceToken = await killedDevice(alice, cert.certificateId);
});

const textBody = (t: string) => [{ MsgType: "TIMTextElem", MsgContent: { Text: t } }];

describe("a text message to a killed device", () => {
  it("arrives with exactly the expected FCM message, and the log records the send", async () => {
    const bob = await createUser();
    const token = await killedDevice(bob, cert.certificateId);
    const key = msgKey();
    await publish(PUSH_TOPIC, {
      MsgKey: key,
      From_Account: alice.uid,
      To_Account: bob.uid,
      MsgLifeTime: 3600,
      MsgBody: textBody("hi"),
      OfflinePushInfo: {
        PushFlag: 0,
        Title: "Alice",
        Desc: "hi there",
        Ext: '{"conv":"c2c_alice","n":1}',
        AndroidInfo: { GoogleChannelID: "chat", Sound: "a.mp3" },
        ApnsInfo: { Sound: "a.caf" },
      },
    });
    const docs = await waitForMessage(key);
    const sends = await sendsTo(token);
    assert.equal(sends.length, 1);
    const [send] = sends;
    assert.equal(send!.projectId, cert.sa.project_id);
    assert.equal(send!.clientEmail, cert.sa.client_email);
    assert.equal(send!.answeredStatus, 200);
    // What is left of MsgLifeTime when sent: the seconds since publication are counted off.
    const ttl = (send!.message as { android: { ttl: string } }).android.ttl;
    assert.ok(/^\d+s$/.test(ttl) && parseInt(ttl, 10) <= 3600 && parseInt(ttl, 10) >= 3540, ttl);
    assert.deepEqual(send!.message, {
      token,
      notification: { title: "Alice", body: "hi there" },
      data: { msgKey: key, sender: alice.uid, ext: '{"conv":"c2c_alice","n":1}' },
      android: { priority: "HIGH", ttl, collapse_key: `c2c_${alice.uid}`, notification: { channel_id: "chat", tag: key } },
    });

    assert.equal(docs.length, 1);
    // Its ID: the message record's epoch, the first publication, batch 0.
    const record = await adminDb().doc(`pushMessages/${key}`).get();
    assert.equal(docs[0]!.epoch, record.get("epoch"));
    assert.equal(docs[0]!.id, batchLogId(key, { epoch: record.get("epoch") as string, generation: 0 }, 0));
    assert.deepEqual(docs[0]!.uids, [bob.uid]);
    const entry = entryFor(docs, bob.uid);
    assert.equal(entry.outcome, "sent");
    assert.equal(entry.outcome === "sent" && entry.fcmName, send!.name);
    assert.equal(entry.outcome === "sent" && entry.certificateId, cert.certificateId);
    // Sound is not applied, and the log says so.
    assert.ok(docs[0]!.notes.some((n) => n.includes("a.mp3") && n.includes("not applied")), JSON.stringify(docs[0]!.notes));
    assert.ok(docs[0]!.expireAt.toMillis() > Date.now() + 29 * 24 * 3600 * 1000, "expires via the TTL field in about 30 days");
    printCost("one text message, one recipient", docs);

    // What the troubleshooting tools read: by message key, and by user.
    const byMessage = await pushLogForMessage(key);
    assert.deepEqual(byMessage.docs.map((d) => d.id), [docs[0]!.id]);
    assert.equal(byMessage.record?.epoch, docs[0]!.epoch);
    const byUser = await pushLogForUser(bob.uid);
    assert.equal(byUser[0]?.msgKey, key);
    assert.deepEqual(byUser[0]?.entries.map((e) => [e.uid, e.outcome]), [[bob.uid, "sent"]]);
  });

  it("without Title/Desc: the sender as title, the message text as body", async () => {
    const bob = await createUser();
    const token = await killedDevice(bob, cert.certificateId);
    const key = msgKey();
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: alice.uid, To_Account: [bob.uid], MsgBody: textBody("see you at 8") });
    await waitForMessage(key);
    const [send] = await sendsTo(token);
    const message = send!.message as { notification: unknown; android: { ttl: string } };
    assert.deepEqual(message.notification, { title: alice.uid, body: "see you at 8" });
    assert.ok(parseInt(message.android.ttl, 10) <= 604_800 && parseInt(message.android.ttl, 10) >= 604_740, message.android.ttl);
  });
});

describe("who gets no push", () => {
  it("no request for a foreground, logged-out, kicked or token-less device, nor the sender's own; each reason recorded", async () => {
    const [killed, foreground, loggedOut, kicked, noToken] = await createUsers(5);
    const killedToken = await killedDevice(killed!, cert.certificateId);
    const foregroundToken = await foregroundDevice(foreground!, cert.certificateId);
    const loggedOutToken = await killedDevice(loggedOut!, cert.certificateId);
    await callOk("logout", { deviceId: "phone" }, loggedOut!);
    const kickedToken = await killedDevice(kicked!, cert.certificateId);
    await callOk("login", { deviceId: "tablet", platform: "android" }, kicked!); // kicks "phone"
    await callOk("login", { deviceId: "phone", platform: "android" }, noToken!);
    await callOk("doBackground", { deviceId: "phone" }, noToken!);
    const neverLoggedIn = "never-logged-in-user";

    const key = msgKey();
    const to = [killed!.uid, foreground!.uid, loggedOut!.uid, kicked!.uid, noToken!.uid, alice.uid, neverLoggedIn, killed!.uid];
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: alice.uid, To_Account: to, MsgBody: textBody("hello all") });
    const docs = await waitForMessage(key);

    assert.equal((await sendsTo(killedToken)).length, 1, "the killed device gets exactly one push (its account was listed twice)");
    for (const [what, token] of [
      ["foreground", foregroundToken],
      ["logged-out", loggedOutToken],
      ["kicked", kickedToken],
      ["sender's own", aliceToken],
    ] as const) {
      assert.equal((await sendsTo(token)).length, 0, `no request for the ${what} device`);
    }
    const reason = (uid: string, deviceId: string | null = "phone") => {
      const e = entryFor(docs, uid, deviceId);
      return `${e.outcome}:${e.reason}`;
    };
    assert.equal(reason(killed!.uid), "sent:sent");
    assert.equal(reason(foreground!.uid), "skipped:foreground");
    assert.equal(reason(loggedOut!.uid), "skipped:logged-out");
    assert.equal(reason(kicked!.uid), "skipped:kicked");
    assert.equal(reason(kicked!.uid, "tablet"), "skipped:no-token");
    assert.equal(reason(noToken!.uid), "skipped:no-token");
    assert.equal(reason(alice.uid, null), "skipped:sender");
    assert.equal(reason(neverLoggedIn, null), "skipped:no-device");
    assert.equal(docs[0]!.entries.length, 8, "one entry per device (and per account without devices)");
    assert.deepEqual(docs[0]!.counts, { sent: 1, skipped: 7, failed: 0 });
    // The troubleshooting text: why, in words.
    const fg = entryFor(docs, foreground!.uid);
    assert.ok(fg.outcome === "skipped" && fg.detail.includes("foreground"), JSON.stringify(fg));
  });

  it("PushFlag 1: no request, reason recorded", async () => {
    const bob = await createUser();
    const token = await killedDevice(bob, cert.certificateId);
    const key = msgKey();
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: alice.uid, To_Account: bob.uid, MsgBody: textBody("quiet"), OfflinePushInfo: { PushFlag: 1, Desc: "quiet" } });
    const docs = await waitForMessage(key);
    assert.equal((await sendsTo(token)).length, 0);
    const e = entryFor(docs, bob.uid, null);
    assert.equal(`${e.outcome}:${e.reason}`, "skipped:push-disabled");
    assert.equal(docs[0]!.cost.fcmRequests, 0);
  });

  it("a custom message without Desc: no request, reason recorded; with Desc: pushed with it", async () => {
    const bob = await createUser();
    const token = await killedDevice(bob, cert.certificateId);
    const custom = [{ MsgType: "TIMCustomElem", MsgContent: { Data: '{"type":"gift"}' } }];
    const silent = msgKey();
    await publish(PUSH_TOPIC, { MsgKey: silent, From_Account: alice.uid, To_Account: bob.uid, MsgBody: custom });
    const docs = await waitForMessage(silent);
    assert.equal((await sendsTo(token)).length, 0);
    const e = entryFor(docs, bob.uid, null);
    assert.equal(`${e.outcome}:${e.reason}`, "skipped:custom-without-desc");

    const withDesc = msgKey();
    await publish(PUSH_TOPIC, { MsgKey: withDesc, From_Account: alice.uid, To_Account: bob.uid, MsgBody: custom, OfflinePushInfo: { Desc: "You got a gift" } });
    await waitForMessage(withDesc);
    const sends = await sendsTo(token);
    assert.equal(sends.length, 1);
    assert.equal((sends[0]!.message as { notification: { body: string } }).notification.body, "You got a gift");
  });

  it("an oversized message is not sent, and the log says why", async () => {
    const bob = await createUser();
    const token = await killedDevice(bob, cert.certificateId);
    const key = msgKey();
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: alice.uid, To_Account: bob.uid, MsgBody: textBody("x"), OfflinePushInfo: { Desc: "big", Ext: "e".repeat(4000) } });
    const docs = await waitForMessage(key);
    assert.equal((await sendsTo(token)).length, 0);
    const e = entryFor(docs, bob.uid);
    assert.equal(`${e.outcome}:${e.reason}`, "skipped:payload-too-large");
    assert.match(e.outcome === "skipped" ? e.detail : "", /over FCM's 4096-byte limit/);
  });
});

describe("exactly once", () => {
  it("the same event published twice (at once, and again later): one request", async () => {
    const bob = await createUser();
    const token = await killedDevice(bob, cert.certificateId);
    const key = msgKey();
    const event = { MsgKey: key, From_Account: alice.uid, To_Account: bob.uid, MsgBody: textBody("once") };
    await Promise.all([publish(PUSH_TOPIC, event), publish(PUSH_TOPIC, event)]);
    await waitForMessage(key);
    await publish(PUSH_TOPIC, event);
    // The later copy finds the batch done and records itself as a duplicate.
    const docs = await eventually(async () => {
      const d = await waitForMessage(key);
      return d[0]!.duplicates >= 1 ? d : undefined;
    }, { what: "the duplicate delivery to be recorded" });
    assert.equal((await sendsTo(token)).length, 1);
    assert.equal(docs[0]!.counts.sent, 1);
    assert.equal(docs[0]!.entries.length, 1);
  });

  it("a delivery that crashed halfway: the retry sends only to the devices not yet recorded", async () => {
    const [first, second] = await createUsers(2);
    const firstToken = await killedDevice(first!, cert.certificateId);
    const secondToken = await killedDevice(second!, cert.certificateId);
    const key = msgKey();
    // What a crashed delivery leaves: the batch running, its lease expired, one device recorded as sent.
    const past = Timestamp.fromMillis(Date.now() - 60_000);
    await seedRunningBatch({
      msgKey: key,
      from: alice.uid,
      uids: [first!.uid, second!.uid],
      owner: "crashed-delivery",
      deliveryId: "crashed-delivery-message",
      leaseUntilMs: past.toMillis(),
      entries: [{ outcome: "sent", uid: first!.uid, deviceId: "phone", reason: "sent", certificateId: cert.certificateId, fcmName: "projects/x/messages/1", attempts: 1, at: past }],
      cost: { firestoreReads: 3, firestoreWrites: 2, fcmRequests: 1, publishes: 0 },
      at: past,
    });
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: alice.uid, To_Account: [first!.uid, second!.uid], MsgBody: textBody("resume") });
    const docs = await waitForMessage(key);
    assert.equal((await sendsTo(firstToken)).length, 0, "the device recorded as sent is not sent again");
    assert.equal((await sendsTo(secondToken)).length, 1, "the device not yet recorded is sent");
    assert.equal(docs[0]!.claims, 2);
    assert.deepEqual(docs[0]!.counts, { sent: 2, skipped: 0, failed: 0 });
    assert.equal(entryFor(docs, first!.uid).outcome === "sent" && (entryFor(docs, first!.uid) as { fcmName: string }).fcmName, "projects/x/messages/1");
  });

  it("a batch another Pub/Sub message's delivery is working on (live lease): this one sends nothing", async () => {
    const bob = await createUser();
    const token = await killedDevice(bob, cert.certificateId);
    const key = msgKey();
    const now = Date.now();
    await seedRunningBatch({
      msgKey: key,
      from: alice.uid,
      uids: [bob.uid],
      owner: "other-delivery",
      deliveryId: "another-pubsub-message",
      leaseUntilMs: now + 600_000,
      at: Timestamp.fromMillis(now),
    });
    // A control message to the same device shows the path works; the busy delivery is done once
    // the batch counts it (no fixed wait racing the trigger).
    const control = msgKey();
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: alice.uid, To_Account: bob.uid, MsgBody: textBody("busy") });
    await publish(PUSH_TOPIC, { MsgKey: control, From_Account: alice.uid, To_Account: bob.uid, MsgBody: textBody("control") });
    await waitForMessage(control);
    const doc = await eventually(
      async () => {
        const [d] = await logDocs(key);
        return d && d.kind === "batch" && d.concurrentDeliveries >= 1 ? d : undefined;
      },
      { what: "the busy delivery to be counted on the batch" },
    );
    const sends = await sendsTo(token);
    assert.deepEqual(sends.map((s) => (s.message as { data: { msgKey: string } }).data.msgKey), [control]);
    assert.ok(doc.state === "running" && doc.lease?.owner === "other-delivery", "the other delivery keeps the batch");
  });
});

describe("invalid events", () => {
  it("an invalid event is recorded with what was wrong, acknowledged, and nothing is sent", async () => {
    const bob = await createUser();
    const token = await killedDevice(bob, cert.certificateId);
    const key = msgKey("invalid");
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: alice.uid, To_Account: bob.uid, MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: 42 } }] });
    const rejected = await waitForRejected(key);
    assert.equal(rejected.reason, "invalid-event");
    assert.equal(rejected.issues[0]?.field, "MsgBody.0.MsgContent.Text");
    assert.equal(rejected.from, alice.uid);
    assert.equal(rejected.topic, PUSH_TOPIC);
    assert.deepEqual(rejected.uids, [bob.uid], "found by user too");
    assert.equal((await sendsTo(token)).length, 0);
  });

  it("data that is not JSON is recorded under its Pub/Sub message ID", async () => {
    const messageId = await publish(PUSH_TOPIC, "this is not json {");
    const doc = await eventually(async () => {
      const snap = await adminDb().doc(`pushLog/rejected__${messageId}`).get();
      return snap.exists ? snap.data() : undefined;
    }, { what: "the rejected record of a non-JSON event" });
    assert.equal(doc.reason, "invalid-event");
    assert.match(doc.detail, /not JSON/);
    assert.equal(doc.msgKey, null);
  });
});

describe("sendMessage (the app publishes for itself)", () => {
  it("publishes the event with the caller as sender and a generated MsgKey", async () => {
    const bob = await createUser();
    const token = await killedDevice(bob, cert.certificateId);
    const res = await callOk<{ msgKey: string; messageId: string; recipients: number }>(
      "sendMessage",
      { to: [bob.uid, bob.uid], body: "hello from the app", offlinePushInfo: { Ext: "open:chat", AndroidInfo: { GoogleChannelID: "chat" } } },
      alice,
    );
    assert.match(res.msgKey, /^app-/);
    assert.equal(res.recipients, 1);
    const docs = await waitForMessage(res.msgKey);
    assert.equal(docs[0]!.from, alice.uid);
    const [send] = await sendsTo(token);
    assert.deepEqual((send!.message as { notification: unknown }).notification, { title: alice.uid, body: "hello from the app" });
    assert.deepEqual((send!.message as { data: unknown }).data, { msgKey: res.msgKey, sender: alice.uid, ext: "open:chat" });
  });

  it("rejects bad requests naming the field, and unauthenticated callers", async () => {
    const empty = await call("sendMessage", { to: [] }, alice);
    assert.equal(empty.error?.status, "INVALID_ARGUMENT");
    assert.equal(empty.error?.details?.field, "to");
    const badFlag = await call("sendMessage", { to: "bob", offlinePushInfo: { PushFlag: 7 } }, alice);
    assert.equal(badFlag.error?.details?.field, "offlinePushInfo.PushFlag");
    const anonymous = await call("sendMessage", { to: "bob", body: "x" });
    assert.equal(anonymous.error?.status, "UNAUTHENTICATED");
  });
});

describe("sendMessage is not an open relay", () => {
  it("a non-admin cannot impersonate: Title \"System\" arrives titled with the sender's account; Ext and the text pass through", async () => {
    const bob = await createUser();
    const token = await killedDevice(bob, cert.certificateId);
    const res = await callOk<{ msgKey: string }>("sendMessage", { to: bob.uid, body: "your account is locked", offlinePushInfo: { Title: "System", Ext: "x" } }, alice);
    await waitForMessage(res.msgKey);
    const [send] = await sendsTo(token);
    assert.deepEqual((send!.message as { notification: unknown }).notification, { title: alice.uid, body: "your account is locked" });
    assert.equal((send!.message as { data: { ext: string } }).data.ext, "x");
  });

  it("an operator (admin claim) may set the title", async () => {
    const admin = await createUser({ admin: true });
    const bob = await createUser();
    const token = await killedDevice(bob, cert.certificateId);
    const res = await callOk<{ msgKey: string }>("sendMessage", { to: bob.uid, body: "maintenance tonight", offlinePushInfo: { Title: "System" } }, admin);
    await waitForMessage(res.msgKey);
    const [send] = await sendsTo(token);
    assert.equal((send!.message as { notification: { title: string } }).notification.title, "System");
  });

  it("more recipients than SEND_MESSAGE_MAX_RECIPIENTS (20): INVALID_ARGUMENT naming to, nothing published", async () => {
    const to = Array.from({ length: 21 }, (_, i) => `many-${i}`);
    const res = await call("sendMessage", { to, body: "spam" }, await createUser());
    assert.equal(res.error?.status, "INVALID_ARGUMENT");
    assert.equal(res.error?.details?.field, "to");
    assert.match(res.error?.message ?? "", /at most 20/);
  });

  it("more than SEND_MESSAGE_PER_MINUTE (30) calls in a minute: RESOURCE_EXHAUSTED saying when to retry; one limiter document per sender", async () => {
    const spammer = await createUser();
    for (let i = 0; i < 30; i++) await callOk("sendMessage", { to: "nobody-at-all", body: `m${i}` }, spammer);
    const res = await call("sendMessage", { to: "nobody-at-all", body: "one too many" }, spammer);
    assert.equal(res.error?.status, "RESOURCE_EXHAUSTED");
    assert.match(res.error?.message ?? "", /30 calls a minute.*retry in \d+ s/);
    const limiter = await adminDb().doc(`sendLimits/${spammer.uid}`).get();
    assert.equal(limiter.get("count"), 30);
    const other = await call("sendMessage", { to: "nobody-at-all", body: "another sender is not limited" }, await createUser());
    assert.equal(other.error, undefined);
  });

  it("with SEND_MESSAGE_POLICY=off (a deployed project's default) it answers PERMISSION_DENIED and publishes nothing", async () => {
    // The emulated project runs with the demo's policy (on); the handler is the same function.
    const off = await sendAsApp({ to: "bob" }, { uid: alice.uid, admin: false }, { policy: "off", perMinute: 30, maxRecipients: 20 }).then(
      () => null,
      (err: unknown) => err,
    );
    const answer = toHttpsError(off, "sendMessage");
    assert.equal(answer.code, "permission-denied");
    assert.match(answer.message, /SEND_MESSAGE_POLICY=off/);
    assert.equal(sendMessageSettings().policy, "off", "unset, the policy is off");
  });
});
