// Every FCM answer the issue lists, injected at the fake FCM, with its documented reaction observed
// in the stored state (tokens, certificates) and the push log.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { tokenHash } from "../../functions/src/sessions/schemas.ts";
import { Timestamp } from "firebase-admin/firestore";
import { adminDb, callOk, clearFirestore, createUser, createUsers, publish, type TestUser } from "../helpers/emulators.ts";
import {
  PUSH_TOPIC,
  entryFor,
  killedDevice,
  msgKey,
  sendsTo,
  sendsToProject,
  waitForMessage,
} from "../helpers/fanout.ts";
import { registerCertificate, type TestCertificate } from "../helpers/certificates.ts";
import { fakeFcm } from "../helpers/fakeFcm.ts";
import { readDevice, readTokenOwner } from "../helpers/sessions.ts";

let admin: TestUser;
let cert: TestCertificate;
const sender = "sender-account";

before(async () => {
  await clearFirestore();
  admin = await createUser({ admin: true });
  cert = await registerCertificate(admin, "main");
});

after(async () => {
  await fakeFcm.clearErrors();
});

async function send(to: string[]): Promise<Awaited<ReturnType<typeof waitForMessage>>> {
  const key = msgKey();
  await publish(PUSH_TOPIC, { MsgKey: key, From_Account: sender, To_Account: to, MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: "hi" } }] });
  return waitForMessage(key);
}

async function assertUnbound(user: TestUser, token: string) {
  assert.equal(await readTokenOwner(token), null, "the pushTokens record is gone");
  const device = await readDevice(user.uid, "phone");
  assert.equal(device?.token, null, "the device no longer holds the token");
  assert.equal(device?.session, "logged-in", "the session itself is untouched");
}

async function assertBound(user: TestUser, token: string) {
  assert.equal((await readTokenOwner(token))?.uid, user.uid);
  assert.equal((await readDevice(user.uid, "phone"))?.token?.tokenHash, tokenHash(token));
}

async function certificateHealth(certificateId: number) {
  const { certificates } = await callOk<{ certificates: Array<{ certificateId: number; health: { state: string; reason: string | null } }> }>("listPushCertificates", {}, admin);
  return certificates.find((c) => c.certificateId === certificateId)?.health;
}

describe("tokens FCM refuses are unbound (only those), and the others' success is kept", () => {
  it("UNREGISTERED (404): unbound; the healthy device in the same batch is sent", async () => {
    const [gone, fine] = await createUsers(2);
    const goneToken = await killedDevice(gone!, cert.certificateId);
    const fineToken = await killedDevice(fine!, cert.certificateId);
    await fakeFcm.addErrorRule({ token: goneToken, preset: "unregistered" });
    const docs = await send([gone!.uid, fine!.uid]);
    assert.equal((await sendsTo(goneToken)).length, 1, "not retried");
    const e = entryFor(docs, gone!.uid);
    assert.equal(`${e.outcome}:${e.reason}`, "failed:token-unregistered");
    assert.equal(e.outcome === "failed" && e.error?.errorCode, "UNREGISTERED");
    assert.match(e.outcome === "failed" ? e.detail : "", /unbound/);
    await assertUnbound(gone!, goneToken);
    assert.equal(entryFor(docs, fine!.uid).outcome, "sent");
    assert.equal((await sendsTo(fineToken)).length, 1);
    await assertBound(fine!, fineToken);
    assert.deepEqual(docs[0]!.counts, { sent: 1, skipped: 0, failed: 1 });
  });

  it("INVALID_ARGUMENT naming the token: unbound; INVALID_ARGUMENT about the message: recorded, token kept", async () => {
    const [badToken, badMessage] = await createUsers(2);
    const badTokenToken = await killedDevice(badToken!, cert.certificateId);
    const badMessageToken = await killedDevice(badMessage!, cert.certificateId);
    await fakeFcm.addErrorRule({ token: badTokenToken, preset: "invalid-token" });
    await fakeFcm.addErrorRule({ token: badMessageToken, preset: "invalid-argument" });
    const docs = await send([badToken!.uid, badMessage!.uid]);
    const t = entryFor(docs, badToken!.uid);
    assert.equal(`${t.outcome}:${t.reason}`, "failed:token-invalid");
    await assertUnbound(badToken!, badTokenToken);
    const m = entryFor(docs, badMessage!.uid);
    assert.equal(`${m.outcome}:${m.reason}`, "failed:invalid-message");
    await assertBound(badMessage!, badMessageToken);
  });

  it("SENDER_ID_MISMATCH: unbound, and the log names the certificate mismatch", async () => {
    const user = await createUser();
    const token = await killedDevice(user, cert.certificateId);
    await fakeFcm.addErrorRule({ token, preset: "sender-id-mismatch" });
    const docs = await send([user.uid]);
    const e = entryFor(docs, user.uid);
    assert.equal(`${e.outcome}:${e.reason}`, "failed:sender-mismatch");
    const detail = e.outcome === "failed" ? e.detail : "";
    assert.ok(detail.includes(`push certificate ${cert.certificateId}`) && detail.includes(cert.sa.project_id), detail);
    await assertUnbound(user, token);
  });
});

describe("a certificate FCM refuses", () => {
  it("403: flagged unhealthy (visible in listPushCertificates), its other sends in the batch stop, other certificates go on", async () => {
    const refused = await registerCertificate(admin, "refused");
    const users = await createUsers(4);
    const refusedTokens = await Promise.all(users.slice(0, 3).map((u) => killedDevice(u, refused.certificateId)));
    const okToken = await killedDevice(users[3]!, cert.certificateId);
    const rule = await fakeFcm.addErrorRule({ projectId: refused.sa.project_id, httpStatus: 403, message: "The caller does not have permission" });
    try {
      const docs = await send(users.map((u) => u.uid));
      assert.equal((await sendsToProject(refused.sa.project_id)).length, 1, "one request, then the certificate's sends stop");
      const reasons = users.slice(0, 3).map((u) => entryFor(docs, u.uid).reason).sort();
      assert.deepEqual(reasons, ["certificate-auth", "certificate-unhealthy", "certificate-unhealthy"]);
      assert.equal(entryFor(docs, users[3]!.uid).outcome, "sent");
      assert.equal((await sendsTo(okToken)).length, 1);
      const health = await certificateHealth(refused.certificateId);
      assert.equal(health?.state, "unhealthy");
      assert.match(health?.reason ?? "", /403/);
      assert.equal((await certificateHealth(cert.certificateId))?.state, "healthy");
      for (const [i, token] of refusedTokens.entries()) await assertBound(users[i]!, token); // a certificate problem is not the token's
    } finally {
      await fakeFcm.removeErrorRule(rule.id);
    }
  });

  it("THIRD_PARTY_AUTH_ERROR for one token: that device fails, the certificate stays healthy, the other device is sent", async () => {
    const [apns, android] = await createUsers(2);
    const apnsToken = await killedDevice(apns!, cert.certificateId);
    const androidToken = await killedDevice(android!, cert.certificateId);
    const rule = await fakeFcm.addErrorRule({ token: apnsToken, preset: "third-party-auth" });
    try {
      const docs = await send([apns!.uid, android!.uid]);
      const e = entryFor(docs, apns!.uid);
      assert.equal(`${e.outcome}:${e.reason}`, "failed:third-party-auth");
      assert.equal(entryFor(docs, android!.uid).outcome, "sent");
      assert.equal((await sendsTo(androidToken)).filter((s) => s.answeredStatus === 200).length, 1);
      assert.equal((await certificateHealth(cert.certificateId))?.state, "healthy");
      await assertBound(apns!, apnsToken);
    } finally {
      await fakeFcm.removeErrorRule(rule.id);
    }
  });

  it("a certificate flagged unhealthy becomes healthy again at its next successful send", async () => {
    const flaky = await registerCertificate(admin, "flaky");
    const user = await createUser();
    await killedDevice(user, flaky.certificateId);
    await adminDb().doc(`pushCertificates/${flaky.certificateId}`).update({ health: { state: "unhealthy", reason: "FCM refused sends: 403", since: Timestamp.now() } });
    const docs = await send([user.uid]);
    assert.equal(entryFor(docs, user.uid).outcome, "sent");
    assert.equal((await certificateHealth(flaky.certificateId))?.state, "healthy");
  });
});

describe("transient failures are retried with backoff while the event lives", () => {
  it("503 with Retry-After, twice: retried after waiting, then sent", async () => {
    const user = await createUser();
    const token = await killedDevice(user, cert.certificateId);
    await fakeFcm.addErrorRule({ token, preset: "unavailable", times: 2, retryAfterSeconds: 1 });
    const docs = await send([user.uid]);
    const sends = await sendsTo(token);
    assert.deepEqual(sends.map((s) => s.answeredStatus), [503, 503, 200]);
    const gap = Date.parse(sends[1]!.receivedAt) - Date.parse(sends[0]!.receivedAt);
    assert.ok(gap >= 900, `Retry-After: 1 was honoured (waited ${gap} ms)`);
    const e = entryFor(docs, user.uid);
    assert.equal(e.outcome, "sent");
    assert.equal(e.outcome === "sent" && e.attempts, 3);
    assert.equal(e.outcome === "sent" && e.fcmName, sends[2]!.name);
  });

  it("a reset stream: retried, then sent", async () => {
    const user = await createUser();
    const token = await killedDevice(user, cert.certificateId);
    await fakeFcm.addErrorRule({ token, resetStream: true, times: 1 });
    const docs = await send([user.uid]);
    const e = entryFor(docs, user.uid);
    assert.equal(e.outcome, "sent");
    assert.equal(e.outcome === "sent" && e.attempts, 2);
  });

  it("429 QUOTA_EXCEEDED every time: retried (the project paused between tries) until the event's MsgLifeTime ends, then failed as expired; the token is kept", async () => {
    const own = await registerCertificate(admin, "always throttled");
    const user = await createUser();
    const token = await killedDevice(user, own.certificateId);
    const rule = await fakeFcm.addErrorRule({ projectId: own.sa.project_id, preset: "quota-exceeded", retryAfterSeconds: 2 });
    try {
      const key = msgKey();
      await publish(PUSH_TOPIC, { MsgKey: key, From_Account: sender, To_Account: [user.uid], MsgLifeTime: 5, MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: "hi" } }] });
      const docs = await waitForMessage(key);
      const sends = await sendsTo(token);
      assert.ok(sends.length >= 2 && sends.every((s) => s.answeredStatus === 429), `${sends.length} throttled requests`);
      for (let i = 1; i < sends.length; i++) {
        const gap = Date.parse(sends[i]!.receivedAt) - Date.parse(sends[i - 1]!.receivedAt);
        assert.ok(gap >= 1_900, `Retry-After: 2 honoured between tries (${gap} ms)`);
      }
      const e = entryFor(docs, user.uid);
      assert.equal(`${e.outcome}:${e.reason}`, "failed:expired");
      assert.equal(e.outcome === "failed" && e.attempts, sends.length);
      assert.equal(e.outcome === "failed" && e.error?.errorCode, "QUOTA_EXCEEDED");
      await assertBound(user, token);
    } finally {
      await fakeFcm.removeErrorRule(rule.id);
    }
  });

  it("a Retry-After beyond the event's MsgLifeTime: recorded as expired at once, not waited for", async () => {
    const own = await registerCertificate(admin, "long pause");
    const user = await createUser();
    const token = await killedDevice(user, own.certificateId);
    const rule = await fakeFcm.addErrorRule({ token, preset: "unavailable", retryAfterSeconds: 600 });
    try {
      const key = msgKey();
      await publish(PUSH_TOPIC, { MsgKey: key, From_Account: sender, To_Account: [user.uid], MsgLifeTime: 60, MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: "hi" } }] });
      const docs = await waitForMessage(key);
      assert.equal((await sendsTo(token)).length, 1);
      const e = entryFor(docs, user.uid);
      assert.equal(e.reason, "expired");
      assert.match(e.outcome === "failed" ? e.detail : "", /503/);
    } finally {
      await fakeFcm.removeErrorRule(rule.id);
    }
  });
});

describe("two certificates", () => {
  it("each device's request carries its own certificate's project and access token", async () => {
    const second = await registerCertificate(admin, "second app");
    const [a, b] = await createUsers(2);
    const aToken = await killedDevice(a!, cert.certificateId);
    const bToken = await killedDevice(b!, second.certificateId);
    const docs = await send([a!.uid, b!.uid]);
    const [aSend] = await sendsTo(aToken);
    const [bSend] = await sendsTo(bToken);
    assert.equal(aSend!.projectId, cert.sa.project_id);
    assert.equal(aSend!.clientEmail, cert.sa.client_email);
    assert.equal(bSend!.projectId, second.sa.project_id);
    assert.equal(bSend!.clientEmail, second.sa.client_email);
    assert.notEqual(aSend!.accessToken, bSend!.accessToken);
    assert.equal(entryFor(docs, a!.uid).outcome === "sent" && (entryFor(docs, a!.uid) as { certificateId: number }).certificateId, cert.certificateId);
    assert.equal(entryFor(docs, b!.uid).outcome === "sent" && (entryFor(docs, b!.uid) as { certificateId: number }).certificateId, second.certificateId);
  });
});
