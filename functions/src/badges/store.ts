// The badge count of each iPhone: pushBadges/{uid}, one small document per user (not users/{uid},
// which session writes contend on), server-only, expiring like the push log.
//   { devices: { [deviceId]: BadgeEntry }, updatedAt, expireAt }
// A device's count starts from what its app last reported (doBackground {unreadCount}), goes up by
// one with each message pushed to it, and down when a Read clears a conversation (lowerBadges).
// One transaction per batch assigns the badges of the batch's iPhones before their first send, so
// the value sent is the value committed; the count per conversation says how much a Read takes off.
// Exactly once per (MsgKey, device), like the sends: a message already counted for a device (a
// retry, a takeover) gets the badge it got then, and counts nothing more.
import { createHash } from "node:crypto";
import { Timestamp, type DocumentSnapshot } from "firebase-admin/firestore";
import * as logger from "firebase-functions/logger";
import { z } from "zod";
import { db, runBoundedTransaction } from "../common/firestore";
import { TimestampSchema, type Device } from "../sessions/schemas";

export const PUSH_BADGES = "pushBadges";
/** The largest badge: APNs takes an int32. */
export const MAX_BADGE = 2_147_483_647;
/** Conversations counted per device: the ones with the most unread pushes are kept. */
export const MAX_BADGE_CONVERSATIONS = 100;
/** Messages remembered per device, so a repeated batch counts nothing twice. */
export const RECENT_MESSAGES = 20;

export const BadgeEntrySchema = z.object({
  sessionId: z.string(),
  count: z.number().int().min(0),
  /** The device's appStateAt when its app last reported an unreadCount the count started from. */
  baseAt: TimestampSchema.nullable(),
  /** Unread pushes per conversation (since the app's report): what a Read of it takes off. */
  conversations: z.record(z.string(), z.number().int().min(0)),
  /** The messages counted last (`m`: a hash of the MsgKey, `b`: the badge it got), newest last (Firestore holds no array in an array). */
  recent: z.array(z.object({ m: z.string(), b: z.number().int().min(0) })),
});
export type BadgeEntry = z.output<typeof BadgeEntrySchema>;
const BadgeDocSchema = z.object({ devices: z.record(z.string(), BadgeEntrySchema) });

const withoutKey = (counts: Record<string, number>, key: string): Record<string, number> => Object.fromEntries(Object.entries(counts).filter(([k]) => k !== key));

/** A device of a batch whose push carries a badge. */
export interface BadgeRequest {
  uid: string;
  device: Pick<Device, "deviceId" | "sessionId" | "unreadCount" | "appStateAt">;
  conversation: string;
  msgKey: string;
}

const badgeRef = (uid: string) => db().collection(PUSH_BADGES).doc(uid);
const msgKeyTag = (msgKey: string) => createHash("sha256").update(msgKey, "utf8").digest("base64url").slice(0, 16);
export const badgeKey = (uid: string, deviceId: string) => `${uid}\u0000${deviceId}`;

function entriesOf(snap: DocumentSnapshot): Record<string, BadgeEntry> {
  if (!snap.exists) return Object.create(null) as Record<string, BadgeEntry>;
  const parsed = BadgeDocSchema.safeParse(snap.data());
  // An unreadable document starts over (the next doBackground resets the counts anyway).
  if (!parsed.success) logger.error("unreadable pushBadges document: its counts start over", { uid: snap.id });
  return Object.assign(Object.create(null) as Record<string, BadgeEntry>, parsed.success ? parsed.data.devices : {});
}

/**
 * The entry a device counts from: kept while it is the same session and the app has reported no
 * newer unreadCount; otherwise it starts from the app's report (or 0 in a new session without one).
 */
export function currentEntry(entry: BadgeEntry | undefined, device: BadgeRequest["device"]): BadgeEntry {
  const reported = device.unreadCount;
  const newReport = reported !== null && (entry?.baseAt == null || device.appStateAt.toMillis() > entry.baseAt.toMillis());
  if (entry && entry.sessionId === device.sessionId && !newReport) return entry;
  return {
    sessionId: device.sessionId,
    count: Math.min(reported ?? 0, MAX_BADGE),
    baseAt: reported !== null ? device.appStateAt : null,
    conversations: {},
    recent: entry && entry.sessionId === device.sessionId ? entry.recent : [],
  };
}

/** One more unread push of `conversation` (once per MsgKey): the new entry and the badge to send. */
export function countPush(entry: BadgeEntry, conversation: string, msgKey: string): { entry: BadgeEntry; badge: number } {
  const tag = msgKeyTag(msgKey);
  const seen = entry.recent.find((r) => r.m === tag);
  if (seen) return { entry, badge: seen.b };
  const badge = Math.min(entry.count + 1, MAX_BADGE);
  const conversations = { ...entry.conversations, [conversation]: (entry.conversations[conversation] ?? 0) + 1 };
  const kept = Object.entries(conversations).sort((a, b) => b[1] - a[1]).slice(0, MAX_BADGE_CONVERSATIONS);
  return {
    entry: { ...entry, count: badge, conversations: Object.fromEntries(kept), recent: [...entry.recent, { m: tag, b: badge }].slice(-RECENT_MESSAGES) },
    badge,
  };
}

/**
 * The badges of a batch's iPhones, counted in one transaction (one read of their users' badge
 * documents, one commit) before any of them is sent. Keyed by badgeKey(uid, deviceId).
 */
export async function assignBadges(requests: BadgeRequest[], ttlMs: number): Promise<Map<string, number>> {
  const uids = [...new Set(requests.map((r) => r.uid))];
  return runBoundedTransaction(async (tx) => {
    const snaps = await tx.getAll(...uids.map(badgeRef));
    const byUid = new Map(snaps.map((snap) => [snap.id, entriesOf(snap)]));
    const badges = new Map<string, number>();
    for (const r of requests) {
      const devices = byUid.get(r.uid) as Record<string, BadgeEntry>;
      const counted = countPush(currentEntry(devices[r.device.deviceId], r.device), r.conversation, r.msgKey);
      devices[r.device.deviceId] = counted.entry;
      badges.set(badgeKey(r.uid, r.device.deviceId), counted.badge);
    }
    const now = Timestamp.now();
    for (const uid of uids) tx.set(badgeRef(uid), { devices: byUid.get(uid), updatedAt: now, expireAt: Timestamp.fromMillis(now.toMillis() + ttlMs) });
    return badges;
  });
}

/**
 * A push that failed for good never showed: its count is given back, best effort (a failure is
 * logged; the next unreadCount the app reports sets the count right anyway).
 */
export async function giveBadgesBack(failed: Array<{ uid: string; deviceId: string; conversation: string; msgKey: string }>): Promise<void> {
  const uids = [...new Set(failed.map((f) => f.uid))];
  if (uids.length === 0) return;
  try {
    await runBoundedTransaction(async (tx) => {
      const snaps = await tx.getAll(...uids.map(badgeRef));
      const byUid = new Map(snaps.map((snap) => [snap.id, entriesOf(snap)]));
      for (const f of failed) {
        const devices = byUid.get(f.uid) as Record<string, BadgeEntry>;
        const entry = devices[f.deviceId];
        const tag = msgKeyTag(f.msgKey);
        if (!entry?.recent.some((r) => r.m === tag)) continue; // counted in another session, or reset since
        const left = (entry.conversations[f.conversation] ?? 0) - 1;
        const conversations = withoutKey(entry.conversations, f.conversation);
        if (left > 0) conversations[f.conversation] = left;
        devices[f.deviceId] = { ...entry, count: Math.max(0, entry.count - 1), conversations, recent: entry.recent.filter((r) => r.m !== tag) };
      }
      for (const uid of uids) if (snaps.find((s) => s.id === uid)?.exists) tx.update(badgeRef(uid), { devices: byUid.get(uid), updatedAt: Timestamp.now() });
    });
  } catch (err) {
    logger.warn("badge counts of failed iOS pushes not given back (the app's next unreadCount sets them right)", { devices: failed.length, error: String(err) });
  }
}

/** An iPhone's badge after a Read: the badge it is to show now. */
export interface LoweredBadge {
  deviceId: string;
  sessionId: string;
  badge: number;
  /** How many unread pushes of the conversation this Read took off (0: none, e.g. a redelivered Read). */
  cleared: number;
}

/**
 * What a Read of `conversation` does to the user's iPhones' badges (the conversations work's Read
 * event calls it): each device's count of that conversation is taken off its badge, atomically
 * (one transaction on the user's badge document). Returns every iPhone of the document with the
 * badge it is to show now and what this call took off: a Read delivered again (its first attempt
 * lowered the counts and crashed before sending) still learns each device's badge, with
 * `cleared: 0`. The Read sends the devices it clears a silent update with that badge
 * (buildApnsClearMessage). `readOnDeviceId`: the device the user read it on, whose app sets its
 * own badge, is left out of the answer (its count is lowered all the same).
 */
export async function lowerBadges(uid: string, conversation: string, ttlMs: number, readOnDeviceId?: string): Promise<LoweredBadge[]> {
  return runBoundedTransaction(async (tx) => {
    const snap = await tx.get(badgeRef(uid));
    if (!snap.exists) return [];
    const devices = entriesOf(snap);
    const lowered: LoweredBadge[] = [];
    let changed = false;
    for (const [deviceId, entry] of Object.entries(devices)) {
      const n = entry.conversations[conversation] ?? 0;
      const badge = Math.max(0, entry.count - n);
      if (n > 0) {
        changed = true;
        devices[deviceId] = { ...entry, count: badge, conversations: withoutKey(entry.conversations, conversation) };
      }
      if (deviceId !== readOnDeviceId) lowered.push({ deviceId, sessionId: entry.sessionId, badge, cleared: n });
    }
    if (changed) {
      const now = Timestamp.now();
      tx.set(badgeRef(uid), { devices, updatedAt: now, expireAt: Timestamp.fromMillis(now.toMillis() + ttlMs) });
    }
    return lowered;
  });
}

/** The badge documents of some users, as operators see them (diagnosePush): deviceId -> count. */
export async function readBadges(uid: string): Promise<Record<string, BadgeEntry>> {
  return entriesOf(await badgeRef(uid).get());
}
