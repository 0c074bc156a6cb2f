// What a batch's last write leaves: the batch done, its outcome counts, and the day's statistics
// (pushStats.ts), which ride in that write and so count each batch once (progress.ts).
import { Timestamp, type Transaction, type WriteBatch } from "firebase-admin/firestore";
import * as logger from "firebase-functions/logger";
import { db } from "../common/firestore";
import type { BatchIdentity } from "./claim";
import type { CostCounter } from "./cost";
import { BatchStats } from "./pushStats";
import type { BatchLog, PushLogEntry } from "./schemas";

type OutcomeCounts = BatchLog["counts"];

/** Attempts of a final write that carry the day's statistics (see ProgressWrites.commitWithRetries). */
const STATS_IN_FINAL_WRITE_ATTEMPTS = 2;

export class FinalRecord {
  /** Every outcome of the batch (earlier deliveries' too), counted once in the final write. */
  readonly stats: BatchStats;
  /** The final write (or a release) is committed: this delivery writes nothing more. */
  finished = false;
  private recordedCounts: OutcomeCounts;

  constructor(batch: BatchIdentity, previous: PushLogEntry[], counts: OutcomeCounts) {
    this.recordedCounts = { ...counts };
    this.stats = new BatchStats(batch);
    for (const e of previous) this.stats.add(e);
  }

  add(entry: PushLogEntry): void {
    this.stats.add(entry);
  }

  /** Outcome counts of the whole batch as last written (all deliveries). */
  counts(): OutcomeCounts {
    return { ...this.recordedCounts };
  }

  /** A write committed, leaving the counts at `counts`; any but a checkpoint is this delivery's last. */
  written(counts: OutcomeCounts, last: boolean): void {
    this.recordedCounts = counts;
    if (last) this.finished = true;
  }

  /** The fields that close the batch; `outcomes` by reason and error code, so a message's counts need no shard read (traceMessage). */
  doneFields(nowMs: number): Record<string, unknown> {
    return { state: "done", completedAt: Timestamp.fromMillis(nowMs), peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024), outcomes: this.stats.outcomes() };
  }

  /** Whether this attempt of a write carries the statistics: only a final write's first attempts. */
  carriesStats(final: boolean, attempt: number): boolean {
    return final && attempt <= STATS_IN_FINAL_WRITE_ATTEMPTS;
  }

  /** The one counter write of the batch, added to its final write. */
  writeStatsIn(writer: Transaction | WriteBatch, logId: string, nowMs: number): void {
    this.stats.writeIn(writer, logId, nowMs);
  }

  /** The batch's statistics on their own, best effort: after its final write had to go without them. */
  async writeStatsAlone(logId: string, cost: CostCounter, nowMs: number): Promise<void> {
    try {
      const write = db().batch();
      this.stats.writeIn(write, logId, nowMs);
      cost.firestoreWrites++;
      await write.commit();
    } catch (err) {
      logger.warn("push statistics of a batch could not be written: pushStats undercounts it", { logId, error: String(err) });
    }
  }
}
