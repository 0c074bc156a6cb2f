// The claims of the batches one invocation processes together (the inline batches of an event),
// made in one commit: the batch records are created together, with the same create-if-absent
// rule as a single claim (claim.ts; progress.ts says why it keeps sends exactly-once), so a batch
// is still never claimed twice. One write call instead of one per batch, and in the emulator one
// commit instead of several competing with the batches' reads.
//
// A create fails the whole commit when any record exists already (the event redelivered, a
// batch done or held by another delivery): then every batch claims on its own, as it would
// without the group (a create, or the transaction that decides from the record).
//
// The first claims of a new message also create its message record (messageRecord.ts) in the
// same commit: the batch IDs hold the record's new epoch, so the message costs no call of its
// own. Then a failed commit (the record exists: a redelivery, a republish; or the answer was
// lost) leaves every batch `unregistered`, and none may be created until the event's invocation
// has settled which publication it is (handlePushEvent, registerInTransaction).
import type { DocumentData, DocumentReference } from "firebase-admin/firestore";
import * as logger from "firebase-functions/logger";
import { db } from "../common/firestore";
import type { CostCounter } from "./cost";
import { claimCreate, type BatchIdentity, type LeaseOptions } from "./claim";
import { claimBatch, claimedByCreate, type ClaimResult } from "./progress";

export interface ClaimRequest {
  logId: string;
  batch: BatchIdentity;
  options: LeaseOptions;
  cost: CostCounter;
}

interface Waiting {
  request: ClaimRequest;
  resolve: (result: ClaimResult) => void;
  reject: (err: unknown) => void;
}

/** The message record's documents, created in the shared commit with the claims. */
export interface Registering {
  creates: ReadonlyArray<{ ref: DocumentReference; data: DocumentData }>;
}

export class GroupClaims {
  private waiting: Waiting[] = [];
  private committing = false;
  /** Whether the shared commit applied, once it has settled. */
  private applied: Promise<boolean> | null = null;

  /**
   * `members`: how many batches will ask. The commit goes when all have, or at the next turn of
   * the event loop. `registering`: the message record to create with them.
   */
  constructor(
    private readonly members: number,
    private readonly registering: Registering | null = null,
  ) {}

  claim(request: ClaimRequest): Promise<ClaimResult> {
    // Too late for the shared commit (a batch that asked after it went): claimed on its own.
    if (this.committing) return this.claimLate(request);
    return new Promise<ClaimResult>((resolve, reject) => {
      this.waiting.push({ request, resolve, reject });
      if (this.waiting.length >= this.members) void this.commit();
      // The batches of an invocation ask in the same turn; one that never asks (it failed before
      // its claim) must not hold the others back.
      else if (this.waiting.length === 1) setImmediate(() => void this.commit());
    });
  }

  /** A batch's ID holds the epoch the shared commit registers: it is created only once that commit applied. */
  private async claimLate(request: ClaimRequest): Promise<ClaimResult> {
    if (!this.registering) return claimAlone(request);
    return (await this.applied) ? claimAlone(request) : { status: "unregistered" };
  }

  private async commit(): Promise<void> {
    if (this.committing) return;
    this.committing = true;
    let settle: (applied: boolean) => void = () => undefined;
    this.applied = new Promise<boolean>((resolve) => (settle = resolve));
    const list = this.waiting;
    this.waiting = [];
    const registering = this.registering?.creates ?? [];
    if (list.length === 1 && registering.length === 0) {
      const [only] = list as [Waiting];
      claimAlone(only.request).then(only.resolve, only.reject);
      return;
    }
    // The shared write is counted once, in the first batch's cost.
    const creates = list.map((w, i) => claimCreate(w.request.logId, w.request.batch, w.request.options, w.request.cost, i === 0));
    const write = db().batch();
    for (const c of registering) write.create(c.ref, c.data);
    for (const c of creates) write.create(c.ref, c.doc);
    let results: FirebaseFirestore.WriteResult[];
    try {
      results = await write.commit();
    } catch (err) {
      settle(false);
      (list[0] as Waiting).request.cost.firestoreWrites++;
      if (registering.length > 0) {
        // Usually ALREADY_EXISTS: the message record exists. Whether it is ours (an answer lost) or another publication's, the invocation finds out first.
        logger.info("offline push message not registered by its batches' shared claim: registered in a transaction first", { batches: list.length, error: String(err) });
        for (const w of list) w.resolve({ status: "unregistered" });
        return;
      }
      // Usually ALREADY_EXISTS (a redelivery): each batch decides from its own record.
      logger.info("offline push batches claimed one by one: their shared claim did not apply", { batches: list.length, error: String(err) });
      for (const w of list) claimAlone(w.request).then(w.resolve, w.reject);
      return;
    }
    settle(true);
    list.forEach((w, i) => {
      const created = creates[i];
      const result = results[registering.length + i];
      if (!created || !result) {
        w.reject(new Error(`the shared claim answered ${results.length} results for ${registering.length + creates.length} documents`));
        return;
      }
      w.resolve(claimedByCreate(created, w.request.batch, w.request.options, w.request.cost, result.writeTime, i === 0));
    });
  }
}

function claimAlone(r: ClaimRequest): Promise<ClaimResult> {
  return claimBatch(r.logId, r.batch, r.options, r.cost);
}
