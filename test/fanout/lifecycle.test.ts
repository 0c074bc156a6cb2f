// The paths of a batch that the emulator cannot produce on demand, with the real processBatch and
// the real trigger handler running in this process against the Firestore emulator:
// - Pub/Sub redelivering a message with the same message ID (the emulator never redelivers);
// - events older than MAX_EVENT_AGE_SECONDS (the emulator stamps every message with "now").
// The messages carry PushFlag 1 or are too old: the claim, progress and logging logic runs in full
// and no FCM credentials are involved. Firestore calls are counted where they arrive, at the
// Firestore proxy in front of the emulator (db() in this process goes through it, as in the
// emulated functions); the per-batch `cost` assertions check which batch records a shared call.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { before, describe, it } from "node:test";
import { Timestamp } from "firebase-admin/firestore";
import { processBatch, type BatchDeps } from "../../functions/src/fanout/batch.ts";
import { handlePushEvent } from "../../functions/src/fanout/functions.ts";
import { DEFAULT_PLACEHOLDERS } from "../../functions/src/fanout/message.ts";
import { BatchBusyError } from "../../functions/src/fanout/claim.ts";
import { recipientsOf, splitIntoBatches } from "../../functions/src/fanout/recipients.ts";
import { PushContentSchema, PushEventSchema, contentOf } from "../../functions/src/fanout/schemas.ts";
import { clearFirestore } from "../helpers/emulators.ts";
import { SEED_EPOCH, logDocs, seedMessageRecord, seedRunningBatch, waitForMessage, waitForRejected, type BatchDoc } from "../helpers/fanout.ts";
import { countFirestoreCalls } from "../helpers/firestoreProxy.ts";
import { runAsEmulatedFunctions } from "../helpers/functionsEnv.ts";

// Before anything uses db(): this process talks to Firestore as the emulated functions do, through the proxy.
runAsEmulatedFunctions();

const DAY = 86_400_000;

function deps(leaseMs: number): BatchDeps {
  return {
    settings: {
      batchSize: 200,
      maxEventAgeMs: 3_600_000,
      leaseMs,
      checkpointEvery: 100,
      sendConcurrency: 10,
      retryBaseDelayMs: 100,
      retryMaxDelayMs: 1000,
      pushLogTtlMs: DAY,
      invocationBudgetMs: 60_000,
      inlineBatches: 5,
    },
    placeholders: DEFAULT_PLACEHOLDERS,
    kek: () => {
      throw new Error("no certificate is needed for a PushFlag 1 message");
    },
    handOn: () => {
      throw new Error("a PushFlag 1 message is never handed on");
    },
  };
}

function heldBatch(key: string, deliveryId: string, untilMs: number) {
  return seedRunningBatch({
    msgKey: key,
    from: "sender",
    uids: ["u1", "u2"],
    owner: "first-attempt",
    deliveryId,
    eventId: deliveryId,
    leaseUntilMs: untilMs,
    entries: [{ outcome: "skipped", uid: "u1", deviceId: null, reason: "push-disabled", detail: "recorded by the first attempt", at: Timestamp.now() }],
    cost: { firestoreReads: 1, firestoreWrites: 2, fcmRequests: 0, publishes: 0 },
  });
}

function input(key: string, deliveryId: string) {
  return {
    content: PushContentSchema.parse({ MsgKey: key, From_Account: "sender", MsgBody: [], OfflinePushInfo: { PushFlag: 1 } }),
    uids: ["u1", "u2"],
    // The publication heldBatch seeds (seedRunningBatch): the batch's ID is the seeded one.
    message: { epoch: SEED_EPOCH, generation: 0 },
    batchIndex: 0,
    batchCount: 1,
    eventId: deliveryId,
    deliveryId,
    publishTimeMs: Date.now(),
  };
}

async function batchDoc(key: string): Promise<BatchDoc> {
  const [doc] = await logDocs(key);
  assert.ok(doc && doc.kind === "batch");
  return doc;
}

before(async () => {
  await clearFirestore();
});

describe("a batch held by a live lease", () => {
  it("the same Pub/Sub message redelivered (its first attempt died): waits for the lease to expire, takes over, finishes only what is left", async () => {
    const key = `redelivered-${randomUUID()}`;
    const leaseUntil = Date.now() + 2_000;
    await heldBatch(key, "pubsub-42", leaseUntil);
    const result = await processBatch(input(key, "pubsub-42"), deps(1_000));
    assert.equal(result.status, "done");
    // The property, not a duration (seeding the held batch may itself take a while on a busy machine).
    assert.ok(Date.now() >= leaseUntil, "it waited for the first attempt's lease to expire");
    const doc = await batchDoc(key);
    assert.equal(doc.state, "done");
    assert.equal(doc.claims, 2);
    assert.equal(doc.lease, null);
    assert.deepEqual(doc.entries.map((e) => [e.uid, e.reason, e.outcome === "skipped" ? e.detail : ""]), [
      ["u1", "push-disabled", "recorded by the first attempt"],
      ["u2", "push-disabled", "OfflinePushInfo.PushFlag is 1: the sender asked for no offline push"],
    ]);
  });

  it("another Pub/Sub message (the same event published again): acknowledged at once, nothing written", async () => {
    const key = `elsewhere-${randomUUID()}`;
    await heldBatch(key, "pubsub-1", Date.now() + 60_000);
    const result = await processBatch(input(key, "pubsub-2"), deps(60_000));
    assert.equal(result.status, "in-progress-elsewhere");
    const doc = await batchDoc(key);
    assert.equal(doc.state, "running");
    assert.equal(doc.lease?.owner, "first-attempt");
    assert.equal(doc.entries.length, 1);
  });

  it("the same message, but the holder keeps its lease: the wait is bounded, then the delivery fails (Pub/Sub redelivers it later)", async () => {
    const key = `still-held-${randomUUID()}`;
    await heldBatch(key, "pubsub-7", Date.now() + 60_000);
    const started = Date.now();
    await assert.rejects(processBatch(input(key, "pubsub-7"), deps(500)), BatchBusyError);
    assert.ok(Date.now() - started < 10_000);
    assert.equal((await batchDoc(key)).entries.length, 1);
  });
});

describe("events older than MAX_EVENT_AGE_SECONDS (default 1 hour)", () => {
  it("a batch: nothing is read or sent, every recipient is recorded as event-too-old", async () => {
    const key = `old-${randomUUID()}`;
    const old = { ...input(key, "pubsub-old"), publishTimeMs: Date.now() - 2 * 3_600_000 };
    old.content = PushContentSchema.parse({ MsgKey: key, From_Account: "sender", MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: "late" } }] });
    const { result, calls } = await countFirestoreCalls(() => processBatch(old, deps(60_000)), { quietMs: 200 });
    assert.equal(result.status, "done");
    assert.deepEqual(calls.byMethod, { Commit: 2 }, "no read at all: the claim is a create, the final write is preconditioned, no recipient was read; two commits, the claim and the final write");
    const doc = await batchDoc(key);
    assert.deepEqual(doc.entries.map((e) => [e.uid, e.reason]), [["u1", "event-too-old"], ["u2", "event-too-old"]]);
    assert.deepEqual(doc.cost, { firestoreReads: 0, firestoreWrites: 2, fcmRequests: 0, publishes: 0 }, "recorded as made");
  });

  it("a large event: not split, recorded once as rejected (event-too-old) and acknowledged", async () => {
    const key = `old-large-${randomUUID()}`;
    const to = Array.from({ length: 250 }, (_, i) => `old-${i}`);
    await handlePushEvent({
      topic: "im-offline-push",
      eventId: `old-event-${randomUUID()}`,
      publishTimeMs: Date.now() - 2 * 3_600_000,
      json: { MsgKey: key, From_Account: "sender", To_Account: to, MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: "late" } }] },
      jsonError: null,
    });
    const rejected = await waitForRejected(key);
    assert.equal(rejected.reason, "event-too-old");
    assert.equal(rejected.recipientCount, 250);
    assert.match(rejected.detail, /longer than MAX_EVENT_AGE_SECONDS \(3600 s\)/);
    assert.equal((await logDocs(key)).filter((d) => d.kind === "batch").length, 0, "no batch was started");
  });
});

describe("more batches than FANOUT_INLINE_BATCHES", () => {
  it("the first are processed by the invocation that got the event, the rest go through the batch topic (one publish each, counted in its own batch)", async () => {
    // The parameter as the functions read it (firebase-functions params read process.env): one
    // inline batch here, while the emulator's functions keep the default.
    const previous = process.env.FANOUT_INLINE_BATCHES;
    process.env.FANOUT_INLINE_BATCHES = "1";
    try {
      const key = `spread-${randomUUID()}`;
      const to = Array.from({ length: 450 }, (_, i) => `spread-${i}`);
      // PushFlag 1: the whole claim/record path runs in both places, without FCM credentials.
      await handlePushEvent({
        topic: "im-offline-push",
        eventId: `spread-event-${randomUUID()}`,
        publishTimeMs: Date.now(),
        json: { MsgKey: key, From_Account: "sender", To_Account: to, MsgBody: [], OfflinePushInfo: { PushFlag: 1 } },
        jsonError: null,
      });
      // Batch 0 was done before handlePushEvent returned; 1 and 2 arrive through the batch topic.
      const docs = await waitForMessage(key, 120_000);
      assert.deepEqual(docs.map((d) => d.uids.length), [200, 200, 50]);
      assert.deepEqual(docs.map((d) => d.cost.publishes), [0, 1, 1], "one publish per published batch, none for the inline one");
      assert.ok(docs.every((d) => d.claims === 1 && d.counts.skipped === d.uids.length));
    } finally {
      if (previous === undefined) delete process.env.FANOUT_INLINE_BATCHES;
      else process.env.FANOUT_INLINE_BATCHES = previous;
    }
  });
});

describe("the inline batches of one event", () => {
  it("share their read calls: consecutive batches in one call of up to 400 recipients, counted once, each batch with its own recipients", async () => {
    const key = `shared-reads-${randomUUID()}`;
    // 501 recipients and the sender: batches of 200, 200 and 101 (the sender is never read), so
    // two read calls: batches 0 and 1 (400 recipients), then batch 2.
    const to = [...Array.from({ length: 501 }, (_, i) => `shared-${String(i).padStart(3, "0")}`), "sender"];
    const { calls } = await countFirestoreCalls(
      () =>
        handlePushEvent({
          topic: "im-offline-push",
          eventId: `shared-event-${randomUUID()}`,
          publishTimeMs: Date.now(),
          json: { MsgKey: key, From_Account: "sender", To_Account: to, MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: "hi" } }] },
          jsonError: null,
        }),
      { quietMs: 200 },
    );
    // Two read calls for three batches; one commit claims all three, and each batch's final write.
    assert.deepEqual(calls.byMethod, { BatchGetDocuments: 2, Commit: 4 });
    const docs = await waitForMessage(key, 120_000);
    assert.deepEqual(docs.map((d) => d.uids.length), [200, 200, 102]);
    assert.deepEqual(docs.map((d) => d.cost.firestoreReads), [1, 0, 1], "one read call per 400 recipients, counted by the first batch of the call");
    // Nobody ever logged in: every recipient is skipped as no-device, by the batch it belongs to.
    for (const d of docs) {
      const recipients = d.uids.filter((uid) => uid !== "sender");
      assert.deepEqual(d.entries.filter((e) => e.reason === "no-device").map((e) => e.uid).sort(), [...recipients].sort());
    }
    assert.equal(docs.flatMap((d) => d.entries).filter((e) => e.reason === "sender").length, 1);
    // Their claims are one commit too, counted by batch 0: a claim and a final write for it, the
    // final write alone for the others.
    assert.deepEqual(docs.map((d) => d.cost.firestoreWrites), [2, 1, 1]);
    assert.ok(docs.every((d) => d.claims === 1));
  });

  it("one batch already done by an earlier delivery: the shared claim does not apply, and each batch claims on its own", async () => {
    const key = `shared-claim-${randomUUID()}`;
    const event = { MsgKey: key, From_Account: "sender", To_Account: Array.from({ length: 450 }, (_, i) => `claim-${String(i).padStart(3, "0")}`), MsgBody: [], OfflinePushInfo: { PushFlag: 1 } };
    const eventId = `shared-claim-event-${randomUUID()}`;
    const publishTimeMs = Date.now();
    // The message registered and batch 1 of 3 processed first on its own (as a delivery that got that far before it died would have).
    const recipients = recipientsOf(event);
    const message = await seedMessageRecord(key, recipients);
    const batches = splitIntoBatches(recipients, 200);
    const first = await processBatch({ content: contentOf(PushEventSchema.parse(event)), uids: batches[1] ?? [], message, batchIndex: 1, batchCount: 3, eventId, deliveryId: eventId, publishTimeMs }, deps(60_000));
    assert.equal(first.status, "done");
    await handlePushEvent({ topic: "im-offline-push", eventId, publishTimeMs, json: event, jsonError: null });
    const docs = await waitForMessage(key, 120_000);
    assert.deepEqual(docs.map((d) => d.claims), [1, 1, 1], "no batch was claimed twice");
    assert.deepEqual(docs.map((d) => d.duplicates), [0, 1, 0], "batch 1 was found done");
    assert.deepEqual(docs.map((d) => d.entries.length), [200, 200, 50], "one outcome per recipient, none twice");
  });
});
