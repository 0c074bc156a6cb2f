// The IM backend's presence feed end to end: events published to the presence topic with
// @google-cloud/pubsub as a backend publishes them, applied by offlinePushPresence, and their effect
// on the fan-out (messages published to the push topic, pushes observed at the fake FCM, decisions
// read from the push log). The emulated functions run with PRESENCE_SOURCE=both
// (functions/.env.demo-offline-push): the newest signal of the app and the backend decides.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Timestamp } from "firebase-admin/firestore";
import { DeviceSchema, tokenHash } from "../../functions/src/sessions/schemas.ts";
import { adminDb, callOk, clearFirestore, createUser, publish, type TestUser } from "../helpers/emulators.ts";
import { PUSH_TOPIC, entryFor, foregroundDevice, msgKey, sendsTo, waitForMessage } from "../helpers/fanout.ts";
import { registerCertificate, type TestCertificate } from "../helpers/certificates.ts";
import { countFirestoreCalls } from "../helpers/firestoreProxy.ts";
import { assertSessionInvariants, readDevice, readTokenOwner } from "../helpers/sessions.ts";
import { closePresenceClient, presenceEvent, presenceRecords, publishPresence, userUpdateTime, waitForPresence } from "../helpers/presence.ts";
import { eventually } from "../helpers/emulators.ts";

let cert: TestCertificate;
let alice: TestUser; // the sender

before(async () => {
  await clearFirestore();
  cert = await registerCertificate(await createUser({ admin: true }));
  alice = await createUser();
});
after(closePresenceClient);

const message = (to: string, key = msgKey("presence")) => ({ MsgKey: key, From_Account: alice.uid, To_Account: [to], MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: "hi" } }] });

async function pushTo(uid: string, deviceId = "phone") {
  const m = message(uid);
  await publish(PUSH_TOPIC, m);
  return entryFor(await waitForMessage(m.MsgKey), uid, deviceId);
}

/**
 * A batch whose last event is a Connect for a sentinel device of another user: once the sentinel's
 * presence is stored, the whole message was processed (the stale or repeated events in it included).
 */
async function publishWithSentinel(events: unknown[], sentinel: TestUser): Promise<void> {
  const t = Date.now();
  await publishPresence({ Events: [...events, presenceEvent(sentinel.uid, "phone", "Connect", t)] });
  await waitForPresence(sentinel.uid, "phone", "Connect", t);
}

describe("Connect and Disconnect from the IM backend", () => {
  let bob: TestUser;
  let token: string;
  let sentinel: TestUser;
  let connectAt: number;
  let disconnectAt: number;
  before(async () => {
    [bob, sentinel] = await Promise.all([createUser(), createUser()]);
    token = await foregroundDevice(bob, cert.certificateId);
    await callOk("login", { deviceId: "phone", platform: "android" }, sentinel);
  });

  it("a device the backend reports connected, in the foreground, gets no push (connected, with the event's time and reason)", async () => {
    connectAt = Date.now();
    await publishPresence(presenceEvent(bob.uid, "phone", "Connect", connectAt, "Login"));
    const d = await waitForPresence(bob.uid, "phone", "Connect", connectAt);
    assert.deepEqual([d.presence?.state, d.presence?.reason], ["connected", "Login"]);
    const entry = await pushTo(bob.uid);
    assert.equal(entry.outcome, "skipped");
    assert.equal(entry.reason, "connected");
    assert.ok(entry.outcome === "skipped" && entry.detail.includes("Connect") && entry.detail.includes("reason Login"), entry.outcome === "skipped" ? entry.detail : "");
    assert.equal((await sendsTo(token)).length, 0);
  });

  it("after its Disconnect, the next message reaches it within seconds", async () => {
    disconnectAt = Date.now();
    const started = Date.now();
    await publishPresence(presenceEvent(bob.uid, "phone", "Disconnect", disconnectAt, "LinkClose"));
    await waitForPresence(bob.uid, "phone", "Disconnect", disconnectAt);
    const entry = await pushTo(bob.uid);
    const elapsed = Date.now() - started;
    assert.equal(entry.outcome, "sent", JSON.stringify(entry));
    assert.equal((await sendsTo(token)).length, 1);
    // Seconds, not the 120 s heartbeat lease (the bench measures it without the waits in between).
    assert.ok(elapsed < 30_000, `Disconnect to push: ${elapsed} ms`);
    process.stdout.write(`[presence] Disconnect published -> applied -> message published -> FCM accepted: ${elapsed} ms\n`);
  });

  it("a stale Connect arriving after a newer Disconnect changes nothing: no write, still pushed", async () => {
    const before = await userUpdateTime(bob.uid);
    await publishWithSentinel([presenceEvent(bob.uid, "phone", "Connect", disconnectAt - 1_000)], sentinel);
    assert.equal(await userUpdateTime(bob.uid), before, "bob's document was not written");
    const d = await readDevice(bob.uid, "phone");
    assert.deepEqual([d?.presence?.action, d?.presence?.eventTime.toMillis()], ["Disconnect", disconnectAt]);
    assert.equal((await pushTo(bob.uid)).outcome, "sent");
  });

  it("the same event twice changes nothing (a Pub/Sub redelivery)", async () => {
    const before = await userUpdateTime(bob.uid);
    await publishWithSentinel([presenceEvent(bob.uid, "phone", "Disconnect", disconnectAt, "LinkClose")], sentinel);
    assert.equal(await userUpdateTime(bob.uid), before);
  });

  it("at the same millisecond a Disconnect wins over a Connect, in either order", async () => {
    const t = Date.now();
    await publishWithSentinel([presenceEvent(bob.uid, "phone", "Disconnect", t), presenceEvent(bob.uid, "phone", "Connect", t)], sentinel);
    assert.equal((await readDevice(bob.uid, "phone"))?.presence?.action, "Disconnect");
    await publishWithSentinel([presenceEvent(bob.uid, "phone", "Connect", t)], sentinel);
    assert.equal((await readDevice(bob.uid, "phone"))?.presence?.action, "Disconnect");
  });

  it("with both sources, an app heartbeat newer than the Disconnect reconnects it (and is written for that)", async () => {
    const beat = await callOk("heartbeat", { deviceId: "phone" }, bob);
    assert.equal(beat.recorded, true, "a beat that overrides a newer Disconnect is always written");
    assert.equal((await pushTo(bob.uid)).reason, "foreground");
  });
});

describe("Logout from the IM backend", () => {
  let carol: TestUser;
  let token: string;
  let loggedOutAt: number;
  before(async () => {
    carol = await createUser();
    token = await foregroundDevice(carol, cert.certificateId);
  });

  it("ends the session exactly like the logout callable: token unbound, atomically, no more pushes", async () => {
    loggedOutAt = Date.now();
    await publishPresence(presenceEvent(carol.uid, "phone", "Logout", loggedOutAt, "UserLogout"));
    const d = await waitForPresence(carol.uid, "phone", "Logout", loggedOutAt);
    assert.equal(d.session, "logged-out");
    assert.ok(d.endedAt);
    assert.equal(d.token, null);
    assert.equal(await readTokenOwner(token), null, "the pushTokens record is gone");
    await assertSessionInvariants();
    assert.equal((await pushTo(carol.uid)).reason, "logged-out");
    // The callable on the same device now finds it logged out, as after its own logout.
    const again = await callOk("logout", { deviceId: "phone" }, carol);
    assert.deepEqual(again, { deviceId: "phone", session: "logged-out", ended: false });
  });

  it("a Logout older than a new login leaves the new session alone (it was about the earlier one)", async () => {
    await callOk("login", { deviceId: "phone", platform: "android" }, carol);
    const loggedIn = (await readDevice(carol.uid, "phone"))!.loggedInAt.toMillis();
    const stale = Math.max(loggedOutAt + 1, loggedIn - 500);
    await publishPresence(presenceEvent(carol.uid, "phone", "Logout", stale));
    const d = await waitForPresence(carol.uid, "phone", "Logout", stale);
    assert.equal(d.session, "logged-in", "the new session stays");
  });
});

describe("events that cannot be applied: recorded, acknowledged, never retried", () => {
  let dave: TestUser;
  before(async () => {
    dave = await createUser();
    await callOk("login", { deviceId: "phone", platform: "android" }, dave);
  });

  it("an unknown device and an unknown account are recorded where an operator finds them (diagnosePush), the rest of the batch applied", async () => {
    const t = Date.now();
    const nobody = `nobody-${t}`;
    await publishPresence({
      Events: [presenceEvent(dave.uid, "ghost-tablet", "Connect", t, "Login"), presenceEvent(nobody, "x", "Disconnect", t), presenceEvent(dave.uid, "phone", "Connect", t)],
    });
    await waitForPresence(dave.uid, "phone", "Connect", t);
    const [record] = await eventually(async () => {
      const r = await presenceRecords(dave.uid);
      return r.length ? r : undefined;
    }, { what: "dave's presence record" });
    assert.deepEqual([record?.kind, record?.deviceId, record?.action, record?.reason, record?.count], ["unknown-device", "ghost-tablet", "Connect", "Login", 1]);
    assert.ok(record && record.expireAt.toMillis() > Date.now(), "it expires");
    const unknownAccount = await presenceRecords(nobody);
    assert.equal(unknownAccount[0]?.kind, "unknown-account");
    assert.equal((await adminDb().doc(`users/${nobody}`).get()).exists, false, "no document is created for an unknown account");

    const admin = await createUser({ admin: true });
    const diag = await callOk("diagnosePush", { uid: dave.uid }, admin);
    assert.equal(diag.presenceRecords[0].kind, "unknown-device");
    assert.equal(diag.presenceRecords[0].deviceId, "ghost-tablet");
    assert.equal(diag.presenceRecords[0].explanation.title, "Presence for an unknown device");
  });

  it("an invalid event is recorded naming the field, under the account it names; the valid ones beside it are applied", async () => {
    const t = Date.now();
    await publishPresence({ Events: [{ Account: dave.uid, DeviceId: "phone", Action: "Connect", EventTime: Math.floor(t / 1000) }, presenceEvent(dave.uid, "phone", "Disconnect", t)] });
    await waitForPresence(dave.uid, "phone", "Disconnect", t);
    const invalid = await eventually(async () => (await presenceRecords(dave.uid)).find((r) => r.kind === "invalid-event"), { what: "the invalid-event record" });
    assert.equal(invalid.issues[0]?.field, "Events.0.EventTime");
    assert.ok(invalid.detail.includes("1 of 2"), invalid.detail);
  });

  it("a message that is not JSON is recorded and acknowledged", async () => {
    const id = await publishPresence("not json {");
    const snap = await eventually(async () => {
      const s = await adminDb().doc(`presenceLog/invalid-event__${id}`).get();
      return s.exists ? s : undefined;
    }, { what: "the record of the non-JSON message" });
    assert.match(String(snap.get("detail")), /not JSON/);
  });
});

describe("cost: one write per user whose devices changed, a batch in a few calls", () => {
  it("a refresh batch for 100 users (one with two devices): one read call, one document write per user, nothing for a repeat", async () => {
    const now = Date.now();
    const t = Timestamp.fromMillis(now - 60_000);
    const uids = Array.from({ length: 100 }, (_, i) => `refresh-${now}-${i}`);
    const device = (deviceId: string) =>
      DeviceSchema.parse({
        deviceId,
        platform: deviceId === "laptop" ? "desktop" : "android",
        session: "logged-in",
        sessionId: `s-${deviceId}`,
        loggedInAt: t,
        endedAt: null,
        kickedByDeviceId: null,
        appState: "foreground",
        appStateAt: t,
        unreadCount: null,
        lastHeartbeatAt: t,
        token: null,
      });
    const batch = adminDb().batch();
    uids.forEach((uid, i) => batch.set(adminDb().doc(`users/${uid}`), { devices: i === 0 ? { phone: device("phone"), laptop: device("laptop") } : { phone: device("phone") }, updatedAt: t }));
    await batch.commit();

    const eventTime = now;
    const events = [...uids.map((uid) => presenceEvent(uid, "phone", "Connect", eventTime, "Refresh")), presenceEvent(uids[0]!, "laptop", "Connect", eventTime, "Refresh")];
    const last = uids[uids.length - 1]!;
    const { calls } = await countFirestoreCalls(async () => {
      await publishPresence({ Events: events });
      await waitForPresence(last, "phone", "Connect", eventTime);
      await waitForPresence(uids[0]!, "laptop", "Connect", eventTime);
    });
    process.stdout.write(`[cost] presence refresh, 101 events for 100 users: Firestore ${JSON.stringify(calls.byMethod)}\n`);
    assert.equal(calls.reads, 1, "one getAll for the 100 accounts");
    assert.equal(calls.byMethod.Commit ?? 0, 0, "no transaction: nothing changed in between");
    assert.ok((calls.byMethod.BatchWrite ?? 0) >= 1 && calls.writes <= 10, `a few BatchWrite calls for 100 documents: ${JSON.stringify(calls.byMethod)}`);
    // The user with two devices: both changed by one write (one update time).
    const both = await readDevice(uids[0]!, "laptop");
    const phone = await readDevice(uids[0]!, "phone");
    assert.equal(both?.presence?.at.toMillis(), phone?.presence?.at.toMillis());

    const { calls: again } = await countFirestoreCalls(async () => {
      const sentinel = presenceEvent(uids[1]!, "phone", "Disconnect", eventTime + 1);
      await publishPresence({ Events: [...events, sentinel] });
      await waitForPresence(uids[1]!, "phone", "Disconnect", eventTime + 1);
    });
    assert.equal(again.reads, 1);
    assert.ok(again.writes <= 1, `the repeat writes only the one changed user: ${JSON.stringify(again.byMethod)}`);
  });

  it("a token-holding device's Logout releases the token record too (pushTokens), as the callable does", async () => {
    const erin = await createUser();
    const token = await foregroundDevice(erin, cert.certificateId);
    assert.ok(await readTokenOwner(token));
    const t = Date.now();
    await publishPresence(presenceEvent(erin.uid, "phone", "Logout", t));
    await waitForPresence(erin.uid, "phone", "Logout", t);
    assert.equal((await adminDb().doc(`pushTokens/${tokenHash(token)}`).get()).exists, false);
  });
});
