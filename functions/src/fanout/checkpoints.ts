// The outcomes a delivery has decided and not yet written, and the writes that record them: the
// checkpoints, the final write and the release. progress.ts explains how they keep the sends
// exactly-once; this is the code of its checkpoint points.
import { FieldValue, Timestamp, type DocumentReference } from "firebase-admin/firestore";
import { GRPC, db, grpcCode } from "../common/firestore";
import type { Lease, LeaseOptions } from "./claim";
import { addCost, type CostCounter } from "./cost";
import type { FinalRecord } from "./finalRecord";
import { OUTCOMES, SHARD_ENTRIES, boundedEntry, countOutcomes, entryKey } from "./pushLog";
import { BatchLogSchema, type PushLogEntry } from "./schemas";

/** A checkpoint renews the lease; the final write closes the batch; a release gives the lease up with the batch still running. */
export type WriteMode = "checkpoint" | "finish" | "release";

/** gRPC codes after which the same write may well succeed: it is tried again, a few times. */
const TRANSIENT_CODES = new Set<number>([GRPC.UNKNOWN, GRPC.DEADLINE_EXCEEDED, GRPC.RESOURCE_EXHAUSTED, GRPC.ABORTED, GRPC.INTERNAL, GRPC.UNAVAILABLE]);
const CHECKPOINT_ATTEMPTS = 5;

interface Taken {
  entries: PushLogEntry[];
  sent: number;
}

interface Shard {
  id: string;
  entries: PushLogEntry[];
}

/** The outcomes decided and not yet written, and which devices have an outcome at all (written or not). */
export class PendingOutcomes {
  private entries: PushLogEntry[] = [];
  /** Sends among them: the ones a takeover would repeat if they were never written. */
  private sent = 0;
  private readonly known: Set<string>;
  private readonly knownUids: Set<string>;

  constructor(previous: PushLogEntry[]) {
    this.known = new Set(previous.map(entryKey));
    this.knownUids = new Set(previous.map((e) => e.uid));
  }

  /** True when this device already has an outcome (recorded by an earlier delivery, or by us). */
  has(device: { uid: string; deviceId: string | null }): boolean {
    return this.known.has(entryKey(device));
  }

  /** True when the recipient has any outcome, for a device or as a whole. */
  hasAny(uid: string): boolean {
    return this.knownUids.has(uid);
  }

  /** Adds the device's first outcome (its text fields bounded); false when it has one already. */
  add(entry: PushLogEntry): boolean {
    const key = entryKey(entry);
    if (this.known.has(key)) return false;
    this.known.add(key);
    this.knownUids.add(entry.uid);
    this.entries.push(boundedEntry(entry));
    if (entry.outcome === "sent") this.sent++;
    return true;
  }

  /**
   * A checkpoint is due every `checkpointEvery` sends: only an unwritten send can be repeated by a
   * takeover (a skip is simply decided again). Skips are bounded too (a 500-recipient batch of
   * 20-device users is 10,000 of them), so a takeover finds most of the work done and memory stays flat.
   */
  checkpointDue(checkpointEvery: number): boolean {
    return this.sent >= checkpointEvery || this.entries.length >= 10 * SHARD_ENTRIES;
  }

  get size(): number {
    return this.entries.length;
  }

  take(): Taken {
    const taken = { entries: this.entries, sent: this.sent };
    this.entries = [];
    this.sent = 0;
    return taken;
  }

  /** A write that did not apply: its outcomes go first into the next one (never dropped: a takeover would send those devices again). */
  putBack(taken: Taken): void {
    this.entries = [...taken.entries, ...this.entries];
    this.sent += taken.sent;
  }
}

/**
 * The batch record's writes, one at a time (safe to call from concurrent senders). Each writes the
 * pending outcomes as new shards and adds to the counts and the cost; it also renews the lease (a
 * checkpoint), closes the batch (the final write) or gives the lease up (a release).
 */
export class ProgressWrites {
  private chain: Promise<void> = Promise.resolve();
  private queuedCheckpoint: Promise<void> | null = null;
  private shardSeq = 0;
  private writeSeq = 0;

  constructor(
    private readonly ref: DocumentReference,
    private readonly msgKey: string,
    private readonly options: LeaseOptions,
    /** This delivery's claim number: the prefix of its shard IDs. */
    private readonly claimNumber: number,
    private readonly outcomes: PendingOutcomes,
    private readonly lease: Lease,
    private readonly final: FinalRecord,
    private readonly cost: CostCounter,
    /** The batch document's update time as of our last write; null when unknown (after a transaction). */
    private updateTime: Timestamp | null,
  ) {}

  /** Coalesced: concurrent senders crossing the threshold together share one write. */
  checkpoint(): Promise<void> {
    this.queuedCheckpoint ??= this.enqueue("checkpoint");
    return this.queuedCheckpoint;
  }

  finish(): Promise<void> {
    return this.enqueue("finish");
  }

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
    if (this.lease.lost || this.final.finished) return;
    // Nothing new and the lease still long: no write. A renewal with nothing new is still written:
    // it keeps the lease while a slow send retries.
    if (mode === "checkpoint" && this.outcomes.size === 0 && !this.lease.renewalDue()) return;
    const taken = this.outcomes.take();
    const shards: Shard[] = [];
    for (let i = 0; i < taken.entries.length; i += SHARD_ENTRIES) shards.push({ id: `${this.claimNumber}-${this.shardSeq++}`, entries: taken.entries.slice(i, i + SHARD_ENTRIES) });
    // Identifies this write: a commit whose answer was lost (DEADLINE_EXCEEDED after it applied) is
    // recognised on the retry instead of counted twice.
    const writeId = `${this.options.owner}:${this.writeSeq++}`;
    try {
      await this.commitWithRetries(mode, taken.entries, shards, writeId);
    } catch (err) {
      // Not recorded: kept for the next write (the devices are not sent again by us).
      this.outcomes.putBack(taken);
      throw err;
    }
  }

  private async commitWithRetries(mode: WriteMode, entries: PushLogEntry[], shards: Shard[], writeId: string): Promise<void> {
    let statsMayHaveApplied = false;
    for (let attempt = 1; ; attempt++) {
      // The day's statistics ride in the final write (no call of their own). Their document is
      // shared by every batch finishing at that moment: if the commit keeps failing on contention,
      // the outcomes are written without them and the statistics follow in a write that may fail
      // alone. A hot counter must never hold up the record that keeps sends exactly-once.
      const withStats = this.final.carriesStats(mode === "finish", attempt);
      try {
        await this.commit(mode, entries, shards, writeId, withStats);
        // Unless an earlier attempt with them may have applied after all (its answer was lost):
        // then the day undercounts rather than counts twice.
        if (mode === "finish" && !withStats && this.final.finished && !statsMayHaveApplied) await this.final.writeStatsAlone(this.ref.id, this.cost, this.now());
        return;
      } catch (err) {
        const code = grpcCode(err);
        if (withStats && !(code === GRPC.ABORTED || code === GRPC.RESOURCE_EXHAUSTED)) statsMayHaveApplied = true;
        if (attempt >= CHECKPOINT_ATTEMPTS || code === undefined || !TRANSIENT_CODES.has(code)) throw err;
        await (this.options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms))))(250 * 2 ** (attempt - 1));
      }
    }
  }

  private async commit(mode: WriteMode, entries: PushLogEntry[], shards: Shard[], writeId: string, withStats: boolean): Promise<void> {
    if (this.updateTime) {
      const since = this.updateTime;
      // Whatever happens next, the document's time is no longer known for sure.
      this.updateTime = null;
      if (await this.commitBlind(mode, entries, shards, writeId, since, withStats)) return;
    }
    await this.commitInTransaction(mode, entries, shards, writeId, withStats);
  }

  /**
   * The write without a read: a batched write whose update of the batch document requires the
   * update time of our own last write. It applies only if nobody else wrote the document since, so
   * our lease is still ours and the counters we add to are the ones we know. False when the
   * precondition (or a shard's create) failed: the caller falls back to the transaction.
   */
  private async commitBlind(mode: WriteMode, entries: PushLogEntry[], shards: Shard[], writeId: string, since: Timestamp, withStats: boolean): Promise<boolean> {
    const nowMs = this.now();
    const added = countOutcomes(entries);
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
        ...this.closingFields(mode, nowMs),
      },
      { lastUpdateTime: since },
    );
    if (withStats) this.final.writeStatsIn(write, this.ref.id, nowMs);
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
    if (mode === "checkpoint") this.lease.renewed(nowMs + this.options.leaseMs);
    const was = this.final.counts();
    this.final.written({ sent: was.sent + added.sent, skipped: was.skipped + added.skipped, failed: was.failed + added.failed }, mode !== "checkpoint");
    return true;
  }

  /** The write as a transaction that checks the lease is still ours first; a lost lease stops the delivery. */
  private async commitInTransaction(mode: WriteMode, entries: PushLogEntry[], shards: Shard[], writeId: string, withStats: boolean): Promise<void> {
    const outcome = await db().runTransaction(async (tx) => {
      this.cost.firestoreReads++;
      const snap = await tx.get(this.ref);
      const doc = snap.exists ? BatchLogSchema.parse(snap.data()) : undefined;
      if (doc?.lastWriteId === writeId) return { wrote: true as const, already: true as const, counts: doc.counts, until: doc.lease?.until.toMillis() ?? 0 };
      if (!doc || doc.lease?.owner !== this.lease.owner) return { wrote: false as const };
      const nowMs = this.now();
      const added = countOutcomes(entries);
      const counts = { sent: doc.counts.sent + added.sent, skipped: doc.counts.skipped + added.skipped, failed: doc.counts.failed + added.failed };
      const total = this.cost.withPendingWrite();
      const until = Timestamp.fromMillis(nowMs + this.options.leaseMs);
      for (const shard of shards) tx.create(this.ref.collection(OUTCOMES).doc(shard.id), this.shardDoc(shard, nowMs));
      const closing = this.closingFields(mode, nowMs);
      if (withStats) this.final.writeStatsIn(tx, this.ref.id, nowMs);
      tx.update(this.ref, { counts, shards: doc.shards + shards.length, lastWriteId: writeId, cost: addCost(doc.cost, this.cost.deltaTo(total)), updatedAt: Timestamp.fromMillis(nowMs), ...closing });
      return { wrote: true as const, already: false as const, total, until: until.toMillis(), counts };
    });
    if (!outcome.wrote) {
      this.lease.lost = true;
      return;
    }
    if (!outcome.already) {
      this.cost.firestoreWrites++;
      this.cost.markSaved(outcome.total);
    }
    this.lease.renewed(outcome.until);
    this.final.written(outcome.counts, mode !== "checkpoint");
  }

  /** The lease as this write leaves it, and for the final write the batch closed. */
  private closingFields(mode: WriteMode, nowMs: number): Record<string, unknown> {
    const lease = this.lease.field(mode === "checkpoint", nowMs);
    return mode === "finish" ? { ...this.final.doneFields(nowMs), ...lease } : lease;
  }

  private shardDoc(shard: Shard, nowMs: number) {
    return {
      msgKey: this.msgKey,
      uids: [...new Set(shard.entries.map((e) => e.uid))],
      entries: shard.entries,
      createdAt: Timestamp.fromMillis(nowMs),
      expireAt: Timestamp.fromMillis(nowMs + this.options.ttlMs),
    };
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}
