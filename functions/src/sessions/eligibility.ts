// The one predicate that decides whether a device gets an offline push. Pure (no Firestore, no
// clock): the fan-out, the diagnostics and the tests all evaluate stored devices with it.
import { formatDuration } from "../common/format";
import { heartbeatLeaseMs, tokenStaleMs } from "../config";
import type { Device, IneligibleReason } from "./schemas";

export interface EligibilityTiming {
  /** A foreground device whose last heartbeat is older than this counts as killed. */
  leaseMs: number;
  /** A token not re-reported for longer than this is stale. */
  tokenStaleMs: number;
}

export interface EligibilityContext extends EligibilityTiming {
  certificateExists: (certificateId: number) => boolean;
}

export type Eligibility = { eligible: true } | { eligible: false; reason: IneligibleReason; detail: string };

/** Reads the configured lease and staleness; with `certificateExists` it returns a full context. */
export function eligibilityConfig(): EligibilityTiming;
export function eligibilityConfig(certificateExists: (certificateId: number) => boolean): EligibilityContext;
export function eligibilityConfig(certificateExists?: (certificateId: number) => boolean): EligibilityTiming | EligibilityContext {
  const timing = { leaseMs: heartbeatLeaseMs(), tokenStaleMs: tokenStaleMs() };
  return certificateExists ? { ...timing, certificateExists } : timing;
}


function ago(now: Date, at: { toMillis(): number } | null): string {
  if (!at) return "at an unknown time";
  const ms = now.getTime() - at.toMillis();
  return ms >= 0 ? `${formatDuration(ms)} ago (${new Date(at.toMillis()).toISOString()})` : `at ${new Date(at.toMillis()).toISOString()}`;
}

function no(reason: IneligibleReason, detail: string): Eligibility {
  return { eligible: false, reason, detail };
}

/**
 * Checks run from the most lasting cause to the most transient, so the reason given is the one to
 * fix first: the session, then the token, and only then "it is connected right now".
 */
export function pushEligibility(device: Device | undefined, now: Date, ctx: EligibilityContext): Eligibility {
  if (!device) return no("no-device", "the user has no such device: it never logged in");
  const id = device.deviceId;
  if (device.session === "logged-out") {
    return no("logged-out", `device ${id} logged out ${ago(now, device.endedAt)}: logged-out devices get no offline pushes`);
  }
  if (device.session === "kicked") {
    return no(
      "kicked",
      `device ${id} was kicked offline ${ago(now, device.endedAt)} by a login on device ${device.kickedByDeviceId ?? "(unknown)"}: kicked devices get no offline pushes`,
    );
  }
  const token = device.token;
  if (!token) {
    return no("no-token", `device ${id} logged in ${ago(now, device.loggedInAt)} but has not reported a push token for this session (setOfflinePushToken)`);
  }
  if (!ctx.certificateExists(token.certificateId)) {
    return no("certificate-missing", `device ${id}'s token is bound to push certificate ${token.certificateId}, which does not exist (deleted?)`);
  }
  const tokenAge = now.getTime() - token.refreshedAt.toMillis();
  if (tokenAge > ctx.tokenStaleMs) {
    return no(
      "token-stale",
      `device ${id}'s token was last reported ${ago(now, token.refreshedAt)}, longer than the ${formatDuration(ctx.tokenStaleMs)} after which FCM advises treating a token as stale`,
    );
  }
  if (device.appState === "foreground") {
    const heartbeatAge = now.getTime() - device.lastHeartbeatAt.toMillis();
    if (heartbeatAge <= ctx.leaseMs) {
      return no(
        "foreground",
        `device ${id} came to the foreground ${ago(now, device.appStateAt)} and its last heartbeat was ${ago(now, device.lastHeartbeatAt)}, within the ${formatDuration(ctx.leaseMs)} lease: messages reach it over its connection`,
      );
    }
  }
  return { eligible: true };
}
