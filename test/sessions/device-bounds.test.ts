// The device map of users/{uid} stays bounded: at most MAX_ENDED_DEVICES ended sessions (the oldest
// are dropped at login) and at most MAX_DEVICES devices in all; more logged-in devices than that is
// refused. Through the login callable under the deployed default policy, and through the session
// store directly for the multi-device policy (the emulated functions run the default).
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { FieldPath, Timestamp } from "firebase-admin/firestore";
import { DomainError } from "../../functions/src/common/errors.ts";
import { MAX_DEVICES, MAX_ENDED_DEVICES } from "../../functions/src/sessions/policy.ts";
import { tokenHash } from "../../functions/src/sessions/schemas.ts";
import * as store from "../../functions/src/sessions/store.ts";
import { adminDb, callOk, clearFirestore, createUser } from "../helpers/emulators.ts";
import { assertSessionInvariants, eligibilityAt, fakeFcmToken, readDevices, readTokenOwner } from "../helpers/sessions.ts";
import { registerCertificate } from "../helpers/certificates.ts";

let certificateId: number;

before(async () => {
  await clearFirestore();
  certificateId = (await registerCertificate(await createUser({ admin: true }))).certificateId;
});

const ids = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(2, "0")}`);

describe("ended devices are pruned at login (default policy, through the callables)", () => {
  it("15 logins on new deviceIds leave 1 logged-in + the 10 most recently ended devices, no stale tokens", async () => {
    assert.equal(MAX_ENDED_DEVICES, 10);
    const user = await createUser();
    const deviceIds = ids(15, "install");
    const tokens: string[] = [];
    for (const deviceId of deviceIds) {
      await callOk("login", { deviceId, platform: "android" }, user);
      const token = fakeFcmToken();
      tokens.push(token);
      await callOk("setOfflinePushToken", { deviceId, certificateId, token }, user);
      await callOk("doBackground", { deviceId }, user);
    }

    const devices = await readDevices(user.uid);
    const last = deviceIds[14] as string;
    assert.deepEqual(Object.keys(devices).sort(), deviceIds.slice(4), "the 4 oldest ended devices are dropped, the newest 10 kept");
    assert.equal(devices[last]?.session, "logged-in");
    const ended = deviceIds.slice(4, 14).map((id) => devices[id]);
    for (const d of ended) {
      assert.equal(d?.session, "kicked");
      assert.equal(d?.token, null);
      assert.ok(d?.endedAt, "an ended device has an end time");
    }
    // Each was kicked by the next login, in order: the kept ones are the 10 that ended last.
    assert.deepEqual(ended.map((d) => d?.kickedByDeviceId), deviceIds.slice(5, 15));
    const endTimes = ended.map((d) => d?.endedAt?.toMillis() ?? 0);
    assert.deepEqual(endTimes, [...endTimes].sort((x, y) => x - y));

    // Only the live device's token is bound; every earlier token was released when its device was kicked.
    for (const [i, token] of tokens.entries()) {
      const owner = await readTokenOwner(token);
      if (i === 14) assert.deepEqual([owner?.uid, owner?.deviceId], [user.uid, last]);
      else assert.equal(owner, null, `token of ${deviceIds[i]} is released`);
    }
    const live = devices[last];
    assert.equal(live?.token?.tokenHash, tokenHash(tokens[14] as string));
    assert.deepEqual(await eligibilityAt(live, new Date((live?.lastHeartbeatAt.toMillis() ?? 0) + 1000)), { eligible: true });
    for (const d of ended) assert.equal((await eligibilityAt(d, new Date())).eligible, false);
    const { tokens: tokenDocs } = await assertSessionInvariants();
    assert.ok(tokenDocs >= 1);
  });

  it("the oldest ended device goes first, whether logged out or kicked; a dropped deviceId can log in again", async () => {
    const user = await createUser();
    // a-00 logs out first (the oldest end), then a-01..a-11 each kick the one before.
    await callOk("login", { deviceId: "a-00", platform: "android" }, user);
    await callOk("logout", { deviceId: "a-00" }, user);
    for (const deviceId of ids(12, "a").slice(1)) await callOk("login", { deviceId, platform: "android" }, user);
    let devices = await readDevices(user.uid);
    // Ended: a-00 (logged out) and a-01..a-10 (kicked) = 11 > 10: a-00 is dropped.
    assert.deepEqual(Object.keys(devices).sort(), ids(12, "a").slice(1));
    assert.equal(Object.values(devices).filter((d) => d.session !== "logged-in").length, MAX_ENDED_DEVICES);

    const res = await callOk("login", { deviceId: "a-00", platform: "android" }, user);
    assert.equal(res.resumed, false);
    assert.deepEqual(res.kickedDeviceIds, ["a-11"]);
    devices = await readDevices(user.uid);
    assert.equal(devices["a-00"]?.session, "logged-in");
    assert.equal(devices["a-01"], undefined, "the oldest kicked device made room for a-11");
    assert.equal(devices["a-11"]?.session, "kicked");
    assert.equal(Object.keys(devices).length, 1 + MAX_ENDED_DEVICES);
    await assertSessionInvariants();
  });
});

describe("the total is bounded (multi-device policy, through the session store)", () => {
  it(`logged-in device number ${MAX_DEVICES + 1} is refused with resource-exhausted, leaving nothing written`, async () => {
    assert.equal(MAX_DEVICES, 20);
    const uid = "many-devices";
    const deviceIds = ids(MAX_DEVICES, "m");
    for (const deviceId of deviceIds) await store.login(uid, deviceId, "android", "multi-device");
    const token = fakeFcmToken();
    await store.setOfflinePushToken(uid, "m-03", certificateId, token);
    const before = await adminDb().doc(`users/${uid}`).get();

    await assert.rejects(store.login(uid, "one-too-many", "android", "multi-device"), (err: unknown) => {
      assert.ok(err instanceof DomainError, String(err));
      assert.equal(err.kind, "resource-exhausted");
      assert.match(err.message, /at most 20 logged-in devices/);
      assert.deepEqual(err.details, { deviceId: "one-too-many", limit: MAX_DEVICES });
      return true;
    });
    const after = await adminDb().doc(`users/${uid}`).get();
    assert.ok(after.updateTime?.isEqual(before.updateTime as Timestamp), "the user document is untouched");
    assert.deepEqual(Object.keys(await readDevices(uid)).sort(), deviceIds);

    // Devices already logged in keep working: a resumed login is not a new device.
    const resumed = await store.login(uid, "m-03", "android", "multi-device");
    assert.equal(resumed.resumed, true);
    assert.equal((await readTokenOwner(token))?.deviceId, "m-03");
    await assertSessionInvariants();
  });

  it("after a logout there is room again: the ended device is dropped so the total stays at the limit", async () => {
    const uid = "many-devices";
    await store.logout(uid, "m-00");
    await store.login(uid, "one-more", "android", "multi-device");
    const devices = await readDevices(uid);
    assert.equal(Object.keys(devices).length, MAX_DEVICES);
    assert.equal(devices["m-00"], undefined, "no room for ended devices beside 20 logged-in ones");
    assert.ok(Object.values(devices).every((d) => d.session === "logged-in"));
    await assertSessionInvariants();
  });

  it("logged-in devices plus kept ended ones never exceed the limit", async () => {
    const uid = "mixed-devices";
    for (const deviceId of ids(15, "x")) await store.login(uid, deviceId, "android", "multi-device");
    for (const deviceId of ids(8, "x")) await store.logout(uid, deviceId);
    // 7 logged-in + 8 ended: all kept. Then 6 new devices: 13 logged-in leaves room for 7 ended.
    for (const deviceId of ids(6, "y")) await store.login(uid, deviceId, "android", "multi-device");
    const devices = await readDevices(uid);
    assert.equal(Object.keys(devices).length, MAX_DEVICES);
    assert.equal(Object.values(devices).filter((d) => d.session === "logged-in").length, 13);
    assert.equal(devices["x-00"], undefined, "the first to log out is the one dropped");
    for (const id of ids(8, "x").slice(1)) assert.equal(devices[id]?.session, "logged-out");
  });
});

describe("the device invariant is kept while pruning", () => {
  it("an ended device that (against the invariants) still holds a token: dropping it releases the token", async () => {
    const user = await createUser();
    for (const deviceId of ids(11, "c")) await callOk("login", { deviceId, platform: "android" }, user);
    // Corrupt the oldest ended device as a bug or a manual edit might: a token and its ownership record.
    const token = fakeFcmToken();
    const hash = tokenHash(token);
    const now = Timestamp.now();
    await adminDb()
      .doc(`users/${user.uid}`)
      .update(new FieldPath("devices", "c-00", "token"), { certificateId, token, tokenHash: hash, boundAt: now, refreshedAt: now });
    await adminDb().doc(`pushTokens/${hash}`).set({ uid: user.uid, deviceId: "c-00", certificateId, boundAt: now, refreshedAt: now });

    await callOk("login", { deviceId: "c-11", platform: "android" }, user);
    const devices = await readDevices(user.uid);
    assert.equal(devices["c-00"], undefined);
    assert.equal(await readTokenOwner(token), null, "no pushTokens record left naming a dropped device");
    await assertSessionInvariants();
  });
});
