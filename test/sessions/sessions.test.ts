// The session state machine end to end: callables over HTTP with Auth-emulator ID tokens, stored
// state read back from the Firestore emulator, eligibility from the same predicate the fan-out uses
// (evaluated at chosen instants instead of waiting for leases to run out).
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { FieldPath, Timestamp } from "firebase-admin/firestore";
import { adminDb, call, callOk, clearFirestore, createUser, createUsers, type TestUser } from "../helpers/emulators.ts";
import {
  assertSessionInvariants,
  eligibilityAt,
  fakeFcmToken,
  justAfterHeartbeat,
  readDevice,
  readTokenOwner,
} from "../helpers/sessions.ts";
import { registerCertificate } from "../helpers/certificates.ts";
import { tokenHash, type Device } from "../../functions/src/sessions/schemas.ts";

let certificateId: number;

before(async () => {
  await clearFirestore();
  certificateId = (await registerCertificate(await createUser({ admin: true }))).certificateId;
});

async function device(user: TestUser, deviceId: string): Promise<Device> {
  const d = await readDevice(user.uid, deviceId);
  assert.ok(d, `${deviceId} is stored`);
  return d;
}

async function loginWithToken(user: TestUser, deviceId: string, token = fakeFcmToken()) {
  const login = await callOk("login", { deviceId, platform: "android" }, user);
  await callOk("setOfflinePushToken", { deviceId, certificateId, token }, user);
  return { login, token };
}

function assertFailedPrecondition(res: Awaited<ReturnType<typeof call>>, messagePart: string) {
  assert.equal(res.error?.status, "FAILED_PRECONDITION", JSON.stringify(res));
  assert.ok(res.error?.message.includes(messagePart), `"${res.error?.message}" mentions "${messagePart}"`);
}

describe("login -> token -> background -> foreground -> lease", () => {
  let user: TestUser;
  let token: string;
  let leaseMs: number;
  before(async () => {
    user = await createUser();
  });

  it("login starts a logged-in foreground session without a token: not eligible (no-token)", async () => {
    const res = await callOk("login", { deviceId: "phone-1", platform: "android" }, user);
    assert.equal(res.deviceId, "phone-1");
    assert.match(res.sessionId, /^[0-9a-f-]{36}$/);
    assert.deepEqual(res.kickedDeviceIds, []);
    assert.equal(res.resumed, false);
    const d = await device(user, "phone-1");
    assert.equal(d.session, "logged-in");
    assert.equal(d.sessionId, res.sessionId);
    assert.equal(d.platform, "android");
    assert.equal(d.appState, "foreground");
    assert.equal(d.token, null);
    assert.equal(d.endedAt, null);
    assert.equal(d.loggedInAt.toMillis(), d.lastHeartbeatAt.toMillis());
    assert.ok(Math.abs(d.loggedInAt.toMillis() - Date.now()) < 60_000, "a server timestamp of now");
    assert.equal(pick(await eligibilityAt(d, justAfterHeartbeat(d))), "no-token");
  });

  it("setOfflinePushToken binds the token to the session and records its one owner", async () => {
    token = fakeFcmToken();
    const res = await callOk("setOfflinePushToken", { deviceId: "phone-1", certificateId, token }, user);
    assert.deepEqual(res, { deviceId: "phone-1", certificateId, status: "bound" });
    const d = await device(user, "phone-1");
    assert.equal(d.token?.token, token);
    assert.equal(d.token?.tokenHash, tokenHash(token));
    assert.equal(d.token?.certificateId, certificateId);
    const owner = await readTokenOwner(token);
    assert.deepEqual({ uid: owner?.uid, deviceId: owner?.deviceId, certificateId: owner?.certificateId }, { uid: user.uid, deviceId: "phone-1", certificateId });
    // Still in the foreground and connected: the message goes over the IM connection.
    assert.equal(pick(await eligibilityAt(d, justAfterHeartbeat(d))), "foreground");
  });

  it("doBackground -> eligible, with the unread count stored", async () => {
    assert.deepEqual(await callOk("doBackground", { deviceId: "phone-1", unreadCount: 4 }, user), { deviceId: "phone-1", appState: "background" });
    const d = await device(user, "phone-1");
    assert.equal(d.appState, "background");
    assert.equal(d.unreadCount, 4);
    assert.deepEqual(await eligibilityAt(d, justAfterHeartbeat(d)), { eligible: true });
  });

  it("doForeground -> not eligible (foreground)", async () => {
    await callOk("doForeground", { deviceId: "phone-1" }, user);
    const d = await device(user, "phone-1");
    assert.equal(d.appState, "foreground");
    assert.equal(d.unreadCount, null);
    assert.equal(pick(await eligibilityAt(d, justAfterHeartbeat(d))), "foreground");
  });

  it("a heartbeat inside the first half of the lease writes nothing; one after it renews the lease with a single write", async () => {
    const fresh = await device(user, "phone-1");
    const timesFresh = await updateTimes();
    const skipped = await callOk("heartbeat", { deviceId: "phone-1" }, user);
    assert.deepEqual([skipped.recorded, skipped.intervalSeconds], [false, 40], "just after doForeground: nothing to renew");
    assert.deepEqual(await updateTimes(), timesFresh, "no document written");
    assert.deepEqual(await device(user, "phone-1"), fresh);

    // As if the last stored beat were 61 s old: past half the lease, the beat is written.
    await adminDb().doc(`users/${user.uid}`).update(new FieldPath("devices", "phone-1", "lastHeartbeatAt"), Timestamp.fromMillis(Date.now() - 61_000));
    const before = await device(user, "phone-1");
    const timesBefore = await updateTimes();
    const res = await callOk("heartbeat", { deviceId: "phone-1" }, user);
    assert.equal(res.deviceId, "phone-1");
    assert.equal(res.recorded, true);
    leaseMs = res.leaseSeconds * 1000;
    assert.equal(leaseMs, 120_000, "the default lease is 2 minutes");
    const after = await device(user, "phone-1");
    assert.ok(after.lastHeartbeatAt.toMillis() > before.lastHeartbeatAt.toMillis());
    assert.deepEqual({ ...after, lastHeartbeatAt: null }, { ...before, lastHeartbeatAt: null }, "nothing but the heartbeat changed");
    const timesAfter = await updateTimes();
    const changed = [...timesAfter].filter(([path, t]) => timesBefore.get(path) !== t).map(([path]) => path);
    assert.deepEqual(changed, [`users/${user.uid}`], "exactly one document written");
  });

  it("foreground with the heartbeat older than the lease counts as killed -> eligible", async () => {
    const d = await device(user, "phone-1");
    const beat = d.lastHeartbeatAt.toMillis();
    assert.equal(pick(await eligibilityAt(d, new Date(beat + leaseMs), leaseMs)), "foreground", "still within the lease at its end");
    assert.deepEqual(await eligibilityAt(d, new Date(beat + leaseMs + 1000), leaseMs), { eligible: true });
  });

  it("re-reporting the same token only refreshes it", async () => {
    const before = await device(user, "phone-1");
    const ownerBefore = await readTokenOwner(token);
    const res = await callOk("setOfflinePushToken", { deviceId: "phone-1", certificateId, token }, user);
    assert.equal(res.status, "refreshed");
    const after = await device(user, "phone-1");
    assert.equal(after.token?.token, token);
    assert.equal(after.token?.boundAt.toMillis(), before.token?.boundAt.toMillis());
    assert.ok(after.token!.refreshedAt.toMillis() > before.token!.refreshedAt.toMillis());
    assert.equal(after.sessionId, before.sessionId);
    const ownerAfter = await readTokenOwner(token);
    assert.equal(ownerAfter?.boundAt.toMillis(), ownerBefore?.boundAt.toMillis());
    assert.ok(ownerAfter!.refreshedAt.toMillis() > ownerBefore!.refreshedAt.toMillis());
  });

  it("a new token replaces the old one, whose ownership record goes", async () => {
    const newToken = fakeFcmToken();
    assert.equal((await callOk("setOfflinePushToken", { deviceId: "phone-1", certificateId, token: newToken }, user)).status, "bound");
    assert.equal((await device(user, "phone-1")).token?.token, newToken);
    assert.equal(await readTokenOwner(token), null);
    assert.equal((await readTokenOwner(newToken))?.uid, user.uid);
    token = newToken;
  });

  it("login again on the logged-in device resumes: same session, token kept, back in the foreground", async () => {
    await callOk("doBackground", { deviceId: "phone-1" }, user);
    const before = await device(user, "phone-1");
    assert.equal(before.unreadCount, null, "unreadCount is optional");
    const res = await callOk("login", { deviceId: "phone-1", platform: "android" }, user);
    assert.equal(res.resumed, true);
    assert.equal(res.sessionId, before.sessionId);
    const after = await device(user, "phone-1");
    assert.equal(after.token?.token, token);
    assert.equal(after.appState, "foreground");
    assert.ok(after.lastHeartbeatAt.toMillis() > before.lastHeartbeatAt.toMillis());
    assert.equal(after.loggedInAt.toMillis(), before.loggedInAt.toMillis());
    assert.equal((await readTokenOwner(token))?.deviceId, "phone-1");
  });

  it("logout ends the session and unbinds the token: not eligible (logged-out)", async () => {
    await callOk("doBackground", { deviceId: "phone-1" }, user);
    const res = await callOk("logout", { deviceId: "phone-1" }, user);
    assert.deepEqual(res, { deviceId: "phone-1", session: "logged-out", ended: true });
    const d = await device(user, "phone-1");
    assert.equal(d.session, "logged-out");
    assert.equal(d.token, null);
    assert.ok(d.endedAt);
    assert.equal(await readTokenOwner(token), null);
    const later = new Date(d.endedAt.toMillis() + 10 * 60_000);
    assert.equal(pick(await eligibilityAt(d, later)), "logged-out");
    await assertSessionInvariants();
  });

  it("after logout: app-state calls and tokens -> failed-precondition; logout again is a no-op", async () => {
    for (const [name, data] of [
      ["heartbeat", { deviceId: "phone-1" }],
      ["doBackground", { deviceId: "phone-1" }],
      ["doForeground", { deviceId: "phone-1" }],
      ["setOfflinePushToken", { deviceId: "phone-1", certificateId, token }],
    ] as const) {
      const res = await call(name, data, user);
      assertFailedPrecondition(res, "device phone-1 is logged out");
      assert.equal(res.error?.details?.session, "logged-out");
    }
    assert.equal(await readTokenOwner(token), null, "the refused token left no trace");
    assert.deepEqual(await callOk("logout", { deviceId: "phone-1" }, user), { deviceId: "phone-1", session: "logged-out", ended: false });
  });

  it("login on a logged-out device starts a new session with no token", async () => {
    const old = await device(user, "phone-1");
    const res = await callOk("login", { deviceId: "phone-1", platform: "android" }, user);
    assert.equal(res.resumed, false);
    assert.notEqual(res.sessionId, old.sessionId);
    const d = await device(user, "phone-1");
    assert.equal(d.session, "logged-in");
    assert.equal(d.endedAt, null);
    assert.equal(d.token, null);
    assert.ok(d.loggedInAt.toMillis() > old.loggedInAt.toMillis());
  });
});

describe("login on a second Android device kicks the first", () => {
  let user: TestUser;
  let tokenA: string;
  before(async () => {
    user = await createUser();
    ({ token: tokenA } = await loginWithToken(user, "phone-a"));
    await callOk("doBackground", { deviceId: "phone-a" }, user);
  });

  it("the first device becomes kicked, loses its token and gets nothing", async () => {
    assert.deepEqual(await eligibilityAt(await device(user, "phone-a"), new Date()), { eligible: true }, "eligible before the second login");
    const res = await callOk("login", { deviceId: "phone-b", platform: "android" }, user);
    assert.deepEqual(res.kickedDeviceIds, ["phone-a"]);
    const a = await device(user, "phone-a");
    assert.equal(a.session, "kicked");
    assert.equal(a.kickedByDeviceId, "phone-b");
    assert.ok(a.endedAt);
    assert.equal(a.token, null);
    assert.equal(await readTokenOwner(tokenA), null);
    const result = await eligibilityAt(a, new Date(a.endedAt.toMillis() + 5 * 60_000));
    assert.equal(pick(result), "kicked");
    assert.ok(!result.eligible && result.detail.includes("phone-b"));
    const b = await device(user, "phone-b");
    assert.equal(b.session, "logged-in");
    assert.equal(b.token, null);
    await assertSessionInvariants();
  });

  it("the kicked device is told why when it calls in", async () => {
    for (const [name, data] of [
      ["heartbeat", { deviceId: "phone-a" }],
      ["doBackground", { deviceId: "phone-a", unreadCount: 1 }],
      ["doForeground", { deviceId: "phone-a" }],
      ["setOfflinePushToken", { deviceId: "phone-a", certificateId, token: tokenA }],
    ] as const) {
      const res = await call(name, data, user);
      assertFailedPrecondition(res, "device phone-a was kicked offline by a login on phone-b");
      assert.deepEqual([res.error?.details?.session, res.error?.details?.kickedByDeviceId], ["kicked", "phone-b"]);
    }
    assert.equal(await readTokenOwner(tokenA), null);
    assert.deepEqual(await callOk("logout", { deviceId: "phone-a" }, user), { deviceId: "phone-a", session: "kicked", ended: false });
    assert.equal((await device(user, "phone-a")).session, "kicked", "logout does not rewrite how the session ended");
  });

  it("logging in again on the kicked device takes over in turn, with a new session", async () => {
    const tokenB = fakeFcmToken();
    await callOk("setOfflinePushToken", { deviceId: "phone-b", certificateId, token: tokenB }, user);
    const old = await device(user, "phone-a");
    const res = await callOk("login", { deviceId: "phone-a", platform: "android" }, user);
    assert.deepEqual(res.kickedDeviceIds, ["phone-b"]);
    assert.notEqual(res.sessionId, old.sessionId);
    const a = await device(user, "phone-a");
    assert.deepEqual([a.session, a.kickedByDeviceId, a.endedAt, a.token], ["logged-in", null, null, null]);
    const b = await device(user, "phone-b");
    assert.deepEqual([b.session, b.kickedByDeviceId, b.token], ["kicked", "phone-a", null]);
    assert.equal(await readTokenOwner(tokenB), null);
    await assertSessionInvariants();
  });
});

describe("a token has one owner", () => {
  it("user A's token re-registered by user B: A has no token, B has it", async () => {
    const [a, b] = await createUsers(2);
    const { token } = await loginWithToken(a!, "shared-phone");
    await callOk("doBackground", { deviceId: "shared-phone" }, a!);
    // Same phone, new account: B logs in on it (its own deviceId namespace) and reports the same token.
    await callOk("login", { deviceId: "shared-phone", platform: "android" }, b!);
    assert.equal((await callOk("setOfflinePushToken", { deviceId: "shared-phone", certificateId, token }, b!)).status, "bound");
    await callOk("doBackground", { deviceId: "shared-phone" }, b!);

    const devA = await device(a!, "shared-phone");
    assert.equal(devA.session, "logged-in", "A's session is untouched: only the token moved");
    assert.equal(devA.token, null);
    assert.equal(pick(await eligibilityAt(devA, justAfterHeartbeat(devA))), "no-token");
    const devB = await device(b!, "shared-phone");
    assert.equal(devB.token?.token, token);
    assert.deepEqual(await eligibilityAt(devB, justAfterHeartbeat(devB)), { eligible: true });
    const owner = await readTokenOwner(token);
    assert.deepEqual([owner?.uid, owner?.deviceId], [b!.uid, "shared-phone"]);
    await assertSessionInvariants();

    // And back: A re-reports it, B loses it.
    await callOk("setOfflinePushToken", { deviceId: "shared-phone", certificateId, token }, a!);
    assert.equal((await device(b!, "shared-phone")).token, null);
    assert.equal((await readTokenOwner(token))?.uid, a!.uid);
    await assertSessionInvariants();
  });

  it("a token moving between users' differently named devices leaves the old device without it", async () => {
    const [a, b] = await createUsers(2);
    const { token } = await loginWithToken(a!, "install-1");
    await loginWithToken(b!, "install-2", token);
    assert.equal((await device(a!, "install-1")).token, null);
    assert.equal((await device(b!, "install-2")).token?.token, token);
    await assertSessionInvariants();
  });
});

describe("preconditions", () => {
  it("token before login -> failed-precondition, nothing stored", async () => {
    const user = await createUser();
    const token = fakeFcmToken();
    const res = await call("setOfflinePushToken", { deviceId: "new-phone", certificateId, token }, user);
    assertFailedPrecondition(res, "device new-phone has no session: call login first");
    assert.equal(res.error?.details?.session, "none");
    assert.equal(await readTokenOwner(token), null);
    assert.equal((await adminDb().doc(`users/${user.uid}`).get()).exists, false);
    for (const name of ["heartbeat", "doBackground", "doForeground", "logout"]) {
      assertFailedPrecondition(await call(name, { deviceId: "new-phone" }, user), "has no session");
    }
  });

  it("unknown certificate -> not-found, nothing stored", async () => {
    const user = await createUser();
    await callOk("login", { deviceId: "p", platform: "android" }, user);
    const token = fakeFcmToken();
    const res = await call("setOfflinePushToken", { deviceId: "p", certificateId: certificateId + 1000, token }, user);
    assert.equal(res.error?.status, "NOT_FOUND");
    assert.ok(res.error?.message.includes("certificateId"));
    assert.equal(await readTokenOwner(token), null);
    assert.equal((await device(user, "p")).token, null);
  });

  it("device IDs with dots and colons are map keys, not field paths", async () => {
    const user = await createUser();
    const deviceId = "pixel.8:a-b_c";
    const { token } = await loginWithToken(user, deviceId);
    await callOk("heartbeat", { deviceId }, user);
    await callOk("doBackground", { deviceId, unreadCount: 0 }, user);
    const raw = (await adminDb().doc(`users/${user.uid}`).get()).data()!;
    assert.deepEqual(Object.keys(raw.devices), [deviceId]);
    const d = await device(user, deviceId);
    assert.deepEqual([d.appState, d.unreadCount, d.token?.token], ["background", 0, token]);
    assert.equal((await readTokenOwner(token))?.deviceId, deviceId);
    await callOk("logout", { deviceId }, user);
    assert.equal(await readTokenOwner(token), null);
  });
});

function pick(result: { eligible: boolean; reason?: string }): string {
  return result.eligible ? "eligible" : (result.reason as string);
}

/** Update times of every session-related document, to count what a call wrote. */
async function updateTimes(): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  for (const name of ["users", "pushTokens", "pushCertificates"]) {
    for (const doc of (await adminDb().collection(name).get()).docs) result.set(doc.ref.path, doc.updateTime.toDate().toISOString() + doc.updateTime.nanoseconds);
  }
  return result;
}

describe("device IDs that name Object.prototype's members", () => {
  it("\"constructor\", \"toString\", \"hasOwnProperty\": INVALID_ARGUMENT naming deviceId, nothing written (found by the fuzz suite: they answered INTERNAL)", async () => {
    const user = await createUser();
    for (const deviceId of ["constructor", "toString", "hasOwnProperty", "valueOf"]) {
      for (const [name, data] of [
        ["login", { deviceId, platform: "android" }],
        ["setOfflinePushToken", { deviceId, certificateId, token: fakeFcmToken() }],
        ["heartbeat", { deviceId }],
      ] as const) {
        const res = await call(name, data, user);
        assert.equal(res.error?.status, "INVALID_ARGUMENT", `${name} ${deviceId}: ${JSON.stringify(res.error)}`);
        assert.equal(res.error?.details?.field, "deviceId");
      }
    }
    assert.equal((await adminDb().doc(`users/${user.uid}`).get()).exists, false);
  });
});
