// The message record: one per MsgKey, pushMessages/{msgKeyId}. It keeps two promises that a
// batch's own progress record cannot:
// - Exactly once per (MsgKey, device), whatever the recipient list. Each distinct recipient list
//   published under a MsgKey is a publication (a "generation"), numbered in the order they were
//   registered; a recipient belongs to the first publication that listed it. A later publication's
//   batches decide only the recipients it owns; the others are decided by the earlier
//   publication's batch, which its own Pub/Sub message retries until it is done. A redelivery, or
//   a republish of the same list in another order or with repeats, is the same publication: the
//   same batches, found done.
// - A reused MsgKey is a new message. The record's `epoch`, drawn when the record is created, is in
//   every batch ID; a record whose expireAt has passed counts as absent and is replaced (a new
//   epoch), so nothing left of the earlier use (TTL deletes within a day or so, each collection
//   group on its own) can collide with the new one.
//
// Two publications registering at the same moment serialize on the record (a create, or a
// transaction that reads it): one of them is first.
//
// Cost. A new MsgKey (the usual event) creates its record in the same commit as its batches'
// claims (groupClaims.ts), or, when it has batches beyond the inline ones, in one create before
// they are published. Only when that commit fails (the record exists: a redelivery, a republish;
// or the commit's answer was lost) does registerInTransaction run, once per event. Who owns what:
// each publication's owned accounts as sorted 8-byte hashes, inline in the record when few, else
// in its own document; they are read only when a later publication registers.
import { createHash, randomBytes } from "node:crypto";
import { FieldValue, Timestamp, type DocumentData, type DocumentReference, type Transaction } from "firebase-admin/firestore";
import * as logger from "firebase-functions/logger";
import { db } from "../common/firestore";
import type { CostCounter } from "./cost";
import { generationId, msgKeyId } from "./recipients";
import { MessageRecordSchema, PublicationDocSchema, type MessageIdentity, type MessageRecord, type OwnedElsewhere, type Publication } from "./schemas";

export const MESSAGES = "pushMessages";
/** pushMessages/{msgKeyId}/generations/{epoch}-{index}: a publication's owned accounts, when not inline. */
export const PUBLICATIONS = "generations";

/** Distinct recipient lists one MsgKey may be published with (the record keeps one entry each: about 150 bytes). */
export const MAX_PUBLICATIONS = 1_000;
/** Accounts one MsgKey may address over all its publications (each publication's hashes fit one document). */
export const MAX_ACCOUNTS_PER_MESSAGE = 200_000;
/** A publication's owned hashes stay in the record when it owns at most this many accounts... */
const INLINE_OWNED_MAX = 1_000;
/** ...and the record's inline hashes stay under this many in all (64 KB). */
const INLINE_TOTAL_MAX = 8_000;
const HASH_BYTES = 8;

/** The MsgKey's publications are more than the record keeps: the event is rejected (too-many-publications). */
export class TooManyPublicationsError extends Error {
  override readonly name = "TooManyPublicationsError";
}

export const messageRef = (msgKey: string): DocumentReference => db().collection(MESSAGES).doc(msgKeyId(msgKey));
const publicationRef = (msgKey: string, epoch: string, generation: number): DocumentReference =>
  messageRef(msgKey).collection(PUBLICATIONS).doc(`${epoch}-${generation}`);

/** 10 hex digits: short in every batch ID, and never `_` (the ID's separator). */
const newEpoch = (): string => randomBytes(5).toString("hex");

export function uidHash(uid: string): Buffer {
  return createHash("sha256").update(uid, "utf8").digest().subarray(0, HASH_BYTES);
}

/** Sorted, distinct hashes of `uids`, as one bytes value. */
export function hashesOf(uids: readonly string[]): Buffer {
  const hashes = [...new Set(uids)].map(uidHash).sort(Buffer.compare);
  const out = Buffer.concat(hashes);
  return out;
}

function hashKeys(bytes: Buffer): bigint[] {
  const keys: bigint[] = [];
  for (let i = 0; i + HASH_BYTES <= bytes.length; i += HASH_BYTES) keys.push(bytes.readBigUInt64BE(i));
  return keys;
}

/** What a batch needs to know of its publication. */
export interface Registration {
  identity: MessageIdentity;
  /** Recipients of this publication that an earlier one owns, with that one's index. */
  elsewhere: Map<string, number>;
  /** The publication was registered before (a redelivery, the same list again): its batches are most likely done. */
  existing: boolean;
}

/** The recipients of `uids` (a batch's share of the list) that an earlier publication owns. */
export function elsewhereIn(registration: Registration, uids: readonly string[]): OwnedElsewhere[] {
  if (registration.elsewhere.size === 0) return [];
  return uids.flatMap((uid) => {
    const generation = registration.elsewhere.get(uid);
    return generation === undefined ? [] : [{ uid, generation }];
  });
}

/** The message as its first publication: the documents that register it, to be created in one commit. */
export interface FirstRegistration {
  msgKey: string;
  /** The publication's recipients, sorted and distinct (recipientsOf). */
  recipients: string[];
  eventId: string;
  ttlMs: number;
  identity: MessageIdentity;
  creates: Array<{ ref: DocumentReference; data: DocumentData }>;
}

function publicationEntry(id: string, recipients: number, owned: Buffer, eventId: string, nowMs: number, inline: boolean): Publication {
  return { id, recipients, owned: owned.length / HASH_BYTES, eventId, at: Timestamp.fromMillis(nowMs), ownedHashes: inline ? owned : null };
}

function publicationDoc(msgKey: string, epoch: string, generation: number, owned: Buffer, nowMs: number, ttlMs: number) {
  return { msgKey, epoch, generation, ownedHashes: owned, createdAt: Timestamp.fromMillis(nowMs), expireAt: Timestamp.fromMillis(nowMs + ttlMs) };
}

/** A new message record with `recipients` as its first publication, under a new epoch. */
export function firstRegistration(input: { msgKey: string; recipients: string[]; eventId: string; ttlMs: number; nowMs?: number }): FirstRegistration {
  const { msgKey, recipients, eventId, ttlMs } = input;
  const nowMs = input.nowMs ?? Date.now();
  const epoch = newEpoch();
  const owned = hashesOf(recipients);
  const inline = recipients.length <= INLINE_OWNED_MAX;
  const record: MessageRecord = {
    kind: "message",
    msgKey,
    epoch,
    generations: [publicationEntry(generationId(recipients), recipients.length, owned, eventId, nowMs, inline)],
    accounts: recipients.length,
    createdAt: Timestamp.fromMillis(nowMs),
    updatedAt: Timestamp.fromMillis(nowMs),
    expireAt: Timestamp.fromMillis(nowMs + ttlMs),
  };
  const creates: FirstRegistration["creates"] = [{ ref: messageRef(msgKey), data: record }];
  if (!inline) creates.push({ ref: publicationRef(msgKey, epoch, 0), data: publicationDoc(msgKey, epoch, 0, owned, nowMs, ttlMs) });
  return { msgKey, recipients, eventId, ttlMs, identity: { epoch, generation: 0 }, creates };
}

const asFirst = (first: FirstRegistration): Registration => ({ identity: first.identity, elsewhere: new Map(), existing: false });

/**
 * Registers the message with its first publication by creating its documents (one commit), for an
 * event whose batches are published: they carry the identity. Anything but success (the record
 * exists, or the answer was lost) goes to the transaction, which finds out.
 */
export async function registerFirst(first: FirstRegistration, cost: CostCounter): Promise<Registration> {
  const write = db().batch();
  for (const c of first.creates) write.create(c.ref, c.data);
  cost.firestoreWrites++;
  try {
    await write.commit();
    return asFirst(first);
  } catch (err) {
    logger.info("offline push message record not created (it exists, or the answer was lost): registered in a transaction", { msgKey: first.msgKey, error: String(err) });
  }
  return registerInTransaction(first, cost);
}

/**
 * The slower path: reads the record in a transaction and registers the list as a new publication,
 * or finds it registered (a redelivery, the same list republished, or our own commit whose answer
 * was lost), or, when the record is absent or expired, registers it as the first under the
 * proposal's epoch. Returns the publication and, for a later one, who owns the rest.
 */
export async function registerInTransaction(first: FirstRegistration, cost: CostCounter): Promise<Registration> {
  let reads = 0;
  const result = await db().runTransaction((tx) => {
    reads = 0;
    return registerIn(tx, first, () => reads++);
  }, { maxAttempts: 10 });
  cost.firestoreReads += reads;
  cost.firestoreWrites++;
  return result;
}

async function registerIn(tx: Transaction, first: FirstRegistration, countRead: () => void): Promise<Registration> {
  const { msgKey, recipients } = first;
  const ref = messageRef(msgKey);
  countRead();
  const snap = await tx.get(ref);
  const parsed = snap.exists ? MessageRecordSchema.safeParse(snap.data()) : null;
  if (parsed && !parsed.success) logger.error("offline push message record does not parse: replaced by a new one", { msgKey, error: parsed.error.message });
  const nowMs = Date.now();
  const record = parsed?.success ? parsed.data : null;
  if (!record || record.expireAt.toMillis() <= nowMs) {
    // Absent, unreadable, or expired (its documents are on their way out): a new message, under the proposal's epoch.
    for (const c of first.creates) tx.set(c.ref, c.data);
    return asFirst(first);
  }
  const id = generationId(recipients);
  const known = record.generations.findIndex((g) => g.id === id);
  const generation = known >= 0 ? known : record.generations.length;
  const identity = { epoch: record.epoch, generation };
  const existing = known >= 0;
  if (generation === 0) return { identity, elsewhere: new Map(), existing };
  if (known < 0 && record.generations.length >= MAX_PUBLICATIONS) {
    throw new TooManyPublicationsError(`MsgKey ${msgKey} was already published with ${MAX_PUBLICATIONS} different recipient lists, the most one message keeps; publish a group message as one event`);
  }
  const owners = await ownersBefore(tx, msgKey, record, generation, countRead);
  const elsewhere = new Map<string, number>();
  const owned: string[] = [];
  for (const uid of recipients) {
    const owner = owners.get(uidHash(uid).readBigUInt64BE(0));
    if (owner === undefined) owned.push(uid);
    else elsewhere.set(uid, owner);
  }
  if (existing) return { identity, elsewhere, existing };

  const accounts = record.accounts + owned.length;
  if (accounts > MAX_ACCOUNTS_PER_MESSAGE) {
    throw new TooManyPublicationsError(`MsgKey ${msgKey} would address ${accounts} accounts over its publications, more than ${MAX_ACCOUNTS_PER_MESSAGE}`);
  }
  const ownedHashes = hashesOf(owned);
  const inlineSoFar = record.generations.reduce((n, g) => n + (g.ownedHashes ? g.owned : 0), 0);
  const inline = owned.length <= INLINE_OWNED_MAX && inlineSoFar + owned.length <= INLINE_TOTAL_MAX;
  if (!inline) tx.create(publicationRef(msgKey, record.epoch, generation), publicationDoc(msgKey, record.epoch, generation, ownedHashes, nowMs, first.ttlMs));
  tx.update(ref, {
    generations: FieldValue.arrayUnion(publicationEntry(id, recipients.length, ownedHashes, first.eventId, nowMs, inline)),
    accounts,
    updatedAt: Timestamp.fromMillis(nowMs),
    // The record outlives the batches of its newest publication.
    expireAt: Timestamp.fromMillis(Math.max(record.expireAt.toMillis(), nowMs + first.ttlMs)),
  });
  logger.info("offline push MsgKey published with another recipient list: registered as a later publication", {
    msgKey,
    generation,
    recipients: recipients.length,
    owned: owned.length,
    ownedElsewhere: elsewhere.size,
  });
  return { identity, elsewhere, existing };
}

/** Who owns each account the publications before `generation` listed: hash -> publication index. */
async function ownersBefore(tx: Transaction, msgKey: string, record: MessageRecord, generation: number, countRead: () => void): Promise<Map<bigint, number>> {
  const owners = new Map<bigint, number>();
  const earlier = record.generations.slice(0, generation);
  const stored = earlier.flatMap((g, index) => (g.ownedHashes === null ? [index] : []));
  const docs = new Map<number, Buffer>();
  if (stored.length > 0) {
    countRead();
    const snaps = await tx.getAll(...stored.map((index) => publicationRef(msgKey, record.epoch, index)));
    snaps.forEach((snap, i) => {
      // A missing or unreadable document would let its accounts be pushed twice: fail, and let Pub/Sub retry.
      const doc = PublicationDocSchema.parse(snap.data());
      docs.set(stored[i] as number, doc.ownedHashes);
    });
  }
  earlier.forEach((g, index) => {
    for (const key of hashKeys(g.ownedHashes ?? docs.get(index) ?? Buffer.alloc(0))) if (!owners.has(key)) owners.set(key, index);
  });
  return owners;
}

/** The MsgKey's current record: null when there is none, or it has expired (the MsgKey is then a new message). */
export async function currentMessageRecord(msgKey: string, nowMs = Date.now()): Promise<MessageRecord | null> {
  const snap = await messageRef(msgKey).get();
  if (!snap.exists) return null;
  const parsed = MessageRecordSchema.safeParse(snap.data());
  return parsed.success && parsed.data.expireAt.toMillis() > nowMs ? parsed.data : null;
}
