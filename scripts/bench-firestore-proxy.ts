// The Firestore proxy's overhead (tools/firestore-proxy), measured on the functions' own code:
// `node scripts/emulators.mjs bench-proxy` (on a shared machine, under the full-test lock).
//
// Each measurement runs in a child process of this script that runs the functions' code as the
// Functions emulator would (test/helpers/functionsEnv.ts), talking to the Firestore emulator either
// directly or through the proxy (with or without FIRESTORE_PROXY_HOST), in interleaved rounds on
// the same emulators, data and fake FCM:
// - a callable's Firestore work: a heartbeat that writes (a read, a commit with a precondition), 60 in a row;
// - a 300-recipient fan-out: handlePushEvent for an event to 300 recipients in mixed states
//   (30% eligible, test/helpers/fanoutSeed.ts), from the event to its batches' final writes.
// The proxy's own CPU time per call is read from its stats; for scale, the heartbeat callable over
// HTTP as the tests call it (Functions emulator, then the proxy). Figures, not assertions.
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { Timestamp } from "firebase-admin/firestore";
import { adminDb, callOk, clearFirestore, createUser } from "../test/helpers/emulators.ts";
import { registerCertificate } from "../test/helpers/certificates.ts";
import { seedRecipients } from "../test/helpers/fanoutSeed.ts";
import { dotenv, runAsEmulatedFunctions } from "../test/helpers/functionsEnv.ts";
import { firestoreProxy } from "../test/helpers/firestoreProxy.ts";
import { DeviceSchema } from "../functions/src/sessions/schemas.ts";

type Mode = "direct" | "proxy";

interface ChildTask {
  mode: Mode;
  heartbeatUid: string;
  heartbeats: number;
  /** One event per entry, the first a warm-up. */
  fanouts: Array<{ key: string; uids: string[] }>;
  sender: string;
}

interface ChildResult {
  mode: Mode;
  heartbeatMs: number[];
  fanoutMs: number[];
}

const ROUNDS = 4;
const HEARTBEATS = 60;
const WARMUP_HEARTBEATS = 5;
const FANOUTS_PER_ROUND = 3;
const RECIPIENTS = 300;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] as number;
const ms = (x: number) => `${x.toFixed(x < 100 ? 1 : 0)} ms`;

// ------------------------------------------------------------------------------------ the child
async function child(task: ChildTask): Promise<void> {
  // The functions' configuration as the emulator loads it, then the emulator's own variables.
  for (const file of ["functions/.env", "functions/.env.demo-offline-push", "functions/.env.local"]) {
    try {
      Object.assign(process.env, dotenv(file));
    } catch {
      /* .env.local exists only under OFFLINE_PUSH_PORT_OFFSET */
    }
  }
  process.env.PUSH_KEY_ENCRYPTION_KEY = dotenv("functions/.secret.local").PUSH_KEY_ENCRYPTION_KEY;
  // As the emulator's workers: no probing for a Google Cloud metadata server.
  process.env.METADATA_SERVER_DETECTION = "none";
  runAsEmulatedFunctions();
  if (task.mode === "direct") delete process.env.FIRESTORE_PROXY_HOST;
  const { emulatorProxyHost } = await import("../functions/src/common/firestore.ts");
  if ((emulatorProxyHost() !== undefined) !== (task.mode === "proxy")) throw new Error(`mode ${task.mode}, but db() would use ${emulatorProxyHost() ?? "the emulator"}`);
  const store = await import("../functions/src/sessions/store.ts");
  const { handlePushEvent } = await import("../functions/src/fanout/functions.ts");

  const heartbeatMs: number[] = [];
  for (let i = 0; i < WARMUP_HEARTBEATS + task.heartbeats; i++) {
    const t = performance.now();
    // A lease of 0: every beat is written (a read and a commit), the call this measures.
    await store.heartbeat(task.heartbeatUid, "phone", 0, "app");
    if (i >= WARMUP_HEARTBEATS) heartbeatMs.push(performance.now() - t);
  }
  const fanoutMs: number[] = [];
  for (const [i, f] of task.fanouts.entries()) {
    const t = performance.now();
    await handlePushEvent({
      topic: "im-offline-push",
      eventId: `proxy-bench-${randomUUID()}`,
      publishTimeMs: Date.now(),
      json: { MsgKey: f.key, From_Account: task.sender, To_Account: f.uids, MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: "bench" } }] },
      jsonError: null,
    });
    if (i > 0) fanoutMs.push(performance.now() - t);
  }
  const result: ChildResult = { mode: task.mode, heartbeatMs, fanoutMs };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  // The SDK's channels and the FCM connections would keep the process alive.
  process.exit(0);
}

function runChild(task: ChildTask): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ["--import", "tsx", "scripts/bench-firestore-proxy.ts", "child"], { stdio: ["pipe", "pipe", "inherit"] });
    let out = "";
    proc.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    proc.on("exit", (code) => {
      const line = out.trim().split("\n").pop() ?? "";
      if (code !== 0) reject(new Error(`the ${task.mode} child exited with code ${code}`));
      else resolve(JSON.parse(line) as ChildResult);
    });
    proc.stdin.end(JSON.stringify(task));
  });
}

// ----------------------------------------------------------------------------------- the parent
async function parent(): Promise<void> {
  await clearFirestore();
  const cert = await registerCertificate(await createUser({ admin: true }), "proxy bench");
  const at = Timestamp.fromMillis(Date.now() - 60_000);
  const heartbeatUid = `proxy-bench-hb-${randomUUID()}`;
  const phone = DeviceSchema.parse({
    deviceId: "phone",
    platform: "android",
    session: "logged-in",
    sessionId: randomUUID(),
    loggedInAt: at,
    endedAt: null,
    kickedByDeviceId: null,
    appState: "foreground",
    appStateAt: at,
    unreadCount: 0,
    lastHeartbeatAt: at,
    token: null,
  });
  await adminDb().doc(`users/${heartbeatUid}`).set({ devices: { phone }, updatedAt: at });

  const results: ChildResult[] = [];
  const proxyCpu: Array<{ micros: number; calls: number }> = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order: Mode[] = round % 2 ? ["proxy", "direct"] : ["direct", "proxy"];
    for (const mode of order) {
      const fanouts = [];
      for (let i = 0; i < 1 + FANOUTS_PER_ROUND; i++) {
        const run = randomUUID().slice(0, 8);
        const uids = Array.from({ length: RECIPIENTS }, (_, j) => `pb-${run}-${String(j).padStart(3, "0")}`);
        await seedRecipients(uids, cert.certificateId);
        fanouts.push({ key: `proxy-bench-${run}`, uids });
      }
      const before = await firestoreProxy.stats();
      const result = await runChild({ mode, heartbeatUid, heartbeats: HEARTBEATS, fanouts, sender: `proxy-bench-sender-${round}` });
      const after = await firestoreProxy.stats();
      if (mode === "proxy") proxyCpu.push({ micros: after.cpuMicros - before.cpuMicros, calls: after.calls - before.calls });
      else if (after.calls !== before.calls) throw new Error(`the direct child made ${after.calls - before.calls} calls through the proxy`);
      results.push(result);
      process.stdout.write(`[proxy-bench] round ${round + 1}/${ROUNDS} ${mode}: heartbeat median ${ms(median(result.heartbeatMs))}, fan-out of ${RECIPIENTS} ${result.fanoutMs.map(ms).join(", ")}\n`);
    }
  }

  const of = (mode: Mode, key: "heartbeatMs" | "fanoutMs") => results.filter((r) => r.mode === mode).flatMap((r) => r[key]);
  const rows: Array<[string, number[], number[]]> = [
    [`callable's Firestore work (heartbeat: a read, a commit), ${ROUNDS * HEARTBEATS} each`, of("direct", "heartbeatMs"), of("proxy", "heartbeatMs")],
    [`fan-out to ${RECIPIENTS} recipients (handlePushEvent), ${ROUNDS * FANOUTS_PER_ROUND} each`, of("direct", "fanoutMs"), of("proxy", "fanoutMs")],
  ];
  process.stdout.write("\n| measured | direct median (p90) | through the proxy median (p90) | added (median) |\n| --- | --- | --- | --- |\n");
  for (const [label, direct, proxied] of rows) {
    const added = median(proxied) - median(direct);
    process.stdout.write(`| ${label} | ${ms(median(direct))} (${ms(pct(direct, 90))}) | ${ms(median(proxied))} (${ms(pct(proxied, 90))}) | ${added >= 0 ? "+" : ""}${ms(added)} (${((median(proxied) / median(direct) - 1) * 100).toFixed(1)}%) |\n`);
  }
  const app = await createUser();
  await callOk("login", { deviceId: "phone", platform: "android" }, app);
  const overHttp: number[] = [];
  for (let i = 0; i < WARMUP_HEARTBEATS + HEARTBEATS; i++) {
    const t = performance.now();
    await callOk("heartbeat", { deviceId: "phone" }, app);
    if (i >= WARMUP_HEARTBEATS) overHttp.push(performance.now() - t);
  }
  process.stdout.write(`\nThe heartbeat callable over HTTP (Functions emulator and proxy, as the tests call it): median ${ms(median(overHttp))} (p90 ${ms(pct(overHttp, 90))}), ${HEARTBEATS} calls.\n`);
  const cpu = proxyCpu.reduce((a, b) => ({ micros: a.micros + b.micros, calls: a.calls + b.calls }), { micros: 0, calls: 0 });
  process.stdout.write(`The proxy's own CPU: ${(cpu.micros / Math.max(1, cpu.calls)).toFixed(0)} µs per call (${cpu.calls} calls, ${(cpu.micros / 1000).toFixed(0)} ms, its control API included).\n`);
}

if (process.argv[2] === "child") {
  let input = "";
  process.stdin.on("data", (chunk: Buffer) => (input += chunk.toString()));
  process.stdin.on("end", () => {
    child(JSON.parse(input) as ChildTask).catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
  });
} else {
  parent().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
