// Devices and sessions as the tests observe them: stored state read through the Admin SDK and
// parsed with the functions' own schemas, eligibility evaluated with the functions' own predicate.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { pushEligibility, type Eligibility } from "../../functions/src/sessions/eligibility.ts";
import {
  PushTokenDocSchema,
  UserDocSchema,
  parseUserDevices,
  tokenHash,
  type Device,
  type PushTokenDoc,
} from "../../functions/src/sessions/schemas.ts";
import { adminDb } from "./emulators.ts";

/** A token shaped like FCM's: "<instance id>:APA91b<base64url>", unique per call. */
export function fakeFcmToken(): string {
  return `${randomBytes(8).toString("base64url")}:APA91b${randomBytes(105).toString("base64url")}`;
}

export async function readDevices(uid: string): Promise<Record<string, Device>> {
  return parseUserDevices((await adminDb().doc(`users/${uid}`).get()).data());
}

export async function readDevice(uid: string, deviceId: string): Promise<Device | undefined> {
  return (await readDevices(uid))[deviceId];
}

export async function readTokenOwner(token: string): Promise<PushTokenDoc | null> {
  const snap = await adminDb().doc(`pushTokens/${tokenHash(token)}`).get();
  return snap.exists ? PushTokenDocSchema.parse(snap.data()) : null;
}

export async function existingCertificateIds(): Promise<Set<number>> {
  const snaps = await adminDb().collection("pushCertificates").select().get();
  return new Set(snaps.docs.map((d) => Number(d.id)));
}

/** The default lease and FCM's one-month staleness; tests pass the lease the server reports. */
export const DEFAULT_LEASE_MS = 120_000;
const TOKEN_STALE_MS = 30 * 24 * 3600 * 1000;

export async function eligibilityAt(device: Device | undefined, now: Date, leaseMs = DEFAULT_LEASE_MS): Promise<Eligibility> {
  const certificates = await existingCertificateIds();
  return pushEligibility(device, now, { leaseMs, tokenStaleMs: TOKEN_STALE_MS, certificateExists: (id) => certificates.has(id) });
}

/** One second after the device's last heartbeat: "now" for a device that is still connected. */
export const justAfterHeartbeat = (d: Device) => new Date(d.lastHeartbeatAt.toMillis() + 1000);

/**
 * The consistency the issue demands, over the whole database:
 *  - every pushTokens doc names a logged-in device that holds exactly that token (one owner);
 *  - every device token is held only by a logged-in session and is backed by its pushTokens doc.
 */
export async function assertSessionInvariants(): Promise<{ users: number; tokens: number }> {
  const [users, tokens] = await Promise.all([adminDb().collection("users").get(), adminDb().collection("pushTokens").get()]);
  const devicesByUid = new Map<string, Record<string, Device>>();
  for (const doc of users.docs) devicesByUid.set(doc.id, UserDocSchema.parse(doc.data()).devices);

  for (const doc of tokens.docs) {
    const owner = PushTokenDocSchema.parse(doc.data());
    const device = devicesByUid.get(owner.uid)?.[owner.deviceId];
    assert.ok(device, `pushTokens/${doc.id} names ${owner.uid}/${owner.deviceId}, which does not exist`);
    assert.equal(device.session, "logged-in", `pushTokens/${doc.id} is owned by a ${device.session} session`);
    assert.equal(device.token?.tokenHash, doc.id, `pushTokens/${doc.id}'s owner ${owner.uid}/${owner.deviceId} does not hold that token`);
    assert.equal(device.token?.certificateId, owner.certificateId);
  }
  const owners = new Map(tokens.docs.map((d) => [d.id, PushTokenDocSchema.parse(d.data())]));
  for (const [uid, devices] of devicesByUid) {
    for (const [deviceId, device] of Object.entries(devices)) {
      assert.equal(device.deviceId, deviceId);
      if (!device.token) continue;
      assert.equal(device.session, "logged-in", `${uid}/${deviceId} is ${device.session} but still holds a token`);
      assert.equal(device.token.tokenHash, tokenHash(device.token.token));
      const owner = owners.get(device.token.tokenHash);
      assert.ok(owner, `${uid}/${deviceId} holds a token with no pushTokens doc`);
      assert.deepEqual([owner.uid, owner.deviceId], [uid, deviceId], `${uid}/${deviceId} holds a token owned by ${owner.uid}/${owner.deviceId}`);
    }
  }
  return { users: users.size, tokens: tokens.size };
}
