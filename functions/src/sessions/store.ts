// Session and token state in Firestore. Every change is one transaction that reads what it
// decides on, so concurrent calls (two logins, a logout racing a token report, two users
// reporting the same token) serialize and always leave:
//   - each pushTokens doc pointing at a logged-in device that holds exactly that token, and
//   - each device token backed by the pushTokens doc that names that device.
import { randomUUID } from "node:crypto";
import { FieldPath, FieldValue, type DocumentSnapshot, type Timestamp, type Transaction } from "firebase-admin/firestore";
import * as logger from "firebase-functions/logger";
import type { PresenceSource, SessionPolicy } from "../config";
import { DomainError } from "../common/errors";
import { GRPC, db, grpcCode, runBoundedTransaction } from "../common/firestore";
import { beatNeedsWrite } from "./heartbeat";
import { MAX_DEVICES, MAX_ENDED_DEVICES, devicesToKick, endedDevicesToDrop } from "./policy";
import {
  PUSH_TOKENS,
  PushTokenDocSchema,
  USERS,
  hasPushToken,
  parseUserDevices,
  tokenHash,
  type Device,
  type Platform,
  type PushTokenDoc,
  type SessionState,
  type StoredPresence,
  type TokenBinding,
} from "./schemas";

type Stamp = Timestamp | FieldValue;
type TokenWrite = Omit<TokenBinding, "boundAt" | "refreshedAt"> & { boundAt: Stamp; refreshedAt: Stamp };
/** A presence as written: `at` is the server's time of the write. */
export type PresenceWrite = Omit<StoredPresence, "at"> & { at: Stamp };
type DeviceWrite = Omit<Device, "loggedInAt" | "endedAt" | "appStateAt" | "lastHeartbeatAt" | "token" | "presence"> & {
  loggedInAt: Stamp;
  endedAt: Stamp | null;
  appStateAt: Stamp;
  lastHeartbeatAt: Stamp;
  token: TokenWrite | null;
  presence?: PresenceWrite | null;
};

const userRef = (uid: string) => db().collection(USERS).doc(uid);
const tokenRef = (hash: string) => db().collection(PUSH_TOKENS).doc(hash);
const serverNow = () => FieldValue.serverTimestamp();

function parseTokenDoc(snap: DocumentSnapshot): PushTokenDoc | null {
  return snap.exists ? PushTokenDocSchema.parse(snap.data()) : null;
}

/** The error an app gets when it acts on a device that has no live session: it says which state, and why. */
function notLoggedIn(deviceId: string, device: Device | undefined): DomainError {
  const session: SessionState | "none" = device?.session ?? "none";
  let message: string;
  if (!device) message = `device ${deviceId} has no session: call login first`;
  else if (device.session === "kicked") message = `device ${deviceId} was kicked offline by a login on ${device.kickedByDeviceId ?? "another device"}: call login again to take over`;
  else message = `device ${deviceId} is logged out: call login first`;
  return new DomainError("failed-precondition", message, { deviceId, session, kickedByDeviceId: device?.kickedByDeviceId ?? null });
}

function requireLoggedIn(devices: Record<string, Device>, deviceId: string): Device {
  const device = devices[deviceId];
  if (device?.session !== "logged-in") throw notLoggedIn(deviceId, device);
  return device;
}

/**
 * Writes collected during a transaction, applied at its end: one write per touched user document
 * (each changed device replaced whole or removed, under a FieldPath because device IDs may contain dots).
 */
class Changes {
  private readonly users = new Map<string, { exists: boolean; devices: Map<string, DeviceWrite>; removed: Set<string> }>();
  private readonly tokenDeletes = new Set<string>();
  private readonly tokenSets = new Map<string, Record<string, unknown>>();

  private user(uid: string, userExists: boolean) {
    const entry = this.users.get(uid) ?? { exists: userExists, devices: new Map<string, DeviceWrite>(), removed: new Set<string>() };
    this.users.set(uid, entry);
    return entry;
  }

  putDevice(uid: string, userExists: boolean, device: DeviceWrite): void {
    const entry = this.user(uid, userExists);
    entry.removed.delete(device.deviceId);
    entry.devices.set(device.deviceId, device);
  }

  /** Only for a stored user document: a device of a document not yet written simply is not put. */
  removeDevice(uid: string, deviceId: string): void {
    const entry = this.user(uid, true);
    entry.devices.delete(deviceId);
    entry.removed.add(deviceId);
  }

  deleteToken(hash: string): void {
    this.tokenSets.delete(hash);
    this.tokenDeletes.add(hash);
  }

  setToken(hash: string, doc: Record<string, unknown>): void {
    this.tokenDeletes.delete(hash);
    this.tokenSets.set(hash, doc);
  }

  apply(tx: Transaction): void {
    for (const [uid, { exists, devices, removed }] of this.users) {
      if (exists) {
        const pairs: unknown[] = [];
        for (const [id, device] of devices) pairs.push(new FieldPath("devices", id), device);
        for (const id of removed) pairs.push(new FieldPath("devices", id), FieldValue.delete());
        tx.update(userRef(uid), "updatedAt", serverNow(), ...pairs);
      } else {
        tx.set(userRef(uid), { devices: Object.fromEntries(devices), updatedAt: serverNow() });
      }
    }
    for (const hash of this.tokenDeletes) tx.delete(tokenRef(hash));
    for (const [hash, doc] of this.tokenSets) tx.set(tokenRef(hash), doc);
  }
}

/** Reads the pushTokens docs of these tokens (one round trip), keyed by hash. */
async function readTokenDocs(tx: Transaction, hashes: string[]): Promise<Map<string, PushTokenDoc | null>> {
  const unique = [...new Set(hashes)];
  const result = new Map<string, PushTokenDoc | null>();
  if (unique.length === 0) return result;
  const snaps = await tx.getAll(...unique.map(tokenRef));
  snaps.forEach((snap, i) => result.set(unique[i] as string, parseTokenDoc(snap)));
  return result;
}

/** Drops a device's token ownership record, but only if it still names this device (a token may have moved on). */
function releaseToken(changes: Changes, uid: string, device: Device, tokenDocs: Map<string, PushTokenDoc | null>): void {
  if (!device.token) return;
  const owner = tokenDocs.get(device.token.tokenHash);
  if (owner && owner.uid === uid && owner.deviceId === device.deviceId) changes.deleteToken(device.token.tokenHash);
}

export interface LoginResult {
  deviceId: string;
  sessionId: string;
  /** True when the device was already logged in: its session and token were kept. */
  resumed: boolean;
  kickedDeviceIds: string[];
}

export async function login(uid: string, deviceId: string, platform: Platform, policy: SessionPolicy): Promise<LoginResult> {
  const { result, dropped } = await runBoundedTransaction(async (tx) => {
    const snap = await tx.get(userRef(uid));
    const devices = parseUserDevices(snap.data());
    const current = devices[deviceId];
    const resumed = current?.session === "logged-in" && current.platform === platform;
    const kicked = devicesToKick(devices, deviceId, platform, policy);
    const { dropped, loggedIn } = boundDevices(devices, deviceId, kicked);
    if (current?.session !== "logged-in" && loggedIn > MAX_DEVICES) {
      throw new DomainError(
        "resource-exhausted",
        `a user may have at most ${MAX_DEVICES} logged-in devices (MAX_DEVICES): log out one of the others before logging in on device ${deviceId}`,
        { deviceId, limit: MAX_DEVICES },
      );
    }
    const ending = kicked.map((id) => devices[id] as Device);
    if (current && !resumed) ending.push(current);
    // Ended sessions hold no token (releaseToken clears it when they end); should one still hold
    // a token, dropping the device must release it too, or its pushTokens doc would be orphaned.
    const droppedWithToken = dropped.map((id) => devices[id] as Device).filter((d) => d.token && !kicked.includes(d.deviceId));
    if (droppedWithToken.length) logger.error("ended sessions still held a token; released while dropping them", { uid, deviceIds: droppedWithToken.map((d) => d.deviceId) });
    const tokenDocs = await readTokenDocs(tx, [...ending, ...droppedWithToken].flatMap((d) => (d.token ? [d.token.tokenHash] : [])));

    const changes = new Changes();
    for (const id of kicked) {
      const device = devices[id] as Device;
      releaseToken(changes, uid, device, tokenDocs);
      changes.putDevice(uid, snap.exists, { ...device, session: "kicked", endedAt: serverNow(), kickedByDeviceId: deviceId, token: null });
    }
    for (const device of droppedWithToken) releaseToken(changes, uid, device, tokenDocs);
    // After the kicks: a device kicked by this login may itself be among the oldest dropped.
    for (const id of dropped) changes.removeDevice(uid, id);
    const now = serverNow();
    let sessionId: string;
    if (resumed && current) {
      sessionId = current.sessionId;
      changes.putDevice(uid, snap.exists, { ...current, appState: "foreground", appStateAt: now, unreadCount: null, lastHeartbeatAt: now });
    } else {
      if (current) releaseToken(changes, uid, current, tokenDocs);
      sessionId = randomUUID();
      changes.putDevice(uid, snap.exists, {
        deviceId,
        platform,
        session: "logged-in",
        sessionId,
        loggedInAt: now,
        endedAt: null,
        kickedByDeviceId: null,
        appState: "foreground",
        appStateAt: now,
        unreadCount: null,
        lastHeartbeatAt: now,
        token: null,
        // The IM backend's last word on this device stays: its Connect usually comes just before the login.
        presence: current?.presence ?? null,
      });
    }
    changes.apply(tx);
    return { result: { deviceId, sessionId, resumed, kickedDeviceIds: kicked }, dropped };
  });
  if (result.kickedDeviceIds.length) logger.info("login kicked other sessions", { uid, deviceId, kicked: result.kickedDeviceIds });
  if (dropped.length) logger.info("login dropped the oldest ended devices", { uid, deviceId, dropped });
  return result;
}

/**
 * The device map as this login leaves it, bounded: how many devices are logged in afterwards, and
 * which ended ones to drop so that at most MAX_ENDED_DEVICES remain and, with the logged-in ones,
 * at most MAX_DEVICES in all.
 */
function boundDevices(devices: Record<string, Device>, deviceId: string, kicked: string[]): { dropped: string[]; loggedIn: number } {
  const kickedNow = new Set(kicked);
  let loggedIn = 1;
  const ended = [];
  for (const [id, device] of Object.entries(devices)) {
    if (id === deviceId) continue;
    if (kickedNow.has(id)) ended.push({ deviceId: id, endedAtMs: Infinity });
    else if (device.session === "logged-in") loggedIn++;
    else ended.push({ deviceId: id, endedAtMs: device.endedAt?.toMillis() ?? 0 });
  }
  const keep = Math.min(MAX_ENDED_DEVICES, MAX_DEVICES - loggedIn);
  return { dropped: endedDevicesToDrop(ended, keep), loggedIn };
}

export interface SetTokenResult {
  deviceId: string;
  certificateId: number;
  /** `bound`: a new token for this session; `refreshed`: the same token reported again. */
  status: "bound" | "refreshed";
}

/** The caller must have checked that the certificate exists (not-found is answered before any write). */
export async function setOfflinePushToken(uid: string, deviceId: string, certificateId: number, token: string): Promise<SetTokenResult> {
  const hash = tokenHash(token);
  const { result, movedFrom } = await runBoundedTransaction(async (tx) => {
    const [userSnap, tokenSnap] = await tx.getAll(userRef(uid), tokenRef(hash));
    if (!userSnap || !tokenSnap) throw new DomainError("internal", "transaction read returned no snapshot");
    const devices = parseUserDevices(userSnap.data());
    const device = requireLoggedIn(devices, deviceId);
    if (!hasPushToken(device.platform)) {
      throw new DomainError(
        "failed-precondition",
        `device ${deviceId} is a ${device.platform} app: ${device.platform} apps have no FCM token and get no offline pushes (they are reached over their IM connection, and count for active-elsewhere)`,
        { deviceId, platform: device.platform },
      );
    }
    const owner = parseTokenDoc(tokenSnap);
    const now = serverNow();
    const changes = new Changes();

    if (device.token?.tokenHash === hash) {
      // Same token again: only its freshness changes (and the certificate, if the app switched it).
      changes.putDevice(uid, true, { ...device, token: { ...device.token, certificateId, refreshedAt: now } });
      changes.setToken(hash, { uid, deviceId, certificateId, boundAt: owner?.boundAt ?? device.token.boundAt, refreshedAt: now });
      changes.apply(tx);
      return { result: { deviceId, certificateId, status: "refreshed" as const }, movedFrom: null };
    }

    // All reads come before any write: the previous owner's user document when it is another
    // user, and the ownership record of the token this device held until now.
    const heldElsewhere = owner !== null && !(owner.uid === uid && owner.deviceId === deviceId) ? owner : null;
    const ownerSnap = heldElsewhere && heldElsewhere.uid !== uid ? await tx.get(userRef(heldElsewhere.uid)) : null;
    const previousTokens = await readTokenDocs(tx, device.token ? [device.token.tokenHash] : []);

    if (heldElsewhere) {
      // Same phone, new account (or a reinstall under a new deviceId): the old holder loses it now.
      const ownerDevices = ownerSnap ? parseUserDevices(ownerSnap.data()) : devices;
      const previous = ownerDevices[heldElsewhere.deviceId];
      if (previous?.token?.tokenHash === hash) {
        changes.putDevice(heldElsewhere.uid, ownerSnap ? ownerSnap.exists : true, { ...previous, token: null });
      }
    }
    releaseToken(changes, uid, device, previousTokens);
    changes.putDevice(uid, true, { ...device, token: { certificateId, token, tokenHash: hash, boundAt: now, refreshedAt: now } });
    changes.setToken(hash, { uid, deviceId, certificateId, boundAt: now, refreshedAt: now });
    changes.apply(tx);
    const from = heldElsewhere ? { uid: heldElsewhere.uid, deviceId: heldElsewhere.deviceId } : null;
    return { result: { deviceId, certificateId, status: "bound" as const }, movedFrom: from };
  });
  if (movedFrom) logger.info("push token moved to a new owner", { tokenHash: hash.slice(0, 12), from: movedFrom, to: { uid, deviceId } });
  return result;
}

/** Updates fields of a logged-in device: one read and one write. */
async function updateLoggedIn(uid: string, deviceId: string, fields: Record<string, unknown>): Promise<void> {
  await runBoundedTransaction(async (tx) => {
    const snap = await tx.get(userRef(uid));
    requireLoggedIn(parseUserDevices(snap.data()), deviceId);
    const pairs: unknown[] = [];
    for (const [key, value] of Object.entries(fields)) pairs.push(new FieldPath("devices", deviceId, key), value);
    tx.update(userRef(uid), "updatedAt", serverNow(), ...pairs);
  });
}

export interface HeartbeatResult {
  /** False when the beat changed nothing the fan-out decides on, and was not written (heartbeat.ts). */
  recorded: boolean;
}

/**
 * A beat reads the device (one read) and writes only when it must (heartbeat.ts says when), then
 * with a precondition on the document's update time instead of a transaction: one commit. Should
 * the document change in between, the beat is decided again in a transaction.
 */
export async function heartbeat(uid: string, deviceId: string, leaseMs: number, source: PresenceSource): Promise<HeartbeatResult> {
  const ref = userRef(uid);
  const snap = await ref.get();
  const device = requireLoggedIn(parseUserDevices(snap.data()), deviceId);
  if (!beatNeedsWrite(device, snap.readTime.toMillis(), leaseMs, source)) return { recorded: false };
  const beat = new FieldPath("devices", deviceId, "lastHeartbeatAt");
  try {
    await ref.update(beat, serverNow(), "updatedAt", serverNow(), { lastUpdateTime: snap.updateTime as Timestamp });
    return { recorded: true };
  } catch (err) {
    if (grpcCode(err) !== GRPC.FAILED_PRECONDITION) throw err;
  }
  return runBoundedTransaction(async (tx) => {
    const fresh = await tx.get(ref);
    const current = requireLoggedIn(parseUserDevices(fresh.data()), deviceId);
    if (!beatNeedsWrite(current, fresh.readTime.toMillis(), leaseMs, source)) return { recorded: false };
    tx.update(ref, beat, serverNow(), "updatedAt", serverNow());
    return { recorded: true };
  });
}

/** Any call from the app proves its connection is alive, so app-state changes renew the lease too. */

export async function setAppState(uid: string, deviceId: string, appState: "foreground" | "background", unreadCount: number | null): Promise<void> {
  const now = serverNow();
  await updateLoggedIn(uid, deviceId, { appState, appStateAt: now, unreadCount, lastHeartbeatAt: now });
}

export interface LogoutResult {
  deviceId: string;
  /** The state the device is in now; `kicked` stays `kicked` (logging out again changes nothing). */
  session: "logged-out" | "kicked";
  /** False when the session had already ended (logout is idempotent). */
  ended: boolean;
}

export async function logout(uid: string, deviceId: string): Promise<LogoutResult> {
  return runBoundedTransaction(async (tx) => {
    const snap = await tx.get(userRef(uid));
    const devices = parseUserDevices(snap.data());
    const device = devices[deviceId];
    if (!device) throw notLoggedIn(deviceId, device);
    if (device.session !== "logged-in") return { deviceId, session: device.session, ended: false };
    await endSession(tx, uid, device, {});
    return { deviceId, session: "logged-out", ended: true };
  });
}

/** Logs a logged-in device out inside `tx`: its token unbound, the session ended (and `extra` fields set on the device). */
async function endSession(tx: Transaction, uid: string, device: Device, extra: Partial<DeviceWrite>): Promise<void> {
  const tokenDocs = await readTokenDocs(tx, device.token ? [device.token.tokenHash] : []);
  const changes = new Changes();
  releaseToken(changes, uid, device, tokenDocs);
  changes.putDevice(uid, true, { ...device, ...extra, session: "logged-out", endedAt: serverNow(), token: null });
  changes.apply(tx);
}

export type BackendLogoutResult =
  /** The session ended, exactly as with the logout callable. */
  | "ended"
  /** Stored as the device's presence; no session to end (already ended, or logged in again after the event). */
  | "recorded"
  /** Not newer than the device's last presence event: nothing changed. */
  | "stale"
  | "unknown-account"
  | "unknown-device";

/**
 * The IM backend's Logout (topic im-presence): ends the device's session exactly like the `logout`
 * callable, in one transaction, and stores the event as the device's presence. Only if the event is
 * newer than the last one applied (`isNewer`), and only for the session it is about: a session
 * that logged in after the event's EventTime is left alone.
 */
export async function endSessionFromBackend(
  uid: string,
  deviceId: string,
  presence: Omit<PresenceWrite, "at">,
  isNewer: (stored: StoredPresence | null | undefined) => boolean,
): Promise<BackendLogoutResult> {
  return runBoundedTransaction(async (tx) => {
    const snap = await tx.get(userRef(uid));
    if (!snap.exists) return "unknown-account";
    const device = parseUserDevices(snap.data())[deviceId];
    if (!device) return "unknown-device";
    if (!isNewer(device.presence)) return "stale";
    const stored: PresenceWrite = { ...presence, at: serverNow() };
    if (device.session === "logged-in" && presence.eventTime.toMillis() >= device.loggedInAt.toMillis()) {
      await endSession(tx, uid, device, { presence: stored });
      return "ended";
    }
    tx.update(userRef(uid), "updatedAt", serverNow(), new FieldPath("devices", deviceId, "presence"), stored);
    return "recorded";
  });
}

/** The binding a send used: FCM's verdict on that send is about this binding only. */
export interface ExpectedBinding {
  uid: string;
  deviceId: string;
  certificateId: number;
}

/**
 * For senders: removes a token FCM refused (UNREGISTERED, INVALID_ARGUMENT on the token,
 * SENDER_ID_MISMATCH) from both its ownership record and its device, so it is not tried again.
 * With `expected`, only if the token is still bound as it was when sent: while a send is in flight
 * the app may re-report the token with another certificate (same hash) or the token may move to
 * another device, and FCM's answer about the old send says nothing about that new binding.
 * Returns the owner it was removed from, or null if nothing was removed.
 */
export async function unbindToken(hash: string, expected?: ExpectedBinding): Promise<{ uid: string; deviceId: string } | null> {
  return runBoundedTransaction(async (tx) => {
    const owner = parseTokenDoc(await tx.get(tokenRef(hash)));
    if (!owner) return null;
    if (expected && !(owner.uid === expected.uid && owner.deviceId === expected.deviceId && owner.certificateId === expected.certificateId)) return null;
    const ownerSnap = await tx.get(userRef(owner.uid));
    const device = parseUserDevices(ownerSnap.data())[owner.deviceId];
    const changes = new Changes();
    if (device?.token?.tokenHash === hash) changes.putDevice(owner.uid, ownerSnap.exists, { ...device, token: null });
    changes.deleteToken(hash);
    changes.apply(tx);
    return { uid: owner.uid, deviceId: owner.deviceId };
  });
}
