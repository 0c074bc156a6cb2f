// Which presence event wins. Pure. Pub/Sub delivers out of order and more than once, so per device
// only an event newer than the newest one applied changes anything: by EventTime, and at the same
// millisecond Logout over Disconnect over Connect (a tie must not depend on arrival order, and when
// in doubt the device is pushed rather than silenced). The same event again is not newer: nothing.
import { Timestamp } from "firebase-admin/firestore";
import type { PresenceAction, StoredPresence } from "../sessions/schemas";
import type { PresenceEvent } from "./schemas";

const RANK: Record<PresenceAction, number> = { Connect: 0, Disconnect: 1, Logout: 2 };

function after(aMs: number, aAction: PresenceAction, bMs: number, bAction: PresenceAction): boolean {
  return aMs > bMs || (aMs === bMs && RANK[aAction] > RANK[bAction]);
}

/** Whether `event` is newer than the device's stored presence (none stored: it is). */
export function isNewer(event: Pick<PresenceEvent, "EventTime" | "Action">, stored: StoredPresence | null | undefined): boolean {
  return !stored || after(event.EventTime, event.Action, stored.eventTime.toMillis(), stored.action);
}

export const deviceKey = (e: Pick<PresenceEvent, "Account" | "DeviceId">): string => `${e.Account}\u0000${e.DeviceId}`;

/** The newest event of each device in one message; the others it supersedes (they change nothing). */
export function newestPerDevice(events: PresenceEvent[]): { newest: PresenceEvent[]; superseded: PresenceEvent[] } {
  const byDevice = new Map<string, PresenceEvent>();
  const superseded: PresenceEvent[] = [];
  for (const e of events) {
    const key = deviceKey(e);
    const seen = byDevice.get(key);
    if (!seen) byDevice.set(key, e);
    else if (after(e.EventTime, e.Action, seen.EventTime, seen.Action)) {
      superseded.push(seen);
      byDevice.set(key, e);
    } else superseded.push(e);
  }
  return { newest: [...byDevice.values()], superseded };
}

/** The device's presence as this event leaves it (`at`, the time it is applied, is added by the write). */
export function presenceOf(event: PresenceEvent): Omit<StoredPresence, "at"> {
  return {
    state: event.Action === "Connect" ? "connected" : "disconnected",
    action: event.Action,
    eventTime: Timestamp.fromMillis(event.EventTime),
    reason: event.Reason,
  };
}
