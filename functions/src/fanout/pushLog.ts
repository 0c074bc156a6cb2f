// The push log: what happened to each message on each device. Read by the troubleshooting tools.
//   pushLog/{msgKeyId}__{epoch}__{generation}__{batchIndex}
//                                     kind "batch": one batch of one publication of a message, its
//                                     counts, also the batch's progress record (progress.ts). The
//                                     epoch and generation come from the message record
//                                     (messageRecord.ts: pushMessages/{msgKeyId})
//   pushLog/{logId}/outcomes/{claim}-{seq}
//                                     up to 100 device outcomes of the batch each (sent / skipped /
//                                     failed, reason, FCM name or error), with their uids
//   pushLog/rejected__{eventId}       kind "rejected": an event acknowledged without any push
//                                     (invalid, older than MAX_EVENT_AGE_SECONDS, unprocessable,
//                                     too many publications of its MsgKey)
// Every document has `msgKey` (query by message), `uids` (array-contains: query by user),
// `createdAt` and `expireAt`: a TTL policy on each collection group (pushLog, outcomes; and
// pushMessages, generations) deletes it, each level on its own, so readers ignore what has expired
// and what belongs to an earlier use of the MsgKey (another epoch).
import { Timestamp, type DocumentReference } from "firebase-admin/firestore";
import { db } from "../common/firestore";
import { clip } from "./message";
import {
  BatchLogSchema,
  OutcomeShardSchema,
  RejectedLogSchema,
  type BatchLog,
  type PushLogEntry,
  type RejectedLog,
} from "./schemas";
import { rejectedLogId } from "./recipients";
import { currentMessageRecord } from "./messageRecord";
import type { MessageRecord } from "./schemas";

export const PUSH_LOG = "pushLog";
/** Each batch's outcome shards: pushLog/{logId}/outcomes/{claim}-{seq} (written by checkpoints.ts). */
export const OUTCOMES = "outcomes";

/**
 * Entries per shard document. Worst case of one entry, with every string at its bound (uid and
 * deviceId 128 characters each by their schemas, the rest clipped by boundedEntry): about 1.8 KB
 * with field names, so a full shard is under 200 KB and its `uids` list under 14 KB: a fifth of
 * Firestore's 1 MiB. The batch document itself holds no entries: at most 500 uids of 128
 * characters (65 KB), its notes (clipped) and counters.
 */
export const SHARD_ENTRIES = 100;
const MAX_DETAIL_CHARS = 600;
const MAX_ERROR_MESSAGE_CHARS = 300;
const MAX_SHORT_CHARS = 256;

/** The entry with every free-text field clipped to its bound (see SHARD_ENTRIES). */
export function boundedEntry(e: PushLogEntry): PushLogEntry {
  switch (e.outcome) {
    case "sent":
      return { ...e, fcmName: clip(e.fcmName, MAX_SHORT_CHARS) };
    case "skipped":
      return { ...e, detail: clip(e.detail, MAX_DETAIL_CHARS) };
    case "failed":
      return {
        ...e,
        detail: clip(e.detail, MAX_DETAIL_CHARS),
        error: e.error
          ? {
              kind: clip(e.error.kind, 64),
              httpStatus: e.error.httpStatus,
              status: e.error.status === null ? null : clip(e.error.status, 64),
              errorCode: e.error.errorCode === null ? null : clip(e.error.errorCode, 64),
              message: clip(e.error.message, MAX_ERROR_MESSAGE_CHARS),
            }
          : null,
      };
  }
}

/** One key per device outcome; a recipient's outcome as a whole (no device) has deviceId null. */
export const entryKey = (e: { uid: string; deviceId: string | null }): string => `${e.uid}\u0000${e.deviceId ?? ""}`;

export function countOutcomes(entries: PushLogEntry[]): { sent: number; skipped: number; failed: number } {
  const counts = { sent: 0, skipped: 0, failed: 0 };
  for (const e of entries) counts[e.outcome]++;
  return counts;
}

export function batchRef(id: string): DocumentReference {
  return db().collection(PUSH_LOG).doc(id);
}

/** Shard IDs are `{claim}-{seq}`: sorting by both numbers gives the order outcomes were recorded in. */
function shardOrder(id: string): [number, number] {
  const [claim, seq] = id.split("-").map(Number);
  return [claim ?? 0, seq ?? 0];
}

/** Every outcome recorded for a batch (one query), in the order they were recorded. */
export async function readBatchEntries(ref: DocumentReference): Promise<PushLogEntry[]> {
  const snaps = await ref.collection(OUTCOMES).get();
  const shards = snaps.docs.map((d) => ({ order: shardOrder(d.id), entries: OutcomeShardSchema.parse(d.data()).entries }));
  shards.sort((a, b) => a.order[0] - b.order[0] || a.order[1] - b.order[1]);
  return shards.flatMap((s) => s.entries);
}

export type RejectedInput = Omit<RejectedLog, "kind" | "batchIndex" | "createdAt" | "expireAt">;

/** Idempotent per event: a redelivery overwrites the same document. */
export async function recordRejected(input: RejectedInput, ttlMs: number, nowMs = Date.now()): Promise<string> {
  const id = rejectedLogId(input.eventId);
  const doc: RejectedLog = {
    kind: "rejected",
    batchIndex: null,
    ...input,
    createdAt: Timestamp.fromMillis(nowMs),
    expireAt: Timestamp.fromMillis(nowMs + ttlMs),
  };
  await db().collection(PUSH_LOG).doc(id).set(doc);
  return id;
}

export type PushLogDoc = (BatchLog & { id: string }) | (RejectedLog & { id: string });

function parseLogDoc(id: string, data: unknown): PushLogDoc {
  const kind = (data as { kind?: unknown } | undefined)?.kind;
  return kind === "rejected" ? { id, ...RejectedLogSchema.parse(data) } : { id, ...BatchLogSchema.parse(data) };
}

/** A batch of the message's current use: the record's epoch; without a record, a batch recorded before records existed. */
const ofCurrentUse = (doc: BatchLog, record: MessageRecord | null): boolean => (record ? doc.epoch === record.epoch : doc.epoch === undefined);

/**
 * A message's current use: its record, its rejected events and the batches of its epoch, by
 * publication and batch index (index: msgKey ASC, batchIndex ASC). What has expired, and the
 * batches of an earlier use of the MsgKey not yet deleted, are left out.
 */
export async function pushLogForMessage(msgKey: string, nowMs = Date.now()): Promise<{ record: MessageRecord | null; docs: PushLogDoc[] }> {
  const [record, snaps] = await Promise.all([currentMessageRecord(msgKey, nowMs), db().collection(PUSH_LOG).where("msgKey", "==", msgKey).orderBy("batchIndex").get()]);
  const docs = snaps.docs
    .map((d) => parseLogDoc(d.id, d.data()))
    .filter((d) => d.expireAt.toMillis() > nowMs && (d.kind === "rejected" || ofCurrentUse(d, record)));
  const place = (d: PushLogDoc): [number, number] => (d.kind === "rejected" ? [-1, -1] : [d.generation ?? 0, d.batchIndex]);
  docs.sort((a, b) => place(a)[0] - place(b)[0] || place(a)[1] - place(b)[1]);
  return { record, docs };
}

export interface UserPushLogItem {
  logId: string;
  msgKey: string | null;
  /** The message record's epoch the batch belongs to (null: a rejected event, or a batch from before records). */
  epoch: string | null;
  from: string | null;
  createdAt: Timestamp;
  /** This user's entries in a batch document (empty for a rejected event). */
  entries: PushLogEntry[];
  rejected: Pick<RejectedLog, "reason" | "detail"> | null;
}

/**
 * The latest messages that concerned a user, newest first (index: uids CONTAINS, createdAt DESC);
 * what has expired is left out. A batch names the recipients it decides (`uids`): a recipient
 * listed again by a later publication of the MsgKey appears once, with the publication that owns it.
 */
export async function pushLogForUser(uid: string, limit = 20, nowMs = Date.now()): Promise<UserPushLogItem[]> {
  const snaps = await db().collection(PUSH_LOG).where("uids", "array-contains", uid).orderBy("createdAt", "desc").limit(limit).get();
  const items: UserPushLogItem[] = snaps.docs.flatMap((d): UserPushLogItem[] => {
    const doc = parseLogDoc(d.id, d.data());
    if (doc.expireAt.toMillis() <= nowMs) return [];
    if (doc.kind === "rejected") {
      return [{ logId: doc.id, msgKey: doc.msgKey, epoch: null, from: doc.from, createdAt: doc.createdAt, entries: [], rejected: { reason: doc.reason, detail: doc.detail } }];
    }
    return [{ logId: doc.id, msgKey: doc.msgKey, epoch: doc.epoch ?? null, from: doc.from, createdAt: doc.createdAt, entries: [], rejected: null }];
  });
  // The user's own outcomes of each batch: its shards that name the user (one query per batch).
  await Promise.all(
    items.map(async (item) => {
      if (item.rejected) return;
      const shards = await db().collection(PUSH_LOG).doc(item.logId).collection(OUTCOMES).where("uids", "array-contains", uid).get();
      item.entries = shards.docs.flatMap((d) => OutcomeShardSchema.parse(d.data()).entries.filter((e) => e.uid === uid));
    }),
  );
  return items;
}
