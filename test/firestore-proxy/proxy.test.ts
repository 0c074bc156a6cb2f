// The Firestore proxy that `npm test` puts between the functions and the Firestore emulator
// (tools/firestore-proxy): it counts the functions' calls per gRPC method and injects faults, and
// everything else passes through unchanged (emulator semantics, streaming calls).
//
// Some cases call Firestore from this process through the functions' own db(), as the emulated
// functions do (FUNCTIONS_EMULATOR=true: db() then takes FIRESTORE_PROXY_HOST, which
// scripts/emulators.mjs gives the emulators and so this process too): a single write shows a
// fault's effect without a callable in between.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, beforeEach, describe, it } from "node:test";
import { adminDb, call, callOk, clearFirestore, createUser, eventually, type TestUser } from "../helpers/emulators.ts";
import { FIRESTORE_SERVICE } from "../../tools/firestore-proxy/client.ts";
import { countFirestoreCalls, firestoreProxy, readWriteCalls } from "../helpers/firestoreProxy.ts";
import { runAsEmulatedFunctions } from "../helpers/functionsEnv.ts";
import { readDevice } from "../helpers/sessions.ts";
import { db, emulatorProxyHost, grpcCode } from "../../functions/src/common/firestore.ts";

// Before anything uses db(): this process talks to Firestore as the emulated functions do, through the proxy.
runAsEmulatedFunctions();

let user: TestUser;

before(async () => {
  await clearFirestore();
  user = await createUser();
  await callOk("login", { deviceId: "phone", platform: "android" }, user);
});

beforeEach(() => firestoreProxy.clearFaults());
after(() => firestoreProxy.clearFaults());

/** A document written through the proxy (db()), as its gRPC status: 0 when it worked. */
async function writeThroughProxy(): Promise<number> {
  try {
    await db().doc(`proxyProbe/${randomUUID()}`).set({ at: Date.now() });
    return 0;
  } catch (err) {
    const code = grpcCode(err);
    if (code === undefined) throw err;
    return code;
  }
}

describe("Firestore proxy: who uses it", () => {
  it("only the Functions emulator, in place of the Firestore emulator: a deployed function can never be redirected", () => {
    const emulated = { FUNCTIONS_EMULATOR: "true", FIRESTORE_EMULATOR_HOST: "127.0.0.1:8080", FIRESTORE_PROXY_HOST: "127.0.0.1:9472" };
    assert.equal(emulatorProxyHost(emulated), "127.0.0.1:9472");
    assert.equal(emulatorProxyHost({ ...emulated, FUNCTIONS_EMULATOR: undefined }), undefined, "production");
    assert.equal(emulatorProxyHost({ ...emulated, FUNCTIONS_EMULATOR: "1" }), undefined);
    assert.equal(emulatorProxyHost({ ...emulated, FIRESTORE_EMULATOR_HOST: undefined }), undefined, "the Functions emulator without the Firestore emulator talks to the real Firestore: not redirected");
    assert.equal(emulatorProxyHost({ ...emulated, FIRESTORE_PROXY_HOST: "" }), undefined);
    assert.equal(emulatorProxyHost({ ...emulated, FIRESTORE_PROXY_HOST: "https://evil.example/x" }), undefined, "a host:port, nothing else");
  });
});

describe("Firestore proxy: counting", () => {
  it("counts the functions' calls per gRPC method through a real callable; the tests' own Admin SDK is not counted", async () => {
    // doForeground, not heartbeat: a beat just after login is a read alone (it writes only past half the lease).
    const { calls } = await countFirestoreCalls(() => callOk("doForeground", { deviceId: "phone" }, user), { quietMs: 300 });
    // A bounded transaction: its read (which starts it) and its commit.
    assert.ok((calls.byMethod.BatchGetDocuments ?? 0) >= 1 && (calls.byMethod.Commit ?? 0) >= 1, JSON.stringify(calls.byMethod));
    assert.deepEqual(calls.other, {});
    // It went through the proxy and still had the emulator's admin access (rules deny clients any write).
    assert.equal((await readDevice(user.uid, "phone"))?.appState, "foreground", "the app state was stored");

    const { calls: own } = await countFirestoreCalls(async () => {
      for (let i = 0; i < 5; i++) await adminDb().doc(`users/${user.uid}`).get();
    }, { quietMs: 300 });
    assert.deepEqual(own.byMethod, {}, "the tests' reads go to the emulator directly");
  });

  it("db() goes through the proxy in the emulator; reads, queries and a Listen stream pass through whole", async () => {
    assert.equal(emulatorProxyHost(), process.env.FIRESTORE_PROXY_HOST);
    assert.ok(process.env.FIRESTORE_PROXY_HOST && process.env.FIRESTORE_PROXY_HOST !== process.env.FIRESTORE_EMULATOR_HOST);
    const run = randomUUID();
    const ids = Array.from({ length: 300 }, (_, i) => `${run}-${String(i).padStart(3, "0")}`);
    // ~3 KB each: the getAll's answer spans many HTTP/2 frames and window updates.
    const filler = "x".repeat(3_000);
    for (let i = 0; i < ids.length; i += 100) {
      const batch = adminDb().batch();
      for (const id of ids.slice(i, i + 100)) batch.set(adminDb().doc(`proxyProbe/${id}`), { run, id, filler });
      await batch.commit();
    }
    const mark = await firestoreProxy.mark();

    const snaps = await db().getAll(...ids.map((id) => db().doc(`proxyProbe/${id}`)));
    assert.deepEqual(
      snaps.map((s) => s.get("id")),
      ids,
    );
    assert.ok(snaps.every((s) => s.get("filler") === filler));
    const query = await db().collection("proxyProbe").where("run", "==", run).get();
    assert.equal(query.size, ids.length);

    // A Listen stream (bidirectional) through the proxy sees a change made directly at the emulator.
    const ref = db().doc(`proxyProbe/${ids[0]}`);
    const seen = new Promise<string>((resolve, reject) => {
      const stop = ref.onSnapshot((snap) => {
        if (snap.get("changed")) {
          stop();
          resolve(snap.get("changed"));
        }
      }, reject);
    });
    await adminDb().doc(`proxyProbe/${ids[0]}`).update({ changed: run });
    assert.equal(await seen, run);

    const delta = await firestoreProxy.since(mark);
    assert.equal(delta.byMethod[`${FIRESTORE_SERVICE}/BatchGetDocuments`], 1);
    assert.equal(delta.byMethod[`${FIRESTORE_SERVICE}/RunQuery`], 1);
    assert.equal(delta.byMethod[`${FIRESTORE_SERVICE}/Listen`], 1);
    assert.deepEqual(readWriteCalls(delta).other, { Listen: 1 });
  });
});

// What the Admin SDK does with each fault matters to every test that injects one: it retries an
// UNAVAILABLE read (BatchGetDocuments, RunQuery) 15 times over about 45 s before giving up, and an
// UNAVAILABLE commit for up to 10 minutes (its retry settings), so a shorter outage never reaches
// the code; a stream reset (INTERNAL) fails a commit at once and is retried for a read.
describe("Firestore proxy: faults", () => {
  it("unavailable while it lasts: the SDK rides out a short one (the call waits), and it ends after forMs", async () => {
    const fault = await firestoreProxy.addFault({ kind: "unavailable", methods: ["Commit"], forMs: 1_500 });
    assert.equal(Date.parse(fault.until ?? "") - Date.parse(fault.createdAt), 1_500);
    const started = Date.now();
    assert.equal(await writeThroughProxy(), 0);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 1_400, `refused until the fault ended (${elapsed} ms)`);
    const stats = await firestoreProxy.stats();
    assert.deepEqual(stats.faults, [], "gone after forMs");
    assert.ok(stats.faulted.unavailable >= 1);
    // And a callable made through a short outage just takes longer.
    await firestoreProxy.addFault({ kind: "unavailable", forMs: 2_000 });
    const beat = Date.now();
    await callOk("heartbeat", { deviceId: "phone" }, user);
    assert.ok(Date.now() - beat >= 1_900);
  });

  it("unavailable past the SDK's retries: a callable answers UNAVAILABLE with details.retryable, nothing reached the emulator; clearing restores", async () => {
    const admin = await createUser({ admin: true });
    const fault = await firestoreProxy.addFault({ kind: "unavailable", methods: ["RunQuery", "BatchGetDocuments"], forMs: 300_000, message: "maintenance: back soon" });
    const res = await call("listPushCertificates", {}, admin);
    assert.equal(res.error?.status, "UNAVAILABLE", JSON.stringify(res));
    assert.equal(res.error?.details?.retryable, true);
    const [state] = (await firestoreProxy.faults()).filter((f) => f.id === fault.id);
    assert.ok(state && state.applied >= 5, `the SDK retried (${state?.applied} calls refused)`);

    assert.deepEqual(await firestoreProxy.clearFaults(), { cleared: 1, released: 0 });
    assert.ok(Array.isArray((await callOk("listPushCertificates", {}, admin)).certificates));
  });

  it("skip and calls: the first calls pass, then exactly `calls` are faulted, only for the methods named", async () => {
    await firestoreProxy.addFault({ kind: "reset", methods: ["Commit"], skip: 2, calls: 1 });
    const read = await firestoreProxy.addFault({ kind: "unavailable", methods: [`${FIRESTORE_SERVICE}/RunQuery`], calls: 1 });
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push(await writeThroughProxy());
    assert.deepEqual(codes, [0, 0, 13, 0]);
    // The RunQuery fault is untouched by commits.
    const left = await firestoreProxy.faults();
    assert.deepEqual(
      left.map((f) => [f.id, f.applied]),
      [[read.id, 0]],
    );
  });

  it("stall: the call is held, then forwarded", async () => {
    const stats = await firestoreProxy.stats();
    await firestoreProxy.addFault({ kind: "stall", methods: ["Commit"], holdMs: 2_000, calls: 1 });
    const started = Date.now();
    await callOk("doForeground", { deviceId: "phone" }, user);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 2_000, `held ${elapsed} ms`);
    const now = await firestoreProxy.stats();
    assert.equal(now.faulted.stall - stats.faulted.stall, 1);
    assert.equal(now.droppedWhileHeld, stats.droppedWhileHeld);
  });

  it("clearing a stall releases the calls it holds at once", async () => {
    await firestoreProxy.addFault({ kind: "stall", methods: ["Commit"], forMs: 120_000 });
    const started = Date.now();
    const beat = callOk("doForeground", { deviceId: "phone" }, user);
    await eventually(async () => ((await firestoreProxy.faults())[0]?.applied ? true : undefined), { what: "doForeground's commit to be held", intervalMs: 50 });
    assert.deepEqual(await firestoreProxy.clearFaults(), { cleared: 1, released: 1 });
    await beat;
    assert.ok(Date.now() - started < 60_000);
  });

  it("reset: a stream reset fails a commit at once (INTERNAL); after a session reset the SDK reconnects", async () => {
    await firestoreProxy.addFault({ kind: "reset", methods: ["Commit"], calls: 1 });
    assert.equal(await writeThroughProxy(), 13);
    const before = await firestoreProxy.stats();
    await firestoreProxy.addFault({ kind: "reset", scope: "session", methods: ["Commit"], calls: 1 });
    assert.equal(await writeThroughProxy(), 0, "UNAVAILABLE (connection lost): retried on a new connection");
    const after = await firestoreProxy.stats();
    assert.equal(after.faulted.reset - before.faulted.reset, 1);
    assert.ok(after.sessions > before.sessions, "a new connection");
  });

  it("lose-answer: the commit is carried out, and its client is told it failed (INTERNAL)", async () => {
    const before = await firestoreProxy.stats();
    await firestoreProxy.addFault({ kind: "lose-answer", methods: ["Commit"], calls: 1 });
    const id = randomUUID();
    let code = 0;
    try {
      await db().doc(`proxyProbe/${id}`).create({ at: Date.now() });
    } catch (err) {
      code = grpcCode(err) ?? -1;
    }
    assert.equal(code, 13, "the SDK saw the reset as INTERNAL, and did not retry the commit");
    assert.equal((await adminDb().doc(`proxyProbe/${id}`).get()).exists, true, "the emulator applied it");
    const after = await firestoreProxy.stats();
    assert.equal(after.faulted["lose-answer"] - before.faulted["lose-answer"], 1);
    assert.deepEqual(after.faults, [], "gone after its one call");
  });

  it("a fault that would never end, or a stall without a duration, is refused", async () => {
    await assert.rejects(firestoreProxy.addFault({ kind: "unavailable" }), /forMs or calls/);
    await assert.rejects(firestoreProxy.addFault({ kind: "stall", calls: 1 }), /holdMs or forMs/);
    await assert.rejects(firestoreProxy.addFault({ kind: "unavailable", methods: ["Commit; drop"], calls: 1 }), /gRPC method/);
  });
});
