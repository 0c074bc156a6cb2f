// Stored records as the diagnostics answer them: plain JSON, ISO times, explanations attached,
// tokens only as a hash prefix, certificates without key material.
import { listCertificates } from "../certificates/store";
import type { PushLogEntry } from "../fanout/schemas";
import { formatDuration } from "../sessions/eligibility";
import { explainFcmError, explainOutcome } from "./explain";
import type { CertificateView, DeviceOutcome } from "./schemas";

/** Enough of a token's SHA-256 to tell tokens apart in a support conversation, never enough to use it. */
export const TOKEN_HASH_PREFIX_CHARS = 12;
export const hashPrefix = (tokenHash: string): string => tokenHash.slice(0, TOKEN_HASH_PREFIX_CHARS);

export const iso = (t: { toMillis(): number }): string => new Date(t.toMillis()).toISOString();
export const isoOrNull = (t: { toMillis(): number } | null | undefined): string | null => (t ? iso(t) : null);

/** One push-log entry as a DeviceOutcome; `openedAt` from the receipts, when the caller read them. */
export function outcomeView(e: PushLogEntry, openedAt: string | null = null): DeviceOutcome {
  const error = e.outcome === "failed" && e.error ? { httpStatus: e.error.httpStatus, status: e.error.status, errorCode: e.error.errorCode, message: e.error.message } : null;
  return {
    uid: e.uid,
    deviceId: e.deviceId,
    outcome: e.outcome,
    reason: e.reason,
    detail: e.outcome === "sent" ? "" : e.detail,
    certificateId: e.outcome === "skipped" ? null : e.certificateId,
    fcmName: e.outcome === "sent" ? e.fcmName : null,
    error,
    attempts: e.outcome === "skipped" ? null : e.attempts,
    at: iso(e.at),
    openedAt,
    explanation: explainOutcome(e.outcome, e.reason),
    fcmErrorExplanation: explainFcmError(error),
  };
}

export type CertificateLookup = (certificateId: number) => CertificateView;

/** Every certificate's public metadata (there are few: one per app or flavour), as a lookup. */
export async function certificateLookup(): Promise<CertificateLookup> {
  const all = await listCertificates();
  const byId = new Map(all.map((c) => [c.certificateId, c]));
  return (certificateId) => {
    const c = byId.get(certificateId);
    if (!c) return { certificateId, exists: false, label: null, projectId: null, health: null };
    return {
      certificateId,
      exists: true,
      label: c.label,
      projectId: c.projectId,
      health: { state: c.health.state, reason: c.health.reason, since: c.health.since },
    };
  };
}

/**
 * A latency as every diagnostics text says it (the summaries, the CLI; the console's formatMs is
 * the same rule): "71 ms" below a second, "1.4 s" below a minute, then "2 min".
 */
export function formatLatency(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return formatDuration(ms);
}

/** "1 device", "2 devices": `plural` when the word does not just take an "s". */
export function counted(n: number, word: string, plural = `${word}s`): string {
  return `${n} ${n === 1 ? word : plural}`;
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] as number;
}

/** "3 (foreground 2, no-token 1)" style lists, most frequent first. */
export function countsLine(counts: Record<string, number>): string {
  return Object.entries(counts)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([k, n]) => `${k} ${n}`)
    .join(", ");
}
