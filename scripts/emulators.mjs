#!/usr/bin/env node
// The one place that knows how to run this project on the Firebase Emulator Suite.
//
//   node scripts/emulators.mjs start            npm start: emulators + fake FCM + demo seed and its banner (last), rebuilds on change
//   node scripts/emulators.mjs test [files...]  npm test: build, emulators:exec, every test, exit code of the tests
//   node scripts/emulators.mjs bench            npm run bench: the fan-out benchmark, printing figures
//   node scripts/emulators.mjs bench-proxy      the Firestore proxy's overhead (scripts/bench-firestore-proxy.ts)
//
// It works on a laptop with internet (the Firebase CLI downloads its emulators as usual) and on
// machines without internet that ship Google's own emulators in the Google Cloud SDK: when the
// CLI's cache lacks an emulator and the SDK has it, the CLI is pointed at the SDK's copy.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { stripVTControlCharacters } from "node:util";
import zlib from "node:zlib";
import { shiftedPort } from "./ports.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const PROJECT = "demo-offline-push";
const EMULATORS = "auth,functions,firestore,pubsub,hosting";
// OFFLINE_PUSH_PORT_OFFSET=1000 moves every port (emulators, fake FCM) by that much, so that two
// checkouts (say, two branches in git worktrees) can run their suites side by side.
const PORT_OFFSET = Number(process.env.OFFLINE_PUSH_PORT_OFFSET ?? 0);
if (!Number.isInteger(PORT_OFFSET) || PORT_OFFSET < 0 || PORT_OFFSET > 50_000) {
  process.stderr.write(`[offline-push] OFFLINE_PUSH_PORT_OFFSET must be a whole number from 0 to 50000\n`);
  process.exit(1);
}
const FAKE_FCM_API_PORT = Number(process.env.FAKE_FCM_API_PORT ?? shiftedPort(9470, PORT_OFFSET));
const FAKE_FCM_CONTROL_PORT = Number(process.env.FAKE_FCM_CONTROL_PORT ?? shiftedPort(9471, PORT_OFFSET));
const FIRESTORE_PROXY_PORT = Number(process.env.FIRESTORE_PROXY_PORT ?? shiftedPort(9472, PORT_OFFSET));
const FIRESTORE_PROXY_CONTROL_PORT = Number(process.env.FIRESTORE_PROXY_CONTROL_PORT ?? shiftedPort(9473, PORT_OFFSET));
const firebaseBin = path.join(root, "node_modules", ".bin", "firebase");

function log(msg) {
  process.stdout.write(`[offline-push] ${msg}\n`);
}

function fail(msg) {
  process.stderr.write(`[offline-push] ${msg}\n`);
  process.exit(1);
}

// --- local secret -----------------------------------------------------------------------------
// The Functions emulator reads defineSecret() values from functions/.secret.local. Generated once
// per clone, git-ignored: the key-encryption key of the emulator never leaves this machine.
function ensureLocalSecret() {
  const file = path.join(root, "functions", ".secret.local");
  const existing = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
  if (/^PUSH_KEY_ENCRYPTION_KEY=.+$/m.test(existing)) return;
  const line = `PUSH_KEY_ENCRYPTION_KEY=${randomBytes(32).toString("base64")}\n`;
  fs.writeFileSync(file, existing + (existing && !existing.endsWith("\n") ? "\n" : "") + line, { mode: 0o600 });
  log(`generated a local key-encryption key in ${path.relative(root, file)} (git-ignored)`);
}

// --- emulator binaries ------------------------------------------------------------------------
function sdkRoots() {
  const candidates = [process.env.CLOUDSDK_ROOT_DIR, "/usr/lib/google-cloud-sdk", "/usr/share/google-cloud-sdk", "/opt/google-cloud-sdk", path.join(os.homedir(), "google-cloud-sdk")];
  const which = spawnSync("sh", ["-c", "command -v gcloud"], { encoding: "utf8" });
  if (which.status === 0 && which.stdout.trim()) {
    try {
      candidates.push(path.resolve(path.dirname(fs.realpathSync(which.stdout.trim())), ".."));
    } catch {
      /* a dangling gcloud link is no SDK */
    }
  }
  return [...new Set(candidates.filter(Boolean))].filter((dir) => fs.existsSync(path.join(dir, "platform")));
}

function cliCachedBinary(name) {
  try {
    const { getDownloadDetails } = require(path.join(root, "node_modules/firebase-tools/lib/emulator/downloadableEmulators.js"));
    const details = getDownloadDetails(name);
    return fs.existsSync(details.binaryPath ?? details.downloadPath);
  } catch {
    return false;
  }
}

// A jar that only names the SDK's Firestore emulator as its Main-Class: the CLI runs `java -jar <path>`
// and the SDK's jar has no Main-Class. Written by hand as a stored zip (no JDK tool needed).
function writeLauncherJar(file, sdkJar) {
  const manifest = Buffer.from(
    "Manifest-Version: 1.0\r\n" +
      "Main-Class: com.google.cloud.datastore.emulator.firestore.CloudFirestore\r\n" +
      `Class-Path: ${new URL(`file://${sdkJar}`).href}\r\n\r\n`,
  );
  const name = Buffer.from("META-INF/MANIFEST.MF");
  const crc = zlib.crc32(manifest);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(10, 4);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(manifest.length, 18);
  local.writeUInt32LE(manifest.length, 22);
  local.writeUInt16LE(name.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(10, 6);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(manifest.length, 20);
  central.writeUInt32LE(manifest.length, 24);
  central.writeUInt16LE(name.length, 28);
  const centralOffset = local.length + name.length + manifest.length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + name.length, 12);
  end.writeUInt32LE(centralOffset, 16);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, Buffer.concat([local, name, manifest, central, name, end]));
}

function emulatorBinaryEnv() {
  const env = {};
  const roots = sdkRoots();
  if (!process.env.FIRESTORE_EMULATOR_BINARY_PATH && !cliCachedBinary("firestore")) {
    const sdkJar = roots.map((r) => path.join(r, "platform/cloud-firestore-emulator/cloud-firestore-emulator.jar")).find((p) => fs.existsSync(p));
    if (sdkJar) {
      const launcher = path.join(root, ".emulators", "firestore-launcher.jar");
      writeLauncherJar(launcher, sdkJar);
      env.FIRESTORE_EMULATOR_BINARY_PATH = launcher;
      log(`Firestore emulator: Google Cloud SDK's ${sdkJar}`);
    }
  }
  if (!process.env.PUBSUB_EMULATOR_BINARY_PATH && !cliCachedBinary("pubsub")) {
    const sdkBin = roots.map((r) => path.join(r, "platform/pubsub-emulator/bin/cloud-pubsub-emulator")).find((p) => fs.existsSync(p));
    if (sdkBin) {
      env.PUBSUB_EMULATOR_BINARY_PATH = sdkBin;
      log(`Pub/Sub emulator: Google Cloud SDK's ${sdkBin}`);
    }
  }
  return env;
}

// --- processes ----------------------------------------------------------------------------------
const children = new Set();

function run(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { cwd: root, stdio: "inherit", ...opts });
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

function exitCode(child) {
  return new Promise((resolve) => child.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0))));
}

function stopAll() {
  for (const child of children) child.kill("SIGTERM");
}

async function waitFor(url, what, timeoutMs = 60_000, init = undefined) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url, init);
      if (res.status < 500 && res.status !== 404) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`${what} did not come up at ${url} within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function startFakeFcm(extraArgs = []) {
  const child = run(process.execPath, ["--import", "tsx", "tools/fake-fcm/main.ts", ...extraArgs], {
    env: { ...process.env, FAKE_FCM_API_PORT: String(FAKE_FCM_API_PORT), FAKE_FCM_CONTROL_PORT: String(FAKE_FCM_CONTROL_PORT) },
  });
  child.on("exit", (code) => {
    if (code) log(`fake FCM exited with code ${code}`);
  });
  await waitFor(`http://127.0.0.1:${FAKE_FCM_CONTROL_PORT}/control/stats`, "the fake FCM server");
  return child;
}

/**
 * The Firestore proxy (tools/firestore-proxy) in front of the Firestore emulator: `npm test` only.
 * The tests count the functions' Firestore calls and inject Firestore faults there. The bench runs
 * without it (its figures measure the code, not one more hop), and so does `npm start` (the demo
 * talks to Firestore as a deployed function does; nothing there reads counts or injects faults).
 * Returns the variables that route the functions through it: the Functions emulator passes its
 * own environment to every worker, where db() honours FIRESTORE_PROXY_HOST (emulator only).
 */
async function startFirestoreProxy() {
  const child = run(process.execPath, ["--import", "tsx", "tools/firestore-proxy/main.ts"], {
    env: {
      ...process.env,
      FIRESTORE_PROXY_UPSTREAM: emulatorHost("firestore"),
      FIRESTORE_PROXY_PORT: String(FIRESTORE_PROXY_PORT),
      FIRESTORE_PROXY_CONTROL_PORT: String(FIRESTORE_PROXY_CONTROL_PORT),
    },
  });
  child.on("exit", (code) => {
    if (code) log(`Firestore proxy exited with code ${code}`);
  });
  const controlOrigin = `http://127.0.0.1:${FIRESTORE_PROXY_CONTROL_PORT}`;
  await waitFor(`${controlOrigin}/control/stats`, "the Firestore proxy");
  return { FIRESTORE_PROXY_HOST: `127.0.0.1:${FIRESTORE_PROXY_PORT}`, FIRESTORE_PROXY_CONTROL_ORIGIN: controlOrigin };
}

function build() {
  const res = spawnSync("npm", ["run", "--silent", "build", "--prefix", "functions"], { cwd: root, stdio: "inherit" });
  if (res.status !== 0) fail("building the functions failed (see above)");
  buildConsole();
}

function buildConsole() {
  // The Hosting emulator serves the operator console from console/dist (git-ignored): built here so
  // that a fresh clone needs no step of its own.
  const consoleBuild = spawnSync("npm", ["run", "--silent", "build:console", "--", "--logLevel", "warn"], { cwd: root, stdio: "inherit" });
  if (consoleBuild.status !== 0) fail("building the operator console failed (see above)");
}

function testFiles(args) {
  const targets = args.length ? args : ["test"];
  const files = [];
  for (const target of targets) {
    const abs = path.resolve(root, target);
    if (fs.statSync(abs).isFile()) files.push(path.relative(root, abs));
    else
      for (const entry of fs.readdirSync(abs, { recursive: true })) {
        if (/\.test\.ts$/.test(entry)) files.push(path.relative(root, path.join(abs, entry)));
      }
  }
  return files.sort();
}

// --- ports ------------------------------------------------------------------------------------
const ENV_LOCAL = path.join(root, "functions", ".env.local");
const ENV_LOCAL_MARK = "# written by scripts/emulators.mjs for OFFLINE_PUSH_PORT_OFFSET; rewritten on every run";

/**
 * Firebase CLI arguments naming the config to use: firebase.json, or a copy with shifted ports.
 * With an offset, functions/.env.local (read by the Functions emulator only, over
 * .env.<project>) points the functions at the shifted fake FCM. Only a file this script wrote is
 * ever replaced or removed.
 */
function configArgs() {
  const ours = fs.existsSync(ENV_LOCAL) && fs.readFileSync(ENV_LOCAL, "utf8").startsWith("# written by scripts/emulators.mjs");
  if (!PORT_OFFSET) {
    if (ours) fs.rmSync(ENV_LOCAL);
    return [];
  }
  if (fs.existsSync(ENV_LOCAL) && !ours) fail("functions/.env.local exists and was not written by this script: remove it to use OFFLINE_PUSH_PORT_OFFSET");
  fs.writeFileSync(ENV_LOCAL, `${ENV_LOCAL_MARK}\nFCM_API_ORIGIN=http://127.0.0.1:${FAKE_FCM_API_PORT}\nFCM_TOKEN_URL=http://127.0.0.1:${FAKE_FCM_CONTROL_PORT}/token\n`);
  const config = JSON.parse(fs.readFileSync(path.join(root, "firebase.json"), "utf8"));
  // The CLI also starts these two on their default ports, unasked.
  config.emulators.eventarc ??= { host: "127.0.0.1", port: 9299 };
  config.emulators.tasks ??= { host: "127.0.0.1", port: 9499 };
  for (const emulator of Object.values(config.emulators ?? {})) {
    if (typeof emulator !== "object" || emulator === null) continue;
    for (const key of ["port", "websocketPort"]) if (typeof emulator[key] === "number") emulator[key] = shiftedPort(emulator[key], PORT_OFFSET);
  }
  // Beside firebase.json, so that the relative paths in it (functions source, rules) still hold.
  const file = path.join(root, "firebase.offset.local.json");
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  return ["--config", path.basename(file)];
}

/** host:port of an emulator as configured in firebase.json, shifted by the offset. */
function emulatorHost(name) {
  const config = JSON.parse(fs.readFileSync(path.join(root, "firebase.json"), "utf8"));
  return `127.0.0.1:${shiftedPort(config.emulators[name].port, PORT_OFFSET)}`;
}

function firebaseEnv() {
  const env = {
    ...process.env,
    ...emulatorBinaryEnv(),
    FAKE_FCM_CONTROL_ORIGIN: `http://127.0.0.1:${FAKE_FCM_CONTROL_PORT}`,
    FUNCTIONS_EMULATOR_HOST: emulatorHost("functions"),
    // The operator console as the Hosting emulator serves it (the seed's banner, the browser tests).
    CONSOLE_URL: `http://${emulatorHost("hosting")}`,
  };
  // The emulator hub's locator file is named after the project in the temp folder: two suites of
  // one project need two temp folders.
  if (PORT_OFFSET) {
    env.TMPDIR = path.join(root, ".emulators", "tmp");
    fs.mkdirSync(env.TMPDIR, { recursive: true });
  }
  return env;
}

const shellQuote = (s) => `'${s.replaceAll("'", "'\\''")}'`;

// The Functions emulator starts one worker process per concurrent execution (up to 50 by
// default). Fifty Node processes booting at once on a 2-core machine take longer than the
// emulator's 30 s start-up limit, and the emulator then drops the request without answering (the
// caller waits for its own timeout). So: at most 8 executions at a time (the rest queue inside the
// emulator), and a longer start-up limit for a loaded machine. Both are the emulator's own knobs.
const EMULATOR_LOAD_LIMITS = { FUNCTIONS_EMULATOR_PARALLEL: "8", FUNCTIONS_DISCOVERY_TIMEOUT: "90" };

// Everything the emulators print to the terminal during a run (the functions' log lines among
// it), also kept in this file: the tests read it (test/security/logs.test.ts searches it for
// secrets). Git-ignored with .emulators/; rewritten on every run.
const TERMINAL_COPY = path.join(root, ".emulators", "terminal.log");

/**
 * Runs `argv` (a Node command) inside `firebase emulators:exec`, beside the fake FCM (and, with
 * `firestoreProxy`, the Firestore proxy); resolves to its exit code.
 */
async function execUnderEmulators(argv, envDefaults = {}, { firestoreProxy = false } = {}) {
  ensureLocalSecret();
  build();
  fs.mkdirSync(path.dirname(TERMINAL_COPY), { recursive: true });
  const copy = fs.createWriteStream(TERMINAL_COPY);
  const env = { ...envDefaults, ...firebaseEnv(), OFFLINE_PUSH_TERMINAL_COPY: TERMINAL_COPY };
  await startFakeFcm(["--quiet"]);
  if (firestoreProxy) Object.assign(env, await startFirestoreProxy());
  const command = [process.execPath, "--import", "tsx", ...argv].map(shellQuote).join(" ");
  const exec = run(firebaseBin, [...configArgs(), "emulators:exec", "--non-interactive", "--project", PROJECT, "--only", EMULATORS, command], { env, stdio: ["ignore", "pipe", "pipe"] });
  // The terminal gets every byte as before (the test runner's output passes through here too).
  for (const [from, to] of [[exec.stdout, process.stdout], [exec.stderr, process.stderr]]) {
    from.on("data", (chunk) => {
      to.write(chunk);
      copy.write(chunk);
    });
  }
  // "close", not "exit": the last output may still be in the pipes when the process exits.
  const code = await new Promise((resolve) => exec.on("close", (c, signal) => resolve(c ?? (signal ? 1 : 0))));
  await new Promise((resolve) => copy.end(resolve));
  stopAll();
  return code;
}

/** The totals of node's TAP output (its last `# pass N` ... lines), for the closing line. */
function tapTotals(file) {
  const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
  const last = (name) => {
    const all = [...text.matchAll(new RegExp(`^# ${name} (\\d+)$`, "gm"))];
    return all.length ? Number(all[all.length - 1][1]) : 0;
  };
  return { pass: last("pass"), fail: last("fail") + last("cancelled"), skipped: last("skipped") + last("todo") };
}

function minutes(ms) {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

async function test(args) {
  const started = Date.now();
  const files = testFiles(args);
  if (files.length === 0) fail("no test files found");
  const tap = path.join(root, ".emulators", "test-results.tap");
  fs.mkdirSync(path.dirname(tap), { recursive: true });
  fs.rmSync(tap, { force: true });
  // Test files run one at a time: they share the emulators, and the machines are small. The spec
  // reporter is for people; the TAP copy gives the totals printed last.
  const code = await execUnderEmulators(
    ["--test", "--test-concurrency=1", "--test-reporter=spec", "--test-reporter-destination=stdout", "--test-reporter=tap", `--test-reporter-destination=${tap}`, ...files],
    EMULATOR_LOAD_LIMITS,
    { firestoreProxy: true },
  );
  const t = tapTotals(tap);
  log(`test suite wall time: ${minutes(Date.now() - started)} (build, emulators and ${files.length} test files; lint ran before)`);
  process.stdout.write(`tests: ${t.pass} passed, ${t.fail} failed, ${t.skipped} skipped\n`);
  process.exit(code !== 0 ? code : t.fail > 0 || t.pass === 0 ? 1 : 0);
}

async function bench(args) {
  // Each batch runs in its own Functions-emulator worker process; on a small machine 50 of them at
  // once measure the machine, not the code.
  process.exit(await execUnderEmulators(["scripts/bench.ts", ...args], EMULATOR_LOAD_LIMITS));
}

async function benchProxy() {
  process.exit(await execUnderEmulators(["scripts/bench-firestore-proxy.ts"], EMULATOR_LOAD_LIMITS, { firestoreProxy: true }));
}

// --- npm start's terminal -----------------------------------------------------------------------
// The Functions emulator prints every function log line, whatever its severity, and loads the env
// files again for every worker it starts; it has no knob for either (--log-verbosity QUIET hides
// the useful lines too). The Firebase CLI also says things at start-up that a newcomer cannot act
// on. So npm start filters its output; firebase-debug.log keeps what the CLI logs, and
// .emulators/terminal.log every line as it was printed.
const START_UP_NOISE = [
  // The CLI's news feed, unreachable offline.
  /Unable to fetch the CLI MOTD and remote config/,
  // About firebase-tools 15; this project pins 14, which runs on the Java 17 README asks for.
  /firebase-tools will drop support for Java version < 21/,
  // scripts/emulators.mjs chose the Google Cloud SDK's emulator, and said so in its own line first.
  /Env variable override detected\. Using \w+ emulator at /,
  // The Functions emulator's internal worker port.
  /^Serving at port \d+$/,
  // Google's auth library looking for a cloud metadata server, which a laptop does not have.
  /MetadataLookupWarning/,
  // firebase.json turns the Emulator UI off on purpose.
  /The Emulator UI is not starting because none of the running emulators/,
];

function noiseFilter() {
  const seen = new Set();
  let afterDroppedWarning = false;
  return (line) => {
    const plain = stripVTControlCharacters(line);
    // Node's hint that follows a warning goes with the warning.
    if (afterDroppedWarning && /^\(Use `node --trace-warnings/.test(plain)) return (afterDroppedWarning = false);
    afterDroppedWarning = false;
    if (START_UP_NOISE.some((re) => re.test(plain))) {
      afterDroppedWarning = /Warning/.test(plain);
      return false;
    }
    // firebase-functions' per-call "Callable request verification passed" and any other DEBUG log.
    if (/"severity":"DEBUG"/.test(plain)) return false;
    // "Finished ... in 45ms" follows for every call; the start line adds nothing.
    if (/functions: Beginning execution of "/.test(plain)) return false;
    if (/Loaded environment variables from /.test(plain)) {
      if (seen.has(plain)) return false;
      seen.add(plain);
    }
    return true;
  };
}

/** Copies a child's output line by line through `keep` (every line to `copy`); remembers when it last wrote. */
function pipeLines(stream, out, keep, activity, copy) {
  readline.createInterface({ input: stream, crlfDelay: Infinity }).on("line", (line) => {
    copy.write(`${line}\n`);
    if (!keep(line)) return;
    activity.at = Date.now();
    out.write(`${line}\n`);
  });
}

/** Resolves once `activity` has been quiet for `quietMs` (at most `maxMs`): the banner goes after the emulator's last line. */
async function quiet(activity, quietMs, maxMs) {
  const deadline = Date.now() + maxMs;
  while (Date.now() - activity.at < quietMs && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}

/**
 * The TypeScript watcher, started before the emulators: its first compile is the build, so its
 * first emit cannot reload the functions after the banner. Resolves after that first compile.
 */
function startWatcher() {
  const watcher = run("npm", ["run", "--silent", "build:watch", "--prefix", "functions"], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let first = true;
    readline.createInterface({ input: watcher.stdout, crlfDelay: Infinity }).on("line", (line) => {
      process.stdout.write(`${line}\n`);
      const done = /Found (\d+) errors?\. Watching for file changes/.exec(line);
      if (done && first) {
        first = false;
        if (done[1] === "0") resolve(watcher);
        else reject(new Error("building the functions failed (see above)"));
      }
    });
    watcher.on("exit", (code) => first && reject(new Error(`the TypeScript watcher exited with code ${code}`)));
  });
}

async function start() {
  ensureLocalSecret();
  buildConsole();
  await startWatcher();
  const env = { ...EMULATOR_LOAD_LIMITS, ...firebaseEnv(), ...(process.stdout.isTTY ? { FORCE_COLOR: "1" } : {}) };
  await startFakeFcm();
  const activity = { at: Date.now() };
  const emulators = run(firebaseBin, [...configArgs(), "emulators:start", "--project", PROJECT, "--only", EMULATORS], { env, stdio: ["inherit", "pipe", "pipe"] });
  const keep = noiseFilter();
  fs.mkdirSync(path.dirname(TERMINAL_COPY), { recursive: true });
  const copy = fs.createWriteStream(TERMINAL_COPY);
  pipeLines(emulators.stdout, process.stdout, keep, activity, copy);
  pipeLines(emulators.stderr, process.stderr, keep, activity, copy);
  emulators.on("exit", (code) => {
    stopAll();
    process.exit(code ?? 0);
  });
  try {
    // The functions are up when a callable answers (401 without a token) instead of 404.
    const probe = { method: "POST", headers: { "content-type": "application/json" }, body: '{"data":{}}' };
    await waitFor(`http://${emulatorHost("functions")}/${PROJECT}/us-central1/listPushCertificates`, "the Functions emulator", 180_000, probe);
    log("watching functions/src and console/: changes rebuild the functions and the console (every line, unfiltered, is in .emulators/terminal.log; DEBUG function logs also in firebase-debug.log). Ctrl-C stops everything.");
    // The console rebuilds on change too (its first build was made before the emulators started;
    // its watcher's own first build is done long before the banner).
    run("npm", ["run", "--silent", "build:console", "--", "--watch", "--logLevel", "warn"], { stdio: ["ignore", "inherit", "inherit"] });
    // The seed prints the banner: kept until the emulator has printed the seed's own calls, so that
    // it comes last.
    const seedEnv = {
      ...env,
      FIREBASE_AUTH_EMULATOR_HOST: emulatorHost("auth"),
      FIRESTORE_EMULATOR_HOST: emulatorHost("firestore"),
      PUBSUB_EMULATOR_HOST: emulatorHost("pubsub"),
      OFFLINE_PUSH_PORT_OFFSET: String(PORT_OFFSET),
    };
    const seed = run(process.execPath, ["--import", "tsx", "scripts/seed.ts"], { env: seedEnv, stdio: ["ignore", "pipe", "inherit"] });
    let banner = "";
    seed.stdout.on("data", (chunk) => (banner += chunk));
    const ok = (await exitCode(seed)) === 0;
    await quiet(activity, 1500, 10_000);
    if (ok) process.stdout.write(banner);
    else log("seeding the demo failed (see above); the emulators keep running");
  } catch (err) {
    log(String(err));
  }
}

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    stopAll();
    setTimeout(() => process.exit(130), 15_000).unref();
  });
}

const [mode, ...rest] = process.argv.slice(2);
const modes = { start, test, bench, "bench-proxy": benchProxy };
if (!modes[mode]) fail(`usage: node scripts/emulators.mjs ${Object.keys(modes).join("|")}`);
modes[mode](rest).catch((err) => {
  stopAll();
  fail(err instanceof Error ? err.stack : String(err));
});
