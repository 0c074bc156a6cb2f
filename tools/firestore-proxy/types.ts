/** Shapes of the Firestore proxy's control API (tools/firestore-proxy), shared by the server and its client. */

/** The gRPC service every Firestore call of the Admin SDK belongs to; a method's path is `${FIRESTORE_SERVICE}/Commit`. */
export const FIRESTORE_SERVICE = "/google.firestore.v1.Firestore";

export const FAULT_KINDS = ["unavailable", "stall", "reset", "lose-answer"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultInput {
  /**
   * - `unavailable`: the call is answered at once with grpc-status 14 (UNAVAILABLE) and `message`;
   *   it never reaches the emulator.
   * - `stall`: the call is held (its request unread) until the fault's window ends, or for
   *   `holdMs`, then forwarded; a call whose client gave up meanwhile is dropped, never forwarded.
   * - `reset`: the stream is reset (RST_STREAM `rstCode`), or with `scope: "session"` the whole
   *   HTTP/2 connection is destroyed (every call on it fails), before anything is forwarded.
   * - `lose-answer`: the call is forwarded and the emulator carries it out; when its answer comes,
   *   the client's stream is reset (RST_STREAM `rstCode`: the SDK sees INTERNAL) instead: a commit
   *   that applied although its client was told it failed.
   */
  kind: FaultKind;
  /** Methods it applies to: full paths (`/google.firestore.v1.Firestore/Commit`) or short names (`Commit`). All when absent. */
  methods?: string[];
  /** How long the fault lasts once it applies (from its creation, or from its first call after `skip`). */
  forMs?: number;
  /** At most this many calls are faulted; then the fault is gone. */
  calls?: number;
  /** Matching calls let through untouched before the fault starts applying (a fault in the middle of a batch). */
  skip?: number;
  /** `stall` only: how long each call is held. Default: until the fault's window ends (needs `forMs`). */
  holdMs?: number;
  /** `unavailable` only: grpc-message (default: "injected by the Firestore proxy: unavailable"). */
  message?: string;
  /** `reset` only: `stream` (default) resets the one call; `session` destroys its connection. */
  scope?: "stream" | "session";
  /** `reset` with scope `stream`, and `lose-answer`: the RST_STREAM error code (default 2, INTERNAL_ERROR; 7 REFUSED_STREAM makes gRPC say UNAVAILABLE). */
  rstCode?: number;
}

export interface Fault {
  id: string;
  kind: FaultKind;
  /** Full method paths; null: every method. */
  methods: string[] | null;
  forMs: number | null;
  calls: number | null;
  skip: number;
  holdMs: number | null;
  message: string;
  scope: "stream" | "session";
  rstCode: number;
  createdAt: string;
  /** When it started applying (null while it still lets its `skip` calls through). */
  activeSince: string | null;
  /** When its window ends (null: no time limit, or not active yet). */
  until: string | null;
  /** Matching calls let through so far (at most `skip`). */
  skipped: number;
  /** Calls faulted so far. */
  applied: number;
}

/** Calls per gRPC method path since the counts were last reset (`generation` changes at every reset). */
export interface CallCounts {
  generation: number;
  since: string;
  total: number;
  byMethod: Record<string, number>;
}

export interface FirestoreProxyStats {
  /** host:port of the Firestore emulator the calls go to. */
  upstream: string;
  /** Client HTTP/2 connections accepted since start/reset, and open now. */
  sessions: number;
  openSessions: number;
  /** Calls received since start/reset, in progress now, and at most at once. */
  calls: number;
  inFlight: number;
  maxInFlight: number;
  /** Calls answered by a fault, per kind (a stalled call that was then forwarded counts as stalled). */
  faulted: Record<FaultKind, number>;
  /** Stalled calls dropped because their client gave up while held. */
  droppedWhileHeld: number;
  /** Calls the emulator could not be reached for (answered UNAVAILABLE) or that it reset. */
  upstreamErrors: number;
  /** Calls the client cancelled (RST_STREAM) before they were answered. */
  cancelled: number;
  /** Last call started or ended (ISO), null before the first. */
  lastActivityAt: string | null;
  /** CPU time of the proxy process since start (user + system, microseconds): its own cost. */
  cpuMicros: number;
  faults: Fault[];
}

/** The answer of `waitQuiet`: nothing in flight and no call started or ended for `quietMs`. */
export interface QuietResult {
  quiet: boolean;
  waitedMs: number;
  inFlight: number;
}
