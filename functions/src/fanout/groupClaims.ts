// The claims of the batches one invocation processes together (the inline batches of an event),
// made in one commit: the batch records are created together, with the same create-if-absent
// rule as a single claim (claim.ts; progress.ts says why it keeps sends exactly-once), so a batch
// is still never claimed twice. One write call instead of one per batch, and in the emulator one
// commit instead of several competing with the batches' reads.
//
// A create fails the whole commit when any record exists already (the event redelivered, a
// batch done or held by another delivery): then every batch claims on its own, as it would
// without the group (a create, or the transaction that decides from the record).
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

export class GroupClaims {
  private waiting: Waiting[] = [];
  private committing = false;

  /** `members`: how many batches will ask. The commit goes when all have, or at the next turn of the event loop. */
  constructor(private readonly members: number) {}

  claim(request: ClaimRequest): Promise<ClaimResult> {
    // Too late for the shared commit (a batch that asked after it went): claimed on its own.
    if (this.committing) return claimAlone(request);
    return new Promise<ClaimResult>((resolve, reject) => {
      this.waiting.push({ request, resolve, reject });
      if (this.waiting.length >= this.members) void this.commit();
      // The batches of an invocation ask in the same turn; one that never asks (it failed before
      // its claim) must not hold the others back.
      else if (this.waiting.length === 1) setImmediate(() => void this.commit());
    });
  }

  private async commit(): Promise<void> {
    if (this.committing) return;
    this.committing = true;
    const list = this.waiting;
    this.waiting = [];
    if (list.length === 1) {
      const [only] = list as [Waiting];
      claimAlone(only.request).then(only.resolve, only.reject);
      return;
    }
    // The shared write is counted once, in the first batch's cost.
    const creates = list.map((w, i) => claimCreate(w.request.logId, w.request.batch, w.request.options, w.request.cost, i === 0));
    const write = db().batch();
    for (const c of creates) write.create(c.ref, c.doc);
    let results: FirebaseFirestore.WriteResult[];
    try {
      results = await write.commit();
    } catch (err) {
      // Usually ALREADY_EXISTS (a redelivery): each batch decides from its own record.
      (list[0] as Waiting).request.cost.firestoreWrites++;
      logger.info("offline push batches claimed one by one: their shared claim did not apply", { batches: list.length, error: String(err) });
      for (const w of list) claimAlone(w.request).then(w.resolve, w.reject);
      return;
    }
    list.forEach((w, i) => {
      const created = creates[i];
      const result = results[i];
      if (!created || !result) {
        w.reject(new Error(`the shared claim answered ${results.length} results for ${creates.length} records`));
        return;
      }
      w.resolve(claimedByCreate(created, w.request.batch, w.request.options, w.request.cost, result.writeTime, i === 0));
    });
  }
}

function claimAlone(r: ClaimRequest): Promise<ClaimResult> {
  return claimBatch(r.logId, r.batch, r.options, r.cost);
}
