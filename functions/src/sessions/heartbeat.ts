// When a heartbeat is worth a write. Pure, so the rule and its guarantees are unit-tested.
//
// A beat renews the lease: a foreground device counts as connected until HEARTBEAT_LEASE_SECONDS
// (L) after the stored beat. Writing every beat (one every L/3, as apps were told) cost 90 writes
// per online user per hour. A beat now writes only when the stored one is at least L/2 old, so:
//  - the stored beat is never more than L/2 behind the app's last beat: a device that stops
//    beating counts as killed at most L after its last beat (as before), and at least L/2 after;
//  - an app beating every L/3 (the interval the heartbeat answer gives) is recorded every second
//    beat, and its stored beat is at most 2L/3 old while it beats: a beat may be up to L/3 late, or
//    one may be lost after a recorded one, before the device would count as killed;
//  - a beat that changes what the fan-out decides always writes: with PRESENCE_SOURCE=both, a
//    Disconnect from the IM backend newer than the stored beat is overridden by this newer beat;
//  - with PRESENCE_SOURCE=im-backend beats are not needed and never write (the backend's events
//    and the app's login and app-state calls decide).
import type { PresenceSource } from "../config";
import type { Device } from "./schemas";

export interface HeartbeatPlan {
  /** A beat writes when the stored one is at least this old. */
  writeAfterMs: number;
  /** How often the app should beat (null: not needed, with PRESENCE_SOURCE=im-backend). */
  intervalMs: number | null;
}

export function heartbeatPlan(leaseMs: number, source: PresenceSource): HeartbeatPlan {
  return { writeAfterMs: Math.floor(leaseMs / 2), intervalMs: source === "im-backend" ? null : Math.floor(leaseMs / 3) };
}

/** Whether a beat at `nowMs` (the database's clock: the read time of the device) must be stored. */
export function beatNeedsWrite(device: Device, nowMs: number, leaseMs: number, source: PresenceSource): boolean {
  if (source === "im-backend") return false;
  const stored = device.lastHeartbeatAt.toMillis();
  if (nowMs - stored >= heartbeatPlan(leaseMs, source).writeAfterMs) return true;
  const presence = device.presence;
  return source === "both" && presence?.state === "disconnected" && presence.eventTime.toMillis() >= stored;
}
