// Exactly once per device, over at-least-once Pub/Sub deliveries and function retries.
//
// Each batch of a message has one push-log document (pushLog/{msgKeyId}__{batchIndex}__{uidsHash}) that is
// also its progress record: the outcome of every device handled so far, a state
// (running/done) and a lease {owner, deliveryId, until}.
//
// - A delivery first claims the batch in a transaction: it creates the document, or takes over a
//   running one whose lease has expired (the previous delivery crashed or timed out), or finds it
//   done (a duplicate: nothing to do), or finds a live lease (busy). Two deliveries of the same
//   batch therefore never both send.
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
// - Writes are per checkpoint, not per device.
//
// The remaining window: a delivery that dies after FCM accepted a request but before the
// checkpoint recording it was committed (a crash, an instance kill, a timeout) leaves that device
// without an outcome, and the delivery that takes over sends to it again. At most the devices
// sent since the last checkpoint are affected (bounded by FANOUT_CHECKPOINT_EVERY and the lease).
// FCM offers no idempotency key to close it; the duplicate carries the same
// android.notification.tag (the message key), so on the device it replaces the first
// notification instead of adding a second one.
import { Timestamp, type DocumentReference } from "firebase-admin/firestore";
import { db } from "../common/firestore";
import { addCost, zeroCost, type CostCounter } from "./cost";
import { BatchLogSchema, type BatchLog, type PushLogEntry } from "./schemas";
import { PUSH_LOG } from "./pushLog";

export const entryKey = (e: { uid: string; deviceId: string | null }): string => `${e.uid}\u0000${e.deviceId ?? ""}`;

/** Existing outcomes win: a device's first recorded outcome is final. */
export function mergeEntries(existing: PushLogEntry[], added: PushLogEntry[]): PushLogEntry[] {
  const seen = new Set(existing.map(entryKey));
  const merged = [...existing];
  for (const e of added) {
    const key = entryKey(e);
    if (seen.has(key)) continue;
    seen.add(key);
    merged.push(e);
  }
  return merged;
}

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

export async function claimBatch(logId: string, batch: BatchIdentity, options: LeaseOptions, cost: CostCounter): Promise<ClaimResult> {
  const now = options.now ?? Date.now;
  const ref = batchRef(logId);
  const result = await db().runTransaction(async (tx) => {
    cost.firestoreReads++;
    const snap = await tx.get(ref);
    const doc = snap.exists ? BatchLogSchema.parse(snap.data()) : undefined;
    const nowMs = now();
    const decision = claimDecision(doc, nowMs, options.deliveryId);
    const lease = { owner: options.owner, deliveryId: options.deliveryId, until: Timestamp.fromMillis(nowMs + options.leaseMs) };
    const total = cost.withPendingWrite();
    if (decision.action === "create") {
      const created: BatchLog = {
        kind: "batch",
        ...batch,
        state: "running",
        lease,
        claims: 1,
        duplicates: 0,
        concurrentDeliveries: 0,
        entries: [],
        counts: { sent: 0, skipped: 0, failed: 0 },
        cost: addCost(zeroCost(), cost.deltaTo(total)),
        createdAt: Timestamp.fromMillis(nowMs),
        updatedAt: Timestamp.fromMillis(nowMs),
        completedAt: null,
        expireAt: Timestamp.fromMillis(nowMs + options.ttlMs),
      };
      tx.create(ref, created);
      return { decision, total, entries: [] as PushLogEntry[], claims: 1, leaseUntil: lease.until.toMillis() };
    }
    if (decision.action === "take-over" && doc) {
      tx.update(ref, {
        lease,
        claims: doc.claims + 1,
        cost: addCost(doc.cost, cost.deltaTo(total)),
        updatedAt: Timestamp.fromMillis(nowMs),
      });
      return { decision, total, entries: doc.entries, claims: doc.claims + 1, leaseUntil: lease.until.toMillis() };
    }
    if (decision.action === "done" && doc) {
      // Counted so that a duplicate is visible in the log (and tests can wait for it).
      tx.update(ref, { duplicates: doc.duplicates + 1, cost: addCost(doc.cost, cost.deltaTo(total)) });
      return { decision, total, entries: [], claims: doc.claims, leaseUntil: 0, counts: doc.counts };
    }
    if (decision.action === "busy" && !decision.sameDelivery && doc) {
      // Left to the holder and acknowledged: counted, so the log shows the concurrent delivery.
      tx.update(ref, { concurrentDeliveries: doc.concurrentDeliveries + 1, cost: addCost(doc.cost, cost.deltaTo(total)) });
      return { decision, total, entries: [], claims: doc.claims, leaseUntil: 0, counts: doc.counts };
    }
    return { decision, total: null, entries: [], claims: doc?.claims ?? 0, leaseUntil: 0, counts: doc?.counts };
  });
  const { decision } = result;
  if (result.total) {
    cost.firestoreWrites++;
    cost.markSaved(result.total);
  }
  if (decision.action === "done") return { status: "done", counts: result.counts ?? { sent: 0, skipped: 0, failed: 0 } };
  if (decision.action === "busy") return { status: "busy", owner: decision.owner, until: new Date(decision.untilMs), sameDelivery: decision.sameDelivery };
  const progress = new BatchProgress(ref, options, result.entries, result.leaseUntil, cost);
  return { status: "claimed", progress, claims: result.claims, previousOwner: decision.action === "take-over" ? decision.previousOwner : null };
}

/**
 * The owner's side of a claimed batch: collects outcomes and writes them in checkpoints. Safe to
 * call from concurrent senders: writes are serialized, and each checks the lease first.
 */
export class BatchProgress {
  private pending: PushLogEntry[] = [];
  private readonly known: Set<string>;
  private chain: Promise<void> = Promise.resolve();
  private leaseUntil: number;
  private finished = false;
  private recordedCounts = { sent: 0, skipped: 0, failed: 0 };
  private queuedCheckpoint: Promise<void> | null = null;
  /** Another delivery took the batch over (our lease had expired): stop sending at once. */
  lost = false;

  constructor(
    private readonly ref: DocumentReference,
    private readonly options: LeaseOptions,
    /** Outcomes recorded by earlier deliveries. */
    readonly previous: PushLogEntry[],
    leaseUntil: number,
    private readonly cost: CostCounter,
  ) {
    this.known = new Set(previous.map(entryKey));
    this.leaseUntil = leaseUntil;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** True when this device already has an outcome (recorded by an earlier delivery, or by us). */
  has(device: { uid: string; deviceId: string | null }): boolean {
    return this.known.has(entryKey(device));
  }

  /** Records an outcome; writes a checkpoint when enough have piled up. */
  async record(entry: PushLogEntry): Promise<void> {
    const key = entryKey(entry);
    if (this.known.has(key)) return;
    this.known.add(key);
    this.pending.push(entry);
    if (this.pending.length >= this.options.checkpointEvery) await this.checkpoint();
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
    this.queuedCheckpoint ??= this.enqueue(false);
    return this.queuedCheckpoint;
  }

  /** The last write: remaining outcomes, state done, lease released. */
  finish(): Promise<void> {
    return this.enqueue(true);
  }

  private enqueue(final: boolean): Promise<void> {
    const run = this.chain.then(() => this.write(final));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async write(final: boolean): Promise<void> {
    // Outcomes recorded from here on need another checkpoint.
    if (!final) this.queuedCheckpoint = null;
    if (this.lost || this.finished) return;
    // Nothing new and the lease still long: no write. A renewal with nothing new is still written:
    // it keeps the lease while a slow send retries.
    if (!final && this.pending.length === 0 && this.leaseUntil - this.now() >= this.options.leaseMs / 2) return;
    const batch = this.pending;
    this.pending = [];
    try {
      const outcome = await db().runTransaction(async (tx) => {
        this.cost.firestoreReads++;
        const snap = await tx.get(this.ref);
        const doc = snap.exists ? BatchLogSchema.parse(snap.data()) : undefined;
        if (!doc || doc.lease?.owner !== this.options.owner) return { wrote: false as const };
        const nowMs = this.now();
        const entries = mergeEntries(doc.entries, batch);
        const total = this.cost.withPendingWrite();
        const until = Timestamp.fromMillis(nowMs + this.options.leaseMs);
        tx.update(this.ref, {
          entries,
          counts: countOutcomes(entries),
          cost: addCost(doc.cost, this.cost.deltaTo(total)),
          updatedAt: Timestamp.fromMillis(nowMs),
          ...(final ? { state: "done", lease: null, completedAt: Timestamp.fromMillis(nowMs) } : { lease: { owner: this.options.owner, deliveryId: this.options.deliveryId, until } }),
        });
        return { wrote: true as const, total, until: until.toMillis(), counts: countOutcomes(entries) };
      });
      if (!outcome.wrote) {
        this.lost = true;
        return;
      }
      this.cost.firestoreWrites++;
      this.cost.markSaved(outcome.total);
      this.leaseUntil = outcome.until;
      this.recordedCounts = outcome.counts;
      if (final) this.finished = true;
    } catch (err) {
      // Not recorded: keep the outcomes for the next write (the devices are not sent again by us).
      this.pending = [...batch, ...this.pending];
      throw err;
    }
  }
}
