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
