// "bob got no notification for msg-123": for each cause the issue lists, the operator finds it with
// one call (diagnosePush for the user, traceMessage for the message), with its explanation.
// Everything runs through the real pipeline: callables over HTTP, events published to the Pub/Sub
// emulator, FCM answers from the fake FCM.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { FieldPath, Timestamp } from "firebase-admin/firestore";
import { adminDb, callOk, clearFirestore, createUser, publish, type TestUser } from "../helpers/emulators.ts";
import { fakeFcm } from "../helpers/fakeFcm.ts";
import { PUSH_BATCH_TOPIC, PUSH_TOPIC, foregroundDevice, killedDevice, msgKey } from "../helpers/fanout.ts";
import { registerCertificate, type TestCertificate } from "../helpers/certificates.ts";
import { diagnose, textBody, trace, traced, tracedDevice } from "./helpers.ts";

let admin: TestUser;
let cert: TestCertificate;
let alice: TestUser;

before(async () => {
  await clearFirestore();
  admin = await createUser({ admin: true });
  cert = await registerCertificate(admin);
  alice = await createUser();
});

const message = (to: string, extra: Record<string, unknown> = {}) => ({ MsgKey: msgKey(), From_Account: alice.uid, To_Account: to, MsgBody: textBody("hi"), ...extra });

/** Publishes the event and returns the trace once the push log is complete. */
async function publishAndTrace(event: { MsgKey: string }) {
  await publish(PUSH_TOPIC, event);
  return (await traced(admin, event.MsgKey)).trace;
}

describe("why did bob get no push", () => {
  it("certificate deleted: the device's token names a certificate that no longer exists", async () => {
    const doomed = await registerCertificate(admin, "to be deleted");
    const bob = await createUser();
    await killedDevice(bob, doomed.certificateId);
    await callOk("deletePushCertificate", { certificateId: doomed.certificateId }, admin);

    const d = await diagnose(admin, bob.uid);
    assert.equal(d.wouldPushNow, false);
    const [device] = d.devices;
    assert.equal(device!.eligibility.reason, "certificate-missing");
    assert.equal(device!.eligibility.explanation?.title, "Certificate deleted");
    assert.equal(device!.token?.certificate.exists, false);
    assert.match(d.summary, new RegExp(`push certificate ${doomed.certificateId}, which no longer exists`));

    const t = await publishAndTrace(message(bob.uid));
    const traced = tracedDevice(t, bob.uid, "phone");
    assert.equal(traced.outcome, "skipped");
    assert.equal(traced.reason, "certificate-missing");
    assert.ok(traced.explanation?.action.includes("registerPushCertificate"));
  });

  it("certificate refused by FCM: the send fails, the certificate is flagged, and both tools say so", async () => {
    const refused = await registerCertificate(admin, "to be refused");
    const bob = await createUser();
    await killedDevice(bob, refused.certificateId);
    await fakeFcm.revoke(refused.sa.client_email);

    const t = await publishAndTrace(message(bob.uid));
    const traced = tracedDevice(t, bob.uid, "phone");
    assert.equal(traced.outcome, "failed");
    assert.equal(traced.reason, "certificate-auth");
    assert.equal(traced.explanation?.title, "Certificate refused by FCM");
    assert.ok(traced.fcmErrorExplanation, "FCM's (or Google's token endpoint's) error code is explained");
    assert.ok(t.explanations.some((e) => e.code === "certificate-auth"));

    const d = await diagnose(admin, bob.uid);
    const [device] = d.devices;
    assert.equal(device!.token?.certificate.health?.state, "unhealthy");
    assert.match(d.summary, new RegExp(`FCM refused its push certificate ${refused.certificateId}`));
    assert.equal(d.recent[0]?.devices[0]?.reason, "certificate-auth");
  });

  it("token never reported: logged in, in the background, but no setOfflinePushToken", async () => {
    const bob = await createUser();
    await callOk("login", { deviceId: "phone", platform: "android" }, bob);
    await callOk("doBackground", { deviceId: "phone" }, bob);

    const d = await diagnose(admin, bob.uid);
    assert.equal(d.devices[0]!.eligibility.reason, "no-token");
    assert.equal(d.devices[0]!.token, null);
    assert.match(d.summary, /has not reported a push token/);

    const t = await publishAndTrace(message(bob.uid));
    assert.equal(tracedDevice(t, bob.uid, "phone").reason, "no-token");
  });

  it("token stale: not re-reported for longer than TOKEN_STALE_DAYS", async () => {
    const bob = await createUser();
    await killedDevice(bob, cert.certificateId);
    const longAgo = Timestamp.fromMillis(Date.now() - 45 * 86_400_000);
    await adminDb().doc(`users/${bob.uid}`).update(new FieldPath("devices", "phone", "token", "refreshedAt"), longAgo);

    const d = await diagnose(admin, bob.uid);
    const device = d.devices[0]!;
    assert.equal(device.eligibility.reason, "token-stale");
    assert.equal(device.token?.stale, true);
    assert.ok(device.token!.ageSeconds >= 45 * 86_400 - 5);
    assert.match(device.token!.hashPrefix, /^[0-9a-f]{12}$/, "only a hash prefix, never the token");
    assert.match(d.summary, /45 days ago, so it counts as stale/);

    const t = await publishAndTrace(message(bob.uid));
    assert.equal(tracedDevice(t, bob.uid, "phone").reason, "token-stale");
  });

  it("logged out", async () => {
    const bob = await createUser();
    await killedDevice(bob, cert.certificateId);
    await callOk("logout", { deviceId: "phone" }, bob);

    const d = await diagnose(admin, bob.uid);
    assert.equal(d.devices[0]!.session, "logged-out");
    assert.equal(d.devices[0]!.eligibility.reason, "logged-out");
    assert.match(d.summary, /phone logged out \d+ s ago/);

    const t = await publishAndTrace(message(bob.uid));
    assert.equal(tracedDevice(t, bob.uid, "phone").reason, "logged-out");
  });

  it("kicked, and by which device (which has not reported a token)", async () => {
    const bob = await createUser();
    await killedDevice(bob, cert.certificateId, "pixel-8");
    await callOk("login", { deviceId: "pixel-9", platform: "android" }, bob);
    await callOk("doBackground", { deviceId: "pixel-9" }, bob);

    const d = await diagnose(admin, bob.uid);
    const kicked = d.devices.find((x) => x.deviceId === "pixel-8")!;
    assert.equal(kicked.session, "kicked");
    assert.equal(kicked.kickedByDeviceId, "pixel-9");
    assert.equal(kicked.eligibility.reason, "kicked");
    assert.match(d.summary, /^no device of .* would get a push: pixel-8 was kicked \d+ s ago by a login on pixel-9, which has not reported a token$/);

    const t = await publishAndTrace(message(bob.uid));
    const traced = tracedDevice(t, bob.uid, "pixel-8");
    assert.equal(traced.reason, "kicked");
    assert.match(traced.detail, /by a login on device pixel-9/);
    assert.equal(tracedDevice(t, bob.uid, "pixel-9").reason, "no-token");
    assert.deepEqual(t.counts.byReason, { kicked: 1, "no-token": 1 });
  });

  it("foreground: connected, so the message went over the connection", async () => {
    const bob = await createUser();
    await foregroundDevice(bob, cert.certificateId);

    const d = await diagnose(admin, bob.uid);
    assert.equal(d.devices[0]!.eligibility.reason, "foreground");
    assert.equal(d.devices[0]!.heartbeatWithinLease, true);
    assert.match(d.summary, /in the foreground and connected/);

    const t = await publishAndTrace(message(bob.uid));
    assert.equal(tracedDevice(t, bob.uid, "phone").reason, "foreground");
    assert.match(t.summary, /0 sent, 1 skipped \(foreground 1\)/);
  });

  it("PushFlag 1: the sender asked for no push (found in the trace and in the user's recent messages)", async () => {
    const bob = await createUser();
    await killedDevice(bob, cert.certificateId);
    const event = message(bob.uid, { OfflinePushInfo: { PushFlag: 1 } });
    const t = await publishAndTrace(event);
    const traced = tracedDevice(t, bob.uid, null);
    assert.equal(traced.reason, "push-disabled");
    assert.equal(traced.explanation?.title, "PushFlag 1 (no push)");

    const d = await diagnose(admin, bob.uid);
    assert.equal(d.wouldPushNow, true, "the device itself is fine");
    assert.equal(d.recent[0]?.msgKey, event.MsgKey);
    assert.equal(d.recent[0]?.devices[0]?.reason, "push-disabled");
  });

  it("a custom message without Desc", async () => {
    const bob = await createUser();
    await killedDevice(bob, cert.certificateId);
    const t = await publishAndTrace(message(bob.uid, { MsgBody: [{ MsgType: "TIMCustomElem", MsgContent: { Data: "{\"type\":\"typing\"}" } }] }));
    const traced = tracedDevice(t, bob.uid, null);
    assert.equal(traced.reason, "custom-without-desc");
    assert.match(traced.explanation!.action, /Desc/);
  });

  it("event too old: published longer than MAX_EVENT_AGE_SECONDS before it was processed", async () => {
    const bob = await createUser();
    await killedDevice(bob, cert.certificateId);
    const key = msgKey("old");
    const publishTime = new Date(Date.now() - 2 * 3_600_000).toISOString();
    // A batch of a backlogged event, as the fan-out itself publishes it: its publishTime is the event's.
    await publish(PUSH_BATCH_TOPIC, {
      v: 1,
      content: { MsgKey: key, From_Account: alice.uid, MsgBody: textBody("late") },
      batchIndex: 0,
      batchCount: 1,
      uids: [bob.uid],
      publishTime,
      eventId: "backlogged-event",
    });
    const { trace: t } = await traced(admin, key);
    const traced_ = tracedDevice(t, bob.uid, null);
    assert.equal(traced_.reason, "event-too-old");
    assert.equal(t.publishedAt, publishTime);
    assert.deepEqual(traced_.stages.map((s) => s.stage), ["published", "received", "decided"]);
    assert.match(traced_.explanation!.meaning, /MAX_EVENT_AGE_SECONDS/);
  });

  it("FCM UNREGISTERED: the send failed, the token was removed, and the user's diagnosis says why it has none", async () => {
    const bob = await createUser();
    const token = await killedDevice(bob, cert.certificateId);
    await fakeFcm.addErrorRule({ token, preset: "unregistered" });

    const t = await publishAndTrace(message(bob.uid));
    const traced = tracedDevice(t, bob.uid, "phone");
    assert.equal(traced.outcome, "failed");
    assert.equal(traced.reason, "token-unregistered");
    assert.equal(traced.error?.errorCode, "UNREGISTERED");
    assert.equal(traced.fcmErrorExplanation?.code, "UNREGISTERED");
    assert.deepEqual(t.counts.byErrorCode, { UNREGISTERED: 1 });
    assert.match(t.summary, /1 failed \(UNREGISTERED 1\)/);

    const d = await diagnose(admin, bob.uid);
    assert.equal(d.devices[0]!.eligibility.reason, "no-token");
    assert.match(d.summary, /FCM answered UNREGISTERED to the push at .*so its token was removed/);
  });

  it("a user who never logged in, and a message nobody published", async () => {
    const d = await diagnose(admin, (await createUser()).uid);
    assert.deepEqual(d.devices, []);
    assert.match(d.summary, /has never logged in on any device/);
    const t = await trace(admin, msgKey("never"));
    assert.equal(t.found, false);
    assert.match(t.summary, /^nothing is recorded for never-/);
  });
});
