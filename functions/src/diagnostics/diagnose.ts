// diagnosePush: every device of a user as the fan-out would judge it now (the sessions' own
// pushEligibility), the user's recent outcomes, and one sentence a support person can paste.
import { heartbeatLeaseMs, iosBadgesParam, presenceSettings, sessionPolicy, tokenStaleMs } from "../config";
import { currentEntry, readBadges, type BadgeEntry } from "../badges/store";
import { DomainError } from "../common/errors";
import { db } from "../common/firestore";
import { pushLogForUser } from "../fanout/pushLog";
import { formatDuration } from "../common/format";
import { presenceRecordsFor } from "../presence/log";
import { PREFS, messagePreferences } from "../preferences/read";
import { StoredPreferencesSchema, preferencesView, type PushPreferencesView } from "../preferences/schemas";
import { connectionOf, eligibilityConfig, pushEligibility, type Connection, type RecipientMessage } from "../sessions/eligibility";
import { USERS, parseUserDevices, type Device } from "../sessions/schemas";
import { resolveAccount } from "./account";
import { explain } from "./explain";
import { openedTimes, receiptId } from "./receipts";
import type { DiagnosePushRequest, DiagnosePushResponse, DiagnosedDevice, PresenceRecordView, RecentMessage } from "./schemas";
import { certificateLookup, hashPrefix, iso, isoOrNull, outcomeView, type CertificateLookup } from "./views";

export const RECENT_MESSAGES = 20;

const ago = (nowMs: number, t: { toMillis(): number } | null): string => (t ? `${formatDuration(nowMs - t.toMillis())} ago` : "at an unknown time");

/** What a device's state says in a few words, for "kicked by a login on X, which ..." clauses. */
function shortState(d: DiagnosedDevice): string {
  if (d.eligibility.eligible) return "would get pushes";
  switch (d.eligibility.reason) {
    case "no-token":
      return "has not reported a token";
    case "foreground":
      return "is in the foreground (messages reach it over its connection)";
    case "logged-out":
      return "has logged out since";
    case "kicked":
      return "was itself kicked since";
    case "token-stale":
      return "has a stale token";
    case "certificate-missing":
      return `has a token for push certificate ${d.token?.certificateId ?? "?"}, which no longer exists`;
    case "connected":
      return "is connected according to the IM backend, in the foreground (messages reach it over its connection)";
    case "active-elsewhere":
      return "is not pushed while the user is active on another device";
    case "platform-without-push":
      return `is a ${d.platform} app (reached over its connection, never by push)`;
    case "muted":
      return "is not pushed from a muted conversation";
    case "not-mentioned":
      return "is pushed only for mentions in this conversation";
    case "quiet-hours":
      return "is not pushed during the user's quiet hours";
    default:
      return `gets no pushes (${d.eligibility.reason})`;
  }
}

/** Why a foreground device counts as disconnected: the IM backend's Disconnect, an expired Connect, or a heartbeat older than the lease. */
function disconnectedWords(c: Connection, nowMs: number, device: Device): string {
  const p = c.presence;
  if (c.by === "im-backend" && p) {
    const why = p.reason ? `, reason ${p.reason}` : "";
    if (p.state === "disconnected") return `in the foreground but disconnected: the IM backend's ${p.action} ${ago(nowMs, p.eventTime)}${why}`;
    return `in the foreground, but the IM backend's Connect ${ago(nowMs, p.eventTime)} is older than the ${formatDuration(c.leaseMs)} presence lease (counted as killed)`;
  }
  return `in the foreground but silent for ${ago(nowMs, device.lastHeartbeatAt).replace(/ ago$/, "")} (counted as killed)`;
}

function deviceSentence(d: DiagnosedDevice, device: Device, connection: Connection, nowMs: number, recent: RecentMessage[]): string {
  const id = d.deviceId;
  if (d.eligibility.eligible) {
    const cert = d.token?.certificate;
    if (cert?.health?.state === "unhealthy") {
      return `${id} would be pushed, but FCM refused its push certificate ${cert.certificateId} (${cert.health.reason ?? "no reason recorded"}): pushes to it fail until the certificate's key is replaced`;
    }
    const state = device.appState === "background" ? `went to the background ${ago(nowMs, device.appStateAt)}` : disconnectedWords(connection, nowMs, device);
    return `${id} would get a push now (${state}; token reported ${ago(nowMs, device.token?.refreshedAt ?? null)})`;
  }
  switch (d.eligibility.reason) {
    case "kicked":
      return `${id} was kicked ${ago(nowMs, device.endedAt)} by a login on ${device.kickedByDeviceId ?? "another device"}`;
    case "logged-out":
      return `${id} logged out ${ago(nowMs, device.endedAt)}`;
    case "no-token": {
      // A token FCM refused was unbound: say so, it is the usual way a token disappears.
      const refused = recent
        .flatMap((m) => m.devices)
        .find((o) => o.deviceId === id && o.outcome === "failed" && ["token-unregistered", "token-invalid", "sender-mismatch"].includes(o.reason));
      const why = refused
        ? ` (FCM answered ${refused.error?.errorCode ?? refused.reason} to the push at ${refused.at}, so its token was removed: the app must report a new one)`
        : "";
      return `${id} is logged in (since ${ago(nowMs, device.loggedInAt)}) but has not reported a push token${why}`;
    }
    case "certificate-missing":
      return `${id}'s token is bound to push certificate ${d.token?.certificateId ?? "?"}, which no longer exists (deleted?)`;
    case "token-stale":
      return `${id}'s token was last reported ${ago(nowMs, device.token?.refreshedAt ?? null)}, so it counts as stale`;
    case "foreground":
      return `${id} is in the foreground and connected (last heartbeat ${ago(nowMs, device.lastHeartbeatAt)}): messages reach it over its connection, not by push`;
    case "connected": {
      const p = device.presence;
      const why = p?.reason ? `, reason ${p.reason}` : "";
      return `${id} is in the foreground and connected according to the IM backend (${p?.action ?? "Connect"} ${ago(nowMs, p?.eventTime ?? null)}${why}): messages reach it over its connection, not by push`;
    }
    case "active-elsewhere":
      return `${id} is not pushed now: ${d.eligibility.detail}`;
    case "platform-without-push":
      return `${id} is a ${device.platform} app: it is reached over its IM connection, never by push`;
    case "muted":
    case "not-mentioned":
    case "quiet-hours":
      return `${id} would not be pushed: ${d.eligibility.detail}`;
    default:
      return `${id}: ${d.eligibility.detail}`;
  }
}

/** An iPhone's badge as its next push would count from it (badges/store.ts). */
function badgeView(device: Device, badges: Record<string, BadgeEntry> | null): DiagnosedDevice["badge"] {
  if (device.platform !== "ios" || badges === null || device.session !== "logged-in") return null;
  const entry = currentEntry(badges[device.deviceId], device);
  return { count: entry.count, reportedAt: isoOrNull(entry.baseAt), conversations: entry.conversations };
}

function diagnoseDevice(
  device: Device,
  all: Device[],
  nowMs: number,
  certs: CertificateLookup,
  ctx: ReturnType<typeof eligibilityConfig>,
  message: RecipientMessage,
  badges: Record<string, BadgeEntry> | null,
): DiagnosedDevice {
  const eligibility = pushEligibility(device, new Date(nowMs), ctx, all, message);
  const token = device.token;
  const heartbeatAgeMs = nowMs - device.lastHeartbeatAt.toMillis();
  const connection = connectionOf(device, new Date(nowMs), ctx);
  const presence = device.presence;
  return {
    deviceId: device.deviceId,
    platform: device.platform,
    session: device.session,
    loggedInAt: iso(device.loggedInAt),
    endedAt: isoOrNull(device.endedAt),
    kickedByDeviceId: device.kickedByDeviceId,
    appState: device.appState,
    appStateAt: iso(device.appStateAt),
    unreadCount: device.unreadCount,
    lastHeartbeatAt: iso(device.lastHeartbeatAt),
    heartbeatAgeSeconds: Math.round(heartbeatAgeMs / 1000),
    heartbeatWithinLease: heartbeatAgeMs <= ctx.leaseMs,
    presence: presence
      ? { state: presence.state, action: presence.action, reason: presence.reason, eventTime: iso(presence.eventTime), appliedAt: iso(presence.at) }
      : null,
    connection: {
      connected: connection.connected,
      decidedBy: connection.by,
      at: new Date(connection.atMs).toISOString(),
      leaseSeconds: Math.round(connection.leaseMs / 1000),
      until: connection.connected ? new Date(connection.atMs + connection.leaseMs).toISOString() : null,
    },
    badge: badgeView(device, badges),
    token: token
      ? {
          hashPrefix: hashPrefix(token.tokenHash),
          certificateId: token.certificateId,
          boundAt: iso(token.boundAt),
          refreshedAt: iso(token.refreshedAt),
          ageSeconds: Math.round((nowMs - token.refreshedAt.toMillis()) / 1000),
          stale: nowMs - token.refreshedAt.toMillis() > ctx.tokenStaleMs,
          certificate: certs(token.certificateId),
        }
      : null,
    eligibility: eligibility.eligible
      ? { eligible: true, reason: null, detail: "", explanation: null }
      : { eligible: false, reason: eligibility.reason, detail: eligibility.detail, explanation: explain("skip-reason", eligibility.reason) },
    summary: "",
  };
}

async function recentMessages(uid: string): Promise<RecentMessage[]> {
  const items = await pushLogForUser(uid, RECENT_MESSAGES);
  const sent = items.flatMap((i) => i.entries.flatMap((e) => (e.outcome === "sent" && i.msgKey ? [{ msgKey: i.msgKey, epoch: i.epoch, uid, deviceId: e.deviceId }] : [])));
  const opened = await openedTimes(sent);
  return items.map((i) => ({
    msgKey: i.msgKey,
    logId: i.logId,
    from: i.from,
    at: iso(i.createdAt),
    rejected: i.rejected ? { reason: i.rejected.reason, detail: i.rejected.detail, explanation: explain("rejected-event", i.rejected.reason) } : null,
    devices: i.entries.map((e) => outcomeView(e, e.outcome === "sent" && i.msgKey ? (opened.get(receiptId(i.msgKey, uid, e.deviceId, i.epoch)) ?? null) : null)),
  }));
}

/** The configured policy; a misconfigured one is shown as such rather than failing the diagnosis. */
function policyName(): string {
  try {
    return sessionPolicy();
  } catch {
    return "invalid SESSION_POLICY (logins fail until it is fixed)";
  }
}

/** The user's presence events that were not applied, as diagnostics show them. */
async function presenceRecords(uid: string): Promise<PresenceRecordView[]> {
  const records = await presenceRecordsFor(uid);
  return records.map((r) => ({
    kind: r.kind,
    deviceId: r.deviceId,
    action: r.action,
    reason: r.reason,
    eventTime: isoOrNull(r.eventTime),
    count: r.count,
    detail: r.detail,
    issues: r.issues,
    lastAt: iso(r.lastAt),
    explanation: explain("rejected-event", r.kind),
  }));
}

/** The user's preferences as getPushPreferences shows them; unreadable ones as none (the fan-out ignores them too). */
function storedPreferences(raw: unknown): PushPreferencesView {
  const parsed = StoredPreferencesSchema.safeParse(raw ?? {});
  return preferencesView(parsed.success ? parsed.data : null);
}

/** "no such account": nothing in Firebase Auth or in the push records answers to what was asked. */
function noSuchAccount(request: DiagnosePushRequest): DomainError {
  const field = request.uid !== undefined ? "uid" : "account";
  const asked = request.uid ?? request.account ?? "";
  const how = request.uid !== undefined ? "uid" : "uid, e-mail address or phone number";
  return new DomainError("not-found", `${field}: no such account: Firebase Auth has no user with the ${how} "${asked}", and no device or push of it is recorded`, { field });
}

export async function diagnosePush(request: DiagnosePushRequest, nowMs = Date.now()): Promise<DiagnosePushResponse> {
  const account = await resolveAccount(request);
  if (account.uid === null) throw noSuchAccount(request);
  const uid = account.uid;
  const badgesOn = iosBadgesParam.value().trim() !== "off";
  const [snap, certs, recent, unapplied, badges] = await Promise.all([
    db().collection(USERS).doc(uid).get(),
    certificateLookup(),
    recentMessages(uid),
    presenceRecords(uid),
    badgesOn ? readBadges(uid) : Promise.resolve(null),
  ]);
  // An IM account need not be a Firebase user (the IM backend may push to anyone): one the push
  // or presence records know is diagnosed; one nobody knows is said to be no account.
  if (!account.inAuth && !snap.exists && recent.length === 0 && unapplied.length === 0) throw noSuchAccount(request);
  const displayName = account.inAuth ? account.displayName : null;
  let devices: Record<string, Device>;
  try {
    devices = parseUserDevices(snap.exists ? snap.data() : undefined);
  } catch {
    throw new DomainError("failed-precondition", `the stored device record of ${uid} (users/${uid}) does not match the expected format: fix or delete it; the app's next login rewrites it`);
  }
  const ctx = eligibilityConfig((id) => certs(id).exists);
  const presence = presenceSettings();
  const list = Object.values(devices).sort((a, b) => b.loggedInAt.toMillis() - a.loggedInAt.toMillis());
  const conversation = request.conversation ?? null;
  const mentioned = request.mentioned ?? false;
  const message: RecipientMessage = { conversation: conversation ?? "", mentioned, prefs: messagePreferences(snap, conversation) };
  const diagnosed = list.map((d) => diagnoseDevice(d, list, nowMs, certs, ctx, message, badges));
  diagnosed.forEach((d, i) => {
    const device = list[i] as Device;
    d.summary = deviceSentence(d, device, connectionOf(device, new Date(nowMs), ctx), nowMs, recent);
  });
  const eligible = diagnosed.filter((d) => d.eligibility.eligible);
  // Operators know the name; the uid follows for the records.
  const who = displayName ? `${displayName} (${uid})` : uid;

  let summary: string;
  if (diagnosed.length === 0) {
    summary = `${who} has never logged in on any device: no push is possible until the app calls login and then setOfflinePushToken`;
  } else if (eligible.length > 0) {
    summary = eligible.map((d) => `${who}'s ${d.summary}`).join("; ");
  } else {
    const byId = new Map(diagnosed.map((d) => [d.deviceId, d]));
    const sentences = diagnosed.map((d, i) => {
      const device = list[i] as Device;
      const kicker = d.eligibility.reason === "kicked" && device.kickedByDeviceId ? byId.get(device.kickedByDeviceId) : undefined;
      return kicker ? `${d.summary}, which ${shortState(kicker)}` : d.summary;
    });
    // A kicker described in a kicked device's clause need not be repeated on its own.
    const described = new Set(diagnosed.flatMap((d, i) => (d.eligibility.reason === "kicked" && byId.has((list[i] as Device).kickedByDeviceId ?? "") ? [(list[i] as Device).kickedByDeviceId] : [])));
    const shown = sentences.filter((_, i) => !described.has((diagnosed[i] as DiagnosedDevice).deviceId) || (diagnosed[i] as DiagnosedDevice).eligibility.reason === "kicked");
    summary = `no device of ${who} would get a push: ${shown.join("; ")}`;
  }

  return {
    uid,
    displayName,
    email: account.inAuth ? account.email : null,
    phoneNumber: account.inAuth ? account.phoneNumber : null,
    authAccount: account.inAuth,
    foundBy: account.inAuth ? account.foundBy : "uid",
    checkedAt: new Date(nowMs).toISOString(),
    summary,
    wouldPushNow: eligible.length > 0,
    eligibleDeviceIds: eligible.map((d) => d.deviceId),
    devices: diagnosed,
    recent,
    presenceRecords: unapplied,
    message: { conversation, mentioned },
    preferences: storedPreferences(snap.get(PREFS)),
    settings: {
      sessionPolicy: policyName(),
      heartbeatLeaseSeconds: Math.round(heartbeatLeaseMs() / 1000),
      tokenStaleDays: Math.round(tokenStaleMs() / 86_400_000),
      presenceSource: presence.invalidSource === null ? presence.source : `invalid PRESENCE_SOURCE "${presence.invalidSource}" (app is used until it is fixed)`,
      presenceLeaseSeconds: Math.round(presence.leaseMs / 1000),
      activeElsewhereSeconds: Math.round(presence.activeElsewhereMs / 1000),
      iosBadges: badgesOn ? "on" : "off",
    },
  };
}
