// Recipients in mixed session states, written directly with the Admin SDK in a few batched writes:
// for the 1,000-recipient test and the benchmark, where setting up each device through the
// callables (4 requests per device) would take longer than the fan-out itself. The documents follow
// the sessions' schema exactly (each device is parsed with it), and every state used here is also
// produced through the real callables in test/fanout/fanout.test.ts and errors.test.ts.
import { randomUUID } from "node:crypto";
import { Timestamp } from "firebase-admin/firestore";
import { DeviceSchema, tokenHash, type Device } from "../../functions/src/sessions/schemas.ts";
import { adminDb } from "./emulators.ts";
import { fakeFcmToken } from "./sessions.ts";

export type SeedState =
  | "background"
  | "killed"
  | "foreground"
  | "logged-out"
  | "kicked"
  | "no-token"
  | "token-stale"
  | "certificate-missing"
  | "no-user";

/** Recipient i is in state SEED_STATES[i % 10]: 30% eligible. */
export const SEED_STATES: SeedState[] = ["background", "background", "killed", "foreground", "logged-out", "kicked", "no-token", "token-stale", "certificate-missing", "no-user"];
export const ELIGIBLE_STATES = new Set<SeedState>(["background", "killed"]);
export const stateOf = (i: number): SeedState => SEED_STATES[i % SEED_STATES.length]!;

function device(deviceId: string, over: Partial<Device>, now: number): Device {
  const t = Timestamp.fromMillis(now - 60_000);
  return DeviceSchema.parse({
    deviceId,
    platform: "android",
    session: "logged-in",
    sessionId: randomUUID(),
    loggedInAt: t,
    endedAt: null,
    kickedByDeviceId: null,
    appState: "background",
    appStateAt: t,
    unreadCount: 3,
    lastHeartbeatAt: t,
    token: null,
    ...over,
  });
}

function tokenOf(certificateId: number, now: number, ageMs = 60_000) {
  const token = fakeFcmToken();
  const at = Timestamp.fromMillis(now - ageMs);
  return { certificateId, token, tokenHash: tokenHash(token), boundAt: at, refreshedAt: at };
}

export interface Seeded {
  /** Tokens of the devices that must get exactly one push. */
  eligibleTokens: Set<string>;
  /** Log entries expected: one per device, one per account without devices. */
  expectedEntries: number;
  /** Firestore documents written. */
  documents: number;
}

/** `stateAt(i)`: recipient i's state (default: SEED_STATES in turn, 30% eligible). */
export async function seedRecipients(uids: string[], certificateId: number, missingCertificateId = 987_654, stateAt: (i: number) => SeedState = stateOf): Promise<Seeded> {
  const now = Date.now();
  const eligibleTokens = new Set<string>();
  const writes: Array<[string, Record<string, unknown>]> = [];
  let expectedEntries = 0;
  uids.forEach((uid, i) => {
    const state = stateAt(i);
    if (state === "no-user") {
      expectedEntries++;
      return;
    }
    const devices: Device[] = [];
    const fresh = Timestamp.fromMillis(now - 5_000);
    switch (state) {
      case "background":
        devices.push(device("phone", { token: tokenOf(certificateId, now) }, now));
        break;
      case "killed": // in the foreground when last seen, but no heartbeat for 10 minutes (lease: 2)
        devices.push(device("phone", { appState: "foreground", lastHeartbeatAt: Timestamp.fromMillis(now - 600_000), token: tokenOf(certificateId, now) }, now));
        break;
      case "foreground":
        devices.push(device("phone", { appState: "foreground", lastHeartbeatAt: fresh, token: tokenOf(certificateId, now) }, now));
        break;
      case "logged-out":
        devices.push(device("phone", { session: "logged-out", endedAt: fresh }, now));
        break;
      case "kicked": // kicked by a login on the tablet, which is in the foreground
        devices.push(device("phone", { session: "kicked", endedAt: fresh, kickedByDeviceId: "tablet" }, now));
        devices.push(device("tablet", { appState: "foreground", lastHeartbeatAt: fresh, token: tokenOf(certificateId, now) }, now));
        break;
      case "no-token":
        devices.push(device("phone", {}, now));
        break;
      case "token-stale":
        devices.push(device("phone", { token: tokenOf(certificateId, now, 40 * 24 * 3600 * 1000) }, now));
        break;
      case "certificate-missing":
        devices.push(device("phone", { token: tokenOf(missingCertificateId, now) }, now));
        break;
    }
    expectedEntries += devices.length;
    for (const d of devices) {
      if (!d.token) continue;
      if (ELIGIBLE_STATES.has(state)) eligibleTokens.add(d.token.token);
      writes.push([`pushTokens/${d.token.tokenHash}`, { uid, deviceId: d.deviceId, certificateId: d.token.certificateId, boundAt: d.token.boundAt, refreshedAt: d.token.refreshedAt }]);
    }
    writes.push([`users/${uid}`, { devices: Object.fromEntries(devices.map((d) => [d.deviceId, d])), updatedAt: Timestamp.fromMillis(now) }]);
  });
  for (let i = 0; i < writes.length; i += 450) {
    const batch = adminDb().batch();
    for (const [path, data] of writes.slice(i, i + 450)) batch.set(adminDb().doc(path), data);
    await batch.commit();
  }
  return { eligibleTokens, expectedEntries, documents: writes.length };
}
