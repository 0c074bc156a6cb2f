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

class Semaphore {
  private inUse = 0;
  private readonly waiters: Array<() => void> = [];
  constructor(private readonly max: number) {}

  acquire(): Promise<void> {
    if (this.inUse < this.max) {
      this.inUse++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next(); // the slot passes directly to the next waiter
    else this.inUse--;
  }

  get active(): number {
    return this.inUse;
  }

  get queued(): number {
    return this.waiters.length;
  }
}

interface OriginState {
  origin: string;
  semaphore: Semaphore;
  session: http2.ClientHttp2Session | undefined;
  /** Open streams on `session`. */
  streams: number;
}

export interface Http2PoolStats {
  /** Sessions opened since the pool was created. */
  sessionsOpened: number;
  origins: Array<{ origin: string; connected: boolean; inFlight: number; queued: number }>;
}

export class Http2Pool implements Http2Requester {
  private readonly states = new Map<string, OriginState>();
  private readonly maxStreams: number;
  private readonly timeoutMs: number;
  private readonly idleMs: number;
  private readonly pingTimeoutMs: number;
  private readonly maxResponseBytes: number;
  private readonly closeTimeoutMs: number;
  private readonly connectOptions: http2.SecureClientSessionOptions | undefined;
  /** Every session not yet closed (current or draining after GOAWAY/idle), with its socket. */
  private readonly live = new Map<http2.ClientHttp2Session, { socket: Socket | undefined }>();
  private sessionsOpened = 0;
  private closed = false;

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
  }

  async request(req: Http2Request): Promise<Http2Response> {
    if (this.closed) throw new Error("Http2Pool is closed");
    const state = this.stateFor(req.origin);
    await state.semaphore.acquire();
    try {
      for (let attempt = 1; ; attempt++) {
        if (this.closed) throw new Error("Http2Pool is closed");
        try {
          return await this.exchange(state, req);
        } catch (err) {
          // A request the server refused unprocessed (it was sent while the server's GOAWAY
          // was in flight) is safe to repeat at once, on a new session.
          if (attempt === 1 && err instanceof Http2ConnectionError && err.unprocessed) continue;
          throw err;
        }
      }
    } finally {
      state.semaphore.release();
    }
  }

  stats(): Http2PoolStats {
    return {
      sessionsOpened: this.sessionsOpened,
      origins: [...this.states.values()].map((s) => ({
        origin: s.origin,
        connected: s.session !== undefined && !s.session.closed && !s.session.destroyed,
        inFlight: s.semaphore.active,
        queued: s.semaphore.queued,
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
          const streams = [...this.states.values()].reduce((n, s) => n + s.semaphore.active, 0);
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
    const key = new URL(origin).origin;
    let state = this.states.get(key);
    if (!state) {
      state = { origin: key, semaphore: new Semaphore(this.maxStreams), session: undefined, streams: 0 };
      this.states.set(key, state);
    }
    return state;
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

  private exchange(state: OriginState, req: Http2Request): Promise<Http2Response> {
    const origin = state.origin;
    const timeoutMs = req.timeoutMs ?? this.timeoutMs;
    return new Promise<Http2Response>((resolve, reject) => {
      let session: http2.ClientHttp2Session;
      let stream: http2.ClientHttp2Stream;
      try {
        session = this.sessionFor(state);
        stream = session.request(
          {
            ...req.headers,
            [http2.constants.HTTP2_HEADER_METHOD]: req.method ?? (req.body === undefined ? "GET" : "POST"),
            [http2.constants.HTTP2_HEADER_PATH]: req.path,
          },
          { endStream: req.body === undefined },
        );
      } catch (err) {
        // e.g. ERR_HTTP2_OUT_OF_STREAMS / ERR_HTTP2_INVALID_SESSION: start over next time.
        const s = state.session;
        state.session = undefined;
        if (s) this.destroySession(s);
        reject(toConnectionError(origin, err));
        return;
      }
      const ownSession = () => state.session === session;
      if (ownSession()) state.streams++;
      session.ref();

      let settled = false;
      const finish = (err: Error | undefined, res?: Http2Response) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (ownSession()) {
          state.streams--;
          if (state.streams === 0 && !session.destroyed) session.unref();
        } else if (!session.destroyed) {
          session.unref();
        }
        if (err) reject(err);
        else resolve(res as Http2Response);
      };

      const timer = setTimeout(() => {
        finish(new Http2TimeoutError(origin, timeoutMs));
        if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
        this.checkLiveness(state, session);
      }, timeoutMs);

      let status = 0;
      let headers: Record<string, string> = {};
      const chunks: Buffer[] = [];
      let size = 0;
      stream.on("response", (h) => {
        status = Number(h[http2.constants.HTTP2_HEADER_STATUS]);
        headers = normalizeHeaders(h);
      });
      stream.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > this.maxResponseBytes) {
          finish(new Http2ConnectionError(origin, "ERR_RESPONSE_TOO_LARGE", `response larger than ${this.maxResponseBytes} bytes`));
          stream.close(http2.constants.NGHTTP2_CANCEL);
          return;
        }
        chunks.push(chunk);
      });
      stream.on("end", () => {
        if (status === 0) {
          finish(new Http2ConnectionError(origin, "ERR_HTTP2_NO_RESPONSE", "stream ended without response headers"));
          return;
        }
        finish(undefined, { status, headers, body: Buffer.concat(chunks).toString("utf8") });
      });
      stream.on("error", (err) => {
        const unprocessed =
          stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM ||
          (err as { code?: unknown }).code === "ERR_HTTP2_GOAWAY_SESSION";
        if (unprocessed && ownSession()) state.session = undefined;
        finish(toConnectionError(origin, err, unprocessed));
      });
      stream.on("close", () =>
        finish(
          new Http2ConnectionError(
            origin,
            "ERR_HTTP2_STREAM_RESET",
            `stream closed before the response was complete (RST_STREAM code ${stream.rstCode ?? "?"})`,
          ),
        ),
      );
      if (req.body !== undefined) stream.end(req.body);
    });
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
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(h)) {
    if (name.startsWith(":") || value === undefined) continue;
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
