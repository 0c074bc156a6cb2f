// The fan-out as the tests drive and observe it: recipients set up through the real callables,
// events published to the Pub/Sub emulator, outcomes read from the push log (parsed with the
// functions' own schemas) and from the requests the fake FCM recorded.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { Timestamp } from "firebase-admin/firestore";
import { batchLogId } from "../../functions/src/fanout/recipients.ts";
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

/**
 * The push-log document (the batch's progress record) that a delivery leaves while it runs, or
 * after it crashed: batch 0 of 1 claimed under a lease until `leaseUntilMs`, `entries` recorded.
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
}): Promise<void> {
  const at = b.at ?? Timestamp.now();
  const entries = b.entries ?? [];
  const count = (outcome: SeedEntry["outcome"]) => entries.filter((e) => e.outcome === outcome).length;
  const ref = adminDb().doc(`pushLog/${batchLogId(b.msgKey, 0, b.uids)}`);
  if (entries.length > 0) {
    // As the crashed delivery's first checkpoint left them: one shard of its claim.
    await ref.collection("outcomes").doc("1-0").set({ msgKey: b.msgKey, uids: [...new Set(entries.map((e) => e.uid as string))], entries, createdAt: at, expireAt: Timestamp.fromMillis(Date.now() + 86_400_000) });
  }
  await ref
    .set({
      kind: "batch",
      msgKey: b.msgKey,
      from: b.from,
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
}
