// The FCM sender micro-benchmark: this project's client (sendFcmMessage over Http2Pool) against
// bare node:http2 and firebase-admin's messaging().sendEach, all sending the same realistic message
// to one TLS loopback HTTP/2 server that answers like FCM. Figures, not assertions.
//
//   node --import tsx scripts/bench-sender.ts [--messages N] [--rounds R] [--cpu-prof DIR]
//   import { benchSender, formatSenderTable } from "./bench-sender.ts"   (scripts/bench.ts)
//
// Process layout, and why:
// - The server runs in a child process of its own, so that its CPU (TLS, HPACK, JSON) is not
//   charged to the client being measured: on this 2-core machine the server gets one core and
//   the client the other.
// - Each measurement (one client, one round) runs in a fresh child process too, so that no client
//   inherits another's heap, garbage or JIT state, and the calling process (the main bench, with
//   its emulators and clients) adds nothing. Each child warms up first (not timed), then times its
//   messages; it also reports its own CPU time per message, which the machine's noise affects
//   less than wall-clock throughput.
// - Rounds are interleaved (round r runs every client once, in an order rotated by r), and the
//   ratios are taken per round and then the median, so a slow minute on a shared machine weighs on
//   all clients alike.
//
// The certificate is generated at run time with openssl (no key material in the repository) into
// a temporary folder removed at the end.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import type * as Http2 from "node:http2";

export type SenderClient = "bare" | "ours" | "admin";
export const SENDER_CLIENTS: readonly SenderClient[] = ["bare", "ours", "admin"];

export interface SenderRun {
  client: SenderClient;
  round: number;
  messages: number;
  ms: number;
  msgsPerSec: number;
  /** Client process CPU time (user + system) per message, in microseconds. */
  cpuUsPerMsg: number;
  /** Successful answers: must equal `messages`. */
  ok: number;
  /**
   * The server's CPU time during the run over its wall time (1 = one core busy all along). Near 1,
   * the server was the bottleneck and msgs/s hides client differences: CPU µs/msg then tells.
   */
  serverLoad: number;
}

export interface SenderClientSummary {
  /** Median over rounds. */
  msgsPerSec: number;
  cpuUsPerMsg: number;
  perRound: number[];
  /** Median over rounds of SenderRun.serverLoad. */
  serverLoad: number;
}

export interface SenderBenchResult {
  messages: number;
  rounds: number;
  runs: SenderRun[];
  clients: Record<SenderClient, SenderClientSummary>;
  /** Medians over rounds of the per-round ratios of msgs/s. */
  ratios: { oursOverBare: number; oursOverAdmin: number };
  /** The same ratios per round. */
  roundRatios: Array<{ oursOverBare: number; oursOverAdmin: number }>;
  /**
   * Medians over rounds of the inverse ratios of client CPU per message: the throughput ratios if
   * the client's CPU were the only limit (as it is against the real FCM, not against a Node server).
   */
  cpuRatios: { oursOverBare: number; oursOverAdmin: number };
  machine: string;
}

export interface SenderBenchOptions {
  /** Messages per timed run (default 20,000). */
  messages?: number;
  /** Interleaved rounds (default 3). */
  rounds?: number;
  /** Untimed messages each client child sends first (default 2,000). */
  warmup?: number;
  /** Write a V8 CPU profile of every client child into this folder (`node --cpu-prof`). */
  cpuProfDir?: string;
  /** Only these clients (default all three; ratios need "ours" and the other one). */
  clients?: readonly SenderClient[];
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

const THIS_FILE = __filename;
const PROJECT_ID = "p";
const ACCESS_TOKEN = "bench-access-token";
const SEND_PATH = `/v1/projects/${PROJECT_ID}/messages:send`;
/** Like FCM: 100 concurrent streams per connection. */
const MAX_STREAMS = 100;
/** Callers of our client: twice the pool's stream bound, so its queue works as when several batches share an instance. */
const OURS_CALLERS = 200;
const ADMIN_BATCH = 500;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

// --- the message, as the fan-out builds it (functions/src/fanout/message.ts buildFcmMessage) ----

function wireMessage(i: number) {
  const msgKey = `msg-${i >> 4}-3f2a9c`;
  return {
    token: `fcm-token-${i.toString(36).padStart(8, "0")}:APA91bH${"x".repeat(140)}`,
    notification: { title: "Alice", body: "Are we still on for lunch tomorrow? I booked the place near the office." },
    data: { msgKey, sender: "alice", ext: '{"conv":"c2c_alice","type":"chat"}' },
    android: {
      priority: "HIGH" as const,
      ttl: "604800s",
      collapse_key: "c2c_alice",
      notification: { channel_id: "chat", tag: msgKey },
    },
  };
}

/** The same message in firebase-admin's shape (it renames to the wire's snake_case itself). */
function adminMessage(i: number) {
  const w = wireMessage(i);
  return {
    token: w.token,
    notification: w.notification,
    data: w.data,
    android: {
      priority: "high" as const,
      ttl: 604_800_000,
      collapseKey: w.android.collapse_key,
      notification: { channelId: w.android.notification.channel_id, tag: w.android.notification.tag },
    },
  };
}

// --- the server (child process) --------------------------------------------------------------------

async function runServer(certDir: string): Promise<void> {
  const http2 = await import("node:http2");
  let n = 0;
  const server = http2.createSecureServer({
    key: readFileSync(join(certDir, "key.pem")),
    cert: readFileSync(join(certDir, "cert.pem")),
    settings: { maxConcurrentStreams: MAX_STREAMS },
  });
  server.on("stream", (stream, headers) => {
    stream.on("error", () => {});
    // Like FCM, the answer comes once the whole request body has arrived.
    stream.on("data", () => {});
    stream.on("end", () => {
      if (headers[":path"] !== SEND_PATH || headers.authorization !== `Bearer ${ACCESS_TOKEN}`) {
        stream.respond({ ":status": 404 });
        stream.end();
        return;
      }
      stream.respond({ ":status": 200, "content-type": "application/json; charset=UTF-8" });
      stream.end(`{\n  "name": "projects/${PROJECT_ID}/messages/0:${++n}"\n}\n`);
    });
  });
  server.on("sessionError", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  // Each line on stdin asks for the server's CPU time so far; it ends with its parent (stdin closes
  // when the parent exits, whatever the reason).
  process.stdin.on("data", () => {
    const cpu = process.cpuUsage();
    process.stdout.write(`${JSON.stringify({ cpuUs: cpu.user + cpu.system })}\n`);
  });
  process.stdin.on("end", () => process.exit(0));
}

// --- the clients (child processes) -------------------------------------------------------------------

interface ClientArgs {
  client: SenderClient;
  origin: string;
  caFile: string;
  messages: number;
  warmup: number;
}

type Sender = (from: number, count: number) => Promise<number>;
/** The first failure a client saw, reported with its figures so a broken run says why. */
let firstError: string | undefined;

async function bareSender(args: ClientArgs): Promise<{ send: Sender; close: () => Promise<void> }> {
  const http2 = await import("node:http2");
  const session = http2.connect(args.origin, { ca: readFileSync(args.caFile) });
  session.on("error", () => {});
  const headers = {
    ":method": "POST",
    ":path": SEND_PATH,
    authorization: `Bearer ${ACCESS_TOKEN}`,
    "content-type": "application/json; charset=utf-8",
  };
  const one = (i: number) =>
    new Promise<boolean>((resolve) => {
      const stream = session.request(headers);
      let status = 0;
      let body = "";
      stream.setEncoding("utf8");
      stream.on("response", (h) => (status = Number(h[":status"])));
      stream.on("data", (d: string) => (body += d));
      stream.on("end", () => {
        const ok = status === 200 && typeof (JSON.parse(body) as { name?: unknown }).name === "string";
        if (!ok) firstError ??= `HTTP ${status}: ${body}`;
        resolve(ok);
      });
      stream.on("error", (err) => {
        firstError ??= err.message;
        resolve(false);
      });
      stream.end(JSON.stringify({ message: wireMessage(i) }));
    });
  const send: Sender = async (from, count) => {
    let next = from;
    let ok = 0;
    const worker = async () => {
      while (next < from + count) if (await one(next++)) ok++;
    };
    await Promise.all(Array.from({ length: MAX_STREAMS }, worker));
    return ok;
  };
  return { send, close: () => new Promise<void>((resolve) => session.close(() => resolve())) };
}

async function oursSender(args: ClientArgs): Promise<{ send: Sender; close: () => Promise<void> }> {
  const { Http2Pool, sendFcmMessage } = await import("../functions/src/fcm/index.ts");
  const pool = new Http2Pool({ maxConcurrentStreamsPerOrigin: MAX_STREAMS, connectOptions: { ca: readFileSync(args.caFile) } });
  const send: Sender = async (from, count) => {
    let next = from;
    let ok = 0;
    const worker = async () => {
      while (next < from + count) {
        const res = await sendFcmMessage({ apiOrigin: args.origin, projectId: PROJECT_ID, accessToken: ACCESS_TOKEN, message: wireMessage(next++) }, pool);
        if (res.ok) ok++;
        else firstError ??= res.message;
      }
    };
    await Promise.all(Array.from({ length: OURS_CALLERS }, worker));
    return ok;
  };
  return { send, close: () => pool.close() };
}

async function adminSender(args: ClientArgs): Promise<{ send: Sender; close: () => Promise<void> }> {
  // firebase-admin sends to the hard-coded https://fcm.googleapis.com with `http2.connect`, read
  // from the module object at each call: that one origin is redirected to the loopback server,
  // trusting its certificate on those sessions only.
  const http2 = createRequire(THIS_FILE)("node:http2") as typeof Http2;
  const connect = http2.connect;
  const ca = readFileSync(args.caFile);
  (http2 as { connect: unknown }).connect = (authority: string | URL, ...rest: unknown[]) => {
    if (String(authority).replace(/\/$/, "") !== "https://fcm.googleapis.com") return (connect as (...a: unknown[]) => unknown)(authority, ...rest);
    const options = typeof rest[0] === "object" && rest[0] !== null ? (rest[0] as object) : {};
    const listener = typeof rest[0] === "function" ? rest[0] : rest[1];
    const session = (connect as (...a: unknown[]) => Http2.ClientHttp2Session)(args.origin, { ...options, ca }, ...(listener ? [listener] : []));
    // firebase-admin 13 sends `:scheme: https:` (the URL's protocol, colon included), which
    // Google's front ends accept but Node's nghttp2 server refuses as a protocol error: the
    // colon is dropped here, in the header object firebase-admin builds afresh for each request.
    const request = session.request.bind(session);
    session.request = ((headers: Http2.OutgoingHttpHeaders, ...more: unknown[]) => {
      if (headers[":scheme"] === "https:") headers[":scheme"] = "https";
      return (request as (...a: unknown[]) => Http2.ClientHttp2Stream)(headers, ...more);
    }) as typeof session.request;
    return session;
  };
  const { initializeApp, deleteApp } = await import("firebase-admin/app");
  const { getMessaging } = await import("firebase-admin/messaging");
  // A static access token: the token endpoint is not what is measured.
  const app = initializeApp(
    { projectId: PROJECT_ID, credential: { getAccessToken: async () => ({ access_token: ACCESS_TOKEN, expires_in: 3600 }) } },
    `bench-sender-${process.pid}`,
  );
  const messaging = getMessaging(app);
  const send: Sender = async (from, count) => {
    let ok = 0;
    for (let start = from; start < from + count; start += ADMIN_BATCH) {
      const batch = Array.from({ length: Math.min(ADMIN_BATCH, from + count - start) }, (_, k) => adminMessage(start + k));
      const res = await messaging.sendEach(batch);
      firstError ??= res.responses.find((r) => !r.success)?.error?.message;
      ok += res.successCount;
    }
    return ok;
  };
  return { send, close: () => deleteApp(app) };
}

async function runClient(args: ClientArgs): Promise<void> {
  const make = { bare: bareSender, ours: oursSender, admin: adminSender }[args.client];
  const { send, close } = await make(args);
  await send(0, args.warmup);
  process.stdout.write("warm\n");
  await new Promise((resolve) => process.stdin.once("data", resolve));
  process.stdin.pause();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const ok = await send(args.warmup, args.messages);
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await close();
  process.stdout.write(`${JSON.stringify({ ok, ms, cpuUs: cpu.user + cpu.system, firstError })}\n`);
}

// --- the driver ---------------------------------------------------------------------------------

function makeCertificate(dir: string): void {
  const res = spawnSync(
    "openssl",
    [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
      "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    ],
    { encoding: "utf8" },
  );
  if (res.status !== 0) throw new Error(`openssl could not make the benchmark's certificate: ${res.error?.message ?? res.stderr}`);
}

/** Reads a child's stdout line by line (one JSON answer per line). */
function lines(child: ChildProcess, what: string): () => Promise<string> {
  let out = "";
  let err = "";
  let exited: Error | undefined;
  const waiting: Array<{ resolve: (l: string) => void; reject: (e: Error) => void }> = [];
  const ready: string[] = [];
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
    for (let nl = out.indexOf("\n"); nl >= 0; nl = out.indexOf("\n")) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      const w = waiting.shift();
      if (w) w.resolve(line);
      else ready.push(line);
    }
  });
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const fail = (e: Error) => {
    exited = e;
    for (const w of waiting.splice(0)) w.reject(e);
  };
  child.on("exit", (code) => fail(new Error(`${what} exited (${code}) before answering: ${err.trim().slice(-2000)}`)));
  child.on("error", fail);
  return () => {
    const line = ready.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (exited) return Promise.reject(exited);
    return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
  };
}

function child(args: string[], execArgv: string[] = []): ChildProcess {
  return spawn(process.execPath, [...execArgv, "--import", "tsx", THIS_FILE, ...args], { stdio: ["pipe", "pipe", "pipe"] });
}

export async function benchSender(opts: SenderBenchOptions = {}): Promise<SenderBenchResult> {
  const messages = opts.messages ?? 20_000;
  const rounds = opts.rounds ?? 3;
  const warmup = opts.warmup ?? 2_000;
  const clients = opts.clients ?? SENDER_CLIENTS;
  const log = opts.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), "bench-sender-"));
  let server: ChildProcess | undefined;
  try {
    makeCertificate(dir);
    server = child(["--server", dir]);
    const serverLine = lines(server, "the benchmark's HTTP/2 server");
    const { port } = JSON.parse(await serverLine()) as { port: number };
    const serverCpuUs = async () => {
      server?.stdin?.write("cpu\n");
      return (JSON.parse(await serverLine()) as { cpuUs: number }).cpuUs;
    };
    const origin = `https://127.0.0.1:${port}`;
    const runs: SenderRun[] = [];
    for (let round = 0; round < rounds; round++) {
      const order = clients.map((_, k) => clients[(k + round) % clients.length] as SenderClient);
      for (const client of order) {
        const execArgv = opts.cpuProfDir ? ["--cpu-prof", "--cpu-prof-dir", join(opts.cpuProfDir, `${client}-r${round}`)] : [];
        const proc = child(["--client", JSON.stringify({ client, origin, caFile: join(dir, "cert.pem"), messages, warmup } satisfies ClientArgs)], execArgv);
        const clientLine = lines(proc, `the ${client} client`);
        // The client says when its warm-up is over and when its timed run is, so the server's CPU is read around the timed run only.
        await clientLine();
        const cpu0 = await serverCpuUs();
        proc.stdin?.write("go\n");
        const r = JSON.parse(await clientLine()) as { ok: number; ms: number; cpuUs: number; firstError?: string };
        const serverUs = (await serverCpuUs()) - cpu0;
        await new Promise<void>((resolve) => (proc.exitCode !== null ? resolve() : proc.once("exit", () => resolve())));
        const run: SenderRun = {
          client, round, messages, ms: r.ms, msgsPerSec: (messages * 1000) / r.ms, cpuUsPerMsg: r.cpuUs / messages, ok: r.ok,
          serverLoad: serverUs / 1000 / r.ms,
        };
        if (run.ok !== messages) throw new Error(`the ${client} client got ${run.ok} successful answers out of ${messages}; first failure: ${r.firstError}`);
        runs.push(run);
        log(`[bench-sender] round ${round + 1}/${rounds} ${client}: ${Math.round(run.msgsPerSec)} msg/s, ${run.cpuUsPerMsg.toFixed(1)} µs CPU/msg, server load ${run.serverLoad.toFixed(2)}`);
      }
    }
    const summary = (client: SenderClient): SenderClientSummary => {
      const mine = runs.filter((r) => r.client === client);
      const med = (f: (r: SenderRun) => number) => (mine.length ? median(mine.map(f)) : NaN);
      return { msgsPerSec: med((r) => r.msgsPerSec), cpuUsPerMsg: med((r) => r.cpuUsPerMsg), perRound: mine.map((r) => r.msgsPerSec), serverLoad: med((r) => r.serverLoad) };
    };
    const rate = (client: SenderClient, round: number) => runs.find((r) => r.client === client && r.round === round)?.msgsPerSec ?? NaN;
    const cpu = (client: SenderClient, round: number) => runs.find((r) => r.client === client && r.round === round)?.cpuUsPerMsg ?? NaN;
    const roundRatios = Array.from({ length: rounds }, (_, round) => ({
      oursOverBare: rate("ours", round) / rate("bare", round),
      oursOverAdmin: rate("ours", round) / rate("admin", round),
    }));
    return {
      messages,
      rounds,
      runs,
      clients: { bare: summary("bare"), ours: summary("ours"), admin: summary("admin") },
      ratios: { oursOverBare: median(roundRatios.map((r) => r.oursOverBare)), oursOverAdmin: median(roundRatios.map((r) => r.oursOverAdmin)) },
      roundRatios,
      cpuRatios: {
        oursOverBare: median(Array.from({ length: rounds }, (_, round) => cpu("bare", round) / cpu("ours", round))),
        oursOverAdmin: median(Array.from({ length: rounds }, (_, round) => cpu("admin", round) / cpu("ours", round))),
      },
      machine: `${cpus().length} × ${cpus()[0]?.model.trim() ?? "?"}, Node ${process.version}`,
    };
  } finally {
    server?.stdin?.end();
    server?.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatSenderTable(result: SenderBenchResult): string {
  const label: Record<SenderClient, string> = {
    bare: "bare node:http2 (1 session, 100 streams)",
    ours: "this project (sendFcmMessage + Http2Pool)",
    admin: "firebase-admin sendEach (batches of 500)",
  };
  const head = ["client", "msg/s (median)", "per round", "CPU µs/msg", "server load"];
  const rows = SENDER_CLIENTS.map((c) => [
    label[c],
    Number.isNaN(result.clients[c].msgsPerSec) ? "-" : String(Math.round(result.clients[c].msgsPerSec)),
    result.clients[c].perRound.map((x) => Math.round(x)).join(" / "),
    Number.isNaN(result.clients[c].cpuUsPerMsg) ? "-" : result.clients[c].cpuUsPerMsg.toFixed(1),
    Number.isNaN(result.clients[c].serverLoad) ? "-" : result.clients[c].serverLoad.toFixed(2),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join("  ");
  const fmt = (x: number) => (Number.isNaN(x) ? "-" : `${x.toFixed(2)}x`);
  return [
    `FCM sender: ${result.messages} messages per run, ${result.rounds} interleaved rounds, TLS loopback HTTP/2 server in its own process (100 streams); ${result.machine}`,
    line(head),
    ...rows.map(line),
    `ours / bare:  ${fmt(result.ratios.oursOverBare)} (per round ${result.roundRatios.map((r) => fmt(r.oursOverBare)).join(", ")}; goal >= 0.80x)`,
    `ours / admin: ${fmt(result.ratios.oursOverAdmin)} (per round ${result.roundRatios.map((r) => fmt(r.oursOverAdmin)).join(", ")}; goal >= 1.30x)`,
    `by client CPU per message: ours / bare ${fmt(result.cpuRatios.oursOverBare)}, ours / admin ${fmt(result.cpuRatios.oursOverAdmin)} (the throughput ratios if only the client's CPU limited them)`,
    "msg/s: timed messages / wall time of one client process after its warm-up. CPU µs/msg: that process's user+system CPU per message.",
    "server load: the server process's CPU over the run's wall time (1.00 = one core busy throughout: the server, not the client, set the pace).",
  ].join("\n");
}

// --- command line ----------------------------------------------------------------------------------

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (require.main === module) {
  const serverDir = flag("--server");
  const clientArgs = flag("--client");
  const done = (p: Promise<unknown>) =>
    p.catch((err: unknown) => {
      process.stderr.write(`[bench-sender] failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    });
  if (serverDir !== undefined) void done(runServer(serverDir));
  else if (clientArgs !== undefined) void done(runClient(JSON.parse(clientArgs) as ClientArgs).then(() => process.exit(0)));
  else {
    const num = (name: string) => (flag(name) === undefined ? undefined : Number(flag(name)));
    const messages = num("--messages");
    const rounds = num("--rounds");
    const warmup = num("--warmup");
    const cpuProfDir = flag("--cpu-prof");
    const only = flag("--clients")?.split(",") as SenderClient[] | undefined;
    void done(
      benchSender({
        ...(messages !== undefined ? { messages } : {}),
        ...(rounds !== undefined ? { rounds } : {}),
        ...(warmup !== undefined ? { warmup } : {}),
        ...(cpuProfDir !== undefined ? { cpuProfDir } : {}),
        ...(only !== undefined ? { clients: only } : {}),
        log: (l) => process.stdout.write(`${l}\n`),
      }).then((r) => process.stdout.write(`\n${formatSenderTable(r)}\n`)),
    );
  }
}
