// The multi-device policy against the real Firestore emulator. The emulated functions run with
// the deployed default (single-device-per-platform, functions/.env), so these call the session
// store the callables use directly, with the policy as an argument.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { clearFirestore, createUser } from "../helpers/emulators.ts";
import { assertSessionInvariants, fakeFcmToken, readDevices, readTokenOwner } from "../helpers/sessions.ts";
import { registerCertificate } from "../helpers/certificates.ts";
import * as store from "../../functions/src/sessions/store.ts";

let certificateId: number;

before(async () => {
  await clearFirestore();
  certificateId = (await registerCertificate(await createUser({ admin: true }))).certificateId;
});

describe("session store with the multi-device policy", () => {
  const uid = "multi-user";

  it("keeps every Android device logged in", async () => {
    const first = await store.login(uid, "tablet", "android", "multi-device");
    const second = await store.login(uid, "phone", "android", "multi-device");
    assert.deepEqual([first.kickedDeviceIds, second.kickedDeviceIds], [[], []]);
    const devices = await readDevices(uid);
    assert.deepEqual([devices.tablet?.session, devices.phone?.session], ["logged-in", "logged-in"]);
  });

  it("a token moving between two devices of the same user has one owner", async () => {
    const token = fakeFcmToken();
    await store.setOfflinePushToken(uid, "tablet", certificateId, token);
    assert.equal((await store.setOfflinePushToken(uid, "phone", certificateId, token)).status, "bound");
    const devices = await readDevices(uid);
    assert.equal(devices.tablet?.token, null);
    assert.equal(devices.phone?.token?.token, token);
    assert.equal((await readTokenOwner(token))?.deviceId, "phone");
    await assertSessionInvariants();
  });

  it("switching back to single-device-per-platform: the next login kicks every other device and frees their tokens", async () => {
    const tabletToken = fakeFcmToken();
    await store.setOfflinePushToken(uid, "tablet", certificateId, tabletToken);
    const res = await store.login(uid, "laptop-emu", "android", "single-device-per-platform");
    assert.deepEqual(res.kickedDeviceIds, ["phone", "tablet"]);
    const devices = await readDevices(uid);
    for (const id of ["phone", "tablet"]) {
      assert.equal(devices[id]?.session, "kicked");
      assert.equal(devices[id]?.kickedByDeviceId, "laptop-emu");
      assert.equal(devices[id]?.token, null);
    }
    assert.equal(await readTokenOwner(tabletToken), null);
    const { tokens } = await assertSessionInvariants();
    assert.equal(tokens, 0);
  });
});
