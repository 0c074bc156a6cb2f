// The claim and the lease of a batch: which delivery may send it, and until when. progress.ts
// explains how they keep the sends exactly-once; this is the code of its first two points.
import { Timestamp, type DocumentReference, type Transaction } from "firebase-admin/firestore";
import { GRPC, db, grpcCode } from "../common/firestore";
import { addCost, zeroCost, type CostCounter } from "./cost";
import { clip } from "./message";
import { batchRef, readBatchEntries } from "./pushLog";
import { BatchLogSchema, type BatchLog, type CostCounts, type FollowUpKind, type OwnedElsewhere, type PushLogEntry } from "./schemas";

export interface BatchIdentity {
  msgKey: string;
  from: string;
  /** The publication the batch belongs to (messageRecord.ts); absent for a batch with the old ID. */
  epoch?: string;
  generation?: number;
  batchIndex: number;
  batchCount: number;
  eventId: string;
  /** The recipients the batch decides: its share of the list, less those an earlier publication owns. */
  uids: string[];
  /** Its share of the list that an earlier publication owns (recorded for the operators; not decided here). */
  ownedElsewhere?: OwnedElsewhere[];
  notes: string[];
  /** The recipients' conversation (message.ts, conversationOf). */
  conversation?: string;
  /** A Read or a Recall (followUp.ts); absent: a message. */
  event?: FollowUpKind;
  /** A Read: the messages it cleared. */
  follows?: string[];
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
  /**
   * A resumption (Cloud Tasks bringing a paused batch back): it continues an existing record and
   * never starts one. A record that is gone (expired, or deleted) leaves nothing to resume.
   */
  resume?: boolean;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

type OutcomeCounts = BatchLog["counts"];
type LeaseField = NonNullable<BatchLog["lease"]>;

export type ClaimDecision =
  | { action: "create" }
  | { action: "gone" }
  | { action: "take-over"; previousOwner: string | null }
  | { action: "resume" }
  | { action: "done" }
  | { action: "busy"; owner: string; untilMs: number; sameDelivery: boolean };

/**
 * What a delivery (of Pub/Sub message `deliveryId`, lease owner `owner`) may do with a batch,
 * given its progress record. `resume`: the lease is this delivery's own: a claim whose commit
 * applied although its answer was lost (DEADLINE_EXCEEDED, a reset) finds it so, and goes on
 * rather than wait for its own lease to expire. Nobody else can have written since: every other
 * write needs the lease, or takes it over (and then the owner is no longer ours).
 * `resumption`: a Cloud Tasks resumption, which never starts a record (none left: `gone`).
 */
export function claimDecision(doc: Pick<BatchLog, "state" | "lease"> | undefined, nowMs: number, deliveryId: string, owner?: string, resumption = false): ClaimDecision {
  if (!doc) return resumption ? { action: "gone" } : { action: "create" };
  if (doc.state === "done") return { action: "done" };
  const lease = doc.lease;
  if (lease && owner !== undefined && lease.owner === owner) return { action: "resume" };
  if (lease && lease.until.toMillis() > nowMs) {
    return { action: "busy", owner: lease.owner, untilMs: lease.until.toMillis(), sameDelivery: lease.deliveryId === deliveryId };
  }
  return { action: "take-over", previousOwner: lease?.owner ?? null };
}

/** Thrown to make Pub/Sub redeliver later: the batch stayed busy longer than a delivery may wait. */
export class BatchBusyError extends Error {
  override readonly name = "BatchBusyError";
}

/** A batch this delivery holds: what its progress record starts from (progress.ts). */
export interface Claimed {
  ref: DocumentReference;
  /** This claim's number (1 for the first): the prefix of the shards it writes. */
  claims: number;
  previousOwner: string | null;
  /** Outcomes recorded by earlier deliveries. */
  previous: PushLogEntry[];
  leaseUntil: number;
  /** Outcome counts of the batch as stored when claimed. */
  counts: OutcomeCounts;
  /** The batch document's update time as of the claim's own write; null when unknown (after a transaction). */
  updateTime: Timestamp | null;
}

export type ClaimOutcome =
  | { status: "claimed"; claimed: Claimed }
  | { status: "done"; counts: OutcomeCounts }
  | { status: "gone" }
  | { status: "busy"; owner: string; until: Date; sameDelivery: boolean };

const noCounts = (): OutcomeCounts => ({ sent: 0, skipped: 0, failed: 0 });

function leaseOf(options: LeaseOptions, nowMs: number): LeaseField {
  return { owner: options.owner, deliveryId: options.deliveryId, until: Timestamp.fromMillis(nowMs + options.leaseMs) };
}

/** The progress record of a batch nobody has claimed yet. */
function newBatchLog(batch: BatchIdentity, lease: LeaseField, cost: BatchLog["cost"], nowMs: number, ttlMs: number): BatchLog {
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
    counts: noCounts(),
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
  const lease = leaseOf(options, nowMs);
  const total = countsWrite ? cost.withPendingWrite() : cost.snapshot();
  return { ref: batchRef(logId), doc: newBatchLog(batch, lease, addCost(zeroCost(), cost.deltaTo(total)), nowMs, options.ttlMs), leaseUntilMs: lease.until.toMillis(), total };
}

/** The batch is ours once its created record is committed (at `writeTime`). */
export function createdClaim(created: ClaimCreate, cost: CostCounter, writeTime: Timestamp, countsWrite = true): Claimed {
  if (countsWrite) cost.firestoreWrites++;
  cost.markSaved(created.total);
  return { ref: created.ref, claims: 1, previousOwner: null, previous: [], leaseUntil: created.leaseUntilMs, counts: noCounts(), updateTime: writeTime };
}

/**
 * Claims a batch. The usual case first: nobody has claimed it, and a create-if-absent write claims
 * it without a read. ALREADY_EXISTS sends us to a transaction that decides from the record.
 */
export async function claim(logId: string, batch: BatchIdentity, options: LeaseOptions, cost: CostCounter): Promise<ClaimOutcome> {
  // A resumption's record exists: the transaction straight away (a create would only fail).
  if (options.resume) return claimExisting(batchRef(logId), batch, options, cost);
  const created = claimCreate(logId, batch, options, cost);
  try {
    const written = await created.ref.create(created.doc);
    return { status: "claimed", claimed: createdClaim(created, cost, written.writeTime) };
  } catch (err) {
    if (grpcCode(err) !== GRPC.ALREADY_EXISTS) throw err;
    cost.firestoreWrites++;
  }
  return claimExisting(created.ref, batch, options, cost);
}

/** What the claim's transaction decided and wrote. */
interface Decided {
  decision: ClaimDecision;
  /** The cost totals written (null: nothing was written). */
  total: CostCounts | null;
  claims: number;
  leaseUntil: number;
  counts: OutcomeCounts | undefined;
  shards: number;
}

async function claimExisting(ref: DocumentReference, batch: BatchIdentity, options: LeaseOptions, cost: CostCounter): Promise<ClaimOutcome> {
  const result = await db().runTransaction((tx) => decideFromRecord(tx, ref, batch, options, cost));
  const { decision } = result;
  if (result.total) {
    cost.firestoreWrites++;
    cost.markSaved(result.total);
  }
  if (decision.action === "gone") return { status: "gone" };
  if (decision.action === "done") return { status: "done", counts: result.counts ?? noCounts() };
  if (decision.action === "busy") return { status: "busy", owner: decision.owner, until: new Date(decision.untilMs), sameDelivery: decision.sameDelivery };
  // Our lease is committed: no earlier owner can write another shard now (every write checks the
  // lease in its transaction), so what we read here is all that was recorded before us.
  let previous: PushLogEntry[] = [];
  if ((decision.action === "take-over" || decision.action === "resume") && result.shards > 0) {
    cost.firestoreReads++;
    previous = await readBatchEntries(ref);
  }
  const previousOwner = decision.action === "take-over" ? decision.previousOwner : null;
  return { status: "claimed", claimed: { ref, claims: result.claims, previousOwner, previous, leaseUntil: result.leaseUntil, counts: result.counts ?? noCounts(), updateTime: null } };
}

/** The transaction's body: reads the record, and takes the batch over, or counts this delivery as a duplicate or concurrent one. */
async function decideFromRecord(tx: Transaction, ref: DocumentReference, batch: BatchIdentity, options: LeaseOptions, cost: CostCounter): Promise<Decided> {
  cost.firestoreReads++;
  const snap = await tx.get(ref);
  const doc = snap.exists ? BatchLogSchema.parse(snap.data()) : undefined;
  const nowMs = (options.now ?? Date.now)();
  const decision = claimDecision(doc, nowMs, options.deliveryId, options.owner, options.resume);
  const lease = leaseOf(options, nowMs);
  const total = cost.withPendingWrite();
  if (decision.action === "create") {
    // Deleted between our create and this read (TTL): created here after all.
    const created = newBatchLog(batch, lease, addCost(zeroCost(), cost.deltaTo(total)), nowMs, options.ttlMs);
    tx.create(ref, created);
    return { decision, total, claims: 1, leaseUntil: lease.until.toMillis(), counts: created.counts, shards: 0 };
  }
  if (decision.action === "take-over" && doc) {
    tx.update(ref, { lease, claims: doc.claims + 1, cost: addCost(doc.cost, cost.deltaTo(total)), updatedAt: Timestamp.fromMillis(nowMs) });
    return { decision, total, claims: doc.claims + 1, leaseUntil: lease.until.toMillis(), counts: doc.counts, shards: doc.shards };
  }
  if (decision.action === "resume" && doc?.lease) {
    // Ours already: nothing to write (the lease is renewed by the first checkpoint, as after a create).
    return { decision, total: null, claims: doc.claims, leaseUntil: doc.lease.until.toMillis(), counts: doc.counts, shards: doc.shards };
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
}

/** The lease a delivery holds on its claimed batch: renewed by each checkpoint, given up by its last write. */
export class Lease {
  /** Another delivery took the batch over (our lease had expired): stop sending at once. */
  lost = false;

  constructor(
    private readonly options: LeaseOptions,
    private until: number,
  ) {}

  get owner(): string {
    return this.options.owner;
  }

  /** When it ends, as far as this delivery knows (its last committed write). */
  endsAt(): number {
    return this.until;
  }

  /** Less than half of it is left: renewed (by a checkpoint) before the next FCM request. */
  renewalDue(): boolean {
    return this.until - (this.options.now ?? Date.now)() < this.options.leaseMs / 2;
  }

  /** Its field as a write leaves it: renewed by a checkpoint, released by the final write and by a release. */
  field(renew: boolean, nowMs: number): { lease: LeaseField | null } {
    return { lease: renew ? leaseOf(this.options, nowMs) : null };
  }

  /** Until when it holds after a committed write. */
  renewed(untilMs: number): void {
    this.until = untilMs;
  }
}
