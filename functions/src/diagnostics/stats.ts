// Reading the per-day push statistics that the fan-out writes (fanout/pushStats.ts: their layout,
// and how a batch's or a receipt's outcomes add to them) for pushStats.
import { emptyCounts } from "../common/counts";
import { db } from "../common/firestore";
import { PUSH_STATS, type CertificateCounters, type FollowUpCounters, type StatsDelta } from "../fanout/pushStats";
import type { StatsDay, StatsFigures } from "./schemas";

/** A day as stored: the delta's shape, any field possibly missing (a day nothing added to yet). */
type StoredDay = Partial<Omit<StatsDelta, "byCertificate" | "byEvent"> & { byCertificate: Record<string, Partial<CertificateCounters>>; byEvent: Record<string, Partial<FollowUpCounters>> }>;

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
    byEvent: {},
  };
}

/** Adds Reads' and Recalls' counters (by kind) into `into`. */
function addByEvent(into: StatsFigures["byEvent"], from: unknown): void {
  if (typeof from !== "object" || from === null) return;
  for (const [kind, c] of Object.entries(from as Record<string, Partial<FollowUpCounters>>)) {
    if (typeof c !== "object" || c === null) continue;
    const f = (into[kind] ??= { events: 0, sent: 0, skipped: 0, failed: 0 });
    f.events += num(c.events);
    f.sent += num(c.sent);
    f.skipped += num(c.skipped);
    f.failed += num(c.failed);
  }
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
    addByEvent(f.byEvent, stored.byEvent);
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

/**
 * The figures of each day of the range and their totals: one query on the months the range spans,
 * which reads the month shards that exist (a shard exists once something was counted in it).
 */
export async function readStats(from: string, to: string, certificateId?: number): Promise<{ days: StatsDay[]; totals: StatsFigures }> {
  const days = daysOf(from, to);
  const months = [...new Set(days.map((d) => d.slice(0, 7)))];
  // `in` takes up to 30 values: a range of 366 days spans at most 13 months.
  const snaps = (await db().collection(PUSH_STATS).where("month", "in", months).get()).docs;
  const byDay = new Map<string, StatsFigures>(days.map((d) => [d, emptyFigures(certificateId !== undefined)]));
  for (const snap of snaps) {
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
    addByEvent(totals.byEvent, f.byEvent);
  }
  totals.openRate = rate(totals.opened, totals.sent);
  return { days: result, totals };
}
