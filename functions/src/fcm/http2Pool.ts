/**
 * A tiny HTTP/2 client pool: one multiplexed session per origin.
 *
 * Hand-written rather than undici/fetch because undici only negotiates HTTP/2 through
 * TLS ALPN, while the fake FCM used in the emulator and tests is cleartext h2c (HTTP/2
 * with prior knowledge, no TLS); node:http2 speaks both, so the exact same code path
 * (one long-lived HTTP/2 connection, many concurrent streams, as Google recommends for
 * FCM HTTP v1) runs against the real FCM and the fake.
 */
import * as http2 from "node:http2";
import type { Socket } from "node:net";

export interface Http2Request {
  /** `https://host[:port]` or `http://host[:port]` (h2c prior knowledge). */
  origin: string;
  /** Path and query, e.g. `/v1/projects/p/messages:send`. */
  path: string;
  /** Default `GET` without a body, `POST` with one. */
  method?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** Overrides the pool's per-request timeout. */
  timeoutMs?: number;
}

export interface Http2Response {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: string;
}

/** What `sendFcmMessage` needs; lets tests substitute a stub. */
export interface Http2Requester {
  request(req: Http2Request): Promise<Http2Response>;
}

/** The request did not complete within its timeout; its stream was reset (RST_STREAM CANCEL). */
export class Http2TimeoutError extends Error {
  override readonly name = "Http2TimeoutError";
  readonly code = "ETIMEDOUT";
  constructor(
    readonly origin: string,
    readonly timeoutMs: number,
  ) {
    super(`HTTP/2 request to ${origin} timed out after ${timeoutMs} ms`);
  }
}

/**
 * No complete response: connection refused/reset, GOAWAY, stream reset by the peer,
 * session destroyed, response too large...
 */
export class Http2ConnectionError extends Error {
  override readonly name = "Http2ConnectionError";
  constructor(
    readonly origin: string,
    /** e.g. ECONNREFUSED, ECONNRESET, ERR_HTTP2_STREAM_ERROR, ERR_HTTP2_STREAM_RESET, ERR_HTTP2_GOAWAY_SESSION */
    readonly code: string,
    message: string,
    /** The peer certainly did not process the request (REFUSED_STREAM, or beyond a GOAWAY). */
    readonly unprocessed = false,
  ) {
    super(`HTTP/2 request to ${origin} failed: ${message}`);
  }
}

export interface Http2PoolOptions {
  /** Max in-flight streams per origin; further requests wait in FIFO order (default 100). */
  maxConcurrentStreamsPerOrigin?: number;
  /** Per-request timeout, from opening the stream to the end of the response (default 10 s). */
  requestTimeoutMs?: number;
  /** Close a session after this long without any activity (default 60 s). */
  idleSessionTimeoutMs?: number;
  /** After a request timeout, a PING must be answered within this time or the session is dropped (default 3 s). */
  pingTimeoutMs?: number;
  /** Responses larger than this are aborted (default 1 MiB). */
  maxResponseBytes?: number;
  /** `close()` lets in-flight streams finish for this long, then destroys the sessions (default 5 s). */
  closeTimeoutMs?: number;
  /** Extra options for `http2.connect` (e.g. TLS CA for tests). */
  connectOptions?: http2.SecureClientSessionOptions;
}

/**
 * FIFO with O(1) `shift`. Hand-written: `Array.prototype.shift` copies the whole array on the long
 * queues a fan-out builds (thousands of sends waiting for a stream), and a dozen lines do not
 * justify a runtime dependency.
 */
class Fifo<T> {
  private items: Array<T | undefined> = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      // amortized O(1): the consumed half is dropped at most once per as many shifts
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

/** A request waiting for, or holding, one of its origin's stream slots. */
interface Pending {
  req: Http2Request;
  resolve: (res: Http2Response) => void;
  reject: (err: unknown) => void;
}

interface OriginState {
  origin: string;
  session: http2.ClientHttp2Session | undefined;
  /** Open streams on `session`. */
  streams: number;
  /** Requests holding a slot (at most maxConcurrentStreamsPerOrigin): in flight, or about to be retried. */
  active: number;
  waiting: Fifo<Pending>;
  /** `pump` is on the stack: a request settled synchronously inside it must not start a nested pump. */
  pumping: boolean;
}

/** A request's place in the deadline sweep; `exchange` is dropped once settled, so a late sweep retains next to nothing. */
interface Deadline {
  at: number;
  exchange: Exchange | undefined;
}

/** What an exchange's stream listeners need from the pool. */
interface ExchangeOwner {
  readonly maxResponseBytes: number;
  settle(ex: Exchange, err: Error | undefined, res?: Http2Response): void;
}

/** One request on one stream. Its listeners are shared functions that find it on the stream, not closures made per request. */
class Exchange {
  settled = false;
  status = 0;
  rawHeaders: http2.IncomingHttpHeaders | undefined = undefined;
  chunks: Buffer[] = [];
  size = 0;
  constructor(
    readonly owner: ExchangeOwner,
    readonly state: OriginState,
    readonly session: http2.ClientHttp2Session,
    readonly stream: http2.ClientHttp2Stream,
    readonly pending: Pending,
    readonly attempt: number,
    readonly timeoutMs: number,
    readonly deadline: Deadline,
  ) {}
}

/**
 * A response whose `headers` are normalized only when first read: FCM's success answers are
 * classified by status and body alone, so a fan-out never pays for its headers.
 */
class PoolResponse implements Http2Response {
  private normalized: Record<string, string> | undefined = undefined;
  constructor(
    readonly status: number,
    private readonly raw: http2.IncomingHttpHeaders | undefined,
    readonly body: string,
  ) {}

  get headers(): Record<string, string> {
    return (this.normalized ??= this.raw === undefined ? {} : normalizeHeaders(this.raw));
  }

  toJSON(): { status: number; headers: Record<string, string>; body: string } {
    return { status: this.status, headers: this.headers, body: this.body };
  }
}

const EXCHANGE = Symbol("Http2Pool.exchange");
type TrackedStream = http2.ClientHttp2Stream & { [EXCHANGE]: Exchange };

function onStreamResponse(this: TrackedStream, h: http2.IncomingHttpHeaders): void {
  const ex = this[EXCHANGE];
  ex.status = Number(h[http2.constants.HTTP2_HEADER_STATUS]);
  ex.rawHeaders = h;
}

function onStreamData(this: TrackedStream, chunk: Buffer): void {
  const ex = this[EXCHANGE];
  if (ex.settled) return;
  ex.size += chunk.length;
  if (ex.size > ex.owner.maxResponseBytes) {
    ex.owner.settle(ex, new Http2ConnectionError(ex.state.origin, "ERR_RESPONSE_TOO_LARGE", `response larger than ${ex.owner.maxResponseBytes} bytes`));
    this.close(http2.constants.NGHTTP2_CANCEL);
    return;
  }
  ex.chunks.push(chunk);
}

function onStreamEnd(this: TrackedStream): void {
  const ex = this[EXCHANGE];
  if (ex.settled) return;
  if (ex.status === 0) {
    ex.owner.settle(ex, new Http2ConnectionError(ex.state.origin, "ERR_HTTP2_NO_RESPONSE", "stream ended without response headers"));
    return;
  }
  const body = ex.chunks.length === 1 ? (ex.chunks[0] as Buffer).toString("utf8") : Buffer.concat(ex.chunks).toString("utf8");
  ex.owner.settle(ex, undefined, new PoolResponse(ex.status, ex.rawHeaders, body));
}

function onStreamError(this: TrackedStream, err: Error): void {
  const ex = this[EXCHANGE];
  const unprocessed =
    this.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM || (err as { code?: unknown }).code === "ERR_HTTP2_GOAWAY_SESSION";
  if (unprocessed && ex.state.session === ex.session) ex.state.session = undefined;
  if (!ex.settled) ex.owner.settle(ex, toConnectionError(ex.state.origin, err, unprocessed));
}

function onStreamClose(this: TrackedStream): void {
  const ex = this[EXCHANGE];
  // Usually the response has ended by now: the error (and its stack trace) is only built if not.
  if (ex.settled) return;
  ex.owner.settle(
    ex,
    new Http2ConnectionError(ex.state.origin, "ERR_HTTP2_STREAM_RESET", `stream closed before the response was complete (RST_STREAM code ${this.rstCode ?? "?"})`),
  );
}

export interface Http2PoolStats {
  /** Sessions opened since the pool was created. */
  sessionsOpened: number;
  origins: Array<{ origin: string; connected: boolean; inFlight: number; queued: number }>;
}

/** Cached raw origin strings (callers pass one or two): beyond this many, each request parses its origin again. */
const MAX_CACHED_ORIGINS = 64;

export class Http2Pool implements Http2Requester {
  private readonly states = new Map<string, OriginState>();
  /** `req.origin` as given -> its state, sparing a URL parse per request. */
  private readonly statesByRawOrigin = new Map<string, OriginState>();
  private readonly maxStreams: number;
  private readonly timeoutMs: number;
  private readonly idleMs: number;
  private readonly pingTimeoutMs: number;
  private readonly maxResponseBytes: number;
  private readonly closeTimeoutMs: number;
  private readonly connectOptions: http2.SecureClientSessionOptions | undefined;
  private readonly owner: ExchangeOwner;
  /** Every session not yet closed (current or draining after GOAWAY/idle), with its socket. */
  private readonly live = new Map<http2.ClientHttp2Session, { socket: Socket | undefined }>();
  private sessionsOpened = 0;
  private closed = false;
  /**
   * Request deadlines, one FIFO per timeout value: within one timeout value, deadlines come in the
   * order the requests started, so one timer armed at the earliest head serves every request,
   * instead of a timer created and cleared per request.
   */
  private readonly deadlines = new Map<number, Fifo<Deadline>>();
  /** Exchanges not yet settled, all of them in `deadlines`. */
  private tracked = 0;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private deadlineTimerAt = Infinity;
  private readonly sweepDeadlines = (): void => this.sweep();
  private lastHeaders:
    | { source: Readonly<Record<string, string>> | undefined; path: string; method: string; headers: http2.OutgoingHttpHeaders }
    | undefined;

  constructor(options: Http2PoolOptions = {}) {
    this.maxStreams = options.maxConcurrentStreamsPerOrigin ?? 100;
    if (!Number.isInteger(this.maxStreams) || this.maxStreams < 1) {
      throw new RangeError("maxConcurrentStreamsPerOrigin must be a positive integer");
    }
    this.timeoutMs = options.requestTimeoutMs ?? 10_000;
    this.idleMs = options.idleSessionTimeoutMs ?? 60_000;
    this.pingTimeoutMs = options.pingTimeoutMs ?? 3_000;
    this.maxResponseBytes = options.maxResponseBytes ?? 1024 * 1024;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 5_000;
    this.connectOptions = options.connectOptions;
    this.owner = { maxResponseBytes: this.maxResponseBytes, settle: (ex, err, res) => this.settle(ex, err, res) };
  }

  request(req: Http2Request): Promise<Http2Response> {
    if (this.closed) return Promise.reject(new Error("Http2Pool is closed"));
    return new Promise<Http2Response>((resolve, reject) => {
      const state = this.stateFor(req.origin);
      state.waiting.push({ req, resolve, reject });
      this.pump(state);
    });
  }

  stats(): Http2PoolStats {
    return {
      sessionsOpened: this.sessionsOpened,
      origins: [...this.states.values()].map((s) => ({
        origin: s.origin,
        connected: s.session !== undefined && !s.session.closed && !s.session.destroyed,
        inFlight: s.active,
        queued: s.waiting.length,
      })),
    };
  }

  /**
   * Closes all sessions: in-flight streams may finish within `closeTimeoutMs`, then the
   * sessions are destroyed. Further requests are refused.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const state of this.states.values()) state.session = undefined;
    const closing: Array<Promise<void>> = [];
    for (const session of this.live.keys()) {
      if (session.destroyed) continue;
      closing.push(
        new Promise<void>((resolve) => {
          session.once("close", () => resolve());
          if (session.closed) {
            // already draining (GOAWAY / idle): do not wait for a peer that may never answer
            this.destroySession(session);
            return;
          }
          const streams = [...this.states.values()].reduce((n, s) => n + s.active, 0);
          if (streams === 0) {
            this.destroySession(session);
            return;
          }
          const timer = setTimeout(() => this.destroySession(session), this.closeTimeoutMs);
          timer.unref();
          session.once("close", () => clearTimeout(timer));
          session.close();
        }),
      );
    }
    await Promise.all(closing);
  }

  /**
   * Destroys a session and its socket. Destroying the socket too matters: after
   * `session.close()`, `session.destroy()` alone waits for the peer to close the TCP
   * connection, which a dead peer never does.
   */
  private destroySession(session: http2.ClientHttp2Session): void {
    const socket = this.live.get(session)?.socket;
    if (!session.destroyed) session.destroy();
    if (socket && !socket.destroyed) socket.destroy();
  }

  private stateFor(origin: string): OriginState {
    const cached = this.statesByRawOrigin.get(origin);
    if (cached) return cached;
    const key = new URL(origin).origin;
    let state = this.states.get(key);
    if (!state) {
      state = { origin: key, session: undefined, streams: 0, active: 0, waiting: new Fifo(), pumping: false };
      this.states.set(key, state);
    }
    if (this.statesByRawOrigin.size < MAX_CACHED_ORIGINS) this.statesByRawOrigin.set(origin, state);
    return state;
  }

  /** Starts waiting requests, oldest first, while the origin has free stream slots. */
  private pump(state: OriginState): void {
    if (state.pumping) return;
    state.pumping = true;
    try {
      while (state.active < this.maxStreams) {
        const next = state.waiting.shift();
        if (!next) break;
        state.active++;
        this.start(state, next, 1);
      }
    } finally {
      state.pumping = false;
    }
  }

  private release(state: OriginState): void {
    state.active--;
    if (state.waiting.length > 0) this.pump(state);
  }

  private sessionFor(state: OriginState): http2.ClientHttp2Session {
    const current = state.session;
    if (current && !current.closed && !current.destroyed) return current;

    const session = http2.connect(state.origin, this.connectOptions);
    const entry: { socket: Socket | undefined } = { socket: undefined };
    this.live.set(session, entry);
    session.once("connect", (_s: http2.ClientHttp2Session, socket: Socket) => {
      entry.socket = socket;
    });
    session.once("close", () => this.live.delete(session));
    this.sessionsOpened++;
    state.session = session;
    state.streams = 0;
    const forget = () => {
      if (state.session === session) state.session = undefined;
    };
    // The error also reaches the streams of this session; the listener only prevents an
    // unhandled 'error' event and makes the next request reconnect.
    session.on("error", forget);
    session.on("goaway", forget); // no new streams on it; open ones may still complete
    session.on("close", forget);
    session.on("frameError", forget);
    // No frame in either direction for idleMs: nothing is in flight (or what is, is stuck).
    session.setTimeout(this.idleMs, () => {
      if (state.session !== session || state.streams === 0) {
        forget();
        this.destroySession(session);
      }
    });
    return session;
  }

  /** Opens the stream of a request that holds a slot. Its outcome arrives through `settle`. */
  private start(state: OriginState, pending: Pending, attempt: number): void {
    if (this.closed) {
      this.release(state);
      pending.reject(new Error("Http2Pool is closed"));
      return;
    }
    const req = pending.req;
    let session: http2.ClientHttp2Session;
    let stream: http2.ClientHttp2Stream;
    try {
      session = this.sessionFor(state);
      const headers = this.requestHeaders(req);
      // A POST with a body is Node's default (stream left open for the body): no options object
      // for Node to copy and fill in on every request of a fan-out.
      stream = session.request(headers, req.body !== undefined && headers[http2.constants.HTTP2_HEADER_METHOD] === "POST" ? undefined : { endStream: req.body === undefined });
    } catch (err) {
      // e.g. ERR_HTTP2_OUT_OF_STREAMS / ERR_HTTP2_INVALID_SESSION: start over next time.
      const s = state.session;
      state.session = undefined;
      if (s) this.destroySession(s);
      this.release(state);
      pending.reject(toConnectionError(state.origin, err));
      return;
    }
    state.streams++;
    if (state.streams === 1) session.ref();

    const timeoutMs = req.timeoutMs ?? this.timeoutMs;
    const deadline: Deadline = { at: performance.now() + timeoutMs, exchange: undefined };
    const ex = new Exchange(this.owner, state, session, stream, pending, attempt, timeoutMs, deadline);
    deadline.exchange = ex;
    this.track(timeoutMs, deadline);
    (stream as TrackedStream)[EXCHANGE] = ex;
    stream.on("response", onStreamResponse);
    stream.on("data", onStreamData);
    stream.on("end", onStreamEnd);
    stream.on("error", onStreamError);
    stream.on("close", onStreamClose);
    if (req.body !== undefined) stream.end(req.body);
  }

  /**
   * The stream's headers. Node copies them and never changes the object given, so a fan-out's
   * requests (one frozen header object from sendFcmMessage, one path, one method) share one; a
   * header object that is not frozen may change between requests and is copied every time.
   */
  private requestHeaders(req: Http2Request): http2.OutgoingHttpHeaders {
    const method = req.method ?? (req.body === undefined ? "GET" : "POST");
    const last = this.lastHeaders;
    if (last && last.source === req.headers && last.path === req.path && last.method === method) return last.headers;
    const headers: http2.OutgoingHttpHeaders = {
      ...req.headers,
      [http2.constants.HTTP2_HEADER_METHOD]: method,
      [http2.constants.HTTP2_HEADER_PATH]: req.path,
    };
    if (req.headers === undefined || Object.isFrozen(req.headers)) {
      this.lastHeaders = { source: req.headers, path: req.path, method, headers: Object.freeze(headers) };
    }
    return headers;
  }

  /** The one way an exchange ends: response, error or timeout, whichever comes first. */
  private settle(ex: Exchange, err: Error | undefined, res?: Http2Response): void {
    if (ex.settled) return;
    ex.settled = true;
    ex.deadline.exchange = undefined;
    if (--this.tracked === 0) this.clearDeadlines();
    const { state, session, pending } = ex;
    if (state.session === session) {
      state.streams--;
      if (state.streams === 0 && !session.destroyed) session.unref();
    } else if (!session.destroyed) {
      session.unref();
    }
    if (err === undefined) {
      this.release(state);
      pending.resolve(res as Http2Response);
      return;
    }
    // A request the server refused unprocessed (it was sent while the server's GOAWAY was in
    // flight) is safe to repeat at once, on a new session; it keeps its slot meanwhile.
    if (ex.attempt === 1 && err instanceof Http2ConnectionError && err.unprocessed) {
      queueMicrotask(() => this.start(state, pending, 2));
      return;
    }
    this.release(state);
    pending.reject(err);
  }

  private track(timeoutMs: number, deadline: Deadline): void {
    let queue = this.deadlines.get(timeoutMs);
    if (!queue) {
      queue = new Fifo();
      this.deadlines.set(timeoutMs, queue);
    }
    // Answers come back roughly in order: dropping the settled heads keeps a queue about as long
    // as what is in flight.
    for (let head = queue.peek(); head && !head.exchange; head = queue.peek()) queue.shift();
    queue.push(deadline);
    this.tracked++;
    if (deadline.at < this.deadlineTimerAt) this.armDeadlineTimer(deadline.at);
  }

  private armDeadlineTimer(at: number): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimerAt = at;
    // Ref'd like the per-request timers it replaces; cleared as soon as nothing is in flight.
    this.deadlineTimer = setTimeout(this.sweepDeadlines, Math.max(0, Math.ceil(at - performance.now())));
  }

  private clearDeadlines(): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    this.deadlineTimerAt = Infinity;
    this.deadlines.clear();
  }

  private sweep(): void {
    this.deadlineTimer = undefined;
    this.deadlineTimerAt = Infinity;
    const now = performance.now();
    const expired: Exchange[] = [];
    for (const [timeoutMs, queue] of this.deadlines) {
      for (let head = queue.peek(); head && (!head.exchange || head.at <= now); head = queue.peek()) {
        queue.shift();
        if (head.exchange) expired.push(head.exchange);
      }
      if (queue.length === 0) this.deadlines.delete(timeoutMs);
    }
    // Timing out may start waiting requests, which track (and arm the timer for) themselves.
    for (const ex of expired) this.timeOut(ex);
    let next = Infinity;
    for (const queue of this.deadlines.values()) next = Math.min(next, queue.peek()?.at ?? Infinity);
    if (next < this.deadlineTimerAt) this.armDeadlineTimer(next);
  }

  private timeOut(ex: Exchange): void {
    if (ex.settled) return;
    this.settle(ex, new Http2TimeoutError(ex.state.origin, ex.timeoutMs));
    if (!ex.stream.destroyed) ex.stream.close(http2.constants.NGHTTP2_CANCEL);
    this.checkLiveness(ex.state, ex.session);
  }

  /**
   * A request timed out. If the session never connected, or does not answer a PING
   * quickly, it is presumed dead (e.g. a half-open TCP connection after the instance
   * was CPU-throttled) and dropped, so the next request reconnects.
   */
  private checkLiveness(state: OriginState, session: http2.ClientHttp2Session): void {
    if (session.destroyed || session.closed) return;
    const drop = () => {
      if (state.session === session) state.session = undefined;
      this.destroySession(session);
    };
    if (session.connecting) {
      drop();
      return;
    }
    const pingTimer = setTimeout(drop, this.pingTimeoutMs);
    pingTimer.unref();
    try {
      const sent = session.ping((err) => {
        clearTimeout(pingTimer);
        if (err) drop();
      });
      if (!sent) {
        clearTimeout(pingTimer);
        drop();
      }
    } catch {
      clearTimeout(pingTimer);
      drop();
    }
  }
}

function normalizeHeaders(h: http2.IncomingHttpHeaders): Record<string, string> {
  // Names chosen by the server: no prototype, so none of them can shadow or reach Object.prototype.
  const out = Object.create(null) as Record<string, string>;
  for (const name in h) {
    const value = h[name];
    if (value === undefined || name.charCodeAt(0) === 58 /* ":" pseudo-header */) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : String(value);
  }
  return out;
}

function toConnectionError(origin: string, err: unknown, unprocessed = false): Http2ConnectionError {
  if (err instanceof Http2ConnectionError) return err;
  const e = err as { code?: unknown; message?: unknown; cause?: unknown } | undefined;
  // e.g. ERR_HTTP2_STREAM_CANCEL "caused by: connect ECONNREFUSED": report ECONNREFUSED.
  const causeCode =
    e?.cause && typeof e.cause === "object" && "code" in e.cause ? String((e.cause as { code: unknown }).code) : undefined;
  const code = causeCode ?? (typeof e?.code === "string" ? e.code : "ERR_HTTP2");
  const message = typeof e?.message === "string" ? e.message : String(err);
  return new Http2ConnectionError(origin, code, message, unprocessed);
}
