// One message to 1,000 recipients in mixed states: exactly one request per eligible device, a log
// entry for every device, and the cost: the Firestore calls the functions made, counted at the
// Firestore proxy in front of the emulator (tools/firestore-proxy), and FCM requests counted at
// the fake FCM.
//
// The recipients' session state is written directly with the Admin SDK in a few batched writes
// (test/helpers/fanoutSeed.ts): 4,000 callable requests would take the Functions emulator longer
// than the fan-out itself on these machines. Every state used here is also produced through the
// real callables (login, setOfflinePushToken, doBackground, logout) in fanout.test.ts.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { before, describe, it } from "node:test";
import { clearFirestore, createUser, publish } from "../helpers/emulators.ts";
import { PUSH_TOPIC, entriesOf, msgKey, printCost, sendsToProject, waitForMessage } from "../helpers/fanout.ts";
import { registerCertificate, type TestCertificate } from "../helpers/certificates.ts";
import { SEED_STATES, seedRecipients } from "../helpers/fanoutSeed.ts";
import { countFirestoreCalls } from "../helpers/firestoreProxy.ts";

const RECIPIENTS = 1000;
const BATCH_SIZE = 200; // FANOUT_BATCH_SIZE's default

let cert: TestCertificate;

before(async () => {
  await clearFirestore();
  cert = await registerCertificate(await createUser({ admin: true }), "scale");
});

describe("one message to 1,000 recipients in mixed states", () => {
  it("one request per eligible device, a log entry for every device, a handful of calls per batch", async () => {
    const run = randomUUID().slice(0, 8);
    const uids = Array.from({ length: RECIPIENTS }, (_, i) => `scale-${run}-${String(i).padStart(4, "0")}`);
    const seeded = await seedRecipients(uids, cert.certificateId);
    const sender = "scale-sender";
    // Duplicates and the sender in the list: deduplicated, and the sender is never pushed.
    const to = [...uids, ...uids.slice(0, 50), sender];
    const key = msgKey("scale");
    let elapsedMs = 0;
    // Every Firestore call the fan-out makes, from the publish until its batches are done and the
    // functions have been quiet for a second (nothing else runs in the emulators meanwhile).
    const { result: docs, calls } = await countFirestoreCalls(async () => {
      const started = Date.now();
      await publish(PUSH_TOPIC, { MsgKey: key, From_Account: sender, To_Account: to, MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: "hello 1,000" } }] });
      const done = await waitForMessage(key, 180_000);
      elapsedMs = Date.now() - started;
      return done;
    });

    const batches = Math.ceil((RECIPIENTS + 1) / BATCH_SIZE);
    assert.equal(docs.length, batches);

    // Exactly one request per eligible device, none for anyone else.
    const sends = await sendsToProject(cert.sa.project_id);
    const tokens = sends.map((s) => (s.message as { token: string }).token);
    assert.equal(sends.length, seeded.eligibleTokens.size);
    assert.equal(new Set(tokens).size, tokens.length, "no device got two requests");
    assert.ok(tokens.every((t) => seeded.eligibleTokens.has(t)), "every request went to an eligible device");
    assert.ok(sends.every((s) => s.answeredStatus === 200));

    // A log entry for every device (and for every account without devices, and the sender).
    const entries = entriesOf(docs);
    assert.equal(entries.length, seeded.expectedEntries + 1);
    const byReason: Record<string, number> = {};
    for (const e of entries) byReason[`${e.outcome}:${e.reason}`] = (byReason[`${e.outcome}:${e.reason}`] ?? 0) + 1;
    const per = RECIPIENTS / SEED_STATES.length;
    assert.deepEqual(byReason, {
      "sent:sent": 3 * per,
      "skipped:certificate-missing": per,
      "skipped:foreground": 2 * per, // foreground devices, and the kicked users' new devices
      "skipped:kicked": per,
      "skipped:logged-out": per,
      "skipped:no-device": per,
      "skipped:no-token": per,
      "skipped:sender": 1,
      "skipped:token-stale": per,
    });
    const covered = new Set(entries.map((e) => e.uid));
    assert.ok(uids.every((u) => covered.has(u)), "every recipient appears in the log");

    // Cost: reads and writes per batch, not per recipient, as the emulator received them (every
    // call of the fan-out, transactions' included); FCM requests = eligible devices, as the fake
    // FCM received them (checked above). The batches' own records are printed beside for comparison.
    const recorded = printCost(`1 message -> ${RECIPIENTS} recipients (${seeded.eligibleTokens.size} eligible)`, docs, { elapsedMs });
    process.stdout.write(`[cost] at the Firestore proxy: read calls ${calls.reads}, write calls ${calls.writes} ${JSON.stringify(calls.byMethod)}\n`);
    assert.equal(recorded.fcmRequests, seeded.eligibleTokens.size);
    assert.deepEqual(calls.other, {}, "no listener or write stream");
    // At most 2 read calls per batch (its share of a getAll of up to 400 recipients, a certificate
    // read) and 2 write calls (its claim, its final write: fewer than FANOUT_CHECKPOINT_EVERY sends each).
    assert.ok(calls.reads <= 2 * batches, `${calls.reads} read calls for ${batches} batches: ${JSON.stringify(calls.byMethod)}`);
    assert.ok(calls.writes <= 2 * batches, `${calls.writes} write calls for ${batches} batches: ${JSON.stringify(calls.byMethod)}`);
    // The batches' own records (the push log's `cost`, which the bench reports) count the same calls.
    assert.deepEqual({ reads: recorded.firestoreReads, writes: recorded.firestoreWrites }, { reads: calls.reads, writes: calls.writes }, "the recorded cost is the cost");
  });
});
