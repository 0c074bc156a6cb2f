// The progress record's cheap paths and what keeps them safe, with the real claimBatch and
// BatchProgress against the Firestore emulator, in this process:
// - a claim is one create-if-absent write; a second claimant of the same batch gets no claim;
// - outcomes are written without a read, preconditioned on the batch document's last update time;
//   when anyone else touched the document in between, the write goes through the transaction
//   (which checks the lease) and nothing is lost or counted twice;
// - a checkpoint is due after FANOUT_CHECKPOINT_EVERY devices *sent*, not after as many skips.
// The calls are counted where they arrive, at the Firestore proxy in front of the emulator
// (tools/firestore-proxy): db() in this process goes through it as in the emulated functions.
// The batch's own cost record is checked against those counts.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { before, describe, it } from "node:test";
// The functions' own copy of firebase-admin: these values go into documents its Firestore client writes.
import { FieldValue, Timestamp } from "../../functions/node_modules/firebase-admin/lib/firestore/index.js";
import { CostCounter } from "../../functions/src/fanout/cost.ts";
import type { BatchIdentity, LeaseOptions } from "../../functions/src/fanout/claim.ts";
import { claimBatch } from "../../functions/src/fanout/progress.ts";
import { batchRef, readBatchEntries } from "../../functions/src/fanout/pushLog.ts";
import { BatchLogSchema, type PushLogEntry } from "../../functions/src/fanout/schemas.ts";
import { clearFirestore } from "../helpers/emulators.ts";
import { firestoreProxy, readWriteCalls, type CallCounts } from "../helpers/firestoreProxy.ts";
import { runAsEmulatedFunctions } from "../helpers/functionsEnv.ts";

// Before anything uses db(): this process talks to Firestore as the emulated functions do, through the proxy.
runAsEmulatedFunctions();

const identity = (uids: string[]): BatchIdentity => ({ msgKey: `progress-${randomUUID()}`, from: "sender", batchIndex: 0, batchCount: 1, eventId: randomUUID(), uids, notes: [] });
const options = (checkpointEvery = 100): LeaseOptions => ({ owner: randomUUID(), deliveryId: randomUUID(), leaseMs: 60_000, ttlMs: 86_400_000, checkpointEvery });
const sent = (uid: string): PushLogEntry => ({ outcome: "sent", uid, deviceId: "phone", reason: "sent", certificateId: 1, fcmName: `projects/p/messages/${uid}`, attempts: 1, at: Timestamp.now() });
const skipped = (uid: string): PushLogEntry => ({ outcome: "skipped", uid, deviceId: "phone", reason: "foreground", detail: "in the foreground", at: Timestamp.now() });

/** Read and write calls (README's sense) this process made since `mark`. */
async function callsSince(mark: CallCounts): Promise<{ reads: number; writes: number }> {
  const { reads, writes } = readWriteCalls(await firestoreProxy.since(mark));
  return { reads, writes };
}

async function batchDoc(logId: string) {
  const snap = await batchRef(logId).get();
  return BatchLogSchema.parse(snap.data());
}

describe("progress record: cheap writes, same guarantees", () => {
  before(async () => {
    await clearFirestore();
    // Nothing else calls Firestore through the proxy while these tests count.
    assert.ok((await firestoreProxy.waitQuiet({ quietMs: 500 })).quiet);
  });

  it("a claim is one write and no read; a second claimant of the same batch gets no claim", async () => {
    const batch = identity(["a", "b"]);
    const logId = `progress-${randomUUID()}`;
    const cost = new CostCounter();
    const mark = await firestoreProxy.mark();
    const first = await claimBatch(logId, batch, options(), cost);
    assert.equal(first.status, "claimed");
    assert.deepEqual(await callsSince(mark), { reads: 0, writes: 1 });
    assert.deepEqual({ reads: cost.firestoreReads, writes: cost.firestoreWrites }, { reads: 0, writes: 1 }, "recorded as made");
    // Another delivery of another Pub/Sub message: the create fails, the transaction sees a live lease.
    const second = await claimBatch(logId, batch, options(), new CostCounter());
    assert.equal(second.status, "busy");
    assert.equal((await batchDoc(logId)).concurrentDeliveries, 1);
  });

  it("outcomes written without a read; a write after someone else touched the document falls back to the transaction and loses nothing", async () => {
    const uids = Array.from({ length: 6 }, (_, i) => `u${i}`);
    const logId = `progress-${randomUUID()}`;
    const cost = new CostCounter();
    const start = await firestoreProxy.mark();
    const claim = await claimBatch(logId, identity(uids), options(2), cost);
    assert.ok(claim.status === "claimed");
    const progress = claim.progress;

    await progress.record(sent("u0"));
    await progress.record(sent("u1")); // 2 sends: a checkpoint, preconditioned on the claim's update time
    assert.deepEqual(await callsSince(start), { reads: 0, writes: 2 }, "the checkpoint read nothing");

    // Someone else touches the document (as a duplicate delivery's counter does; not counted: it is not the batch's).
    const other = await firestoreProxy.mark();
    await batchRef(logId).update({ duplicates: FieldValue.increment(1) });
    const othersCalls = await callsSince(other);
    const fallback = await firestoreProxy.mark();
    await progress.record(sent("u2"));
    await progress.record(sent("u3")); // the blind write fails its precondition; the transaction writes it
    assert.deepEqual(await callsSince(fallback), { reads: 1, writes: 2 }, "the failed blind write, then the transaction: one read of the document, its commit");

    await progress.record(skipped("u4"));
    await progress.record(skipped("u5"));
    await progress.finish();
    const all = await callsSince(start);
    const batchCalls = { reads: all.reads - othersCalls.reads, writes: all.writes - othersCalls.writes };
    const doc = await batchDoc(logId);
    assert.equal(doc.state, "done");
    assert.equal(doc.lease, null);
    assert.deepEqual(doc.counts, { sent: 4, skipped: 2, failed: 0 });
    assert.equal(doc.duplicates, 1, "the other writer's change is kept");
    const entries = await readBatchEntries(batchRef(logId));
    assert.deepEqual(entries.map((e) => e.uid).sort(), uids, "every outcome exactly once");
    assert.equal(doc.shards, 3);
    // The cost record counts every call the batch made, the failed precondition included.
    assert.deepEqual({ reads: doc.cost.firestoreReads, writes: doc.cost.firestoreWrites }, batchCalls);
    assert.ok(typeof doc.peakRssMb === "number" && doc.peakRssMb > 0, "the instance's peak memory is recorded");
  });

  it("skips do not make checkpoints: only sends do (a takeover would repeat those alone)", async () => {
    const uids = Array.from({ length: 30 }, (_, i) => `s${i}`);
    const logId = `progress-${randomUUID()}`;
    const cost = new CostCounter();
    const start = await firestoreProxy.mark();
    const claim = await claimBatch(logId, identity(uids), options(5), cost);
    assert.ok(claim.status === "claimed");
    for (const uid of uids.slice(0, 25)) await claim.progress.record(skipped(uid));
    assert.deepEqual(await callsSince(start), { reads: 0, writes: 1 }, "25 skips: still only the claim");
    for (const uid of uids.slice(25)) await claim.progress.record(sent(uid));
    assert.deepEqual(await callsSince(start), { reads: 0, writes: 2 }, "5 sends: one checkpoint, with the skips in it");
    await claim.progress.finish();
    assert.deepEqual(await callsSince(start), { reads: 0, writes: 3 }, "and the final write");
    assert.deepEqual({ reads: cost.firestoreReads, writes: cost.firestoreWrites }, { reads: 0, writes: 3 }, "recorded as made");
    const doc = await batchDoc(logId);
    assert.deepEqual(doc.counts, { sent: 5, skipped: 25, failed: 0 });
  });
});
