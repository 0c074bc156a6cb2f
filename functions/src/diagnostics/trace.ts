// traceMessage: one message from publication to the user's tap, per recipient device, from the
// push log (its message record, batch documents and their outcome shards) and the receipts. The
// counts cover the whole message without reading every shard: a done batch's document carries
// its outcomes by reason and error code; only the listed batches' shards are read.
import { addCount, emptyCounts } from "../common/counts";
import { db } from "../common/firestore";
import { PUSH_LOG, batchRef, pushLogForMessage, readBatchEntries } from "../fanout/pushLog";
import { BatchLogSchema, type BatchLog, type MessageRecord, type PushLogEntry } from "../fanout/schemas";
import { explain, explainFcmError, explanationsFor } from "./explain";
import { PUSH_OPENED, openedTimes, receiptId } from "./receipts";
import { OutcomeTally, type BatchOutcomes } from "../fanout/pushStats";
import type { ExplanationCategory, Latency, TraceFollowUp, TraceMessageResponse, TracedDevice, TraceStage } from "./schemas";
import { counted, formatLatency } from "../common/format";
import { countsLine, iso, isoOrNull, outcomeView, percentile } from "./views";

/** Batches whose outcomes are read (each one query): 20 batches are 4,000 recipients at the default size. */
export const MAX_TRACE_BATCHES = 20;
/** Device outcomes listed in one answer; the counts stay exact (from the batch documents). */
export const MAX_TRACE_DEVICES = 2_000;

type BatchDoc = BatchLog & { id: string };

function stagesOf(e: PushLogEntry, batch: BatchDoc, openedAt: string | null): TraceStage[] {
  const stages: TraceStage[] = [];
  if (batch.publishTime) stages.push({ stage: "published", at: batch.publishTime, detail: `event ${batch.eventId} published by the IM backend` });
  stages.push({
    stage: "received",
    at: iso(batch.createdAt),
    detail: `fan-out took batch ${batch.batchIndex + 1} of ${batch.batchCount}${(batch.generation ?? 0) > 0 ? ` of publication ${(batch.generation ?? 0) + 1}` : ""}${batch.claims > 1 ? ` (${batch.claims} deliveries worked on it)` : ""}`,
  });
  const decided = iso(e.at);
  if (e.outcome === "sent") {
    stages.push({ stage: "decided", at: decided, detail: "eligible: sent" });
    stages.push({ stage: "accepted", at: decided, detail: `FCM accepted it as ${e.fcmName} after ${counted(e.attempts, "attempt")}` });
  } else if (e.outcome === "skipped") {
    stages.push({ stage: "decided", at: decided, detail: `skipped (${e.reason}): ${e.detail}` });
  } else {
    const code = e.error?.errorCode ?? e.error?.status;
    stages.push({ stage: "decided", at: decided, detail: `failed (${e.reason}${code ? `, FCM ${code}` : ""}) after ${counted(e.attempts, "attempt")}: ${e.detail}` });
  }
  if (openedAt) stages.push({ stage: "opened", at: openedAt, detail: "the app reported the notification opened" });
  return stages;
}

/** Receipts of the message's current use: one aggregation query, whatever the number of devices. */
async function openedCount(msgKey: string, record: MessageRecord | null): Promise<number> {
  let query = db().collection(PUSH_OPENED).where("msgKey", "==", msgKey);
  if (record) query = query.where("epoch", "==", record.epoch);
  const snap = await query.count().get();
  return snap.data().count;
}

/** Reads that name the message as cleared (BatchLog.follows), at most this many. */
const MAX_TRACE_READS = 20;

/** The Reads and the Recall that followed the message: among its documents, and the Reads that name it. */
async function followUpsOf(msgKey: string, own: BatchDoc[], codes: Array<{ category: ExplanationCategory; code: string }>): Promise<TraceFollowUp[]> {
  const reads = await db().collection(PUSH_LOG).where("follows", "array-contains", msgKey).limit(MAX_TRACE_READS).get();
  const docs = new Map<string, BatchDoc>(own.map((d) => [d.id, d]));
  for (const snap of reads.docs) {
    const parsed = BatchLogSchema.safeParse(snap.data());
    if (parsed.success && parsed.data.expireAt.toMillis() > Date.now()) docs.set(snap.id, { id: snap.id, ...parsed.data });
  }
  const list = [...docs.values()].sort((a, b) => a.createdAt.toMillis() - b.createdAt.toMillis());
  return Promise.all(
    list.map(async (d) => {
      const entries = (await readBatchEntries(batchRef(d.id))).slice(0, MAX_TRACE_DEVICES);
      for (const e of entries) if (e.outcome !== "sent") codes.push({ category: e.outcome === "skipped" ? "skip-reason" : "fail-reason", code: e.reason });
      return {
        kind: d.event ?? "read",
        key: d.msgKey,
        logId: d.id,
        account: d.from,
        conversation: d.conversation ?? null,
        state: d.state,
        counts: d.counts,
        notes: d.notes,
        devices: entries.map((e) => ({ uid: e.uid, deviceId: e.deviceId, outcome: e.outcome, reason: e.reason, detail: e.outcome === "sent" ? `FCM accepted it as ${e.fcmName}` : e.detail })),
        createdAt: iso(d.createdAt),
        completedAt: isoOrNull(d.completedAt),
      };
    }),
  );
}

export async function traceMessage(msgKey: string): Promise<TraceMessageResponse> {
  const { record, docs } = await pushLogForMessage(msgKey);
  const all = docs.filter((d): d is BatchDoc => d.kind === "batch");
  // A Read or Recall is recorded as a batch of its own kind: listed as what followed, not counted as the message's.
  const batches = all.filter((d) => d.event === undefined);
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
  const sentKeys = pairs.flatMap(({ batch, entry }) => (entry.outcome === "sent" ? [{ msgKey, epoch: batch.epoch ?? null, uid: entry.uid, deviceId: entry.deviceId }] : []));
  const [opened, openedTotal] = await Promise.all([openedTimes(sentKeys), truncated ? openedCount(msgKey, record) : null]);

  // Error codes come from FCM: counted under the key pushStats uses (a name Firestore reserves, such
  // as __proto__, is "other" in both), in maps without a prototype.
  const byReason = emptyCounts();
  const byErrorCode = emptyCounts();
  const latencies: number[] = [];
  const devices: TracedDevice[] = pairs.map(({ batch, entry }) => {
    const openedAt = entry.outcome === "sent" ? (opened.get(receiptId(msgKey, entry.uid, entry.deviceId, batch.epoch ?? null)) ?? null) : null;
    const view = outcomeView(entry, openedAt);
    if (entry.outcome !== "sent") codes.push({ category: entry.outcome === "skipped" ? "skip-reason" : "fail-reason", code: entry.reason });
    const code = view.error?.errorCode ?? view.error?.status ?? null;
    if (code !== null) {
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
  // By reason and error code over the whole message: a done batch says them itself; a running one
  // (or one recorded before batches said them) is counted from its entries when they were read.
  const entriesOf = new Map(read.map((r) => [r.batch.id, r.entries]));
  const skippedBy = emptyCounts();
  const failedBy = emptyCounts();
  let reasonsPending = 0;
  for (const b of batches) {
    let outcomes: BatchOutcomes | undefined = b.state === "done" ? b.outcomes : undefined;
    const entries = entriesOf.get(b.id);
    if (!outcomes && entries) {
      const tally = new OutcomeTally();
      for (const e of entries) tally.add(e);
      outcomes = tally.counts();
    }
    if (!outcomes) {
      reasonsPending++;
      continue;
    }
    for (const [k, n] of Object.entries(outcomes.skipped)) {
      addCount(byReason, k, n);
      addCount(skippedBy, k, n);
    }
    for (const [k, n] of Object.entries(outcomes.failed)) addCount(byReason, k, n);
    for (const [k, n] of Object.entries(outcomes.failedByErrorCode)) {
      addCount(byErrorCode, k, n);
      addCount(failedBy, k, n);
    }
    for (const [k, n] of Object.entries(outcomes.failedWithoutCode)) addCount(failedBy, k, n);
  }
  if (totals.sent > 0) addCount(byReason, "sent", totals.sent);
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
  const followUps = await followUpsOf(msgKey, all.filter((d) => d.event !== undefined), codes);
  const first = batches[0] ?? docs[0];
  const publishedAt = batches.find((b) => b.publishTime)?.publishTime ?? rejected.find((r) => r.publishedAt)?.publishedAt ?? null;
  const recipients = batches.reduce((n, b) => n + b.uids.length, 0);
  const openedTotalCount = openedTotal ?? devices.filter((d) => d.openedAt !== null).length;
  const response: TraceMessageResponse = {
    msgKey,
    conversation: batches.find((b) => b.conversation !== undefined)?.conversation ?? null,
    followUps,
    found: docs.length > 0,
    from: first?.from ?? null,
    publishedAt,
    summary: "",
    publications: (record?.generations ?? []).map((g, generation) => ({ generation, recipients: g.recipients, owned: g.owned, eventId: g.eventId, at: iso(g.at) })),
    batches: batches.map((b) => ({
      logId: b.id,
      generation: b.generation ?? 0,
      ownedElsewhere: b.ownedElsewhere?.length ?? 0,
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
      opened: openedTotalCount,
      byReason,
      byErrorCode,
      reasonsPending,
    },
    latency,
    explanations: explanationsFor(codes),
  };
  response.summary = traceSummary(response, skippedBy, failedBy);
  return response;
}

/** `skipped`: by reason; `failed`: by FCM error code, or by reason where FCM gave none. */
function traceSummary(t: TraceMessageResponse, skipped: Record<string, number>, failed: Record<string, number>): string {
  if (!t.found) {
    return `nothing is recorded for ${t.msgKey}: it was never published to the offline-push topic, is still waiting to be processed, or is older than the push log's retention (PUSH_LOG_TTL_DAYS)`;
  }
  const parts: string[] = [];
  for (const r of t.rejected) parts.push(`the event was rejected (${r.reason}): ${r.detail}`);
  if (t.batches.length > 0) {
    const c = t.counts;
    let line = `${t.msgKey} from ${t.from ?? "?"} to ${counted(c.recipients, "recipient")}: ${c.sent} sent`;
    if (c.sent > 0) line += ` (${c.opened} opened)`;
    line += `, ${c.skipped} skipped${c.skipped ? ` (${countsLine(skipped)})` : ""}, ${c.failed} failed${c.failed ? ` (${countsLine(failed)})` : ""}`;
    if (c.reasonsPending > 0) line += ` (the reasons of ${counted(c.reasonsPending, "batch", "batches")} still running not counted yet)`;
    const running = t.batches.filter((b) => b.state === "running").length;
    if (running > 0) line += `; ${counted(running, "batch", "batches")} still in progress`;
    const listedAgain = t.batches.reduce((n, b) => n + b.ownedElsewhere, 0);
    if (t.publications.length > 1) {
      line += `; published ${t.publications.length} times with different recipient lists${listedAgain > 0 ? ` (${counted(listedAgain, "recipient")} listed again were left to the publication that listed them first: one outcome each)` : ""}`;
    }
    if (t.latency) line += `; FCM accepted it ${formatLatency(t.latency.p50Ms)} after publication (p95 ${formatLatency(t.latency.p95Ms)}, max ${formatLatency(t.latency.maxMs)})`;
    parts.push(line);
  }
  for (const f of t.followUps) {
    const what = f.kind === "read" ? `read by ${f.account}${f.key === t.msgKey ? ` in ${f.conversation ?? "?"}` : ` (Read ${f.key})`}: ${counted(f.counts.sent, "device")} cleared` : `recalled by ${f.account}: ${counted(f.counts.sent, "notification")} replaced`;
    parts.push(`${what}${f.counts.skipped ? `, ${f.counts.skipped} skipped` : ""}${f.counts.failed ? `, ${f.counts.failed} failed` : ""}${f.state === "running" ? " (still running)" : ""}`);
  }
  return parts.join("; ");
}

