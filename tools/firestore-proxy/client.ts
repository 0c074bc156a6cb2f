/** Typed helper for tests and scripts to drive the Firestore proxy's control API. */
import type { CallCounts, Fault, FaultInput, FirestoreProxyStats, QuietResult } from "./types.js";

export { FIRESTORE_SERVICE } from "./types.js";
export type { CallCounts, Fault, FaultInput, FaultKind, FirestoreProxyStats, QuietResult } from "./types.js";

export class FirestoreProxyControlError extends Error {
  override readonly name = "FirestoreProxyControlError";
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`Firestore proxy control API answered ${status}: ${body}`);
  }
}

/** Calls per method between a mark and now. */
export interface CallDelta {
  total: number;
  /** Full method paths (`/google.firestore.v1.Firestore/Commit`) with at least one call. */
  byMethod: Record<string, number>;
}

export class FirestoreProxyClient {
  readonly controlOrigin: string;

  constructor(controlOrigin: string) {
    this.controlOrigin = controlOrigin.replace(/\/+$/, "");
  }

  /** Calls per method since the counts were last reset. */
  calls(): Promise<CallCounts> {
    return this.call("GET", "/control/calls");
  }

  /** The counts now, to pass to `since` later. */
  mark(): Promise<CallCounts> {
    return this.calls();
  }

  /** Calls made since `mark`; fails if the counts were reset in between (the delta would be meaningless). */
  async since(mark: CallCounts): Promise<CallDelta> {
    const now = await this.calls();
    if (now.generation !== mark.generation) throw new Error(`the Firestore proxy's counts were reset since the mark (generation ${mark.generation} -> ${now.generation})`);
    const byMethod: Record<string, number> = {};
    for (const [method, n] of Object.entries(now.byMethod)) {
      const d = n - (mark.byMethod[method] ?? 0);
      if (d > 0) byMethod[method] = d;
    }
    return { total: now.total - mark.total, byMethod };
  }

  resetCalls(): Promise<CallCounts> {
    return this.call("DELETE", "/control/calls");
  }

  /** Adds a fault (see FaultInput); it ends after `forMs` or `calls`, or when cleared. */
  addFault(fault: FaultInput): Promise<Fault> {
    return this.call("POST", "/control/faults", fault);
  }

  /** The faults still in force. */
  faults(): Promise<Fault[]> {
    return this.call("GET", "/control/faults");
  }

  /** Removes every fault; calls held by a stall go on to the emulator at once. */
  clearFaults(): Promise<{ cleared: number; released: number }> {
    return this.call("DELETE", "/control/faults");
  }

  removeFault(id: string): Promise<{ cleared: number; released: number }> {
    return this.call("DELETE", `/control/faults/${encodeURIComponent(id)}`, undefined, [200, 404]);
  }

  stats(): Promise<FirestoreProxyStats> {
    return this.call("GET", "/control/stats");
  }

  /**
   * Waits until no call is in flight and none started or ended for `quietMs` (default 500), at
   * most `timeoutMs` (default 30 s): the work being counted is over. `quiet: false` on timeout.
   */
  waitQuiet(options: { quietMs?: number; timeoutMs?: number } = {}): Promise<QuietResult> {
    const quietMs = options.quietMs ?? 500;
    const timeoutMs = options.timeoutMs ?? 30_000;
    return this.call("GET", `/control/quiet?quietMs=${quietMs}&timeoutMs=${timeoutMs}`, undefined, [200], timeoutMs + 30_000);
  }

  /** Clears faults (releasing held calls), counts and stats. */
  reset(): Promise<{ reset: true }> {
    return this.call("POST", "/control/reset", {});
  }

  private async call<T>(method: string, path: string, body?: unknown, okStatuses: number[] = [200], deadlineMs = 30_000): Promise<T> {
    const res = await fetch(`${this.controlOrigin}${path}`, {
      method,
      headers: body !== undefined ? { "content-type": "application/json" } : {},
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      // The control API is local and answers at once (waitQuiet: within its own timeout).
      signal: AbortSignal.timeout(deadlineMs),
    });
    const text = await res.text();
    if (!okStatuses.includes(res.status)) throw new FirestoreProxyControlError(res.status, text);
    return JSON.parse(text) as T;
  }
}
