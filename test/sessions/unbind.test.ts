// unbindToken with the binding a send used: FCM's verdict on that send removes that binding only,
// never one the app made while the send was in flight (same token re-reported with another
// certificate, or moved to another device). Sessions set up through the callables; the sender's
// store function called directly against the Firestore emulator.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { tokenHash } from "../../functions/src/sessions/schemas.ts";
import { unbindToken } from "../../functions/src/sessions/store.ts";
import { callOk, clearFirestore, createUser, type TestUser } from "../helpers/emulators.ts";
import { assertSessionInvariants, fakeFcmToken, readDevice, readTokenOwner } from "../helpers/sessions.ts";
import { registerCertificate } from "../helpers/certificates.ts";

let cert1: number;
let cert2: number;

before(async () => {
  await clearFirestore();
  const admin = await createUser({ admin: true });
  cert1 = (await registerCertificate(admin)).certificateId;
  cert2 = (await registerCertificate(admin)).certificateId;
});

async function bound(user: TestUser, deviceId: string, certificateId: number, token = fakeFcmToken()): Promise<string> {
  await callOk("login", { deviceId, platform: "android" }, user);
  await callOk("setOfflinePushToken", { deviceId, certificateId, token }, user);
  return token;
}

describe("unbindToken(hash, expected)", () => {
  it("the binding the send used is still current: unbound from both sides, the session untouched", async () => {
    const user = await createUser();
    const token = await bound(user, "phone", cert1);
    const owner = await unbindToken(tokenHash(token), { uid: user.uid, deviceId: "phone", certificateId: cert1 });
    assert.deepEqual(owner, { uid: user.uid, deviceId: "phone" });
    assert.equal(await readTokenOwner(token), null);
    const device = await readDevice(user.uid, "phone");
    assert.equal(device?.token, null);
    assert.equal(device?.session, "logged-in");
    assert.equal(await unbindToken(tokenHash(token), { uid: user.uid, deviceId: "phone", certificateId: cert1 }), null, "nothing left to unbind");
    await assertSessionInvariants();
  });

  it("the app re-reported the same token with another certificate meanwhile: kept", async () => {
    const user = await createUser();
    const token = await bound(user, "phone", cert1);
    // In flight with certificate 1; the app corrects its certificateId (same token, same hash).
    const res = await callOk("setOfflinePushToken", { deviceId: "phone", certificateId: cert2, token }, user);
    assert.equal(res.status, "refreshed");
    // FCM now answers SENDER_ID_MISMATCH for the certificate-1 send.
    assert.equal(await unbindToken(tokenHash(token), { uid: user.uid, deviceId: "phone", certificateId: cert1 }), null);
    assert.deepEqual(
      await readTokenOwner(token).then((o) => [o?.uid, o?.deviceId, o?.certificateId]),
      [user.uid, "phone", cert2],
      "the corrected binding is kept",
    );
    const device = await readDevice(user.uid, "phone");
    assert.deepEqual([device?.token?.token, device?.token?.certificateId], [token, cert2]);
    await assertSessionInvariants();
  });

  it("the token moved to another user's device meanwhile: kept for its new owner", async () => {
    const [first, second] = [await createUser(), await createUser()];
    const token = await bound(first, "phone", cert1);
    await bound(second, "tablet", cert1, token);
    assert.equal(await unbindToken(tokenHash(token), { uid: first.uid, deviceId: "phone", certificateId: cert1 }), null);
    assert.deepEqual(await readTokenOwner(token).then((o) => [o?.uid, o?.deviceId]), [second.uid, "tablet"]);
    assert.equal((await readDevice(second.uid, "tablet"))?.token?.token, token);
    await assertSessionInvariants();
  });

  it("the token moved to another device of the same user meanwhile: kept", async () => {
    const user = await createUser();
    const token = await bound(user, "old-install", cert1);
    await bound(user, "new-install", cert1, token);
    assert.equal(await unbindToken(tokenHash(token), { uid: user.uid, deviceId: "old-install", certificateId: cert1 }), null);
    assert.equal((await readTokenOwner(token))?.deviceId, "new-install");
    await assertSessionInvariants();
  });
});
