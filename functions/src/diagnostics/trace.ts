// traceMessage: one message from publication to the user's tap, per recipient device, from the
// push log (its batch documents and their outcome shards) and the receipts.
import { addCount, emptyCounts } from "../common/counts";
import { batchRef, pushLogForMessage, readBatchEntries, type PushLogDoc } from "../fanout/pushLog";
import type { BatchLog, PushLogEntry } from "../fanout/schemas";
import { formatDuration } from "../sessions/eligibility";
import { explain, explainFcmError, explanationsFor } from "./explain";
import { openedTimes, receiptId } from "./receipts";
import { statsKey } from "../fanout/pushStats";
import type { ExplanationCategory, Latency, TraceMessageResponse, TracedDevice, TraceStage } from "./schemas";
import { countsLine, iso, isoOrNull, outcomeView, percentile } from "./views";

/** Batches whose outcomes are read (each one query): 20 batches are 4,000 recipients at the default size. */
export const MAX_TRACE_BATCHES = 20;
/** Device outcomes listed in one answer; counts per outcome stay exact (from the batch documents). */
export const MAX_TRACE_DEVICES = 2_000;

type BatchDoc = BatchLog & { id: string };

function stagesOf(e: PushLogEntry, batch: BatchDoc, openedAt: string | null): TraceStage[] {
  const stages: TraceStage[] = [];
  if (batch.publishTime) stages.push({ stage: "published", at: batch.publishTime, detail: `event ${batch.eventId} published by the IM backend` });
  stages.push({
    stage: "received",
    at: iso(batch.createdAt),
    detail: `fan-out took batch ${batch.batchIndex + 1} of ${batch.batchCount}${batch.claims > 1 ? ` (${batch.claims} deliveries worked on it)` : ""}`,
  });
  const decided = iso(e.at);
  if (e.outcome === "sent") {
    stages.push({ stage: "decided", at: decided, detail: "eligible: sent" });
    stages.push({ stage: "accepted", at: decided, detail: `FCM accepted it as ${e.fcmName} after ${e.attempts} attempt(s)` });
  } else if (e.outcome === "skipped") {
    stages.push({ stage: "decided", at: decided, detail: `skipped (${e.reason}): ${e.detail}` });
  } else {
    const code = e.error?.errorCode ?? e.error?.status;
    stages.push({ stage: "decided", at: decided, detail: `failed (${e.reason}${code ? `, FCM ${code}` : ""}) after ${e.attempts} attempt(s): ${e.detail}` });
  }
  if (openedAt) stages.push({ stage: "opened", at: openedAt, detail: "the app reported the notification opened" });
  return stages;
}

export async function traceMessage(msgKey: string): Promise<TraceMessageResponse> {
  const docs: PushLogDoc[] = await pushLogForMessage(msgKey);
  const batches = docs.filter((d): d is BatchDoc => d.kind === "batch");
  const rejectedDocs = docs.filter((d) => d.kind === "rejected");
  const codes: Array<{ category: ExplanationCategory; code: string }> = [];

  // Outcomes of the first batches, in batch order (bounded reads).
  const read: Array<{ batch: BatchDoc; entries: PushLogEntry[] }> = [];
  for (const batch of batches.slice(0, MAX_TRACE_BATCHES)) read.push({ batch, entries: await readBatchEntries(batchRef(batch.id)) });
  let listed = 0;
  let truncated = batches.length > MAX_TRACE_BATCHES;
  const pairs: Array<{ batch: BatchDoc; entry: PushLogEntry }> = [];
  for (const { batch, entries } of read) {
    for (const entry of entries) {
      if (listed >= MAX_TRACE_DEVICES) {
        truncated = true;
        break;
      }
      pairs.push({ batch, entry });
      listed++;
    }
  }
  const sentKeys = pairs.flatMap(({ entry }) => (entry.outcome === "sent" ? [{ msgKey, uid: entry.uid, deviceId: entry.deviceId }] : []));
  const opened = await openedTimes(sentKeys);

  // Error codes come from FCM: counted under the key pushStats uses (a name Firestore reserves, such
  // as __proto__, is "other" in both), in maps without a prototype.
  const byReason = emptyCounts();
  const byErrorCode = emptyCounts();
  const latencies: number[] = [];
  const devices: TracedDevice[] = pairs.map(({ batch, entry }) => {
    const openedAt = entry.outcome === "sent" ? (opened.get(receiptId(msgKey, entry.uid, entry.deviceId)) ?? null) : null;
    const view = outcomeView(entry, openedAt);
    addCount(byReason, entry.reason);
    if (entry.outcome !== "sent") codes.push({ category: entry.outcome === "skipped" ? "skip-reason" : "fail-reason", code: entry.reason });
    const code = view.error?.errorCode ?? view.error?.status ?? null;
    if (code !== null) {
      addCount(byErrorCode, statsKey(code));
      const fcm = explainFcmError(view.error);
      if (fcm) codes.push({ category: "fcm-error", code: fcm.code });
    }
    let latencyMs: number | null = null;
    if (entry.outcome === "sent" && batch.publishTime) {
      latencyMs = Math.max(0, entry.at.toMillis() - Date.parse(batch.publishTime));
      latencies.push(latencyMs);
    }
    return { ...view, stages: stagesOf(entry, batch, openedAt), latencyMs };
  });

  const totals = { sent: 0, skipped: 0, failed: 0 };
  for (const b of batches) {
    totals.sent += b.counts.sent;
    totals.skipped += b.counts.skipped;
    totals.failed += b.counts.failed;
  }
  latencies.sort((a, b) => a - b);
  const latency: Latency | null = latencies.length
    ? { samples: latencies.length, p50Ms: percentile(latencies, 50), p95Ms: percentile(latencies, 95), maxMs: latencies[latencies.length - 1] as number }
    : null;

  const rejected = rejectedDocs.map((d) => {
    if (d.kind !== "rejected") throw new Error("unreachable");
    codes.push({ category: "rejected-event", code: d.reason });
    return {
      logId: d.id,
      reason: d.reason,
      detail: d.detail,
      publishedAt: d.publishTime,
      createdAt: iso(d.createdAt),
      issues: d.issues,
      explanation: explain("rejected-event", d.reason),
    };
  });
  const first = docs[0];
  const publishedAt = batches.find((b) => b.publishTime)?.publishTime ?? rejected.find((r) => r.publishedAt)?.publishedAt ?? null;
  const recipients = batches.reduce((n, b) => n + b.uids.length, 0);
  const openedCount = devices.filter((d) => d.openedAt !== null).length;
  const response: TraceMessageResponse = {
    msgKey,
    found: docs.length > 0,
    from: first?.from ?? null,
    publishedAt,
    summary: "",
    batches: batches.map((b) => ({
      logId: b.id,
      batchIndex: b.batchIndex,
      batchCount: b.batchCount,
      state: b.state,
      recipients: b.uids.length,
      counts: b.counts,
      claims: b.claims,
      duplicates: b.duplicates,
      notes: b.notes,
      createdAt: iso(b.createdAt),
      completedAt: isoOrNull(b.completedAt),
    })),
    rejected,
    devices,
    devicesTruncated: truncated,
    counts: {
      batches: batches.length,
      recipients,
      outcomes: totals.sent + totals.skipped + totals.failed,
      ...totals,
      opened: openedCount,
      byReason,
      byErrorCode,
    },
    latency,
    explanations: explanationsFor(codes),
  };
  response.summary = traceSummary(response);
  return response;
}

function traceSummary(t: TraceMessageResponse): string {
  if (!t.found) {
    return `nothing is recorded for ${t.msgKey}: it was never published to the offline-push topic, is still waiting to be processed, or is older than the push log's retention (PUSH_LOG_TTL_DAYS)`;
  }
  const parts: string[] = [];
  for (const r of t.rejected) parts.push(`the event was rejected (${r.reason}): ${r.detail}`);
  if (t.batches.length > 0) {
    const skipped = emptyCounts();
    const failed = emptyCounts();
    for (const d of t.devices) {
      if (d.outcome === "skipped") addCount(skipped, d.reason);
      const code = d.error?.errorCode ?? null;
      if (d.outcome === "failed") addCount(failed, code !== null ? statsKey(code) : d.reason);
    }
    const c = t.counts;
    let line = `${t.msgKey} from ${t.from ?? "?"} to ${c.recipients} recipient(s): ${c.sent} sent`;
    if (c.sent > 0) line += ` (${c.opened} opened)`;
    line += `, ${c.skipped} skipped${c.skipped ? ` (${countsLine(skipped)})` : ""}, ${c.failed} failed${c.failed ? ` (${countsLine(failed)})` : ""}`;
    const running = t.batches.filter((b) => b.state === "running").length;
    if (running > 0) line += `; ${running} batch(es) still in progress`;
    if (t.latency) line += `; FCM accepted it ${formatMs(t.latency.p50Ms)} after publication (p95 ${formatMs(t.latency.p95Ms)}, max ${formatMs(t.latency.maxMs)})`;
    parts.push(line);
  }
  return parts.join("; ");
}

const formatMs = (ms: number): string => (ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : formatDuration(ms));
