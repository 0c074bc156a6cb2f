/**
 * A gRPC-transparent proxy in front of the Firestore emulator, for the tests: it counts the calls
 * per gRPC method and injects faults (UNAVAILABLE, a stall, a reset), which the emulator cannot.
 *
 * - Proxy listener: cleartext HTTP/2 (h2c, prior knowledge, as the Admin SDK talks to an
 *   emulator). Every stream is forwarded as it is: headers, body and trailers both ways, with
 *   backpressure (streams are piped, no chunk is copied), so unary and streaming calls (Commit,
 *   BatchGetDocuments, RunQuery, Listen) all work. Each client connection gets its own connection
 *   to the emulator, so a reset of one is a reset of the other.
 * - Control listener: HTTP/1.1 JSON (`/control/...`): call counts, faults, stats, reset.
 */
import { randomUUID } from "node:crypto";
import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import { z } from "zod";
import { FAULT_KINDS, FIRESTORE_SERVICE, type CallCounts, type Fault, type FaultKind, type FirestoreProxyStats, type QuietResult } from "./types.js";

export type { CallCounts, Fault, FaultInput, FaultKind, FirestoreProxyStats, QuietResult } from "./types.js";

export interface FirestoreProxyOptions {
  /** host:port of the Firestore emulator. */
  upstream: string;
  host?: string;
  /** 0 = ephemeral. */
  port?: number;
  /** 0 = ephemeral. */
  controlPort?: number;
}

export interface FirestoreProxy {
  /** host:port the Firestore clients should use instead of the emulator's (FIRESTORE_PROXY_HOST). */
  proxyHost: string;
  controlOrigin: string;
  close(): Promise<void>;
}

const {
  NGHTTP2_CANCEL,
  NGHTTP2_INTERNAL_ERROR,
  NGHTTP2_NO_ERROR,
  NGHTTP2_FLAG_END_STREAM,
  HTTP2_HEADER_PATH,
  HTTP2_HEADER_STATUS,
  HTTP2_HEADER_CONTENT_TYPE,
} = http2.constants;
const GRPC_UNAVAILABLE = 14;
/** Larger than HTTP/2's 64 KiB default: a getAll of 400 users answers several hundred KiB, which would otherwise wait on window updates twice. */
const WINDOW_BYTES = 1 << 20;
/** Node's default (10 MB) is per session; 50 inline batches reading at once through one connection can buffer more. */
const SESSION_MEMORY_MB = 64;
const MAX_HOLD_MS = 600_000;
const MAX_QUIET_WAIT_MS = 120_000;

const methodName = z
  .string()
  .regex(/^(\/[A-Za-z0-9_.]+\/)?[A-Za-z]+$/, "a gRPC method: a full path (/google.firestore.v1.Firestore/Commit) or its name (Commit)")
  .transform((m) => (m.startsWith("/") ? m : `${FIRESTORE_SERVICE}/${m}`));

const faultSchema = z
  .strictObject({
    kind: z.enum(FAULT_KINDS),
    methods: z.array(methodName).min(1).max(50).optional(),
    forMs: z.number().int().positive().max(3_600_000).optional(),
    calls: z.number().int().positive().max(1_000_000).optional(),
    skip: z.number().int().min(0).max(1_000_000).optional(),
    holdMs: z.number().int().positive().max(MAX_HOLD_MS).optional(),
    message: z.string().max(1_000).optional(),
    scope: z.enum(["stream", "session"]).optional(),
    rstCode: z.number().int().min(0).max(13).optional(),
  })
  .refine((f) => f.forMs !== undefined || f.calls !== undefined, "give forMs or calls: a fault without either would never end")
  .refine((f) => f.kind !== "stall" || f.holdMs !== undefined || f.forMs !== undefined, "a stall needs holdMs or forMs (how long a call is held)")
  .refine((f) => f.kind === "unavailable" || f.message === undefined, "message is for unavailable faults")
  .refine((f) => f.kind === "reset" || f.scope === undefined, "scope is for reset faults")
  .refine((f) => f.kind === "reset" || f.kind === "lose-answer" || f.rstCode === undefined, "rstCode is for reset and lose-answer faults")
  .refine((f) => f.kind === "stall" || f.holdMs === undefined, "holdMs is for stall faults");

const quietSchema = z.object({
  quietMs: z.coerce.number().int().min(0).max(60_000).default(500),
  timeoutMs: z.coerce.number().int().min(0).max(MAX_QUIET_WAIT_MS).default(30_000),
});

/** grpc-message is percent-encoded, but only outside printable ASCII and `%` (gRPC's HTTP/2 spec; clients decode no more). */
function grpcMessage(message: string): string {
  return message.replace(/[^\x20-\x24\x26-\x7e]+/g, (run) => encodeURIComponent(run));
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A call held by a stall: forwarded when `release` runs, unless its client gave up first. */
interface Held {
  timer: NodeJS.Timeout;
  release(): void;
}

export async function startFirestoreProxy(options: FirestoreProxyOptions): Promise<FirestoreProxy> {
  const host = options.host ?? "127.0.0.1";
  const upstreamOrigin = `http://${options.upstream}`;
  let closing = false;

  const sockets = new Set<Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  const upstreams = new Map<http2.ServerHttp2Session, http2.ClientHttp2Session>();
  const faults = new Map<string, Fault>();
  const held = new Map<string, Set<Held>>();
  const timers = new Set<NodeJS.Timeout>();

  let counts = newCounts(0);
  const byMethod = new Map<string, number>();
  const cpuAtStart = process.cpuUsage();
  const stats = {
    sessions: 0,
    calls: 0,
    inFlight: 0,
    maxInFlight: 0,
    faulted: { unavailable: 0, stall: 0, reset: 0, "lose-answer": 0 } as Record<FaultKind, number>,
    droppedWhileHeld: 0,
    upstreamErrors: 0,
    cancelled: 0,
    lastActivityMs: 0,
  };

  function newCounts(generation: number): { generation: number; since: string } {
    return { generation, since: new Date().toISOString() };
  }

  // ------------------------------------------------------------------ faults
  function prune(nowMs: number): void {
    for (const f of faults.values()) {
      const over = (f.calls !== null && f.applied >= f.calls) || (f.until !== null && nowMs >= Date.parse(f.until));
      if (over) faults.delete(f.id);
    }
  }

  function activate(f: Fault, nowMs: number): void {
    f.activeSince = new Date(nowMs).toISOString();
    f.until = f.forMs !== null ? new Date(nowMs + f.forMs).toISOString() : null;
  }

  /** The fault this call gets, if any (counting it against the fault's `skip` and `calls`). */
  function takeFault(method: string): Fault | undefined {
    if (faults.size === 0) return undefined;
    const nowMs = Date.now();
    prune(nowMs);
    for (const f of faults.values()) {
      if (f.methods !== null && !f.methods.includes(method)) continue;
      if (f.skipped < f.skip) {
        f.skipped++;
        continue;
      }
      if (f.activeSince === null) activate(f, nowMs);
      f.applied++;
      return f;
    }
    return undefined;
  }

  function addFault(input: z.output<typeof faultSchema>): Fault {
    const nowMs = Date.now();
    const f: Fault = {
      id: randomUUID(),
      kind: input.kind,
      methods: input.methods ? [...new Set(input.methods)] : null,
      forMs: input.forMs ?? null,
      calls: input.calls ?? null,
      skip: input.skip ?? 0,
      holdMs: input.holdMs ?? null,
      message: input.message ?? `injected by the Firestore proxy: ${input.kind}`,
      scope: input.scope ?? "stream",
      rstCode: input.rstCode ?? NGHTTP2_INTERNAL_ERROR,
      createdAt: new Date(nowMs).toISOString(),
      activeSince: null,
      until: null,
      skipped: 0,
      applied: 0,
    };
    if (f.skip === 0) activate(f, nowMs);
    faults.set(f.id, f);
    return f;
  }

  /** Removes faults (all, or one); the calls they hold go on to the emulator now. */
  function clearFaults(id?: string): { cleared: number; released: number } {
    const ids = id === undefined ? [...faults.keys(), ...held.keys()] : [id];
    let cleared = 0;
    let released = 0;
    for (const fid of new Set(ids)) {
      if (faults.delete(fid)) cleared++;
      for (const h of held.get(fid) ?? []) {
        clearTimeout(h.timer);
        timers.delete(h.timer);
        h.release();
        released++;
      }
      held.delete(fid);
    }
    return { cleared, released };
  }

  // ------------------------------------------------------------------- calls
  function touch(): void {
    stats.lastActivityMs = Date.now();
  }

  /** Answers the call with a gRPC status and no message (a trailers-only response); its request is read and dropped. */
  function answerStatus(stream: http2.ServerHttp2Stream, code: number, message: string): void {
    if (stream.destroyed || stream.closed || stream.headersSent) return;
    stream.respond(
      { [HTTP2_HEADER_STATUS]: 200, [HTTP2_HEADER_CONTENT_TYPE]: "application/grpc", "grpc-status": String(code), "grpc-message": grpcMessage(message) },
      { endStream: true },
    );
    stream.resume();
  }

  function upstreamFor(session: http2.ServerHttp2Session): http2.ClientHttp2Session {
    const existing = upstreams.get(session);
    if (existing && !existing.closed && !existing.destroyed) return existing;
    const up = http2.connect(upstreamOrigin, { settings: { initialWindowSize: WINDOW_BYTES }, maxSessionMemory: SESSION_MEMORY_MB });
    up.on("connect", () => up.setLocalWindowSize(WINDOW_BYTES * 8));
    // Its streams report the failure (see forward); the session's own error needs no handling.
    up.on("error", () => {});
    up.on("close", () => {
      if (upstreams.get(session) === up) upstreams.delete(session);
    });
    upstreams.set(session, up);
    return up;
  }

  /**
   * `from.pipe(to)`, with the chunks that arrive in one tick written together: the emulator answers
   * a getAll with one small DATA frame per document, and corking lets HTTP/2 pack them into full
   * frames with one write instead of one per document (less CPU here and in the client). No copy.
   */
  function relay(from: http2.Http2Stream, to: http2.Http2Stream): void {
    let corked = false;
    const uncork = () => {
      corked = false;
      to.uncork();
    };
    from.on("data", (chunk: Buffer) => {
      if (to.destroyed || to.writableEnded) return;
      if (!corked) {
        corked = true;
        to.cork();
        process.nextTick(uncork);
      }
      if (!to.write(chunk)) {
        from.pause();
        to.once("drain", () => from.resume());
      }
    });
    from.on("end", () => {
      if (!to.destroyed && !to.writableEnded) to.end();
    });
  }

  /**
   * The call as it is, to the emulator and back: headers, body and trailers, with backpressure both
   * ways. `loseAnswer`: the emulator's answer is replaced by a reset of the client's stream with that code.
   */
  function forward(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, loseAnswer?: number): void {
    if (stream.destroyed || stream.closed) return;
    const requestEnded = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
    let up: http2.ClientHttp2Stream;
    try {
      up = upstreamFor(stream.session as http2.ServerHttp2Session).request(headers, { endStream: requestEnded });
    } catch (err) {
      stats.upstreamErrors++;
      answerStatus(stream, GRPC_UNAVAILABLE, `Firestore proxy: the emulator at ${options.upstream} cannot be reached (${err instanceof Error ? err.message : String(err)})`);
      return;
    }
    let upError: Error | undefined;
    let trailers: http2.IncomingHttpHeaders | undefined;
    let wantTrailers = false;
    const sendTrailers = () => {
      if (!stream.destroyed && !stream.closed) stream.sendTrailers(trailers ?? {});
    };
    up.on("error", (err) => (upError = err));
    up.on("response", (responseHeaders, responseFlags) => {
      if (stream.destroyed || stream.closed) return;
      if (loseAnswer !== undefined) {
        // The emulator has carried the call out (it answers a unary call once done): the client never hears so.
        stream.close(loseAnswer);
        return;
      }
      if ((responseFlags & NGHTTP2_FLAG_END_STREAM) !== 0) {
        // Trailers-only: the status is in these headers.
        stream.respond(responseHeaders, { endStream: true });
        return;
      }
      stream.respond(responseHeaders, { waitForTrailers: true });
      relay(up, stream);
    });
    up.on("trailers", (t) => {
      trailers = t;
      if (wantTrailers) sendTrailers();
    });
    stream.on("wantTrailers", () => {
      wantTrailers = true;
      if (trailers) sendTrailers();
      else if (up.closed) stream.close(NGHTTP2_INTERNAL_ERROR);
    });
    up.on("close", () => {
      if (stream.destroyed || stream.closed) return;
      const reset = up.rstCode !== undefined && up.rstCode !== NGHTTP2_NO_ERROR;
      if (!stream.headersSent) {
        stats.upstreamErrors++;
        const why = upError ? upError.message : reset ? `the emulator reset the call (code ${up.rstCode})` : "the emulator closed the call without an answer";
        answerStatus(stream, GRPC_UNAVAILABLE, `Firestore proxy: ${why}`);
      } else if (reset) {
        stats.upstreamErrors++;
        stream.close(up.rstCode);
      } else if (wantTrailers && !trailers) {
        stream.close(NGHTTP2_INTERNAL_ERROR);
      }
    });
    stream.on("close", () => {
      // The client went away (cancelled, deadline, connection lost): so does the emulator's call.
      if (!up.closed && !up.destroyed) up.close(stream.rstCode !== undefined && stream.rstCode !== NGHTTP2_NO_ERROR ? stream.rstCode : NGHTTP2_CANCEL);
    });
    if (!requestEnded) relay(stream, up);
  }

  function hold(stream: http2.ServerHttp2Stream, f: Fault, go: () => void): void {
    const untilMs = f.holdMs !== null ? Date.now() + f.holdMs : Date.parse(f.until as string);
    let done = false;
    const entry: Held = {
      timer: setTimeout(() => finish(true), Math.max(0, untilMs - Date.now())),
      release: () => finish(true),
    };
    timers.add(entry.timer);
    let set = held.get(f.id);
    if (!set) held.set(f.id, (set = new Set()));
    set.add(entry);
    function finish(forwardIt: boolean): void {
      if (done) return;
      done = true;
      clearTimeout(entry.timer);
      timers.delete(entry.timer);
      held.get(f.id)?.delete(entry);
      if (held.get(f.id)?.size === 0) held.delete(f.id);
      if (!forwardIt || stream.destroyed || stream.closed) {
        stats.droppedWhileHeld++;
        return;
      }
      go();
    }
    stream.once("close", () => finish(false));
  }

  function onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number): void {
    const method = String(headers[HTTP2_HEADER_PATH] ?? "");
    stats.calls++;
    byMethod.set(method, (byMethod.get(method) ?? 0) + 1);
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    touch();
    // Failures show as the stream's close (with its rstCode): nothing else to do with them.
    stream.on("error", () => {});
    stream.once("close", () => {
      stats.inFlight--;
      if (stream.rstCode === NGHTTP2_CANCEL && !stream.headersSent) stats.cancelled++;
      touch();
    });
    const f = closing ? undefined : takeFault(method);
    if (!f) {
      forward(stream, headers, flags);
      return;
    }
    stats.faulted[f.kind]++;
    if (f.kind === "unavailable") {
      answerStatus(stream, GRPC_UNAVAILABLE, f.message);
    } else if (f.kind === "stall") {
      hold(stream, f, () => forward(stream, headers, flags));
    } else if (f.kind === "lose-answer") {
      forward(stream, headers, flags, f.rstCode);
    } else if (f.scope === "session") {
      const session = stream.session as http2.ServerHttp2Session;
      upstreams.get(session)?.destroy();
      session.destroy();
    } else {
      stream.close(f.rstCode);
    }
  }

  const proxy = http2.createServer({ settings: { initialWindowSize: WINDOW_BYTES }, maxSessionMemory: SESSION_MEMORY_MB });
  proxy.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  proxy.on("session", (session) => {
    sessions.add(session);
    stats.sessions++;
    session.on("connect", () => session.setLocalWindowSize(WINDOW_BYTES * 8));
    session.on("error", () => {});
    session.on("close", () => {
      sessions.delete(session);
      upstreams.get(session)?.close();
      upstreams.delete(session);
    });
  });
  proxy.on("stream", onStream);

  // ----------------------------------------------------------------- control
  function callCounts(): CallCounts {
    return { ...counts, total: [...byMethod.values()].reduce((a, b) => a + b, 0), byMethod: Object.fromEntries([...byMethod].sort(([a], [b]) => a.localeCompare(b))) };
  }

  function resetCounts(): CallCounts {
    counts = newCounts(counts.generation + 1);
    byMethod.clear();
    return callCounts();
  }

  function currentStats(): FirestoreProxyStats {
    prune(Date.now());
    const cpu = process.cpuUsage(cpuAtStart);
    return {
      upstream: options.upstream,
      sessions: stats.sessions,
      openSessions: sessions.size,
      calls: stats.calls,
      inFlight: stats.inFlight,
      maxInFlight: stats.maxInFlight,
      faulted: { ...stats.faulted },
      droppedWhileHeld: stats.droppedWhileHeld,
      upstreamErrors: stats.upstreamErrors,
      cancelled: stats.cancelled,
      lastActivityAt: stats.lastActivityMs ? new Date(stats.lastActivityMs).toISOString() : null,
      cpuMicros: cpu.user + cpu.system,
      faults: [...faults.values()],
    };
  }

  function resetAll(): { reset: true } {
    clearFaults();
    resetCounts();
    Object.assign(stats, { sessions: sessions.size, calls: 0, maxInFlight: stats.inFlight, droppedWhileHeld: 0, upstreamErrors: 0, cancelled: 0 });
    stats.faulted = { unavailable: 0, stall: 0, reset: 0, "lose-answer": 0 };
    return { reset: true };
  }

  /** Resolves once nothing is in flight and no call started or ended for `quietMs`, or at `timeoutMs`. */
  function waitQuiet(quietMs: number, timeoutMs: number): Promise<QuietResult> {
    const started = Date.now();
    return new Promise((resolve) => {
      const check = () => {
        const nowMs = Date.now();
        const quiet = stats.inFlight === 0 && nowMs - stats.lastActivityMs >= quietMs;
        if (quiet || closing || nowMs - started >= timeoutMs) {
          resolve({ quiet, waitedMs: nowMs - started, inFlight: stats.inFlight });
          return;
        }
        const wait = stats.inFlight === 0 ? Math.max(10, stats.lastActivityMs + quietMs - nowMs) : 20;
        const timer = setTimeout(() => {
          timers.delete(timer);
          check();
        }, Math.min(wait, Math.max(1, started + timeoutMs - nowMs)));
        timers.add(timer);
      };
      check();
    });
  }

  async function readJson<S extends z.ZodType>(req: http.IncomingMessage, schema: S): Promise<z.output<S>> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > 64 * 1024) throw new HttpError(413, "body too large");
      chunks.push(chunk);
    }
    let body: unknown = {};
    const text = Buffer.concat(chunks).toString("utf8");
    if (text.trim() !== "") {
      try {
        body = JSON.parse(text);
      } catch {
        throw new HttpError(400, "body is not JSON");
      }
    }
    const parsed = schema.safeParse(body);
    if (!parsed.success) throw new HttpError(400, parsed.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; "));
    return parsed.data;
  }

  function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  }

  async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://control");
    const path = url.pathname;
    const method = req.method ?? "GET";
    if (path === "/control/stats" && method === "GET") return sendJson(res, 200, currentStats());
    if (path === "/control/calls" && method === "GET") return sendJson(res, 200, callCounts());
    if (path === "/control/calls" && method === "DELETE") return sendJson(res, 200, resetCounts());
    if (path === "/control/faults" && method === "GET") {
      prune(Date.now());
      return sendJson(res, 200, [...faults.values()]);
    }
    if (path === "/control/faults" && method === "POST") return sendJson(res, 200, addFault(await readJson(req, faultSchema)));
    if (path === "/control/faults" && method === "DELETE") return sendJson(res, 200, clearFaults());
    const one = /^\/control\/faults\/([^/]+)$/.exec(path);
    if (one && method === "DELETE") {
      const id = decodeURIComponent(one[1] as string);
      const known = faults.has(id) || held.has(id);
      return sendJson(res, known ? 200 : 404, clearFaults(id));
    }
    if (path === "/control/quiet" && method === "GET") {
      const q = quietSchema.safeParse(Object.fromEntries(url.searchParams));
      if (!q.success) throw new HttpError(400, q.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
      return sendJson(res, 200, await waitQuiet(q.data.quietMs, q.data.timeoutMs));
    }
    if (path === "/control/reset" && method === "POST") return sendJson(res, 200, resetAll());
    throw new HttpError(404, `no route ${method} ${path}`);
  }

  const control = http.createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof HttpError) sendJson(res, err.status, { error: err.message });
      else sendJson(res, 500, { error: err instanceof Error ? err.message : String(err) });
    });
  });
  control.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  // ------------------------------------------------------------------ listen
  const listen = (server: http.Server | http2.Http2Server, port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const urlHost = host.includes(":") ? `[${host}]` : host;
  const proxyPort = await listen(proxy, options.port ?? 0);
  let controlPort: number;
  try {
    controlPort = await listen(control, options.controlPort ?? 0);
  } catch (err) {
    await new Promise<void>((resolve) => proxy.close(() => resolve()));
    throw err;
  }

  let closed: Promise<void> | undefined;
  return {
    proxyHost: `${urlHost}:${proxyPort}`,
    controlOrigin: `http://${urlHost}:${controlPort}`,
    close() {
      closed ??= (async () => {
        closing = true;
        for (const t of timers) clearTimeout(t);
        timers.clear();
        held.clear();
        const done = Promise.all([new Promise<void>((resolve) => proxy.close(() => resolve())), new Promise<void>((resolve) => control.close(() => resolve()))]);
        // An HTTP/2 session kept open (the Admin SDK keeps its channel) would hold close() forever.
        for (const up of upstreams.values()) up.destroy();
        for (const s of sessions) s.destroy();
        for (const s of sockets) s.destroy();
        await done;
      })();
      return closed;
    },
  };
}
