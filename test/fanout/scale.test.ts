// One message to 1,000 recipients in mixed states: exactly one request per eligible device, a log
// entry for every device, and the cost (Firestore read/write calls, FCM requests) printed.
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
    const started = Date.now();
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: sender, To_Account: to, MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: "hello 1,000" } }] });
    const docs = await waitForMessage(key, 180_000);
    const elapsedMs = Date.now() - started;

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

    // Cost: reads and writes per batch, not per recipient; FCM requests = eligible devices.
    const cost = printCost(`1 message -> ${RECIPIENTS} recipients (${seeded.eligibleTokens.size} eligible)`, docs, { elapsedMs });
    assert.equal(cost.fcmRequests, seeded.eligibleTokens.size);
    for (const d of docs) {
      assert.ok(d.cost.firestoreReads <= 8, `batch ${d.batchIndex}: ${d.cost.firestoreReads} read calls`);
      assert.ok(d.cost.firestoreWrites <= 6, `batch ${d.batchIndex}: ${d.cost.firestoreWrites} write calls`);
    }
  });
});
