// `npm run bench [-- N ...]`: the fan-out benchmark, run inside the emulators by
// scripts/emulators.mjs. Side by side in one run, on the same emulators, Firestore data and fake
// FCM: this project's fan-out and a deliberately naive one (functions/src/bench/naiveFanout.ts: one
// getAll, every eligible device sent at once, no push log, no exactly-once). For each N (default
// 1, 300, 1,000 and 10,000) it seeds N recipients in mixed session states (30% eligible,
// test/helpers/fanoutSeed.ts), publishes one message to all of them through each path, in
// interleaved rounds, and prints: time from publish to the first and to the last FCM request (as
// the fake FCM received them), Firestore read and write calls, Pub/Sub publishes, FCM requests,
// the function process's peak RSS, and ratios. Then the FCM sender micro-benchmark
// (scripts/bench-sender.ts), the oversized-input figure (scripts/bench-inputs.ts; alone:
// `npm run bench -- inputs`) and the presence figure (scripts/bench-presence.ts; alone:
// `npm run bench -- presence`). Figures, not assertions: a shared 2-core machine is not production,
// but the call counts are the same as in production.
import { randomUUID } from "node:crypto";
import { clearFirestore, adminDb, createUser, eventually, publish } from "../test/helpers/emulators.ts";
import { PUSH_TOPIC, costOf, msgKey, waitForMessage } from "../test/helpers/fanout.ts";
import { registerCertificate } from "../test/helpers/certificates.ts";
import { fakeFcm } from "../test/helpers/fakeFcm.ts";
import { seedRecipients } from "../test/helpers/fanoutSeed.ts";
import { BENCH_NAIVE_RESULTS, BENCH_NAIVE_TOPIC } from "../functions/src/bench/naiveFanout.ts";

const args = process.argv.slice(2);
const sizes = args.map(Number).filter((n) => Number.isInteger(n) && n > 0);
const runs = sizes.length ? sizes : [1, 300, 1_000, 10_000];
/** Single-recipient latency is noisy: the median of this many warm runs per path. */
const SINGLE_RUNS = 20;
/** Rounds per path for 300 and 1,000 recipients (interleaved; the median is printed): a 2-core machine is noisy. */
const ROUNDS = 10;
/** Rounds per path from 10,000 recipients. */
const LARGE_ROUNDS = 3;

type Path = "naive" | "ours";

interface Run {
  path: Path;
  firstMs: number;
  lastMs: number;
  fcm: number;
  reads: number;
  writes: number;
  publishes: number;
  batches: number;
  peakRssMb: number;
}

const fmtS = (ms: number) => (ms / 1000).toFixed(ms < 10_000 ? 2 : 1);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] as number;

/** The fake FCM's requests for one message (its data carries the message key), in arrival order. */
async function requestsFor(projectId: string, key: string, expected: number): Promise<number[]> {
  return eventually(
    async () => {
      const all = await fakeFcm.requests({ projectId });
      const times = all.filter((r) => (r.message as { data?: { msgKey?: string } } | null)?.data?.msgKey === key).map((r) => Date.parse(r.receivedAt));
      return times.length >= expected ? times.sort((a, b) => a - b) : undefined;
    },
    { timeoutMs: 60_000, what: `${expected} FCM requests for ${key}` },
  );
}

/**
 * Both paths are waited for the same way while they run: by the fake FCM's stream counter, one
 * small request every 200 ms. Reading either path's own records while it runs would load the
 * emulators it is using (the push log is a query and its outcome shards), and favour the other.
 * Their records are read once their last FCM request is in.
 */
async function untilRequests(before: number, expected: number, timeoutMs: number, what: string): Promise<void> {
  await eventually(async () => ((await fakeFcm.stats()).streams - before >= expected ? true : undefined), { timeoutMs, what });
}

async function runOnce(path: Path, uids: string[], projectId: string, eligible: number): Promise<Run> {
  const key = msgKey(`bench-${path}-${uids.length}`);
  const event = { MsgKey: key, From_Account: `bench-sender-${randomUUID()}`, To_Account: uids, MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: "benchmark" } }] };
  const before = (await fakeFcm.stats()).streams;
  const started = Date.now();
  await publish(path === "ours" ? PUSH_TOPIC : BENCH_NAIVE_TOPIC, event);
  const timeoutMs = Math.max(120_000, uids.length * 60);
  await untilRequests(before, eligible, timeoutMs, `${eligible} FCM requests for ${key}`);
  if (path === "ours") {
    const docs = await waitForMessage(key, timeoutMs);
    const cost = costOf(docs);
    const times = await requestsFor(projectId, key, cost.fcmRequests);
    return {
      path,
      firstMs: (times[0] ?? started) - started,
      lastMs: (times[times.length - 1] ?? started) - started,
      fcm: cost.fcmRequests,
      reads: cost.firestoreReads,
      writes: cost.firestoreWrites,
      publishes: docs.reduce((n, d) => n + d.cost.publishes, 0),
      batches: docs.length,
      peakRssMb: Math.max(0, ...docs.map((d) => d.peakRssMb ?? 0)),
    };
  }
  const result = await eventually(
    async () => {
      const snap = await adminDb().collection(BENCH_NAIVE_RESULTS).doc(encodeURIComponent(key)).get();
      return snap.exists ? (snap.data() as { sent: number; failed: number; peakRssMb: number }) : undefined;
    },
    { timeoutMs, what: `the naive fan-out of ${key}` },
  );
  const times = await requestsFor(projectId, key, result.sent + result.failed);
  return {
    path,
    firstMs: (times[0] ?? started) - started,
    lastMs: (times[times.length - 1] ?? started) - started,
    fcm: result.sent + result.failed,
    // One getAll of the recipients, one of the certificates; its one write is the bench's record.
    reads: 2,
    writes: 0,
    publishes: 0,
    batches: 1,
    peakRssMb: result.peakRssMb,
  };
}

interface SizeResult {
  n: number;
  eligible: number;
  naive: Run[];
  ours: Run[];
}

async function benchSize(n: number): Promise<SizeResult> {
  await clearFirestore();
  const cert = await registerCertificate(await createUser({ admin: true }), `bench ${n}`);
  const uids = Array.from({ length: n }, (_, i) => `bench-${n}-${i}`);
  const seeded = await seedRecipients(uids, cert.certificateId);
  const eligible = seeded.eligibleTokens.size;
  const out: SizeResult = { n, eligible, naive: [], ours: [] };
  // A single recipient: every device of seed state 0 is eligible. Warm both paths first.
  const rounds = n === 1 ? SINGLE_RUNS : n >= 10_000 ? LARGE_ROUNDS : ROUNDS;
  if (n === 1 || n === runs[0]) {
    await runOnce("naive", uids, cert.sa.project_id, eligible);
    await runOnce("ours", uids, cert.sa.project_id, eligible);
  }
  for (let r = 0; r < rounds; r++) {
    // Interleaved, and the first path alternates: neither always meets a cold or warm machine.
    const order: Path[] = r % 2 === 0 ? ["naive", "ours"] : ["ours", "naive"];
    for (const path of order) {
      const run = await runOnce(path, uids, cert.sa.project_id, eligible);
      out[path].push(run);
      process.stdout.write(`[bench] ${n} recipients, ${path}: first ${run.firstMs} ms, last ${run.lastMs} ms, FCM ${run.fcm}, reads ${run.reads}, writes ${run.writes}, publishes ${run.publishes}, batches ${run.batches}, peak RSS ${run.peakRssMb} MiB\n`);
    }
  }
  return out;
}

function table(rows: Array<Array<string | number>>): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => String(r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]!) : String(c).padStart(widths[i]!))).join("  ")).join("\n");
}

/**
 * The median of each round's ours/naive ratio (time to the last FCM request). The two runs of a
 * round are back to back, so this cancels what drifts over a run (the JIT warming up, the
 * emulators' data growing) better than the ratio of the two medians, which is printed too.
 */
function pairedRatio(r: SizeResult): number {
  const pairs = Math.min(r.naive.length, r.ours.length);
  return median(Array.from({ length: pairs }, (_, i) => r.ours[i]!.lastMs / Math.max(1, r.naive[i]!.lastMs)));
}

function report(results: SizeResult[]): string {
  const rows: Array<Array<string | number>> = [
    ["recipients", "eligible", "path", "first FCM (s)", "last FCM (s)", "ratio last", "paired", "reads", "writes", "publishes", "FCM req", "batches", "peak RSS MiB"],
  ];
  for (const r of results) {
    for (const path of ["naive", "ours"] as const) {
      const list = r[path];
      const first = median(list.map((x) => x.firstMs));
      const last = median(list.map((x) => x.lastMs));
      const naiveLast = median(r.naive.map((x) => x.lastMs));
      const one = list[list.length - 1] as Run;
      rows.push([
        r.n,
        r.eligible,
        path,
        fmtS(first),
        fmtS(last),
        path === "ours" ? `${(last / Math.max(1, naiveLast)).toFixed(2)}x` : "1.00x",
        path === "ours" ? `${pairedRatio(r).toFixed(2)}x` : "",
        one.reads,
        one.writes,
        one.publishes,
        one.fcm,
        one.batches,
        Math.max(...list.map((x) => x.peakRssMb)),
      ]);
    }
  }
  let out = `Fan-out: this project vs a naive fan-out (emulators + fake FCM; one message to N recipients, 30% eligible; median of ${SINGLE_RUNS} runs for 1 recipient, ${ROUNDS} rounds for 300-1,000, ${LARGE_ROUNDS} for 10,000 and more)\n${table(rows)}\n`;
  const single = results.find((r) => r.n === 1);
  if (single) {
    const n = single.naive.map((x) => x.firstMs);
    const o = single.ours.map((x) => x.firstMs);
    out += `\n1 recipient, publish -> FCM request, ms: naive p50 ${median(n)} (p90 ${pct(n, 90)}, max ${Math.max(...n)}); ours p50 ${median(o)} (p90 ${pct(o, 90)}, max ${Math.max(...o)}); ratio of p50s ${(median(o) / Math.max(1, median(n))).toFixed(2)}x\n`;
  }
  const perK = results.filter((r) => r.n >= 300);
  if (perK.length) {
    const krows: Array<Array<string | number>> = [["recipients", "reads /1,000", "writes /1,000", "publishes /1,000", "FCM req /1,000", "eligible devices /1,000"]];
    for (const r of perK) {
      const one = r.ours[r.ours.length - 1] as Run;
      const k = (x: number) => ((x * 1000) / r.n).toFixed(1);
      krows.push([r.n, k(one.reads), k(one.writes), k(one.publishes), k(one.fcm), k(r.eligible)]);
    }
    out += `\nThis project's cost per 1,000 recipients (Firestore read and write calls, Pub/Sub publishes, FCM requests; from the batches' push-log cost records)\n${table(krows)}\n`;
  }
  out +=
    "\nfirst/last FCM: wall clock from the publish to the first/last request the fake FCM received. ratio last: ours / naive, of the medians (below 1: faster). paired: the median of the rounds' own ratios.\n" +
    "reads/writes: Firestore read/write calls (getAll, get, commit, transaction), not documents. publishes: the fan-out's Pub/Sub messages to the batch topic (the event's own publish not counted).\n" +
    "peak RSS: the largest peak resident memory of a function process that ran a batch (process.resourceUsage().maxRSS; the emulator runs one process per concurrent execution). Configured: 512 MiB.\n";
  return out;
}

async function main() {
  if (args.includes("inputs")) {
    // `npm run bench -- inputs`: the oversized-input figure alone (scripts/bench-inputs.ts).
    const { benchInputs } = await import("./bench-inputs.ts");
    process.stdout.write(`\n${await benchInputs()}`);
    return;
  }
  if (args.includes("presence")) {
    // `npm run bench -- presence`: the presence figure alone (scripts/bench-presence.ts).
    const { benchPresence } = await import("./bench-presence.ts");
    process.stdout.write(`\n${await benchPresence()}`);
    return;
  }
  const results: SizeResult[] = [];
  for (const n of runs) {
    process.stdout.write(`[bench] ${n} recipients: seeding, then both paths...\n`);
    results.push(await benchSize(n));
  }
  let text = report(results);
  if (!args.includes("--no-sender")) {
    process.stdout.write("[bench] FCM sender micro-benchmark...\n");
    // scripts/bench-sender.ts: loaded by name so that this file does not depend on its types.
    const senderModule = "./bench-sender.ts";
    const sender = (await import(senderModule).catch(() => null)) as { benchSender: () => Promise<unknown>; formatSenderTable: (r: unknown) => string } | null;
    if (sender) text += `\n${sender.formatSenderTable(await sender.benchSender())}\n`;
    else text += "\n(sender micro-benchmark not available)\n";
  }
  if (!args.includes("--no-inputs")) {
    process.stdout.write("[bench] inputs...\n");
    const { benchInputs } = await import("./bench-inputs.ts");
    text += `\n${await benchInputs()}`;
  }
  if (!args.includes("--no-presence")) {
    process.stdout.write("[bench] presence...\n");
    const { benchPresence } = await import("./bench-presence.ts");
    text += `\n${await benchPresence()}`;
  }
  process.stdout.write(`\n${text}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`[bench] failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
