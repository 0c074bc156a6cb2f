// Per-day push statistics (UTC): the counters a batch's final write adds to, and their layout.
//   pushStats/{YYYY-MM}__{shard}   { month, shard, days: { "DD": DayCounters }, expireAt }
// A batch adds its whole outcome in ONE merge-set of FieldValue.increment()s, written in the same
// commit as the batch's final progress write (finalRecord.ts): it is counted exactly when the
// batch is recorded done, and a retried final write (recognised by its write ID) counts nothing
// twice. A receipt (reportPushOpened, diagnostics/receipts.ts) adds `opened` in the commit that
// creates it.
// Each month is spread over STATS_SHARDS documents, chosen by a hash of the batch or receipt, so
// that no document is written more than about once a second: 1,000 batches finishing every
// second are about one write a second on each of 1,024 (Firestore's guidance for a document). A
// shard exists once something was counted in it; pushStats reads a range with one query on the
// months it spans (diagnostics/stats.ts), so a quiet project reads a few documents, a busy one
// at most 1,024 a month. They expire STATS_RETENTION_DAYS after their month ends: any range
// pushStats answers (366 days at most) that ends today is still there.
//
// Part of the fan-out, which writes them: the hot path depends on no operator tool.
import { createHash } from "node:crypto";
import { FieldValue, Timestamp, type Transaction, type WriteBatch } from "firebase-admin/firestore";
import { emptyCounts } from "../common/counts";
import { db } from "../common/firestore";
import type { PushLogEntry } from "./schemas";

export const PUSH_STATS = "pushStats";
export const STATS_SHARDS = 1_024;
/** Days a month's counters are kept after the month ends (TTL on pushStats.expireAt). */
export const STATS_RETENTION_DAYS = 400;

/** What one batch (or one receipt) adds. Reason and error-code maps hold plain counts. */
export interface StatsDelta {
  events: number;
  recipients: number;
  sent: number;
  skipped: number;
  failed: number;
  opened: number;
  skippedByReason: Record<string, number>;
  failedByReason: Record<string, number>;
  failedByErrorCode: Record<string, number>;
  byCertificate: Record<string, CertificateCounters>;
  /**
   * Reads and Recalls (followUp.ts), by kind: counted here only, so that a clear or a recall never
   * counts as a message pushed (events, sent, skipped, failed above are messages').
   */
  byEvent: Record<string, FollowUpCounters>;
}

export interface FollowUpCounters {
  events: number;
  sent: number;
  skipped: number;
  failed: number;
}

const zeroFollowUp = (): FollowUpCounters => ({ events: 0, sent: 0, skipped: 0, failed: 0 });

export interface CertificateCounters {
  sent: number;
  failed: number;
  opened: number;
  failedByReason: Record<string, number>;
  failedByErrorCode: Record<string, number>;
}

// Maps keyed by error codes from FCM: no prototype (common/counts.ts).
const zeroCert = (): CertificateCounters => ({ sent: 0, failed: 0, opened: 0, failedByReason: emptyCounts(), failedByErrorCode: emptyCounts() });

export function emptyDelta(): StatsDelta {
  return {
    events: 0,
    recipients: 0,
    sent: 0,
    skipped: 0,
    failed: 0,
    opened: 0,
    skippedByReason: emptyCounts(),
    failedByReason: emptyCounts(),
    failedByErrorCode: emptyCounts(),
    byCertificate: Object.create(null) as Record<string, CertificateCounters>,
    byEvent: Object.create(null) as Record<string, FollowUpCounters>,
  };
}

/**
 * A map key as stored: reasons are our own enums, but error codes come from FCM or the network,
 * and Firestore reserves names like __x__. Anything odd becomes a bounded, harmless key.
 */
export function statsKey(code: string): string {
  const clean = code.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64);
  return clean === "" || /^__.*__$/.test(clean) ? "other" : clean;
}

const bump = (map: Record<string, number>, key: string, by = 1) => {
  const k = statsKey(key);
  map[k] = (map[k] ?? 0) + by;
};

/** Adds one device outcome. */
export function addEntry(delta: StatsDelta, e: PushLogEntry): void {
  if (e.outcome === "sent") {
    delta.sent++;
    const cert = (delta.byCertificate[String(e.certificateId)] ??= zeroCert());
    cert.sent++;
  } else if (e.outcome === "skipped") {
    delta.skipped++;
    bump(delta.skippedByReason, e.reason);
  } else {
    delta.failed++;
    bump(delta.failedByReason, e.reason);
    const code = e.error?.errorCode ?? e.error?.status ?? null;
    if (code !== null) bump(delta.failedByErrorCode, code);
    if (e.certificateId !== null) {
      const cert = (delta.byCertificate[String(e.certificateId)] ??= zeroCert());
      cert.failed++;
      bump(cert.failedByReason, e.reason);
      if (code !== null) bump(cert.failedByErrorCode, code);
    }
  }
}

/** A batch's outcomes by reason and FCM error code (plain objects, keys as statsKey makes them). */
export interface BatchOutcomes {
  skipped: Record<string, number>;
  failed: Record<string, number>;
  /** Failures by FCM's error code (or status), as pushStats counts them. */
  failedByErrorCode: Record<string, number>;
  /** Failures without either, by reason. */
  failedWithoutCode: Record<string, number>;
}

/** Counts outcomes as a batch document's `outcomes` holds them. */
export class OutcomeTally {
  private readonly maps = { skipped: emptyCounts(), failed: emptyCounts(), failedByErrorCode: emptyCounts(), failedWithoutCode: emptyCounts() };

  add(e: PushLogEntry): void {
    if (e.outcome === "skipped") bump(this.maps.skipped, e.reason);
    if (e.outcome !== "failed") return;
    bump(this.maps.failed, e.reason);
    const code = e.error?.errorCode ?? e.error?.status ?? null;
    if (code !== null) bump(this.maps.failedByErrorCode, code);
    else bump(this.maps.failedWithoutCode, e.reason);
  }

  /** Plain objects, as Firestore serializes them (their keys already harmless: statsKey). */
  counts(): BatchOutcomes {
    const plain = (m: Record<string, number>) => Object.fromEntries(Object.entries(m));
    return { skipped: plain(this.maps.skipped), failed: plain(this.maps.failed), failedByErrorCode: plain(this.maps.failedByErrorCode), failedWithoutCode: plain(this.maps.failedWithoutCode) };
  }
}

/**
 * The outcomes of one batch, kept as they are recorded (and those recorded by earlier deliveries),
 * to be counted once, when the batch is done.
 */
export class BatchStats {
  readonly delta = emptyDelta();
  private readonly tally = new OutcomeTally();

  /** A Read's or a Recall's counters (null: a message's batch). */
  private readonly followUp: FollowUpCounters | null;

  constructor(private readonly batch: { batchIndex: number; generation?: number | undefined; uids: string[]; publishTime?: string | undefined; event?: string | undefined }) {
    // The message is counted with the first batch of its first publication; recipients with each
    // batch (the ones it decides: a recipient listed again by a later publication is counted once).
    const first = batch.batchIndex === 0 && (batch.generation ?? 0) === 0;
    this.followUp = batch.event !== undefined ? (this.delta.byEvent[batch.event] = zeroFollowUp()) : null;
    if (this.followUp) {
      if (first) this.followUp.events = 1;
      return;
    }
    if (first) this.delta.events = 1;
    this.delta.recipients = batch.uids.length;
  }

  add(entry: PushLogEntry): void {
    if (this.followUp) this.followUp[entry.outcome]++;
    else addEntry(this.delta, entry);
    this.tally.add(entry);
  }

  /** "skipped: foreground 1, no-token 2; failed: token-unregistered 1", for the batch's log line. */
  reasonsLine(): string {
    const list = (m: Record<string, number>) =>
      Object.entries(m)
        .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
        .map(([k, n]) => `${k} ${n}`)
        .join(", ");
    const parts: string[] = [];
    if (this.delta.skipped > 0) parts.push(`skipped: ${list(this.delta.skippedByReason)}`);
    if (this.delta.failed > 0) parts.push(`failed: ${list(this.delta.failedByReason)}`);
    return parts.join("; ");
  }

  /** Its outcomes by reason and error code: the batch document's `outcomes` (traceMessage counts a message from them). */
  outcomes(): BatchOutcomes {
    return this.tally.counts();
  }

  /** The one counter write of the batch, added to its final progress transaction. */
  writeIn(tx: Transaction | WriteBatch, logId: string, nowMs: number): void {
    const dayMs = this.batch.publishTime !== undefined && !Number.isNaN(Date.parse(this.batch.publishTime)) ? Date.parse(this.batch.publishTime) : nowMs;
    writeDelta(tx, dayMs, logId, this.delta);
  }
}

function incrementsOf(counts: Record<string, number>): Record<string, FieldValue> {
  const out: Record<string, FieldValue> = {};
  for (const [k, n] of Object.entries(counts)) if (n !== 0) out[k] = FieldValue.increment(n);
  return out;
}

/** The nested merge-set that adds `delta` to a day: FieldValue.increment on every leaf. */
function dayIncrements(delta: StatsDelta): Record<string, unknown> {
  const out: Record<string, unknown> = incrementsOf({
    events: delta.events,
    recipients: delta.recipients,
    sent: delta.sent,
    skipped: delta.skipped,
    failed: delta.failed,
    opened: delta.opened,
  });
  const maps = { skippedByReason: delta.skippedByReason, failedByReason: delta.failedByReason, failedByErrorCode: delta.failedByErrorCode };
  for (const [name, m] of Object.entries(maps)) if (Object.keys(m).length > 0) out[name] = incrementsOf(m);
  const certs: Record<string, unknown> = {};
  for (const [id, c] of Object.entries(delta.byCertificate)) {
    const cert: Record<string, unknown> = incrementsOf({ sent: c.sent, failed: c.failed, opened: c.opened });
    if (Object.keys(c.failedByReason).length > 0) cert.failedByReason = incrementsOf(c.failedByReason);
    if (Object.keys(c.failedByErrorCode).length > 0) cert.failedByErrorCode = incrementsOf(c.failedByErrorCode);
    certs[id] = cert;
  }
  if (Object.keys(certs).length > 0) out.byCertificate = certs;
  const events: Record<string, unknown> = {};
  for (const [kind, c] of Object.entries(delta.byEvent)) events[kind] = incrementsOf({ events: c.events, sent: c.sent, skipped: c.skipped, failed: c.failed });
  if (Object.keys(events).length > 0) out.byEvent = events;
  return out;
}

const utcMonth = (ms: number) => new Date(ms).toISOString().slice(0, 7);
const utcDay = (ms: number) => new Date(ms).toISOString().slice(8, 10);

export function shardOf(key: string): number {
  return createHash("sha256").update(key).digest().readUInt32BE(0) % STATS_SHARDS;
}

export const statsDocId = (month: string, shard: number) => `${month}__${shard}`;

/** When a month's counters expire: STATS_RETENTION_DAYS after its last day. */
export function statsExpireAt(month: string): Timestamp {
  const [year, mon] = month.split("-").map(Number) as [number, number];
  return Timestamp.fromMillis(Date.UTC(year, mon, 1) + STATS_RETENTION_DAYS * 86_400_000);
}

/** Adds `delta` to the day of `dayMs`, in the shard chosen by `shardKey`: one set() in the given transaction or batch. */
export function writeDelta(writer: Transaction | WriteBatch, dayMs: number, shardKey: string, delta: StatsDelta): void {
  const month = utcMonth(dayMs);
  const shard = shardOf(shardKey);
  const ref = db().collection(PUSH_STATS).doc(statsDocId(month, shard));
  // merge: the nested maps are merged field by field, so each increment adds to what is there.
  (writer as Transaction).set(ref, { month, shard, days: { [utcDay(dayMs)]: dayIncrements(delta) }, expireAt: statsExpireAt(month) }, { merge: true });
}
