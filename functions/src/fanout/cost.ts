// Calls made on behalf of one batch, recorded in its push-log document: the cost rule
// ("a handful of read calls, writes per batch, FCM requests = eligible devices") is checkable
// from the log itself, in tests, the benchmark and production.
import type { CostCounts } from "./schemas";

export class CostCounter {
  firestoreReads = 0;
  firestoreWrites = 0;
  fcmRequests = 0;
  publishes = 0;
  private saved: CostCounts = zeroCost();

  /** Calls made for the batch before this counter existed (an earlier attempt in the same invocation). */
  add(counts: CostCounts): void {
    this.firestoreReads += counts.firestoreReads;
    this.firestoreWrites += counts.firestoreWrites;
    this.fcmRequests += counts.fcmRequests;
    this.publishes += counts.publishes;
  }

  snapshot(): CostCounts {
    return { firestoreReads: this.firestoreReads, firestoreWrites: this.firestoreWrites, fcmRequests: this.fcmRequests, publishes: this.publishes };
  }

  /**
   * The totals a progress write records, counting that write itself. Computed inside a transaction
   * (which may run again), so nothing is marked as saved until `markSaved` after the commit.
   */
  withPendingWrite(): CostCounts {
    return { ...this.snapshot(), firestoreWrites: this.firestoreWrites + 1 };
  }

  /** What `total` adds to what earlier progress writes recorded. */
  deltaTo(total: CostCounts): CostCounts {
    return addCost(total, this.saved, -1);
  }

  markSaved(total: CostCounts): void {
    this.saved = total;
  }
}

export function zeroCost(): CostCounts {
  return { firestoreReads: 0, firestoreWrites: 0, fcmRequests: 0, publishes: 0 };
}

export function addCost(a: CostCounts, b: CostCounts, sign: 1 | -1 = 1): CostCounts {
  return {
    firestoreReads: a.firestoreReads + sign * b.firestoreReads,
    firestoreWrites: a.firestoreWrites + sign * b.firestoreWrites,
    fcmRequests: a.fcmRequests + sign * b.fcmRequests,
    publishes: a.publishes + sign * b.publishes,
  };
}
