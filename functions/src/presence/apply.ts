// Applying the IM backend's presence events to the devices they name
// (users/{uid}.devices.{id}.presence, the document the fan-out reads anyway). One write per user
// whose devices changed, whatever the number of its devices in the message; an event that is not
// newer than the device's last one writes nothing.
//   Connect / Disconnect: one getAll of the message's accounts, then each changed user document
//     written with a precondition on its update time (a BulkWriter: a few calls for hundreds of
//     users); a document that changed in between is decided again in a transaction.
//   Logout: the session ends exactly as with the logout callable (sessions/store.ts), one
//     transaction each, before the others are read.
import { FieldPath, FieldValue, type DocumentSnapshot, type Timestamp } from "firebase-admin/firestore";
import * as logger from "firebase-functions/logger";
import { GRPC, db, grpcCode, runBoundedTransaction } from "../common/firestore";
import { USERS, parseUserDevices, type Device } from "../sessions/schemas";
import { endSessionFromBackend, type PresenceWrite } from "../sessions/store";
import type { UnknownKind } from "./log";
import { isNewer, newestPerDevice, presenceOf } from "./order";
import type { PresenceEvent } from "./schemas";

export interface ApplyOutcome {
  /** Stored as their device's presence (Logout included). */
  applied: PresenceEvent[];
  /** Logouts that ended the device's session. */
  ended: PresenceEvent[];
  /** Not newer than the device's last applied event, or superseded by a newer one in the same message. */
  ignored: PresenceEvent[];
  unknown: Array<{ kind: UnknownKind; event: PresenceEvent }>;
  /** Events for a users document that does not parse (logged as an error; not retried). */
  unreadable: PresenceEvent[];
  /** users documents written. */
  userWrites: number;
}

/** Accounts per getAll: a 500-event refresh is a few calls. */
const READ_CHUNK = 250;
const LOGOUT_PARALLEL = 8;

type Decision = { changes: Array<[string, PresenceEvent]>; ignored: PresenceEvent[]; unknown: ApplyOutcome["unknown"]; unreadable: PresenceEvent[] };

function decideAccount(snap: DocumentSnapshot, events: PresenceEvent[]): Decision {
  const d: Decision = { changes: [], ignored: [], unknown: [], unreadable: [] };
  if (!snap.exists) {
    d.unknown.push(...events.map((event) => ({ kind: "unknown-account" as const, event })));
    return d;
  }
  let devices: Record<string, Device>;
  try {
    devices = parseUserDevices(snap.data());
  } catch (err) {
    logger.error("presence events not applied: the user's stored device record does not parse", { uid: snap.id, error: String(err) });
    d.unreadable.push(...events);
    return d;
  }
  for (const event of events) {
    const device = devices[event.DeviceId];
    if (!device) d.unknown.push({ kind: "unknown-device", event });
    else if (!isNewer(event, device.presence)) d.ignored.push(event);
    else d.changes.push([event.DeviceId, event]);
  }
  return d;
}

/** The update of one user document: each changed device's presence, and the document's updatedAt. */
function updateArgs(changes: Array<[string, PresenceEvent]>): unknown[] {
  const pairs: unknown[] = ["updatedAt", FieldValue.serverTimestamp()];
  for (const [deviceId, event] of changes) {
    const presence: PresenceWrite = { ...presenceOf(event), at: FieldValue.serverTimestamp() };
    pairs.push(new FieldPath("devices", deviceId, "presence"), presence);
  }
  return pairs;
}

/** One user decided again from a fresh read and written, in a transaction (its document changed since the first read). */
async function applyInTransaction(uid: string, events: PresenceEvent[]): Promise<Decision> {
  const ref = db().collection(USERS).doc(uid);
  return runBoundedTransaction(async (tx) => {
    const decision = decideAccount(await tx.get(ref), events);
    if (decision.changes.length > 0) {
      const [first, value, ...rest] = updateArgs(decision.changes);
      tx.update(ref, first as string, value, ...rest);
    }
    return decision;
  });
}

export async function applyPresenceEvents(events: PresenceEvent[]): Promise<ApplyOutcome> {
  const out: ApplyOutcome = { applied: [], ended: [], ignored: [], unknown: [], unreadable: [], userWrites: 0 };
  const { newest, superseded } = newestPerDevice(events);
  out.ignored.push(...superseded);

  const logouts = newest.filter((e) => e.Action === "Logout");
  for (let i = 0; i < logouts.length; i += LOGOUT_PARALLEL) {
    await Promise.all(
      logouts.slice(i, i + LOGOUT_PARALLEL).map(async (event) => {
        const result = await endSessionFromBackend(event.Account, event.DeviceId, presenceOf(event), (stored) => isNewer(event, stored));
        if (result === "stale") out.ignored.push(event);
        else if (result === "unknown-account" || result === "unknown-device") out.unknown.push({ kind: result, event });
        else {
          out.applied.push(event);
          out.userWrites++;
          if (result === "ended") out.ended.push(event);
        }
      }),
    );
  }

  const byAccount = new Map<string, PresenceEvent[]>();
  for (const e of newest) if (e.Action !== "Logout") byAccount.set(e.Account, [...(byAccount.get(e.Account) ?? []), e]);
  const accounts = [...byAccount.keys()];
  const retry: string[] = [];
  const failures: unknown[] = [];
  const record = (d: Decision) => {
    out.ignored.push(...d.ignored);
    out.unknown.push(...d.unknown);
    out.unreadable.push(...d.unreadable);
    out.applied.push(...d.changes.map(([, e]) => e));
    if (d.changes.length > 0) out.userWrites++;
  };
  const writer = db().bulkWriter({ throttling: false });
  const pending: Array<Promise<void>> = [];
  for (let i = 0; i < accounts.length; i += READ_CHUNK) {
    const chunk = accounts.slice(i, i + READ_CHUNK);
    const snaps = await db().getAll(...chunk.map((uid) => db().collection(USERS).doc(uid)));
    for (const snap of snaps) {
      const decision = decideAccount(snap, byAccount.get(snap.id) ?? []);
      if (decision.changes.length === 0) {
        record(decision);
        continue;
      }
      const [first, value, ...rest] = updateArgs(decision.changes);
      pending.push(
        writer.update(snap.ref, first as string, value, ...rest, { lastUpdateTime: snap.updateTime as Timestamp }).then(
          () => record(decision),
          (err: unknown) => {
            // Collected, not thrown: these settle while the writer flushes, before anything awaits them.
            if (grpcCode(err) === GRPC.FAILED_PRECONDITION) retry.push(snap.id);
            else failures.push(err);
          },
        ),
      );
    }
  }
  await writer.close();
  await Promise.all(pending);
  // A write that failed for another reason (an outage past the SDK's retries): the message is retried.
  if (failures.length > 0) throw failures[0];
  for (const uid of retry) record(await applyInTransaction(uid, byAccount.get(uid) ?? []));
  return out;
}
