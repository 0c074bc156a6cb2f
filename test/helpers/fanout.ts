// The fan-out as the tests drive and observe it: recipients set up through the real callables,
// events published to the Pub/Sub emulator, outcomes read from the push log (parsed with the
// functions' own schemas) and from the requests the fake FCM recorded.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { Timestamp } from "firebase-admin/firestore";
import { batchLogId, generationId, msgKeyId } from "../../functions/src/fanout/recipients.ts";
import { hashesOf } from "../../functions/src/fanout/messageRecord.ts";
import { BatchLogSchema, RejectedLogSchema, type BatchLog, type PushLogEntry, type RejectedLog } from "../../functions/src/fanout/schemas.ts";
import { readBatchEntries } from "../../functions/src/fanout/pushLog.ts";
import { adminDb, callOk, eventually, type TestUser } from "./emulators.ts";
import { fakeFcm, type RecordedRequest } from "./fakeFcm.ts";
import { fakeFcmToken } from "./sessions.ts";

export const PUSH_TOPIC = "im-offline-push";
export const PUSH_BATCH_TOPIC = "im-offline-push-batches";

export const msgKey = (prefix = "msg") => `${prefix}-${randomUUID()}`;

/** login + setOfflinePushToken: a logged-in foreground device with a token. */
export async function foregroundDevice(user: TestUser, certificateId: number, deviceId = "phone"): Promise<string> {
  const token = fakeFcmToken();
  await callOk("login", { deviceId, platform: "android" }, user);
  await callOk("setOfflinePushToken", { deviceId, certificateId, token }, user);
  return token;
}

/** ... then doBackground: the app went to the background (and may be killed): it gets offline pushes. */
export async function killedDevice(user: TestUser, certificateId: number, deviceId = "phone"): Promise<string> {
  const token = await foregroundDevice(user, certificateId, deviceId);
  await callOk("doBackground", { deviceId }, user);
  return token;
}

/** A batch document with the entries of its outcome shards, in the order they were recorded. */
export type BatchDoc = BatchLog & { id: string; entries: PushLogEntry[] };

export async function logDocs(key: string): Promise<Array<BatchDoc | (RejectedLog & { id: string })>> {
  const snaps = await adminDb().collection("pushLog").where("msgKey", "==", key).get();
  return Promise.all(
    snaps.docs.map(async (d) => {
      const data = d.data();
      if (data.kind === "rejected") return { id: d.id, ...RejectedLogSchema.parse(data) };
      return { id: d.id, ...BatchLogSchema.parse(data), entries: await readBatchEntries(d.ref) };
    }),
  );
}

/** Waits until every batch of the message is recorded as done; returns them in batch order. */
export async function waitForMessage(key: string, timeoutMs = 60_000): Promise<BatchDoc[]> {
  return eventually(
    async () => {
      const docs = (await logDocs(key)).filter((d): d is BatchDoc => d.kind === "batch");
      if (docs.length === 0) return undefined;
      const count = docs[0]!.batchCount;
      if (docs.length < count || docs.some((d) => d.state !== "done")) return undefined;
      return docs.sort((a, b) => a.batchIndex - b.batchIndex);
    },
    { timeoutMs, what: `the push log of ${key} to be done` },
  );
}

/**
 * Waits until the message record lists `publications` recipient lists and every batch of each is
 * done; returns the batches of the record's epoch (an earlier use's are left out), by publication
 * and batch index.
 */
export async function waitForPublications(key: string, publications: number, timeoutMs = 90_000): Promise<BatchDoc[]> {
  return eventually(
    async () => {
      const record = await adminDb().doc(`pushMessages/${msgKeyId(key)}`).get();
      const epoch = record.get("epoch") as string | undefined;
      const listed = (record.get("generations") as unknown[] | undefined)?.length ?? 0;
      if (!epoch || listed < publications) return undefined;
      const docs = (await logDocs(key)).filter((d): d is BatchDoc => d.kind === "batch" && d.epoch === epoch);
      for (let g = 0; g < listed; g++) {
        const of = docs.filter((d) => d.generation === g);
        if (of.length === 0 || of.length < of[0]!.batchCount || of.some((d) => d.state !== "done")) return undefined;
      }
      return docs.sort((a, b) => (a.generation ?? 0) - (b.generation ?? 0) || a.batchIndex - b.batchIndex);
    },
    { timeoutMs, what: `${publications} publication(s) of ${key} to be done` },
  );
}

export async function waitForRejected(key: string): Promise<RejectedLog & { id: string }> {
  return eventually(
    async () => (await logDocs(key)).find((d): d is RejectedLog & { id: string } => d.kind === "rejected"),
    { what: `a rejected-event record for ${key}` },
  );
}

export const entriesOf = (docs: BatchDoc[]): PushLogEntry[] => docs.flatMap((d) => d.entries);

export function entryFor(docs: BatchDoc[], uid: string, deviceId: string | null = "phone"): PushLogEntry {
  const entry = entriesOf(docs).find((e) => e.uid === uid && e.deviceId === deviceId);
  assert.ok(entry, `a push-log entry for ${uid}/${deviceId}`);
  return entry;
}

/** Real sends (not validate_only) the fake FCM received for a token. */
export async function sendsTo(token: string): Promise<RecordedRequest[]> {
  return (await fakeFcm.requests({ token })).filter((r) => !r.validateOnly);
}

export async function sendsToProject(projectId: string): Promise<RecordedRequest[]> {
  return (await fakeFcm.requests({ projectId })).filter((r) => !r.validateOnly);
}

export interface CostTotals {
  batches: number;
  firestoreReads: number;
  firestoreWrites: number;
  fcmRequests: number;
  publishes: number;
}

/** Sums the cost each batch recorded in its push-log document. */
export function costOf(docs: BatchDoc[]): CostTotals {
  const total: CostTotals = { batches: docs.length, firestoreReads: 0, firestoreWrites: 0, fcmRequests: 0, publishes: 0 };
  for (const d of docs) {
    total.firestoreReads += d.cost.firestoreReads;
    total.firestoreWrites += d.cost.firestoreWrites;
    total.fcmRequests += d.cost.fcmRequests;
    total.publishes += d.cost.publishes;
  }
  return total;
}

export function printCost(label: string, docs: BatchDoc[], extra: Record<string, unknown> = {}): CostTotals {
  const total = costOf(docs);
  const perBatch = docs.map((d) => `#${d.batchIndex}: ${d.entries.length} entries, ${d.cost.firestoreReads} reads, ${d.cost.firestoreWrites} writes, ${d.cost.fcmRequests} FCM`);
  process.stdout.write(
    `[cost] ${label}: ${total.batches} batch(es), Firestore read calls ${total.firestoreReads}, write calls ${total.firestoreWrites}, FCM requests ${total.fcmRequests}` +
      `${Object.keys(extra).length ? ` ${JSON.stringify(extra)}` : ""}\n` +
      perBatch.map((l) => `[cost]   ${l}\n`).join(""),
  );
  return total;
}

type SeedEntry = Record<string, unknown> & { outcome: "sent" | "skipped" | "failed" };

/** The epoch seeded message records have: batches seeded under it are found by the fan-out's own IDs. */
export const SEED_EPOCH = "5eed";

/**
 * The message record a first publication of `uids` leaves (fanout/messageRecord.ts), under
 * SEED_EPOCH unless told otherwise: an event of the same MsgKey and recipients is then that
 * publication, and its batches have the IDs batchLogId gives for `{epoch, generation: 0}`.
 */
export async function seedMessageRecord(key: string, uids: string[], { epoch = SEED_EPOCH, expireAtMs = Date.now() + 86_400_000, at = Timestamp.now() } = {}): Promise<{ epoch: string; generation: number }> {
  const recipients = [...new Set(uids)].sort();
  await adminDb()
    .doc(`pushMessages/${msgKeyId(key)}`)
    .set({
      kind: "message",
      msgKey: key,
      epoch,
      generations: [{ id: generationId(recipients), recipients: recipients.length, owned: recipients.length, eventId: "seeded", at, ownedHashes: hashesOf(recipients) }],
      accounts: recipients.length,
      createdAt: at,
      updatedAt: at,
      expireAt: Timestamp.fromMillis(expireAtMs),
    });
  return { epoch, generation: 0 };
}

/**
 * The push-log document (the batch's progress record) that a delivery leaves while it runs, or
 * after it crashed: batch 0 of 1 claimed under a lease until `leaseUntilMs`, `entries` recorded,
 * with the message record of its publication (seedMessageRecord). Returns the batch's ID and its
 * publication (a processBatch input's `message`).
 */
export async function seedRunningBatch(b: {
  msgKey: string;
  from: string;
  uids: string[];
  owner: string;
  deliveryId: string;
  leaseUntilMs: number;
  eventId?: string;
  entries?: SeedEntry[];
  cost?: { firestoreReads: number; firestoreWrites: number; fcmRequests: number; publishes: number };
  at?: Timestamp;
}): Promise<{ logId: string; message: { epoch: string; generation: number } }> {
  const at = b.at ?? Timestamp.now();
  const entries = b.entries ?? [];
  const count = (outcome: SeedEntry["outcome"]) => entries.filter((e) => e.outcome === outcome).length;
  const message = await seedMessageRecord(b.msgKey, b.uids, { at });
  const logId = batchLogId(b.msgKey, message, 0);
  const ref = adminDb().doc(`pushLog/${logId}`);
  if (entries.length > 0) {
    // As the crashed delivery's first checkpoint left them: one shard of its claim.
    await ref.collection("outcomes").doc("1-0").set({ msgKey: b.msgKey, uids: [...new Set(entries.map((e) => e.uid as string))], entries, createdAt: at, expireAt: Timestamp.fromMillis(Date.now() + 86_400_000) });
  }
  await ref
    .set({
      kind: "batch",
      msgKey: b.msgKey,
      from: b.from,
      ...message,
      batchIndex: 0,
      batchCount: 1,
      eventId: b.eventId ?? b.owner,
      uids: b.uids,
      state: "running",
      lease: { owner: b.owner, deliveryId: b.deliveryId, until: Timestamp.fromMillis(b.leaseUntilMs) },
      claims: 1,
      duplicates: 0,
      concurrentDeliveries: 0,
      shards: entries.length > 0 ? 1 : 0,
      lastWriteId: null,
      counts: { sent: count("sent"), skipped: count("skipped"), failed: count("failed") },
      notes: [],
      cost: b.cost ?? { firestoreReads: 1, firestoreWrites: 1, fcmRequests: 0, publishes: 0 },
      createdAt: at,
      updatedAt: at,
      completedAt: null,
      expireAt: Timestamp.fromMillis(Date.now() + 86_400_000),
    });
  return { logId, message };
}
