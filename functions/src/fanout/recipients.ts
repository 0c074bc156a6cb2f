// Recipients -> batches, and the IDs of their push-log documents. Deterministic on purpose: a
// redelivered or republished event yields the same batches with the same IDs, so each batch's
// progress record is found again and nothing is sent twice. Which publication of a MsgKey a list
// is (its generation) and the epoch that makes a reused MsgKey a new message: messageRecord.ts.
import { createHash } from "node:crypto";
import type { MessageIdentity, PushEvent } from "./schemas";

/**
 * To_Account as a list, duplicates removed, sorted (by UTF-16 code units, the same everywhere).
 * Sorted before splitting: the same event republished with its recipients in another order, or
 * with repeats, yields the same batches with the same IDs, so nobody is pushed twice.
 */
export function recipientsOf(event: Pick<PushEvent, "To_Account">): string[] {
  const to = typeof event.To_Account === "string" ? [event.To_Account] : event.To_Account;
  return [...new Set(to)].sort();
}

export function splitIntoBatches<T>(items: T[], batchSize: number): T[][] {
  const size = Math.max(1, Math.floor(batchSize));
  const batches: T[][] = [];
  for (let i = 0; i < items.length; i += size) batches.push(items.slice(i, i + size));
  return batches;
}

const READABLE_KEY = /^[A-Za-z0-9._:-]{1,200}$/;

/**
 * The message key's part of push-log document IDs: the key itself when it is a readable, valid
 * Firestore ID (operators find it in the console), else "~" + its SHA-256 ("~" never appears in
 * readable keys, so the two forms cannot collide).
 */
export function msgKeyId(msgKey: string): string {
  if (READABLE_KEY.test(msgKey) && !/^__.*__$/.test(msgKey) && msgKey !== "." && msgKey !== "..") return msgKey;
  return `~${createHash("sha256").update(msgKey, "utf8").digest("hex")}`;
}

/**
 * A publication's identity: a hash of its whole recipient list, sorted and deduplicated (as
 * recipientsOf returns it), so a redelivery or a reordered or repeated republish is the same
 * publication. 64 bits: a collision would need two recipient lists of the same MsgKey.
 */
export function generationId(recipients: readonly string[]): string {
  return createHash("sha256").update(JSON.stringify([...new Set(recipients)].sort()), "utf8").digest("hex").slice(0, 16);
}

/**
 * A batch's push-log document: `{msgKeyId}__{epoch}__{generation}__{batchIndex}`. The epoch is
 * fresh for each use of a MsgKey (messageRecord.ts), so nothing left of an expired earlier use can
 * collide; the generation and the batch index are its place in the message.
 */
export function batchLogId(msgKey: string, message: MessageIdentity, batchIndex: number): string {
  return `${msgKeyId(msgKey)}__${message.epoch}__${message.generation}__${batchIndex}`;
}

/**
 * The ID a batch had before message records: its index and a hash of its recipients. Kept for
 * batch messages published by that version and still in flight when this one is deployed.
 */
export function legacyBatchLogId(msgKey: string, batchIndex: number, uids: readonly string[]): string {
  return `${msgKeyId(msgKey)}__${batchIndex}__${createHash("sha256").update(JSON.stringify([...uids].sort()), "utf8").digest("hex").slice(0, 16)}`;
}

/** Pub/Sub message IDs are digits in production and UUIDs in the emulator; hashed if anything else. */
export function rejectedLogId(eventId: string): string {
  return `rejected__${READABLE_KEY.test(eventId) ? eventId : createHash("sha256").update(eventId, "utf8").digest("hex")}`;
}
