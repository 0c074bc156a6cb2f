// What a heartbeat costs, counted at the Firestore proxy (the functions' own calls; the tests'
// reads go to the emulator directly). Before issue 20 every beat was a transaction: one read call
// (BatchGetDocuments) and one commit, one document written. Now a beat inside the first half of the
// lease is one read call and no write; a beat that must be stored is a read and one commit.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { FieldPath, Timestamp } from "firebase-admin/firestore";
import { adminDb, callOk, clearFirestore, createUser, eventually, type TestUser } from "../helpers/emulators.ts";
import { countFirestoreCalls, firestoreProxy } from "../helpers/firestoreProxy.ts";
import { registerCertificate } from "../helpers/certificates.ts";
import { fakeFcmToken, readDevice } from "../helpers/sessions.ts";

let user: TestUser;

before(async () => {
  await clearFirestore();
  const certificateId = (await registerCertificate(await createUser({ admin: true }))).certificateId;
  user = await createUser();
  await callOk("login", { deviceId: "phone", platform: "android" }, user);
  await callOk("setOfflinePushToken", { deviceId: "phone", certificateId, token: fakeFcmToken() }, user);
});

/** Sets the stored beat `msAgo` in the past, as if the last written beat had been then. */
async function storedBeatAgo(msAgo: number): Promise<void> {
  await adminDb().doc(`users/${user.uid}`).update(new FieldPath("devices", "phone", "lastHeartbeatAt"), Timestamp.fromMillis(Date.now() - msAgo));
}

describe("heartbeat cost at the emulator", () => {
  it("10 beats right after login: 10 read calls, no write; the answer gives the lease, the interval and that nothing was stored", async () => {
    const stored = (await readDevice(user.uid, "phone"))!.lastHeartbeatAt.toMillis();
    const answers: Array<Record<string, unknown>> = [];
    const { calls } = await countFirestoreCalls(async () => {
      for (let i = 0; i < 10; i++) answers.push(await callOk("heartbeat", { deviceId: "phone" }, user));
    }, { quietMs: 500 });
    process.stdout.write(`[cost] heartbeat, 10 beats within the first half of the lease: ${JSON.stringify(calls.byMethod)} (before: BatchGetDocuments 10, Commit 10)\n`);
    assert.deepEqual(calls.byMethod, { BatchGetDocuments: 10 });
    assert.deepEqual(answers[0], { deviceId: "phone", leaseSeconds: 120, intervalSeconds: 40, recorded: false, presenceSource: "both" });
    assert.ok(answers.every((a) => a.recorded === false));
    assert.equal((await readDevice(user.uid, "phone"))!.lastHeartbeatAt.toMillis(), stored, "the stored beat is unchanged");
  });

  it("a beat when the stored one is half a lease old: one read, one commit (no transaction), and the lease is renewed", async () => {
    await storedBeatAgo(61_000);
    const { result, calls } = await countFirestoreCalls(() => callOk("heartbeat", { deviceId: "phone" }, user), { quietMs: 500 });
    process.stdout.write(`[cost] heartbeat, a beat half a lease after the stored one: ${JSON.stringify(calls.byMethod)}\n`);
    assert.equal(result.recorded, true);
    assert.deepEqual(calls.byMethod, { BatchGetDocuments: 1, Commit: 1 });
    const age = Date.now() - (await readDevice(user.uid, "phone"))!.lastHeartbeatAt.toMillis();
    assert.ok(age < 10_000, `the stored beat is fresh (${age} ms)`);
  });

  it("a beat that finds the document changed since its read is decided again in a transaction", async () => {
    await storedBeatAgo(61_000);
    // The beat's commit is held at the proxy while another write lands: its precondition then fails.
    const stalled = (await firestoreProxy.stats()).faulted.stall;
    await firestoreProxy.addFault({ kind: "stall", methods: ["Commit"], holdMs: 1_500, calls: 1 });
    const { result, calls } = await countFirestoreCalls(async () => {
      const beat = callOk("heartbeat", { deviceId: "phone" }, user);
      await eventually(async () => ((await firestoreProxy.stats()).faulted.stall > stalled ? true : undefined), { what: "the beat's commit to be held", intervalMs: 50 });
      await adminDb().doc(`users/${user.uid}`).update({ updatedAt: Timestamp.now() });
      return beat;
    }, { quietMs: 500 });
    process.stdout.write(`[cost] heartbeat whose document changed in between: ${JSON.stringify(calls.byMethod)}\n`);
    assert.equal(result.recorded, true);
    assert.deepEqual(calls.byMethod, { BatchGetDocuments: 2, Commit: 2 }, "the refused commit, then the transaction's read and commit");
    assert.ok(Date.now() - (await readDevice(user.uid, "phone"))!.lastHeartbeatAt.toMillis() < 10_000);
  });
});
