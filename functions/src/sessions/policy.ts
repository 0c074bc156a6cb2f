// Who a login kicks offline. Pure, so every policy is unit-tested without the emulators.
import type { SessionPolicy } from "../config";
import type { Device, Platform } from "./schemas";

/**
 * The devices whose session a login on `deviceId` ends. The original service allows one logged-in
 * device per platform and user; `multi-device` lets every device stay logged in.
 */
export function devicesToKick(devices: Record<string, Device>, deviceId: string, platform: Platform, policy: SessionPolicy): string[] {
  if (policy === "multi-device") return [];
  return Object.entries(devices)
    .filter(([id, d]) => id !== deviceId && d.platform === platform && d.session === "logged-in")
    .map(([id]) => id)
    .sort();
}

/**
 * Bounds on a user's device map (users/{uid}.devices). Every reinstall logs in under a new
 * deviceId, and a client can invent IDs at will, while the fan-out reads the whole user document
 * per recipient and writes one push-log entry per device per message into one document (1 MiB
 * limit). Ended sessions (logged-out or kicked) hold no token and receive nothing, so only a few
 * recent ones are kept, for "why did this device get nothing" diagnostics. Constants, not params:
 * they protect document sizes, which no deployment should be able to tune away.
 */
export const MAX_ENDED_DEVICES = 10;
/** Logged-in plus kept ended devices; more logged-in devices than this is refused (multi-device policy). */
export const MAX_DEVICES = 20;

export interface EndedDevice {
  deviceId: string;
  /** When its session ended; `Infinity` for a session ending in this very login. */
  endedAtMs: number;
}

/** The ended devices to drop so that at most `keep` remain: the oldest first, ties by ID so the choice is stable. */
export function endedDevicesToDrop(ended: EndedDevice[], keep: number): string[] {
  return [...ended]
    .sort((a, b) => b.endedAtMs - a.endedAtMs || (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0))
    .slice(Math.max(0, keep))
    .map((d) => d.deviceId);
}
