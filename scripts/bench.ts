// `npm run bench [-- N ...]`: the fan-out benchmark, run inside the emulators by
// scripts/emulators.mjs. For each N (default 1,000 and 10,000) it seeds N recipients in mixed
// session states (30% eligible, test/helpers/fanoutSeed.ts), publishes one message to all of them
// and prints figures: wall time from publish to the last batch done, batches, Firestore read and
// write calls and FCM requests (as recorded by each batch in its push-log document), and what the
// fake FCM saw. Figures, not assertions: the emulators and a shared 2-core machine are not
// production, but the call counts are the same as in production.
//
// Each batch runs in its own Functions-emulator worker process (up to FUNCTIONS_EMULATOR_PARALLEL,
// default 50): on a small machine, `FUNCTIONS_EMULATOR_PARALLEL=8 npm run bench` keeps it civil.
import { randomUUID } from "node:crypto";
import { clearFirestore, createUser, publish } from "../test/helpers/emulators.ts";
import { PUSH_TOPIC, costOf, msgKey, sendsToProject, waitForMessage } from "../test/helpers/fanout.ts";
import { registerCertificate } from "../test/helpers/certificates.ts";
import { fakeFcm } from "../test/helpers/fakeFcm.ts";
import { seedRecipients } from "../test/helpers/fanoutSeed.ts";

const sizes = process.argv.slice(2).map(Number).filter((n) => Number.isInteger(n) && n > 0);
const runs = sizes.length ? sizes : [1_000, 10_000];

function line(cells: Array<string | number>, widths: number[]): string {
  return cells.map((c, i) => String(c).padStart(widths[i] ?? 10)).join("  ");
}

async function bench(n: number) {
  await clearFirestore();
  const cert = await registerCertificate(await createUser({ admin: true }), `bench ${n}`);
  const uids = Array.from({ length: n }, (_, i) => `bench-${n}-${i}`);
  const seedStart = Date.now();
  const seeded = await seedRecipients(uids, cert.certificateId);
  const seedMs = Date.now() - seedStart;
  const statsBefore = await fakeFcm.stats();

  const key = msgKey(`bench-${n}`);
  const started = Date.now();
  await publish(PUSH_TOPIC, { MsgKey: key, From_Account: `bench-sender-${randomUUID()}`, To_Account: uids, MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: "benchmark" } }] });
  const docs = await waitForMessage(key, Math.max(120_000, n * 60));
  const wallMs = Date.now() - started;
  const statsAfter = await fakeFcm.stats();
  const sends = await sendsToProject(cert.sa.project_id);
  const cost = costOf(docs);
  const firstCreated = Math.min(...docs.map((d) => d.createdAt.toMillis()));
  const lastDone = Math.max(...docs.map((d) => d.completedAt?.toMillis() ?? 0));
  const counts = docs.reduce((acc, d) => ({ sent: acc.sent + d.counts.sent, skipped: acc.skipped + d.counts.skipped, failed: acc.failed + d.counts.failed }), { sent: 0, skipped: 0, failed: 0 });
  return {
    n,
    eligible: seeded.eligibleTokens.size,
    batches: docs.length,
    seedMs,
    wallMs,
    batchSpanMs: lastDone - firstCreated,
    reads: cost.firestoreReads,
    writes: cost.firestoreWrites,
    fcm: cost.fcmRequests,
    fakeSends: sends.length,
    maxReadsPerBatch: Math.max(...docs.map((d) => d.cost.firestoreReads)),
    maxWritesPerBatch: Math.max(...docs.map((d) => d.cost.firestoreWrites)),
    ...counts,
    maxStreams: statsAfter.maxActiveStreams,
    sessions: statsAfter.sessions - statsBefore.sessions,
  };
}

async function main() {
  const results = [];
  for (const n of runs) {
    process.stdout.write(`[bench] ${n} recipients: seeding, publishing, waiting...\n`);
    const r = await bench(n);
    results.push(r);
    process.stdout.write(`[bench] ${JSON.stringify(r)}\n`);
  }

  const head = ["recipients", "eligible", "batches", "seconds", "reads", "writes", "FCM req", "reads/batch", "writes/batch", "sent", "skipped", "failed", "h2 sessions"];
  const widths = head.map((h) => Math.max(h.length, 8));
  process.stdout.write(`\nFan-out benchmark (emulators + fake FCM; one message to N recipients, 30% eligible)\n`);
  process.stdout.write(`${line(head, widths)}\n`);
  for (const r of results) {
    process.stdout.write(
      `${line([r.n, r.eligible, r.batches, (r.wallMs / 1000).toFixed(1), r.reads, r.writes, r.fcm, r.maxReadsPerBatch, r.maxWritesPerBatch, r.sent, r.skipped, r.failed, r.sessions], widths)}\n`,
    );
  }
  process.stdout.write(
    "\nseconds: publish -> last batch done (wall clock). reads/writes: Firestore read/write calls summed over the batches' push-log cost records " +
      "(per batch: claim, one getAll of the recipients, one getAll of the certificates, checkpoints, the final write). FCM req: requests made " +
      "(= eligible devices without errors). h2 sessions: HTTP/2 connections the fake FCM accepted during the run (one per new emulator worker process; warm ones reuse theirs).\n",
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`[bench] failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
