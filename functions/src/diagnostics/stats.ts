// Per-day push statistics (UTC), kept as counters so that reading a month costs a few documents:
//   pushStats/{YYYY-MM}__{shard}   { month, shard, days: { "DD": DayCounters } }
// A batch adds its whole outcome in ONE merge-set of FieldValue.increment()s, written in the same
// transaction as the batch's final progress write (progress.ts): it is counted exactly when the
// batch is recorded done, and a retried final write (recognised by its write ID) counts nothing
// twice. A receipt (reportPushOpened) adds `opened` in the commit that creates it.
// Each month is split over STATS_SHARDS documents (chosen by a hash of the batch or receipt) so
// that busy hours do not queue on one document's write rate; reading any 30-day range is at most
// 2 months x STATS_SHARDS documents, in one getAll.
import { createHash } from "node:crypto";
import { FieldValue, type Transaction, type WriteBatch } from "firebase-admin/firestore";
import { emptyCounts } from "../common/counts";
import { db } from "../common/firestore";
import type { PushLogEntry } from "../fanout/schemas";
import type { StatsDay, StatsFigures } from "./schemas";

export const PUSH_STATS = "pushStats";
export const STATS_SHARDS = 4;

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
}

interface CertificateCounters {
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

/**
 * The outcomes of one batch, kept as they are recorded (and those recorded by earlier deliveries),
 * to be counted once, when the batch is done.
 */
export class BatchStats {
  readonly delta = emptyDelta();

  constructor(private readonly batch: { batchIndex: number; uids: string[]; publishTime?: string | undefined }) {
    // The event is counted with its first batch; recipients with each batch.
    if (batch.batchIndex === 0) this.delta.events = 1;
    this.delta.recipients = batch.uids.length;
  }

  add(entry: PushLogEntry): void {
    addEntry(this.delta, entry);
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
  return out;
}

const utcMonth = (ms: number) => new Date(ms).toISOString().slice(0, 7);
const utcDay = (ms: number) => new Date(ms).toISOString().slice(8, 10);

export function shardOf(key: string): number {
  return createHash("sha256").update(key).digest().readUInt32BE(0) % STATS_SHARDS;
}

export const statsDocId = (month: string, shard: number) => `${month}__${shard}`;

/** Adds `delta` to the day of `dayMs`, in the shard chosen by `shardKey`: one set() in the given transaction or batch. */
export function writeDelta(writer: Transaction | WriteBatch, dayMs: number, shardKey: string, delta: StatsDelta): void {
  const month = utcMonth(dayMs);
  const shard = shardOf(shardKey);
  const ref = db().collection(PUSH_STATS).doc(statsDocId(month, shard));
  // merge: the nested maps are merged field by field, so each increment adds to what is there.
  (writer as Transaction).set(ref, { month, shard, days: { [utcDay(dayMs)]: dayIncrements(delta) } }, { merge: true });
}

// --- Reading -------------------------------------------------------------------------------------

/** A day as stored: the delta's shape, any field possibly missing (a day nothing added to yet). */
type StoredDay = Partial<Omit<StatsDelta, "byCertificate"> & { byCertificate: Record<string, Partial<CertificateCounters>> }>;

const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);

function addMap(into: Record<string, number>, from: unknown): void {
  if (typeof from !== "object" || from === null) return;
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + num(v);
}

const rate = (opened: number, sent: number): number | null => (sent > 0 ? Math.round((opened / sent) * 10_000) / 10_000 : null);

function emptyFigures(byCertificate: boolean): StatsFigures {
  return {
    events: byCertificate ? null : 0,
    recipients: byCertificate ? null : 0,
    sent: 0,
    skipped: byCertificate ? null : 0,
    skippedByReason: emptyCounts(),
    failed: 0,
    failedByReason: emptyCounts(),
    failedByErrorCode: emptyCounts(),
    opened: 0,
    openRate: null,
  };
}

function addStored(f: StatsFigures, stored: StoredDay, certificateId: number | undefined): void {
  if (certificateId === undefined) {
    f.events = (f.events ?? 0) + num(stored.events);
    f.recipients = (f.recipients ?? 0) + num(stored.recipients);
    f.sent += num(stored.sent);
    f.skipped = (f.skipped ?? 0) + num(stored.skipped);
    addMap(f.skippedByReason, stored.skippedByReason);
    f.failed += num(stored.failed);
    addMap(f.failedByReason, stored.failedByReason);
    addMap(f.failedByErrorCode, stored.failedByErrorCode);
    f.opened += num(stored.opened);
    return;
  }
  const c = stored.byCertificate?.[String(certificateId)];
  if (!c) return;
  f.sent += num(c.sent);
  f.failed += num(c.failed);
  f.opened += num(c.opened);
  addMap(f.failedByReason, c.failedByReason);
  addMap(f.failedByErrorCode, c.failedByErrorCode);
}

/** Every UTC day from `from` to `to` (YYYY-MM-DD, inclusive). */
export function daysOf(from: string, to: string): string[] {
  const out: string[] = [];
  for (let ms = Date.parse(`${from}T00:00:00Z`); ms <= Date.parse(`${to}T00:00:00Z`); ms += 86_400_000) out.push(new Date(ms).toISOString().slice(0, 10));
  return out;
}

/** The figures of each day of the range and their totals: one getAll of (months x shards) documents. */
export async function readStats(from: string, to: string, certificateId?: number): Promise<{ days: StatsDay[]; totals: StatsFigures }> {
  const days = daysOf(from, to);
  const months = [...new Set(days.map((d) => d.slice(0, 7)))];
  const refs = months.flatMap((m) => Array.from({ length: STATS_SHARDS }, (_, s) => db().collection(PUSH_STATS).doc(statsDocId(m, s))));
  const snaps = await db().getAll(...refs);
  const byDay = new Map<string, StatsFigures>(days.map((d) => [d, emptyFigures(certificateId !== undefined)]));
  for (const snap of snaps) {
    if (!snap.exists) continue;
    const month = snap.get("month") as unknown;
    const stored = snap.get("days") as unknown;
    if (typeof month !== "string" || typeof stored !== "object" || stored === null) continue;
    for (const [dd, day] of Object.entries(stored as Record<string, StoredDay>)) {
      const f = byDay.get(`${month}-${dd}`);
      if (f && typeof day === "object" && day !== null) addStored(f, day, certificateId);
    }
  }
  const totals = emptyFigures(certificateId !== undefined);
  const result: StatsDay[] = [];
  for (const d of days) {
    const f = byDay.get(d) as StatsFigures;
    f.openRate = rate(f.opened, f.sent);
    result.push({ date: d, ...f });
    if (totals.events !== null) totals.events += f.events ?? 0;
    if (totals.recipients !== null) totals.recipients += f.recipients ?? 0;
    if (totals.skipped !== null) totals.skipped += f.skipped ?? 0;
    totals.sent += f.sent;
    totals.failed += f.failed;
    totals.opened += f.opened;
    addMap(totals.skippedByReason, f.skippedByReason);
    addMap(totals.failedByReason, f.failedByReason);
    addMap(totals.failedByErrorCode, f.failedByErrorCode);
  }
  totals.openRate = rate(totals.opened, totals.sent);
  return { days: result, totals };
}
