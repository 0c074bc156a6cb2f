// The app's receipt that the user opened a push:
//   pushOpened/{sha256(msgKey, epoch, uid, deviceId)}   { msgKey, epoch, uid, deviceId, certificateId, openedAt, expireAt }
// Accepted only for a device the push log shows as sent for that message and that user, so a
// receipt can only ever exist once per sent device: create() of the receipt and the statistics
// increment go in one atomic commit, and a repeat fails the create and counts nothing. The epoch
// is the message record's (fanout/messageRecord.ts): a MsgKey reused after its log expired is a
// new message, whose receipts are not the old one's.
import { createHash } from "node:crypto";
import { Timestamp } from "firebase-admin/firestore";
import * as logger from "firebase-functions/logger";
import { db, grpcCode } from "../common/firestore";
import { fanoutSettings } from "../config";
import { currentMessageRecord } from "../fanout/messageRecord";
import { OUTCOMES, PUSH_LOG } from "../fanout/pushLog";
import { OutcomeShardSchema } from "../fanout/schemas";
import { emptyDelta, writeDelta } from "../fanout/pushStats";

export const PUSH_OPENED = "pushOpened";
/** Batch documents of one message that may name one user (a MsgKey republished with other recipients). */
const MAX_BATCHES_PER_RECEIPT = 5;
const ALREADY_EXISTS = 6;

/** `epoch` null: a push recorded before message records (its receipt keeps the ID it had then). */
export function receiptId(msgKey: string, uid: string, deviceId: string, epoch: string | null): string {
  const key = epoch === null ? `${msgKey}\u0000${uid}\u0000${deviceId}` : `${msgKey}\u0000${epoch}\u0000${uid}\u0000${deviceId}`;
  return createHash("sha256").update(key, "utf8").digest("hex");
}

const receiptRef = (id: string) => db().collection(PUSH_OPENED).doc(id);

/** The certificate a sent push to this device of this user used, or null when no such push is recorded. */
async function sentCertificate(msgKey: string, epoch: string | null, uid: string, deviceId: string): Promise<number | null> {
  // Index: pushLog (msgKey ASC, uids CONTAINS). A few batch documents at most, then their shards that name the user.
  const batches = await db().collection(PUSH_LOG).where("msgKey", "==", msgKey).where("uids", "array-contains", uid).limit(MAX_BATCHES_PER_RECEIPT).get();
  for (const batch of batches.docs) {
    // Only the message's current use (an earlier use's batches may linger until TTL deletes them).
    if (batch.get("kind") !== "batch" || ((batch.get("epoch") as unknown) ?? null) !== epoch) continue;
    const shards = await batch.ref.collection(OUTCOMES).where("uids", "array-contains", uid).get();
    for (const shard of shards.docs) {
      const parsed = OutcomeShardSchema.safeParse(shard.data());
      if (!parsed.success) continue;
      const sent = parsed.data.entries.find((e) => e.outcome === "sent" && e.uid === uid && e.deviceId === deviceId);
      if (sent?.outcome === "sent") return sent.certificateId;
    }
  }
  return null;
}

/**
 * Records the receipt and counts it, once. Returns whether it was recorded (for logs and tests
 * only: the caller answers the same either way).
 */
export async function recordOpened(msgKey: string, uid: string, deviceId: string, nowMs = Date.now()): Promise<"recorded" | "repeat" | "ignored"> {
  const epoch = (await currentMessageRecord(msgKey, nowMs))?.epoch ?? null;
  const id = receiptId(msgKey, uid, deviceId, epoch);
  // A repeat is the common case worth a cheap answer (the app retries): a read, no query.
  if ((await receiptRef(id).get()).exists) return "repeat";
  const certificateId = await sentCertificate(msgKey, epoch, uid, deviceId);
  if (certificateId === null) return "ignored";
  const batch = db().batch();
  batch.create(receiptRef(id), {
    msgKey,
    ...(epoch !== null ? { epoch } : {}),
    uid,
    deviceId,
    certificateId,
    openedAt: Timestamp.fromMillis(nowMs),
    expireAt: Timestamp.fromMillis(nowMs + fanoutSettings().pushLogTtlMs),
  });
  const delta = emptyDelta();
  delta.opened = 1;
  delta.byCertificate[String(certificateId)] = { sent: 0, failed: 0, opened: 1, failedByReason: {}, failedByErrorCode: {} };
  writeDelta(batch, nowMs, id, delta);
  try {
    await batch.commit();
  } catch (err) {
    // Two taps racing: the other commit created the receipt (and counted it); this one wrote nothing.
    if (grpcCode(err) === ALREADY_EXISTS) return "repeat";
    throw err;
  }
  logger.info("push opened", { msgKey, uid, deviceId });
  return "recorded";
}

/** When each of these (msgKey, epoch, uid, deviceId) was opened, keyed by receiptId; one getAll per 300. */
export async function openedTimes(keys: Array<{ msgKey: string; epoch: string | null; uid: string; deviceId: string }>): Promise<Map<string, string>> {
  const ids = [...new Set(keys.map((k) => receiptId(k.msgKey, k.uid, k.deviceId, k.epoch)))];
  const result = new Map<string, string>();
  for (let i = 0; i < ids.length; i += 300) {
    const snaps = await db().getAll(...ids.slice(i, i + 300).map(receiptRef));
    for (const snap of snaps) {
      const at = snap.exists ? (snap.get("openedAt") as unknown) : undefined;
      if (at instanceof Timestamp) result.set(snap.id, at.toDate().toISOString());
    }
  }
  return result;
}
