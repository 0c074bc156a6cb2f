// Exactly once per device, over at-least-once Pub/Sub deliveries and function retries.
//
// Each batch of a message has one push-log document (pushLog/{msgKeyId}__{batchIndex}__{uidsHash}) that is
// also its progress record: a state (running/done), a lease {owner, deliveryId, until} and the
// outcome counts. The outcomes themselves (one entry per device) are in shard documents under it,
// pushLog/{logId}/outcomes/{claim}-{seq}, at most SHARD_ENTRIES each, so that no batch, however
// many devices its users have, can outgrow Firestore's 1 MiB document limit.
//
// - A delivery first claims the batch: it creates the document with a create-if-absent write (the
//   usual case: one write, no read), and only when it exists already, in a transaction, takes over
//   a running one whose lease has expired (the previous delivery crashed or timed out), or finds
//   it done (a duplicate: nothing to do), or finds a live lease (busy). Firestore lets only one
//   create of a document succeed, so two deliveries of the same batch never both send.
// - Busy, from another Pub/Sub message (the same event published twice, or a republished batch):
//   acknowledged without sending. The holder's own message stays unacknowledged until it has
//   finished, so if the holder dies, Pub/Sub redelivers *that* message (retry: true), and it
//   completes the batch.
// - Busy, from the same Pub/Sub message (the holder's own redelivery after a crash or timeout, or
//   Pub/Sub delivering one message twice): it waits, polling, until the batch is done (then
//   acknowledges) or the lease expires (then takes over). Waiting is bounded; after that the
//   delivery fails and Pub/Sub redelivers it later.
// - The owner records outcomes in checkpoints (every FANOUT_CHECKPOINT_EVERY devices, and before
//   its lease gets short), each a transaction that also checks it still holds the lease and
//   extends it. A retry or takeover reads the recorded outcomes and handles only the devices
//   without one: it continues where the first attempt stopped.
// - Writes are per checkpoint, not per device: one commit that creates the new shard(s) and
//   updates the counts and the lease. While the owner knows the batch document's last update time
//   (from its own previous write), that commit is a plain batched write with that time as its
//   precondition: no read, and it fails if anyone else touched the document in between (a
//   takeover, a duplicate delivery counted), in which case the same write is made as a
//   transaction that checks the lease first. A checkpoint that fails transiently is retried;
//   outcomes not yet written are never dropped (a takeover would send those devices again).
// - A checkpoint is due every FANOUT_CHECKPOINT_EVERY devices *sent*: only an unrecorded send can
//   be repeated by a takeover (a skip is simply decided again), so skips ride along for free.
// - A delivery that runs out of its invocation's time with devices still open releases the lease
//   (state stays running) and publishes a continuation of the batch, which claims it and goes on.
//
// The remaining window: a delivery that dies after FCM accepted a request but before the
// checkpoint recording it was committed (a crash, an instance kill, a timeout) leaves that device
// without an outcome, and the delivery that takes over sends to it again. At most the devices
// sent since the last checkpoint are affected (bounded by FANOUT_CHECKPOINT_EVERY and the lease).
// FCM offers no idempotency key to close it; the duplicate carries the same
// android.notification.tag (the message key), so on the device it replaces the first
// notification instead of adding a second one.
import { FieldValue, Timestamp, type DocumentReference } from "firebase-admin/firestore";
import { GRPC, db, grpcCode } from "../common/firestore";
import { addCost, zeroCost, type CostCounter } from "./cost";
import { clip } from "./message";
import { BatchLogSchema, OutcomeShardSchema, type BatchLog, type CostCounts, type PushLogEntry } from "./schemas";
import { OUTCOMES, PUSH_LOG } from "./pushLog";
import * as logger from "firebase-functions/logger";
import { BatchStats } from "./pushStats";

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

export const entryKey = (e: { uid: string; deviceId: string | null }): string => `${e.uid}\u0000${e.deviceId ?? ""}`;

export function countOutcomes(entries: PushLogEntry[]): { sent: number; skipped: number; failed: number } {
  const counts = { sent: 0, skipped: 0, failed: 0 };
  for (const e of entries) counts[e.outcome]++;
  return counts;
}

export type ClaimDecision =
  | { action: "create" }
  | { action: "take-over"; previousOwner: string | null }
  | { action: "done" }
  | { action: "busy"; owner: string; untilMs: number; sameDelivery: boolean };

/** What a delivery (of Pub/Sub message `deliveryId`) may do with a batch, given its progress record. */
export function claimDecision(doc: Pick<BatchLog, "state" | "lease"> | undefined, nowMs: number, deliveryId: string): ClaimDecision {
  if (!doc) return { action: "create" };
  if (doc.state === "done") return { action: "done" };
  const lease = doc.lease;
  if (lease && lease.until.toMillis() > nowMs) {
    return { action: "busy", owner: lease.owner, untilMs: lease.until.toMillis(), sameDelivery: lease.deliveryId === deliveryId };
  }
  return { action: "take-over", previousOwner: lease?.owner ?? null };
}

export interface BatchIdentity {
  msgKey: string;
  from: string;
  batchIndex: number;
  batchCount: number;
  eventId: string;
  uids: string[];
  notes: string[];
  /** The event's publish time (ISO): stored on the batch for latency, and the day its statistics count on. */
  publishTime?: string;
}

export interface LeaseOptions {
  /** Unique per delivery attempt. */
  owner: string;
  /** The Pub/Sub message being processed (the same across its redeliveries). */
  deliveryId: string;
  leaseMs: number;
  ttlMs: number;
  checkpointEvery: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export type ClaimResult =
  | { status: "claimed"; progress: BatchProgress; claims: number; previousOwner: string | null }
  | { status: "done"; counts: BatchLog["counts"] }
  | { status: "busy"; owner: string; until: Date; sameDelivery: boolean };

/** Thrown to make Pub/Sub redeliver later: the batch stayed busy longer than a delivery may wait. */
export class BatchBusyError extends Error {
  override readonly name = "BatchBusyError";
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

/** The progress record of a batch nobody has claimed yet. */
function newBatchLog(batch: BatchIdentity, lease: NonNullable<BatchLog["lease"]>, cost: BatchLog["cost"], nowMs: number, ttlMs: number): BatchLog {
  return {
    kind: "batch",
    ...batch,
    notes: batch.notes.slice(0, 10).map((n) => clip(n, 300)),
    state: "running",
    lease,
    claims: 1,
    duplicates: 0,
    concurrentDeliveries: 0,
    shards: 0,
    lastWriteId: null,
    counts: { sent: 0, skipped: 0, failed: 0 },
    cost,
    createdAt: Timestamp.fromMillis(nowMs),
    updatedAt: Timestamp.fromMillis(nowMs),
    completedAt: null,
    peakRssMb: null,
    expireAt: Timestamp.fromMillis(nowMs + ttlMs),
  };
}

/** A claim's record, ready to be created: a batch nobody has claimed yet, with our lease. */
export interface ClaimCreate {
  ref: DocumentReference;
  doc: BatchLog;
  leaseUntilMs: number;
  /** The cost totals the record holds (see CostCounter.withPendingWrite). */
  total: CostCounts;
}

/** `countsWrite`: this batch's cost counts the write that creates it (false: another batch of a shared write does). */
export function claimCreate(logId: string, batch: BatchIdentity, options: LeaseOptions, cost: CostCounter, countsWrite = true): ClaimCreate {
  const nowMs = (options.now ?? Date.now)();
  const lease = { owner: options.owner, deliveryId: options.deliveryId, until: Timestamp.fromMillis(nowMs + options.leaseMs) };
  const total = countsWrite ? cost.withPendingWrite() : cost.snapshot();
  return { ref: batchRef(logId), doc: newBatchLog(batch, lease, addCost(zeroCost(), cost.deltaTo(total)), nowMs, options.ttlMs), leaseUntilMs: lease.until.toMillis(), total };
}

/** The batch is ours once its created record is committed (at `writeTime`). */
export function claimedByCreate(created: ClaimCreate, batch: BatchIdentity, options: LeaseOptions, cost: CostCounter, writeTime: Timestamp, countsWrite = true): ClaimResult {
  if (countsWrite) cost.firestoreWrites++;
  cost.markSaved(created.total);
  const progress = new BatchProgress(created.ref, batch, options, [], 1, created.leaseUntilMs, { sent: 0, skipped: 0, failed: 0 }, cost, writeTime);
  return { status: "claimed", progress, claims: 1, previousOwner: null };
}

export async function claimBatch(logId: string, batch: BatchIdentity, options: LeaseOptions, cost: CostCounter): Promise<ClaimResult> {
  const now = options.now ?? Date.now;
  const ref = batchRef(logId);
  // The usual case first: nobody has claimed the batch. A create-if-absent write claims it without
  // a read; ALREADY_EXISTS sends us to the transaction below, which decides from the record.
  {
    const created = claimCreate(logId, batch, options, cost);
    try {
      const written = await ref.create(created.doc);
      return claimedByCreate(created, batch, options, cost, written.writeTime);
    } catch (err) {
      if (grpcCode(err) !== GRPC.ALREADY_EXISTS) throw err;
      cost.firestoreWrites++;
    }
  }
  const result = await db().runTransaction(async (tx) => {
    cost.firestoreReads++;
    const snap = await tx.get(ref);
    const doc = snap.exists ? BatchLogSchema.parse(snap.data()) : undefined;
    const nowMs = now();
    const decision = claimDecision(doc, nowMs, options.deliveryId);
    const lease = { owner: options.owner, deliveryId: options.deliveryId, until: Timestamp.fromMillis(nowMs + options.leaseMs) };
    const total = cost.withPendingWrite();
    if (decision.action === "create") {
      // Deleted between our create and this read (TTL): created here after all.
      const created = newBatchLog(batch, lease, addCost(zeroCost(), cost.deltaTo(total)), nowMs, options.ttlMs);
      tx.create(ref, created);
      return { decision, total, claims: 1, leaseUntil: lease.until.toMillis(), counts: created.counts, shards: 0 };
    }
    if (decision.action === "take-over" && doc) {
      tx.update(ref, {
        lease,
        claims: doc.claims + 1,
        cost: addCost(doc.cost, cost.deltaTo(total)),
        updatedAt: Timestamp.fromMillis(nowMs),
      });
      return { decision, total, claims: doc.claims + 1, leaseUntil: lease.until.toMillis(), counts: doc.counts, shards: doc.shards };
    }
    if (decision.action === "done" && doc) {
      // Counted so that a duplicate is visible in the log (and tests can wait for it).
      tx.update(ref, { duplicates: doc.duplicates + 1, cost: addCost(doc.cost, cost.deltaTo(total)) });
      return { decision, total, claims: doc.claims, leaseUntil: 0, counts: doc.counts, shards: doc.shards };
    }
    if (decision.action === "busy" && !decision.sameDelivery && doc) {
      // Left to the holder and acknowledged: counted, so the log shows the concurrent delivery.
      tx.update(ref, { concurrentDeliveries: doc.concurrentDeliveries + 1, cost: addCost(doc.cost, cost.deltaTo(total)) });
      return { decision, total, claims: doc.claims, leaseUntil: 0, counts: doc.counts, shards: doc.shards };
    }
    return { decision, total: null, claims: doc?.claims ?? 0, leaseUntil: 0, counts: doc?.counts, shards: doc?.shards ?? 0 };
  });
  const { decision } = result;
  if (result.total) {
    cost.firestoreWrites++;
    cost.markSaved(result.total);
  }
  if (decision.action === "done") return { status: "done", counts: result.counts ?? { sent: 0, skipped: 0, failed: 0 } };
  if (decision.action === "busy") return { status: "busy", owner: decision.owner, until: new Date(decision.untilMs), sameDelivery: decision.sameDelivery };
  // Our lease is committed: no earlier owner can write another shard now (every write checks the
  // lease in its transaction), so what we read here is all that was recorded before us.
  let previous: PushLogEntry[] = [];
  if (decision.action === "take-over" && result.shards > 0) {
    cost.firestoreReads++;
    previous = await readBatchEntries(ref);
  }
  const progress = new BatchProgress(ref, batch, options, previous, result.claims, result.leaseUntil, result.counts ?? { sent: 0, skipped: 0, failed: 0 }, cost, null);
  return { status: "claimed", progress, claims: result.claims, previousOwner: decision.action === "take-over" ? decision.previousOwner : null };
}

/** gRPC codes after which the same checkpoint may well succeed: it is tried again, a few times. */
const TRANSIENT_CODES = new Set<number>([GRPC.UNKNOWN, GRPC.DEADLINE_EXCEEDED, GRPC.RESOURCE_EXHAUSTED, GRPC.ABORTED, GRPC.INTERNAL, GRPC.UNAVAILABLE]);
const CHECKPOINT_ATTEMPTS = 5;
/** Attempts of a final write that carry the day's statistics (see write()). */
const STATS_IN_FINAL_WRITE_ATTEMPTS = 2;

type WriteMode = "checkpoint" | "finish" | "release";

/**
 * The owner's side of a claimed batch: collects outcomes and writes them in checkpoints. Safe to
 * call from concurrent senders: writes are serialized, and each checks the lease first.
 */
export class BatchProgress {
  private pending: PushLogEntry[] = [];
  /** Sends among `pending`: the ones a takeover would repeat if they were never written. */
  private pendingSent = 0;
  private readonly known: Set<string>;
  private readonly knownUids: Set<string>;
  private chain: Promise<void> = Promise.resolve();
  private leaseUntil: number;
  private finished = false;
  private recordedCounts: { sent: number; skipped: number; failed: number };
  private queuedCheckpoint: Promise<void> | null = null;
  private shardSeq = 0;
  private writeSeq = 0;
  /** Another delivery took the batch over (our lease had expired): stop sending at once. */
  lost = false;
  /** Every outcome of the batch (earlier deliveries' too), counted once in the final write. */
  readonly stats: BatchStats;

  constructor(
    private readonly ref: DocumentReference,
    private readonly batch: BatchIdentity,
    private readonly options: LeaseOptions,
    /** Outcomes recorded by earlier deliveries. */
    readonly previous: PushLogEntry[],
    private readonly claimNumber: number,
    leaseUntil: number,
    counts: { sent: number; skipped: number; failed: number },
    private readonly cost: CostCounter,
    /** The batch document's update time as of our last write; null when unknown (after a transaction). */
    private updateTime: Timestamp | null,
  ) {
    this.known = new Set(previous.map(entryKey));
    this.knownUids = new Set(previous.map((e) => e.uid));
    this.leaseUntil = leaseUntil;
    this.recordedCounts = { ...counts };
    this.stats = new BatchStats(batch);
    for (const e of previous) this.stats.add(e);
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** True when this device already has an outcome (recorded by an earlier delivery, or by us). */
  has(device: { uid: string; deviceId: string | null }): boolean {
    return this.known.has(entryKey(device));
  }

  /** True when the recipient has any outcome, for a device or as a whole. */
  hasAny(uid: string): boolean {
    return this.knownUids.has(uid);
  }

  /** Records an outcome; writes a checkpoint when enough have piled up. */
  async record(entry: PushLogEntry): Promise<void> {
    const key = entryKey(entry);
    if (this.known.has(key)) return;
    this.known.add(key);
    this.knownUids.add(entry.uid);
    this.pending.push(boundedEntry(entry));
    this.stats.add(entry);
    if (entry.outcome === "sent") this.pendingSent++;
    // Skips are bounded too (a 500-recipient batch of 20-device users is 10,000 of them), so a
    // takeover finds most of the work done and memory stays flat.
    if (this.pendingSent >= this.options.checkpointEvery || this.pending.length >= 10 * SHARD_ENTRIES) await this.checkpoint();
  }

  /**
   * Called before every FCM request: false when the lease is lost. Renews it when less than half
   * is left, so a request is never made under an expired lease (where a takeover could repeat it).
   */
  async mayProceed(): Promise<boolean> {
    if (this.lost) return false;
    if (this.leaseUntil - this.now() < this.options.leaseMs / 2) await this.checkpoint();
    return !this.lost;
  }

  /** Outcome counts of the whole batch as last written (all deliveries). */
  counts(): { sent: number; skipped: number; failed: number } {
    return { ...this.recordedCounts };
  }

  /** Coalesced: concurrent senders crossing the threshold together share one write. */
  checkpoint(): Promise<void> {
    this.queuedCheckpoint ??= this.enqueue("checkpoint");
    return this.queuedCheckpoint;
  }

  /** The last write: remaining outcomes, state done, lease released. */
  finish(): Promise<void> {
    return this.enqueue("finish");
  }

  /** Outcomes so far, the lease given up, the batch still running: a continuation takes it from here. */
  release(): Promise<void> {
    return this.enqueue("release");
  }

  private enqueue(mode: WriteMode): Promise<void> {
    const run = this.chain.then(() => this.write(mode));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async write(mode: WriteMode): Promise<void> {
    // Outcomes recorded from here on need another checkpoint.
    if (mode === "checkpoint") this.queuedCheckpoint = null;
    if (this.lost || this.finished) return;
    // Nothing new and the lease still long: no write. A renewal with nothing new is still written:
    // it keeps the lease while a slow send retries.
    if (mode === "checkpoint" && this.pending.length === 0 && this.leaseUntil - this.now() >= this.options.leaseMs / 2) return;
    const batch = this.pending;
    this.pending = [];
    const sentInBatch = this.pendingSent;
    this.pendingSent = 0;
    const shards: Array<{ id: string; entries: PushLogEntry[] }> = [];
    for (let i = 0; i < batch.length; i += SHARD_ENTRIES) shards.push({ id: `${this.claimNumber}-${this.shardSeq++}`, entries: batch.slice(i, i + SHARD_ENTRIES) });
    // Identifies this write: a commit whose answer was lost (DEADLINE_EXCEEDED after it applied) is
    // recognised on the retry instead of counted twice.
    const writeId = `${this.options.owner}:${this.writeSeq++}`;
    let statsMayHaveApplied = false;
    try {
      for (let attempt = 1; ; attempt++) {
        // The day's statistics ride in the final write (no call of their own). Their document is
        // shared by every batch finishing at that moment: if the commit keeps failing on contention,
        // the outcomes are written without them and the statistics follow in a write that may fail
        // alone. A hot counter must never hold up the record that keeps sends exactly-once.
        const withStats = mode === "finish" && attempt <= STATS_IN_FINAL_WRITE_ATTEMPTS;
        try {
          await this.commit(mode, batch, shards, writeId, withStats);
          // Unless an earlier attempt with them may have applied after all (its answer was lost):
          // then the day undercounts rather than counts twice.
          if (mode === "finish" && !withStats && this.finished && !statsMayHaveApplied) await this.writeStatsAlone();
          return;
        } catch (err) {
          const code = grpcCode(err);
          if (withStats && !(code === GRPC.ABORTED || code === GRPC.RESOURCE_EXHAUSTED)) statsMayHaveApplied = true;
          if (attempt >= CHECKPOINT_ATTEMPTS || code === undefined || !TRANSIENT_CODES.has(code)) throw err;
          await (this.options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms))))(250 * 2 ** (attempt - 1));
        }
      }
    } catch (err) {
      // Not recorded: keep the outcomes for the next write (the devices are not sent again by us).
      this.pending = [...batch, ...this.pending];
      this.pendingSent += sentInBatch;
      throw err;
    }
  }

  private shardDoc(shard: { entries: PushLogEntry[] }, nowMs: number) {
    return {
      msgKey: this.batch.msgKey,
      uids: [...new Set(shard.entries.map((e) => e.uid))],
      entries: shard.entries,
      createdAt: Timestamp.fromMillis(nowMs),
      expireAt: Timestamp.fromMillis(nowMs + this.options.ttlMs),
    };
  }

  private leaseFields(mode: WriteMode, nowMs: number): Record<string, unknown> {
    if (mode === "finish") return { state: "done", lease: null, completedAt: Timestamp.fromMillis(nowMs), peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024) };
    if (mode === "release") return { lease: null };
    return { lease: { owner: this.options.owner, deliveryId: this.options.deliveryId, until: Timestamp.fromMillis(nowMs + this.options.leaseMs) } };
  }

  /**
   * The write without a read: a batched write whose update of the batch document requires the
   * update time of our own last write. It applies only if nobody else wrote the document since, so
   * our lease is still ours and the counters we add to are the ones we know. False when the
   * precondition (or a shard's create) failed: the caller falls back to the transaction.
   */
  /** The batch's statistics on their own, best effort: after its final write had to go without them. */
  private async writeStatsAlone(): Promise<void> {
    try {
      const write = db().batch();
      this.stats.writeIn(write, this.ref.id, this.now());
      this.cost.firestoreWrites++;
      await write.commit();
    } catch (err) {
      logger.warn("push statistics of a batch could not be written: pushStats undercounts it", { logId: this.ref.id, error: String(err) });
    }
  }

  private async commitBlind(mode: WriteMode, batch: PushLogEntry[], shards: Array<{ id: string; entries: PushLogEntry[] }>, writeId: string, since: Timestamp, withStats: boolean): Promise<boolean> {
    const nowMs = this.now();
    const added = countOutcomes(batch);
    const total = this.cost.withPendingWrite();
    const delta = this.cost.deltaTo(total);
    const write = db().batch();
    for (const shard of shards) write.create(this.ref.collection(OUTCOMES).doc(shard.id), this.shardDoc(shard, nowMs));
    write.update(
      this.ref,
      {
        "counts.sent": FieldValue.increment(added.sent),
        "counts.skipped": FieldValue.increment(added.skipped),
        "counts.failed": FieldValue.increment(added.failed),
        shards: FieldValue.increment(shards.length),
        lastWriteId: writeId,
        "cost.firestoreReads": FieldValue.increment(delta.firestoreReads),
        "cost.firestoreWrites": FieldValue.increment(delta.firestoreWrites),
        "cost.fcmRequests": FieldValue.increment(delta.fcmRequests),
        "cost.publishes": FieldValue.increment(delta.publishes),
        updatedAt: Timestamp.fromMillis(nowMs),
        ...this.leaseFields(mode, nowMs),
      },
      { lastUpdateTime: since },
    );
    if (mode === "finish" && withStats) this.stats.writeIn(write, this.ref.id, nowMs);
    let results;
    try {
      results = await write.commit();
    } catch (err) {
      const code = grpcCode(err);
      if (code === GRPC.FAILED_PRECONDITION || code === GRPC.ALREADY_EXISTS || code === GRPC.NOT_FOUND) {
        this.cost.firestoreWrites++;
        return false;
      }
      throw err;
    }
    this.cost.firestoreWrites++;
    this.cost.markSaved(total);
    this.updateTime = results[results.length - 1]?.writeTime ?? null;
    if (mode === "checkpoint") this.leaseUntil = nowMs + this.options.leaseMs;
    this.recordedCounts = { sent: this.recordedCounts.sent + added.sent, skipped: this.recordedCounts.skipped + added.skipped, failed: this.recordedCounts.failed + added.failed };
    if (mode !== "checkpoint") this.finished = true;
    return true;
  }

  private async commit(mode: WriteMode, batch: PushLogEntry[], shards: Array<{ id: string; entries: PushLogEntry[] }>, writeId: string, withStats: boolean): Promise<void> {
    if (this.updateTime) {
      const since = this.updateTime;
      // Whatever happens next, the document's time is no longer known for sure.
      this.updateTime = null;
      if (await this.commitBlind(mode, batch, shards, writeId, since, withStats)) return;
    }
    const outcome = await db().runTransaction(async (tx) => {
      this.cost.firestoreReads++;
      const snap = await tx.get(this.ref);
      const doc = snap.exists ? BatchLogSchema.parse(snap.data()) : undefined;
      if (doc?.lastWriteId === writeId) return { wrote: true as const, already: true as const, counts: doc.counts, until: doc.lease?.until.toMillis() ?? 0 };
      if (!doc || doc.lease?.owner !== this.options.owner) return { wrote: false as const };
      const nowMs = this.now();
      const added = countOutcomes(batch);
      const counts = { sent: doc.counts.sent + added.sent, skipped: doc.counts.skipped + added.skipped, failed: doc.counts.failed + added.failed };
      const total = this.cost.withPendingWrite();
      const until = Timestamp.fromMillis(nowMs + this.options.leaseMs);
      for (const shard of shards) tx.create(this.ref.collection(OUTCOMES).doc(shard.id), this.shardDoc(shard, nowMs));
      const leaseFields = this.leaseFields(mode, nowMs);
      if (mode === "finish" && withStats) this.stats.writeIn(tx, this.ref.id, nowMs);
      tx.update(this.ref, {
        counts,
        shards: doc.shards + shards.length,
        lastWriteId: writeId,
        cost: addCost(doc.cost, this.cost.deltaTo(total)),
        updatedAt: Timestamp.fromMillis(nowMs),
        ...leaseFields,
      });
      return { wrote: true as const, already: false as const, total, until: until.toMillis(), counts };
    });
    if (!outcome.wrote) {
      this.lost = true;
      return;
    }
    if (!outcome.already) {
      this.cost.firestoreWrites++;
      this.cost.markSaved(outcome.total);
    }
    this.leaseUntil = outcome.until;
    this.recordedCounts = outcome.counts;
    if (mode !== "checkpoint") this.finished = true;
  }
}
