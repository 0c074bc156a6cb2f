// Exactly once per device, over at-least-once Pub/Sub deliveries and function retries. This is the
// one explanation; the batch's steps (batch.ts) and the record's parts rely on it.
//
// Which batches a message has, and which recipients each decides (messageRecord.ts): every distinct
// recipient list published under a MsgKey is a publication; a recipient belongs to the first
// publication that listed it, and only that publication's batch decides it. So a device gets at
// most one outcome per MsgKey, whatever list it is republished in: a redelivery or a reordered
// republish is the same publication (the same batches), and a changed list's new batches leave
// the recipients listed before to the batches that already own them.
//
// Each batch has one push-log document (pushLog/{msgKeyId}__{epoch}__{generation}__{batchIndex}) that is
// also its progress record: a state (running/done), a lease {owner, deliveryId, until} and the
// outcome counts. The outcomes themselves (one entry per device) are in shard documents under it,
// pushLog/{logId}/outcomes/{claim}-{seq}, at most SHARD_ENTRIES each (pushLog.ts), so that no batch,
// however many devices its users have, can outgrow Firestore's 1 MiB document limit.
//
// The claim and the lease (claim.ts; groupClaims.ts makes several claims in one commit, by the same rule):
// - A delivery first claims the batch: it creates the document with a create-if-absent write (the
//   usual case: one write, no read), and only when it exists already, in a transaction, takes over
//   a running one whose lease has expired (the previous delivery crashed or timed out), or finds
//   it done (a duplicate: nothing to do), or finds a live lease (busy). Firestore lets only one
//   create of a document succeed, so two deliveries of the same batch never both send. Nothing is
//   sent before the claim is won (the recipients may be read meanwhile).
// - A lease whose owner is this delivery's own (a claim that applied although its answer was lost)
//   is resumed, not waited out: nobody else wrote since, or the owner would have changed.
// - The first claims of a new message carry its message record in the same commit: a batch ID
//   holds the record's epoch, so no batch is created before its record is (groupClaims.ts).
// - Busy, from another Pub/Sub message (the same event published twice, or a republished batch):
//   acknowledged without sending. The holder's own message stays unacknowledged until it has
//   finished, so if the holder dies, Pub/Sub redelivers *that* message (retry: true), and it
//   completes the batch.
// - Busy, from the same Pub/Sub message (the holder's own redelivery after a crash or timeout, or
//   Pub/Sub delivering one message twice): it waits, polling, until the batch is done (then
//   acknowledges) or the lease expires (then takes over). Waiting is bounded; after that the
//   delivery fails and Pub/Sub redelivers it later.
// - Before every FCM request the owner checks its lease (mayProceed) and renews it when less than
//   half is left, so a request is never made under an expired lease, where a takeover could repeat it.
//
// The pending sends and the checkpoints (checkpoints.ts):
// - The owner records outcomes in checkpoints (every FANOUT_CHECKPOINT_EVERY devices, and before
//   its lease gets short), each a write that also checks it still holds the lease and extends it.
//   A retry or takeover reads the recorded outcomes and handles only the devices without one: it
//   continues where the first attempt stopped.
// - Writes are per checkpoint, not per device: one commit that creates the new shard(s) and
//   updates the counts and the lease. While the owner knows the batch document's last update time
//   (from its own previous write), that commit is a plain batched write with that time as its
//   precondition: no read, and it fails if anyone else touched the document in between (a
//   takeover, a duplicate delivery counted), in which case the same write is made as a
//   transaction that checks the lease first. A checkpoint that fails transiently is retried;
//   outcomes not yet written are never dropped (a takeover would send those devices again).
// - A checkpoint is due every FANOUT_CHECKPOINT_EVERY devices *sent*: only an unrecorded send can
//   be repeated by a takeover (a skip is simply decided again), so skips ride along for free. For
//   the same reason a delivery that lost its lease stops at once and leaves what it decided
//   unwritten: the delivery that took over decides those devices again.
// - A delivery that runs out of its invocation's time with devices still open writes what it knows,
//   releases the lease (state stays running) and publishes a continuation of the batch, which
//   claims it and goes on.
//
// The final record (finalRecord.ts): the last write records the remaining outcomes, marks the batch
// done and releases the lease; the day's statistics ride in it, so each batch is counted once. It
// may wait for the other batches of its invocation to finish sending (sendingGroup.ts); the lease
// and the checkpoints go on meanwhile, so what a crash can repeat is unchanged.
//
// The remaining window: a delivery that dies after FCM accepted a request but before the
// checkpoint recording it was committed (a crash, an instance kill, a timeout) leaves that device
// without an outcome, and the delivery that takes over sends to it again. At most the devices
// sent since the last checkpoint are affected (bounded by FANOUT_CHECKPOINT_EVERY and the lease).
// FCM offers no idempotency key to close it; the duplicate carries the same
// android.notification.tag (the message key), so on the device it replaces the first
// notification instead of adding a second one.
import type { Timestamp } from "firebase-admin/firestore";
import { PendingOutcomes, ProgressWrites } from "./checkpoints";
import { Lease, claim, createdClaim, type BatchIdentity, type ClaimCreate, type ClaimOutcome, type Claimed, type LeaseOptions } from "./claim";
import type { CostCounter } from "./cost";
import { FinalRecord } from "./finalRecord";
import type { BatchStats } from "./pushStats";
import type { BatchLog, PushLogEntry } from "./schemas";

export type ClaimResult =
  | { status: "claimed"; progress: BatchProgress; claims: number; previousOwner: string | null }
  | Exclude<ClaimOutcome, { status: "claimed" }>
  /** The shared commit that was to register the message did not apply: the batch's identity is not settled yet (groupClaims.ts). */
  | { status: "unregistered" };

/** Claims the batch (claim.ts); once claimed, its progress record. */
export async function claimBatch(logId: string, batch: BatchIdentity, options: LeaseOptions, cost: CostCounter): Promise<ClaimResult> {
  const outcome = await claim(logId, batch, options, cost);
  return outcome.status === "claimed" ? claimedResult(outcome.claimed, batch, options, cost) : outcome;
}

/** The batch is ours once its created record is committed (at `writeTime`): see claim.ts, createdClaim. */
export function claimedByCreate(created: ClaimCreate, batch: BatchIdentity, options: LeaseOptions, cost: CostCounter, writeTime: Timestamp, countsWrite = true): ClaimResult {
  return claimedResult(createdClaim(created, cost, writeTime, countsWrite), batch, options, cost);
}

function claimedResult(claimed: Claimed, batch: BatchIdentity, options: LeaseOptions, cost: CostCounter): ClaimResult {
  return { status: "claimed", progress: new BatchProgress(claimed, batch, options, cost), claims: claimed.claims, previousOwner: claimed.previousOwner };
}

/**
 * The owner's side of a claimed batch: its lease, the outcomes it decides (written in
 * checkpoints), and the final record. Safe to call from concurrent senders: writes are
 * serialized, and each checks the lease first.
 */
export class BatchProgress {
  /** Outcomes recorded by earlier deliveries. */
  readonly previous: PushLogEntry[];
  private readonly lease: Lease;
  private readonly outcomes: PendingOutcomes;
  private readonly final: FinalRecord;
  private readonly writes: ProgressWrites;

  constructor(
    claimed: Claimed,
    batch: BatchIdentity,
    private readonly options: LeaseOptions,
    cost: CostCounter,
  ) {
    this.previous = claimed.previous;
    this.lease = new Lease(options, claimed.leaseUntil);
    this.outcomes = new PendingOutcomes(claimed.previous);
    this.final = new FinalRecord(batch, claimed.previous, claimed.counts);
    this.writes = new ProgressWrites(claimed.ref, batch.msgKey, options, claimed.claims, this.outcomes, this.lease, this.final, cost, claimed.updateTime);
  }

  /** Another delivery took the batch over (our lease had expired): stop sending at once. */
  get lost(): boolean {
    return this.lease.lost;
  }

  /** Every outcome of the batch (earlier deliveries' too), counted once in the final write. */
  get stats(): BatchStats {
    return this.final.stats;
  }

  /** True when this device already has an outcome (recorded by an earlier delivery, or by us). */
  has(device: { uid: string; deviceId: string | null }): boolean {
    return this.outcomes.has(device);
  }

  /** True when the recipient has any outcome, for a device or as a whole. */
  hasAny(uid: string): boolean {
    return this.outcomes.hasAny(uid);
  }

  /** Records an outcome; writes a checkpoint when enough have piled up. */
  async record(entry: PushLogEntry): Promise<void> {
    if (!this.outcomes.add(entry)) return;
    this.final.add(entry);
    if (this.outcomes.checkpointDue(this.options.checkpointEvery)) await this.writes.checkpoint();
  }

  /** Called before every FCM request: false when the lease is lost. Renews it when less than half is left. */
  async mayProceed(): Promise<boolean> {
    if (this.lease.lost) return false;
    if (this.lease.renewalDue()) await this.writes.checkpoint();
    return !this.lease.lost;
  }

  /** Outcome counts of the whole batch as last written (all deliveries). */
  counts(): BatchLog["counts"] {
    return this.final.counts();
  }

  /** Coalesced: concurrent senders crossing the threshold together share one write. */
  checkpoint(): Promise<void> {
    return this.writes.checkpoint();
  }

  /** The last write: remaining outcomes, state done, lease released. */
  finish(): Promise<void> {
    return this.writes.finish();
  }

  /** Outcomes so far, the lease given up, the batch still running: a continuation takes it from here. */
  release(): Promise<void> {
    return this.writes.release();
  }
}
