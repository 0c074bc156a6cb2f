// A Read: `Account` read `Conversation` (on `DeviceId`). Each of the account's devices that got a
// push in that conversation since its last clear, except DeviceId, gets one data-only
// `{type: "clear", conversation}` (followUpMessage.ts), exactly once per EventKey and device
// (followUp.ts). "Since its last clear" comes from the push log: the account's batches in the
// conversation (index: pushLog uids CONTAINS, conversation ASC, createdAt DESC), newest first, up
// to the event's publication, until the last Read of that conversation (a Read is recorded as a
// batch of the conversation too). Nothing is sent to a device that got no push there.
import { Timestamp } from "firebase-admin/firestore";
import { db } from "../common/firestore";
import { counted } from "../common/format";
import type { FanoutSettings } from "../config";
import { lowerBadges } from "../badges/store";
import { buildApnsClearMessage } from "./apnsMessage";
import { clearMessage } from "./followUpMessage";
import { processFollowUp, type FollowUpResult, type FollowUpTarget } from "./followUp";
import { OUTCOMES, PUSH_LOG } from "./pushLog";
import { msgKeyId } from "./recipients";
import { BatchLogSchema, OutcomeShardSchema, type ReadEvent } from "./schemas";

/** Batches of the conversation looked at, newest first: a user's last clear is rarely further back. */
export const MAX_READ_SCAN = 100;
/** Messages a Read names as cleared (BatchLog.follows), newest first: their traces show the Read. */
export const MAX_FOLLOWED = 50;

export const readLogId = (eventKey: string) => `read__${msgKeyId(eventKey)}`;

export interface PushedSinceClear {
  devices: FollowUpTarget[];
  /** The messages those devices were pushed, newest first (at most MAX_FOLLOWED). */
  msgKeys: string[];
  /** The last Read before this one (its log ID), where the scan stopped; null: none in the log. */
  lastRead: string | null;
  /** Read calls made: the scan, and one query per message batch found. */
  reads: number;
}

/**
 * The account's devices pushed in the conversation after its last Read, up to `untilMs` (the
 * event's publication, so that a redelivery finds the same devices, not messages pushed after it).
 */
export async function pushedSinceLastClear(account: string, conversation: string, untilMs: number, selfLogId: string, nowMs = Date.now()): Promise<PushedSinceClear> {
  const snaps = await db()
    .collection(PUSH_LOG)
    .where("uids", "array-contains", account)
    .where("conversation", "==", conversation)
    .where("createdAt", "<=", Timestamp.fromMillis(untilMs))
    .orderBy("createdAt", "desc")
    .limit(MAX_READ_SCAN)
    .get();
  const batches: string[] = [];
  const keyOf = new Map<string, string>();
  let lastRead: string | null = null;
  for (const snap of snaps.docs) {
    if (snap.id === selfLogId) continue;
    const parsed = BatchLogSchema.safeParse(snap.data());
    if (!parsed.success || parsed.data.expireAt.toMillis() <= nowMs) continue;
    if (parsed.data.event === "read") {
      lastRead = snap.id;
      break;
    }
    // A Recall's replacement sits in the shade as the original did: the original's batch names the device.
    if (parsed.data.event === "recall") continue;
    batches.push(snap.id);
    keyOf.set(snap.id, parsed.data.msgKey);
  }
  // The account's own outcomes of each batch: its shards that name it (one query per batch, together).
  const sent = await Promise.all(
    batches.map(async (id) => {
      const shards = await db().collection(PUSH_LOG).doc(id).collection(OUTCOMES).where("uids", "array-contains", account).get();
      return shards.docs.flatMap((d) => OutcomeShardSchema.parse(d.data()).entries.filter((e) => e.uid === account && e.outcome === "sent").map((e) => e.deviceId as string));
    }),
  );
  const devices = new Set<string>();
  const msgKeys: string[] = [];
  batches.forEach((id, i) => {
    const ids = sent[i] ?? [];
    for (const deviceId of ids) devices.add(deviceId);
    const key = keyOf.get(id) as string;
    if (ids.length > 0 && !msgKeys.includes(key) && msgKeys.length < MAX_FOLLOWED) msgKeys.push(key);
  });
  return { devices: [...devices].sort().map((deviceId) => ({ uid: account, deviceId })), msgKeys, lastRead, reads: 1 + batches.length };
}

export async function processRead(event: ReadEvent, d: { eventId: string; publishTimeMs: number }, settings: FanoutSettings, kek: () => Buffer): Promise<FollowUpResult> {
  const logId = readLogId(event.EventKey);
  const found = await pushedSinceLastClear(event.Account, event.Conversation, d.publishTimeMs, logId);
  const targets = found.devices.filter((t) => t.deviceId !== event.DeviceId);
  const notes = [
    `${event.Account} read ${event.Conversation}${event.DeviceId !== undefined ? ` on ${event.DeviceId} (not cleared there)` : ""}: ${counted(targets.length, "device")} pushed there since ${found.lastRead ? `the last Read (${found.lastRead})` : "the push log began"}`,
  ];
  const badges = new Map<string, number>();
  return processFollowUp(
    {
      logId,
      identity: {
        msgKey: event.EventKey,
        from: event.Account,
        batchIndex: 0,
        batchCount: 1,
        eventId: d.eventId,
        uids: [event.Account],
        notes,
        conversation: event.Conversation,
        event: "read",
        follows: found.msgKeys,
        publishTime: new Date(d.publishTimeMs).toISOString(),
      },
      targets,
      // An iPhone's clear is a silent update that also sets its badge, lowered by this conversation's
      // pushes (badges/store.ts); the app's own device (DeviceId) sets its badge itself.
      prepare: async () => {
        if (settings.iosBadges === false || !targets.length) return;
        for (const l of await lowerBadges(event.Account, event.Conversation, settings.pushLogTtlMs, event.DeviceId)) badges.set(l.deviceId, l.badge);
      },
      messageFor: (recipient, token) =>
        recipient.device.platform === "ios" ? buildApnsClearMessage(token, event.Conversation, badges.get(recipient.deviceId)) : clearMessage(token, event.Conversation),
      priorReads: found.reads,
      deliveryId: d.eventId,
      publishTimeMs: d.publishTimeMs,
    },
    settings,
    kek,
  );
}
