// The outcomes a delivery has decided and not yet written, and the writes that record them: the
// checkpoints, the final write and the release. progress.ts explains how they keep the sends
// exactly-once; this is the code of its checkpoint points.
import { FieldValue, Timestamp, type DocumentReference } from "firebase-admin/firestore";
import * as logger from "firebase-functions/logger";
import { GRPC, db, grpcCode } from "../common/firestore";
import type { Lease, LeaseOptions } from "./claim";
import { addCost, type CostCounter } from "./cost";
import type { FinalRecord } from "./finalRecord";
import { OUTCOMES, SHARD_ENTRIES, boundedEntry, countOutcomes, entryKey } from "./pushLog";
import { BatchLogSchema, type PushLogEntry } from "./schemas";

/** A checkpoint renews the lease; the final write closes the batch; a release gives the lease up with the batch still running. */
export type WriteMode = "checkpoint" | "finish" | "release";

/** gRPC codes after which the same write may well succeed: it is tried again. */
const TRANSIENT_CODES = new Set<number>([GRPC.UNKNOWN, GRPC.DEADLINE_EXCEEDED, GRPC.RESOURCE_EXHAUSTED, GRPC.ABORTED, GRPC.INTERNAL, GRPC.UNAVAILABLE]);
/** Contention: the statistics' shared document may be the cause (see FinalRecord.carriesStats). */
const CONTENTION_CODES = new Set<number>([GRPC.ABORTED, GRPC.RESOURCE_EXHAUSTED]);
/**
 * One attempt of a progress write that has not answered by then is given up and the write tried
 * again: the Admin SDK retries an UNAVAILABLE commit by itself for up to 10 minutes, far past the
 * lease. The abandoned call may still land; every write is preconditioned (see commitChecked).
 */
export const WRITE_ATTEMPT_MS = 10_000;
/** Backoff between attempts of a write (doubling, jittered), and the least time an attempt needs before the lease ends. */
const RETRY_BASE_MS = 250;
const RETRY_MAX_MS = 4_000;
const MIN_ATTEMPT_MS = 1_000;

/** No answer within WRITE_ATTEMPT_MS (or before the lease ends): transient, as DEADLINE_EXCEEDED is. */
class WriteAttemptTimeout extends Error {
  override readonly name = "WriteAttemptTimeout";
  readonly code = GRPC.DEADLINE_EXCEEDED;
}

/** The progress write kept failing until the lease was nearly over: the delivery stops, and a takeover decides after the lease. */
export class ProgressWriteGaveUp extends Error {
  override readonly name = "ProgressWriteGaveUp";
  constructor(
    readonly mode: WriteMode,
    readonly attempts: number,
    readonly lastError: unknown,
  ) {
    super(`the batch's ${mode} write failed ${attempts} time(s) until its lease was nearly over (last: ${String(lastError)}); its unrecorded outcomes are left to the delivery that takes over after the lease`);
  }
}

/** A write being retried after a failure: the senders wait for it. */
class Trouble {
  resolve: () => void = () => undefined;
  reject: (err: unknown) => void = () => undefined;
  readonly promise = new Promise<void>((resolve, reject) => {
    this.resolve = resolve;
    this.reject = reject;
  });

  constructor() {
    this.promise.catch(() => undefined); // rejected with nobody waiting: not an unhandled rejection
  }
}

/** One attempt of a write: once abandoned (timed out), whatever it learns later changes nothing here. */
interface AttemptState {
  live: boolean;
}

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
 *
 * A write that fails transiently (or does not answer within WRITE_ATTEMPT_MS) is tried again, with
 * backoff, until the lease is nearly over; meanwhile `untroubled()` holds every new FCM request
 * back (BatchProgress.mayProceed), so nothing is sent that the record is not keeping up with. Only
 * when the lease is about to end does the delivery give up (ProgressWriteGaveUp): a takeover can
 * only begin after it, and decides the devices left unrecorded.
 */
export class ProgressWrites {
  private chain: Promise<void> = Promise.resolve();
  private queuedCheckpoint: Promise<void> | null = null;
  private shardSeq = 0;
  private writeSeq = 0;
  /** Set while a write is being tried again after a failure: settles with that write. */
  private trouble: Promise<void> | null = null;
  /** A write gave up: this delivery writes nothing more. */
  private brokenBy: ProgressWriteGaveUp | null = null;

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
    /** The batch document's update time as of our last write; null when unknown (after a failed write). */
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

  /** Resolves at once, or, while a write is being retried, when it is recorded; rejects if it gave up. */
  untroubled(): Promise<void> {
    if (this.brokenBy) return Promise.reject(this.brokenBy);
    return this.trouble ?? Promise.resolve();
  }

  private enqueue(mode: WriteMode): Promise<void> {
    const run = this.chain.then(() => this.write(mode));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async write(mode: WriteMode): Promise<void> {
    // Outcomes recorded from here on need another checkpoint.
    if (mode === "checkpoint") this.queuedCheckpoint = null;
    if (this.brokenBy) throw this.brokenBy;
    if (this.lease.lost || this.final.finished) return;
    // Nothing new and the lease still long: no write. A renewal with nothing new is still written:
    // it keeps the lease while a slow send retries.
    if (mode === "checkpoint" && this.outcomes.size === 0 && !this.lease.renewalDue()) return;
    const taken = this.outcomes.take();
    const shards: Shard[] = [];
    for (let i = 0; i < taken.entries.length; i += SHARD_ENTRIES) shards.push({ id: `${this.claimNumber}-${this.shardSeq++}`, entries: taken.entries.slice(i, i + SHARD_ENTRIES) });
    // Identifies this write: an attempt whose answer was lost (or that was abandoned and landed
    // later) is recognised by the next attempt instead of counted twice.
    const writeId = `${this.options.owner}:${this.writeSeq++}`;
    try {
      await this.commitWithRetries(mode, taken.entries, shards, writeId);
    } catch (err) {
      // Not recorded: kept in memory (the devices are not sent again by us).
      this.outcomes.putBack(taken);
      if (err instanceof ProgressWriteGaveUp) this.brokenBy = err;
      throw err;
    }
  }

  private async commitWithRetries(mode: WriteMode, entries: PushLogEntry[], shards: Shard[], writeId: string): Promise<void> {
    let trouble: Trouble | null = null;
    let contention = 0;
    try {
      for (let attempt = 1; ; attempt++) {
        // The day's statistics ride in the final write (no call of their own). Their document is
        // shared by every batch finishing at that moment: if the commit keeps failing on
        // contention, the outcomes are written without them and the statistics follow in a write
        // that may fail alone. A hot counter must never hold up the record that keeps sends exactly-once.
        const withStats = this.final.carriesStats(mode === "finish", contention + 1);
        const state: AttemptState = { live: true };
        try {
          const applied = await withDeadline(this.commit(mode, entries, shards, writeId, withStats, state), Math.min(WRITE_ATTEMPT_MS, this.lease.endsAt() - this.now()), state);
          if (mode === "finish" && this.final.finished && !applied.withStats) await this.final.writeStatsAlone(this.ref.id, this.cost, this.now());
          trouble?.resolve();
          return;
        } catch (err) {
          const code = grpcCode(err);
          if (code === undefined || !TRANSIENT_CODES.has(code)) throw err;
          if (CONTENTION_CODES.has(code)) contention++;
          if (!trouble) {
            // From now on no new FCM request starts until this write is recorded (or given up).
            trouble = new Trouble();
            this.trouble = trouble.promise;
            logger.warn("offline push progress write failed: sends held back while it is retried until the lease is nearly over", { logId: this.ref.id, mode, error: String(err) });
          }
          const backoff = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (attempt - 1));
          const wait = backoff / 2 + Math.floor(Math.random() * (backoff / 2));
          if (this.lease.endsAt() - this.now() - wait < MIN_ATTEMPT_MS) throw new ProgressWriteGaveUp(mode, attempt, err);
          await (this.options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms))))(wait);
        }
      }
    } catch (err) {
      // The senders waiting in untroubled() learn why.
      trouble?.reject(err instanceof ProgressWriteGaveUp ? err : new ProgressWriteGaveUp(mode, 0, err));
      throw err;
    } finally {
      if (trouble) this.trouble = null;
    }
  }

  /**
   * One attempt: the write without a read while our own last write's update time is known, else
   * after a read. Resolves with whether the write that applied (this attempt or an earlier one of
   * the same write) carried the statistics.
   */
  private async commit(mode: WriteMode, entries: PushLogEntry[], shards: Shard[], writeId: string, withStats: boolean, state: AttemptState): Promise<{ withStats: boolean }> {
    if (this.updateTime) {
      const since = this.updateTime;
      // Whatever happens next, the document's time is no longer known for sure.
      this.updateTime = null;
      if (await this.commitBlind(mode, entries, shards, writeId, since, withStats, state)) return { withStats };
    }
    return this.commitChecked(mode, entries, shards, writeId, withStats, state);
  }

  /**
   * The write without a read: a batched write whose update of the batch document requires the
   * update time of our own last write. It applies only if nobody else wrote the document since, so
   * our lease is still ours and the counters we add to are the ones we know. False when the
   * precondition (or a shard's create) failed: the caller reads the document first.
   */
  private async commitBlind(mode: WriteMode, entries: PushLogEntry[], shards: Shard[], writeId: string, since: Timestamp, withStats: boolean, state: AttemptState): Promise<boolean> {
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
        lastWriteId: writeIdOf(writeId, withStats),
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
      if (state.live) this.cost.firestoreWrites++;
      const code = grpcCode(err);
      if (code === GRPC.FAILED_PRECONDITION || code === GRPC.ALREADY_EXISTS || code === GRPC.NOT_FOUND) return false;
      throw err;
    }
    // Abandoned: the next attempt finds it applied (lastWriteId).
    if (!state.live) return true;
    this.cost.firestoreWrites++;
    this.cost.markSaved(total);
    this.updateTime = results[results.length - 1]?.writeTime ?? null;
    if (mode === "checkpoint") this.lease.renewed(nowMs + this.options.leaseMs);
    const was = this.final.counts();
    this.final.written({ sent: was.sent + added.sent, skipped: was.skipped + added.skipped, failed: was.failed + added.failed }, mode !== "checkpoint");
    return true;
  }

  /**
   * The write after a read of the batch document: it checks that the lease is still ours (a lost
   * lease stops the delivery) and whether an earlier attempt of this write applied after all, then
   * writes with the read's update time as precondition. Not a transaction: an abandoned attempt
   * must hold no lock on the document, and the precondition gives the same guarantee (the write
   * applies only to the document as read). Someone writing in between: read again.
   */
  private async commitChecked(mode: WriteMode, entries: PushLogEntry[], shards: Shard[], writeId: string, withStats: boolean, state: AttemptState): Promise<{ withStats: boolean }> {
    for (;;) {
      this.cost.firestoreReads++;
      const snap = await this.ref.get();
      if (!state.live) throw new WriteAttemptTimeout("abandoned");
      const doc = snap.exists ? BatchLogSchema.parse(snap.data()) : undefined;
      if (doc && (doc.lastWriteId === writeIdOf(writeId, true) || doc.lastWriteId === writeIdOf(writeId, false))) {
        // An earlier attempt applied (its answer was lost, or it landed after we gave it up).
        this.updateTime = snap.updateTime ?? null;
        this.lease.renewed(doc.lease?.until.toMillis() ?? 0);
        this.final.written(doc.counts, mode !== "checkpoint");
        return { withStats: doc.lastWriteId === writeIdOf(writeId, true) };
      }
      if (!doc || doc.lease?.owner !== this.lease.owner || !snap.updateTime) {
        this.lease.lost = true;
        return { withStats: true };
      }
      const nowMs = this.now();
      const added = countOutcomes(entries);
      const counts = { sent: doc.counts.sent + added.sent, skipped: doc.counts.skipped + added.skipped, failed: doc.counts.failed + added.failed };
      const total = this.cost.withPendingWrite();
      const write = db().batch();
      for (const shard of shards) write.create(this.ref.collection(OUTCOMES).doc(shard.id), this.shardDoc(shard, nowMs));
      if (withStats) this.final.writeStatsIn(write, this.ref.id, nowMs);
      write.update(
        this.ref,
        { counts, shards: doc.shards + shards.length, lastWriteId: writeIdOf(writeId, withStats), cost: addCost(doc.cost, this.cost.deltaTo(total)), updatedAt: Timestamp.fromMillis(nowMs), ...this.closingFields(mode, nowMs) },
        { lastUpdateTime: snap.updateTime },
      );
      let results;
      try {
        results = await write.commit();
      } catch (err) {
        if (!state.live) throw err;
        this.cost.firestoreWrites++;
        const code = grpcCode(err);
        // Written in between (a duplicate delivery counted, an abandoned attempt of ours landed): read again.
        if (code === GRPC.FAILED_PRECONDITION || code === GRPC.ALREADY_EXISTS) continue;
        throw err;
      }
      if (!state.live) return { withStats };
      this.cost.firestoreWrites++;
      this.cost.markSaved(total);
      this.updateTime = results[results.length - 1]?.writeTime ?? null;
      if (mode === "checkpoint") this.lease.renewed(nowMs + this.options.leaseMs);
      this.final.written(counts, mode !== "checkpoint");
      return { withStats };
    }
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

/** The write's ID as stored: with a mark when it carried the day's statistics, so a later attempt knows whether they were counted. */
const writeIdOf = (writeId: string, withStats: boolean): string => (withStats ? `${writeId}+stats` : writeId);

/** `work`, or a WriteAttemptTimeout after `ms` (the attempt is then abandoned: `state.live` false). */
function withDeadline<T>(work: Promise<T>, ms: number, state: AttemptState): Promise<T> {
  if (ms <= 0) {
    state.live = false;
    work.catch(() => undefined);
    return Promise.reject(new WriteAttemptTimeout("no time left before the lease ends"));
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      state.live = false;
      reject(new WriteAttemptTimeout(`no answer from Firestore within ${ms} ms`));
    }, ms);
  });
  work.catch(() => undefined); // an abandoned attempt's late failure is nobody's
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
