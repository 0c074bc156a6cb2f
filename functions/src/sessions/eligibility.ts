// The one predicate that decides whether a device gets an offline push. Pure (no Firestore, no
// clock): the fan-out, the diagnostics and the tests all evaluate stored devices with it. Its
// inputs are the device, the user's other devices (read in the same users document: no extra
// read) and the settings: the heartbeat lease, token staleness, whose word says "connected"
// (PRESENCE_SOURCE) and active-elsewhere.
import { formatDuration } from "../common/format";
import { DEFAULT_PRESENCE_LEASE_SECONDS, heartbeatLeaseMs, presenceSettings, tokenStaleMs, type PresenceSource } from "../config";
import { preferenceVerdict, type MessageForRecipient } from "../preferences/decide";
import type { MessagePreferences } from "../preferences/schemas";
import { hasPushToken, type Device, type IneligibleReason, type StoredPresence } from "./schemas";

export interface EligibilityTiming {
  /** A foreground device whose last heartbeat is older than this counts as killed. */
  leaseMs: number;
  /** A token not re-reported for longer than this is stale. */
  tokenStaleMs: number;
  /** Whose word says a device is connected (PRESENCE_SOURCE); `app` when absent. */
  presenceSource?: PresenceSource;
  /** How long the IM backend's Connect counts without a newer event (PRESENCE_LEASE_SECONDS); an hour when absent. */
  presenceLeaseMs?: number;
  /** ACTIVE_ELSEWHERE_SECONDS in ms; 0 or absent: off. */
  activeElsewhereMs?: number;
}

export interface EligibilityContext extends EligibilityTiming {
  certificateExists: (certificateId: number) => boolean;
}

/**
 * The message being decided and the recipient's preferences for it (read with the devices, in the
 * same users document). Absent: the question is "would a push reach this device at all" (testPush,
 * and diagnosePush when asked about no conversation).
 */
export interface RecipientMessage extends MessageForRecipient {
  prefs: MessagePreferences;
}

export type Eligibility = { eligible: true } | { eligible: false; reason: IneligibleReason; detail: string };

/** Reads the configured lease, staleness and presence settings; with `certificateExists` it returns a full context. */
export function eligibilityConfig(): Required<EligibilityTiming>;
export function eligibilityConfig(certificateExists: (certificateId: number) => boolean): Required<EligibilityTiming> & EligibilityContext;
export function eligibilityConfig(certificateExists?: (certificateId: number) => boolean): Required<EligibilityTiming> | (Required<EligibilityTiming> & EligibilityContext) {
  const presence = presenceSettings();
  const timing = {
    leaseMs: heartbeatLeaseMs(),
    tokenStaleMs: tokenStaleMs(),
    presenceSource: presence.source,
    presenceLeaseMs: presence.leaseMs,
    activeElsewhereMs: presence.activeElsewhereMs,
  };
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

/** Whether a device's long connection counts as open, and which signal says so. */
export interface Connection {
  connected: boolean;
  /** The signal that decided: the app's own calls (login, app state, heartbeat) or the IM backend's presence event. */
  by: "app" | "im-backend";
  /** When that signal was given, ms: the app's by our clock, the backend's by its EventTime. */
  atMs: number;
  /** How long that signal counts without a newer one: the heartbeat lease or the presence lease. */
  leaseMs: number;
  /** The backend's event, when it decided. */
  presence: StoredPresence | null;
}

/**
 * The newest signal about a device's connection decides (README, "Presence"):
 *  - `app`: the app's last call (heartbeat, login, app state), within the heartbeat lease; the
 *    backend's events are stored and shown, not used.
 *  - `im-backend`: the backend's newest event (Connect, or Disconnect/Logout) or the app's last call,
 *    whichever is newer; the app's call stands for a Connect (it proves the app runs and is
 *    connected; with this source the app need not beat), so both count for the presence lease.
 *  - `both`: the same, but the app's call counts for the heartbeat lease, as with `app`.
 * A tie goes to the backend's event. The presence lease bounds a lost Disconnect (a crashed IM
 * server): a Connect older than it counts no more.
 */
export function connectionOf(device: Device, now: Date, ctx: EligibilityTiming): Connection {
  const source = ctx.presenceSource ?? "app";
  const presenceLeaseMs = ctx.presenceLeaseMs ?? DEFAULT_PRESENCE_LEASE_SECONDS * 1000;
  let signal: Omit<Connection, "connected"> = {
    by: "app",
    atMs: device.lastHeartbeatAt.toMillis(),
    leaseMs: source === "im-backend" ? presenceLeaseMs : ctx.leaseMs,
    presence: null,
  };
  let says = true;
  const p = device.presence;
  if (source !== "app" && p && p.eventTime.toMillis() >= signal.atMs) {
    signal = { by: "im-backend", atMs: p.eventTime.toMillis(), leaseMs: presenceLeaseMs, presence: p };
    says = p.state === "connected";
  }
  return { ...signal, connected: says && now.getTime() - signal.atMs <= signal.leaseMs };
}

/**
 * Until when a device was in front of its user (in the foreground and connected): `now` while it
 * is; when that ended otherwise (its last signal, or when it went to the background); null for a
 * device without a session.
 */
export function activeUntil(device: Device, now: Date, ctx: EligibilityTiming): number | null {
  if (device.session !== "logged-in") return null;
  if (device.appState === "background") return device.appStateAt.toMillis();
  const c = connectionOf(device, now, ctx);
  return c.connected ? now.getTime() : c.atMs;
}

function connectionWords(c: Connection, now: Date): string {
  if (c.by === "im-backend" && c.presence) {
    const why = c.presence.reason ? `, reason ${c.presence.reason}` : "";
    return `the IM backend's ${c.presence.action} ${ago(now, { toMillis: () => c.atMs })}${why}`;
  }
  return `its last call ${ago(now, { toMillis: () => c.atMs })}`;
}

/** The user's other device that is, or was within ACTIVE_ELSEWHERE_SECONDS, in front of the user: the most recently active. */
function activeElsewhere(device: Device, siblings: Iterable<Device>, now: Date, ctx: EligibilityTiming): Eligibility | null {
  const windowMs = ctx.activeElsewhereMs ?? 0;
  if (windowMs <= 0) return null;
  let best: { other: Device; until: number } | null = null;
  for (const other of siblings) {
    if (other.deviceId === device.deviceId) continue;
    const until = activeUntil(other, now, ctx);
    if (until === null || now.getTime() - until > windowMs) continue;
    if (!best || until > best.until) best = { other, until };
  }
  if (!best) return null;
  const { other, until } = best;
  const where = `${other.deviceId} (${other.platform})`;
  const window = `ACTIVE_ELSEWHERE_SECONDS (${formatDuration(windowMs)})`;
  if (until >= now.getTime()) {
    return no(
      "active-elsewhere",
      `the user is active on ${where}: in the foreground and connected (${connectionWords(connectionOf(other, now, ctx), now)}), so device ${device.deviceId} gets no push while it is and for ${window} after`,
    );
  }
  return no(
    "active-elsewhere",
    `the user was active on ${where} until ${ago(now, { toMillis: () => until })}, within ${window}: device ${device.deviceId} gets pushes again once that has passed`,
  );
}

/**
 * Checks run from the most lasting cause to the most transient, so the reason given is the one to
 * fix first: the session, the platform, the token, then the user's preferences for this message
 * (muted, not mentioned, quiet hours), then "it is connected right now", and last the user's other
 * devices. `siblings` are the user's devices (this one among them is ignored). `now` is the clock
 * for everything, the do-not-disturb window included: tests pass a fixed one.
 */
export function pushEligibility(device: Device | undefined, now: Date, ctx: EligibilityContext, siblings: Iterable<Device> = [], message?: RecipientMessage): Eligibility {
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
  if (!hasPushToken(device.platform)) {
    return no("platform-without-push", `device ${id} is a ${device.platform} app: it has no FCM token and is reached only over its IM connection (it counts for active-elsewhere)`);
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
  if (message) {
    const verdict = preferenceVerdict(message.prefs, message, now);
    if (verdict) return no(verdict.reason, verdict.detail);
  }
  if (device.appState === "foreground") {
    const c = connectionOf(device, now, ctx);
    if (c.connected && c.by === "im-backend") {
      return no(
        "connected",
        `device ${id} is in the foreground (since ${ago(now, device.appStateAt)}) and connected according to ${connectionWords(c, now)}, which counts for the ${formatDuration(c.leaseMs)} presence lease unless a newer event comes: messages reach it over its connection`,
      );
    }
    if (c.connected && (ctx.presenceSource ?? "app") === "im-backend") {
      return no(
        "foreground",
        `device ${id} is in the foreground (since ${ago(now, device.appStateAt)}) and the IM backend has said nothing newer than the app's last call ${ago(now, device.lastHeartbeatAt)}, which counts as connected for the ${formatDuration(c.leaseMs)} presence lease: messages reach it over its connection`,
      );
    }
    if (c.connected) {
      return no(
        "foreground",
        `device ${id} came to the foreground ${ago(now, device.appStateAt)} and its last heartbeat was ${ago(now, device.lastHeartbeatAt)}, within the ${formatDuration(ctx.leaseMs)} lease: messages reach it over its connection`,
      );
    }
  }
  return activeElsewhere(device, siblings, now, ctx) ?? { eligible: true };
}
