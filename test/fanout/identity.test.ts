// A message's identity, end to end (Pub/Sub emulator, the functions through the Firestore proxy,
// the fake FCM; sends counted per token where FCM received them):
// - exactly once per (MsgKey, device) whatever the recipient list: a MsgKey republished with a
//   changed list, or two lists published at the same moment, pushes nobody twice and everyone once;
// - a MsgKey reused after its log expired is a new message, and nothing of the old log collides;
// - a claim whose commit applied but whose answer was lost goes on at once (its own lease);
// - a continuation that starts after MAX_EVENT_AGE_SECONDS records every device still open.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Timestamp } from "firebase-admin/firestore";
import { adminDb, callOk, clearFirestore, createUser, createUsers, eventually, publish, type TestUser } from "../helpers/emulators.ts";
import { PUSH_BATCH_TOPIC, PUSH_TOPIC, entriesOf, logDocs, msgKey, seedRunningBatch, sendsTo, waitForMessage, waitForPublications, type BatchDoc } from "../helpers/fanout.ts";
import { registerCertificate, type TestCertificate } from "../helpers/certificates.ts";
import { seedRecipients } from "../helpers/fanoutSeed.ts";
import { firestoreProxy } from "../helpers/firestoreProxy.ts";
import { trace } from "../diagnostics/helpers.ts";
import { msgKeyId } from "../../functions/src/fanout/recipients.ts";

let admin: TestUser;
let cert: TestCertificate;
const sender = "identity-sender";
const text = (t: string) => [{ MsgType: "TIMTextElem", MsgContent: { Text: t } }];
const event = (key: string, to: string[]) => ({ MsgKey: key, From_Account: sender, To_Account: to, MsgBody: text("hello") });

before(async () => {
  await clearFirestore();
  admin = await createUser({ admin: true });
  cert = await registerCertificate(admin, "identity");
});

after(async () => {
  await firestoreProxy.clearFaults();
});

const names = (prefix: string, n: number, from = 1) => Array.from({ length: n }, (_, i) => `${prefix}-${String(i + from).padStart(3, "0")}`);
const allEligible = (uids: string[]) => seedRecipients(uids, cert.certificateId, undefined, () => "background");

/** FCM's acceptances of this message for each token (what a phone would show). */
async function acceptedPerToken(tokens: Iterable<string>, key: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const token of tokens) {
    const accepted = (await sendsTo(token)).filter((s) => (s.message as { data?: { msgKey?: string } }).data?.msgKey === key && s.answeredStatus === 200);
    counts.set(token, accepted.length);
  }
  return counts;
}

async function assertEachOnce(tokens: Iterable<string>, key: string): Promise<void> {
  const counts = await acceptedPerToken(tokens, key);
  const wrong = [...counts].filter(([, n]) => n !== 1).map(([t, n]) => `${t.slice(0, 10)}…: ${n}`);
  assert.deepEqual(wrong, [], `every device pushed exactly once (${counts.size} tokens)`);
}

/** One outcome per device over every batch of every publication: the promise as the log keeps it. */
function assertOneOutcomeEach(docs: BatchDoc[], recipients: string[]): void {
  const keys = entriesOf(docs).map((e) => `${e.uid}/${e.deviceId ?? "(recipient)"}`);
  const repeated = keys.filter((k, i) => keys.indexOf(k) !== i);
  assert.deepEqual(repeated, [], "no device has two outcomes");
  const covered = new Set(entriesOf(docs).map((e) => e.uid));
  assert.deepEqual(recipients.filter((u) => !covered.has(u)), [], "every recipient of every publication has its outcome");
}

describe("the same MsgKey with a changed recipient list", () => {
  it("[a,b,c] then [a,b]: nobody twice; the second publication leaves a and b to the first", async () => {
    const uids = names(`shrink-${randomUUID().slice(0, 6)}`, 3);
    const seeded = await allEligible(uids);
    const key = msgKey("shrink");
    await publish(PUSH_TOPIC, event(key, uids));
    await waitForPublications(key, 1);
    await publish(PUSH_TOPIC, event(key, uids.slice(0, 2)));
    const docs = await waitForPublications(key, 2);
    assert.deepEqual(docs.map((d) => [d.generation, d.batchIndex]), [[0, 0], [1, 0]]);
    const [, second] = docs as [BatchDoc, BatchDoc];
    assert.deepEqual(second.uids, [], "it decides nobody");
    assert.deepEqual(second.ownedElsewhere, [{ uid: uids[0], generation: 0 }, { uid: uids[1], generation: 0 }]);
    assert.deepEqual([second.counts, second.entries.length], [{ sent: 0, skipped: 0, failed: 0 }, 0]);
    await assertEachOnce(seeded.eligibleTokens, key);
    assertOneOutcomeEach(docs, uids);

    const t = await trace(admin, key);
    assert.deepEqual(t.publications.map((p) => [p.generation, p.recipients, p.owned]), [[0, 3, 3], [1, 2, 0]]);
    assert.equal(t.devices.length, 3, "one outcome per device in the trace too");
    assert.deepEqual(t.batches.map((b) => [b.generation, b.ownedElsewhere]), [[0, 0], [1, 2]]);
    assert.match(t.summary, /to 3 recipients: 3 sent/);
    assert.match(t.summary, /published 2 times with different recipient lists \(2 recipients listed again were left to the publication that listed them first/);
  });

  it("[a,b] then [a,b,c]: c once, by the second publication; a and b once, by the first", async () => {
    const uids = names(`grow-${randomUUID().slice(0, 6)}`, 3);
    const seeded = await allEligible(uids);
    const key = msgKey("grow");
    await publish(PUSH_TOPIC, event(key, uids.slice(0, 2)));
    await waitForPublications(key, 1);
    await publish(PUSH_TOPIC, event(key, uids));
    const docs = await waitForPublications(key, 2);
    const [first, second] = docs as [BatchDoc, BatchDoc];
    assert.deepEqual(first.uids, uids.slice(0, 2));
    assert.deepEqual(second.uids, [uids[2]]);
    assert.deepEqual(second.entries.map((e) => [e.uid, e.outcome]), [[uids[2], "sent"]]);
    await assertEachOnce(seeded.eligibleTokens, key);
    assertOneOutcomeEach(docs, uids);
  });

  it("300 recipients, then the same 300 with one more at the front (every batch shifts): nobody twice, the new one once", async () => {
    const run = randomUUID().slice(0, 6);
    const pool = names(`front-${run}`, 300);
    const newcomer = `front-${run}-000`; // sorts first: both batches of the second list differ from the first's
    const seeded = await seedRecipients(pool, cert.certificateId);
    const fresh = await allEligible([newcomer]);
    const key = msgKey("front");
    await publish(PUSH_TOPIC, event(key, pool));
    await waitForPublications(key, 1);
    await publish(PUSH_TOPIC, event(key, [newcomer, ...pool]));
    const docs = await waitForPublications(key, 2);
    const second = docs.filter((d) => d.generation === 1);
    assert.equal(second.length, 2);
    assert.deepEqual(second.flatMap((d) => d.uids), [newcomer], "the second publication decides only the newcomer");
    assert.equal(second.reduce((n, d) => n + (d.ownedElsewhere?.length ?? 0), 0), 300);
    await assertEachOnce([...seeded.eligibleTokens, ...fresh.eligibleTokens], key);
    assertOneOutcomeEach(docs, [newcomer, ...pool]);
  });

  it("the two lists published at the same moment: one registers first, nobody twice, everyone once", async () => {
    const run = randomUUID().slice(0, 6);
    const pool = names(`race-${run}`, 250);
    const newcomer = `race-${run}-000`;
    const seeded = await seedRecipients(pool, cert.certificateId);
    const fresh = await allEligible([newcomer]);
    const key = msgKey("race");
    await Promise.all([publish(PUSH_TOPIC, event(key, pool)), publish(PUSH_TOPIC, event(key, [...pool, newcomer]))]);
    const docs = await waitForPublications(key, 2);
    await assertEachOnce([...seeded.eligibleTokens, ...fresh.eligibleTokens], key);
    assertOneOutcomeEach(docs, [newcomer, ...pool]);
    const t = await trace(admin, key);
    // Whichever came first owns all it listed; the other only what the first did not list.
    const [p0, p1] = t.publications as [(typeof t.publications)[0], (typeof t.publications)[0]];
    assert.equal(p0.owned, p0.recipients);
    assert.equal(p1.owned, p1.recipients === 251 ? 1 : 0);
  });

  it("property: overlapping lists of a pool published all at once, a few rounds: every listed account pushed once, nobody else", async (t) => {
    const seed = Number(process.env.IDENTITY_SEED ?? Date.now() % 100_000);
    t.diagnostic(`seed ${seed} (IDENTITY_SEED=${seed} replays it)`);
    let state = seed;
    const random = () => ((state = (state * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648);
    const run = randomUUID().slice(0, 6);
    const pool = names(`prop-${run}`, 24);
    const seeded = await allEligible(pool);
    const tokenOf = new Map<string, string>();
    for (const [i, token] of [...seeded.eligibleTokens].entries()) tokenOf.set(pool[i] as string, token);
    for (let round = 0; round < 3; round++) {
      const key = msgKey(`prop-${round}`);
      const lists = Array.from({ length: 4 }, () => pool.filter(() => random() < 0.4)).filter((l) => l.length > 0);
      const distinct = new Set(lists.map((l) => l.join(","))).size;
      await Promise.all(lists.map((l) => publish(PUSH_TOPIC, event(key, [...l].reverse()))));
      const docs = await waitForPublications(key, distinct);
      const listed = [...new Set(lists.flat())];
      const counts = await acceptedPerToken(tokenOf.values(), key);
      for (const uid of pool) assert.equal(counts.get(tokenOf.get(uid) as string), listed.includes(uid) ? 1 : 0, `round ${round}: ${uid} (seed ${seed})`);
      assertOneOutcomeEach(docs, listed);
    }
  });
});

describe("a MsgKey reused after its log expired", () => {
  it("is a new message: pushed again under a new epoch, and the old batches (still there) are neither found nor touched", async () => {
    const bob = `reused-${randomUUID().slice(0, 6)}`;
    const [token] = [...(await allEligible([bob])).eligibleTokens] as [string];
    const key = msgKey("reused");
    await publish(PUSH_TOPIC, event(key, [bob]));
    const [old] = await waitForMessage(key);
    // The record's expireAt passed; TTL has not run yet, so the record, the batch and its shards are all still there.
    const recordRef = adminDb().doc(`pushMessages/${msgKeyId(key)}`);
    await recordRef.update({ expireAt: Timestamp.fromMillis(Date.now() - 1_000) });
    await publish(PUSH_TOPIC, event(key, [bob]));
    await eventually(async () => ((await recordRef.get()).get("epoch") !== old!.epoch ? true : undefined), { what: "the record to be replaced" });
    const [current] = await waitForPublications(key, 1);
    assert.ok(current && current.epoch !== old!.epoch, "a batch under a new epoch");
    assert.notEqual(current.id, old!.id);
    assert.equal(current.entries[0]?.outcome, "sent");
    const leftover = (await logDocs(key)).find((d) => d.id === old!.id);
    assert.ok(leftover && leftover.kind === "batch");
    assert.deepEqual([leftover.state, leftover.duplicates, leftover.claims], ["done", 0, 1], "the old batch was not taken for the new message");
    const record = await recordRef.get();
    assert.equal(record.get("epoch"), current.epoch);
    assert.ok((record.get("expireAt") as Timestamp).toMillis() > Date.now());
    assert.equal((await acceptedPerToken([token], key)).get(token), 2, "two messages, one push each");
    // The operators see the message's current use only.
    const t = await trace(admin, key);
    assert.deepEqual(t.batches.map((b) => b.logId), [current.id]);
    assert.equal(t.counts.sent, 1);
  });
});

describe("a shared claim whose commit applied but whose answer was lost", () => {
  it("its batches find their own lease and go on at once, instead of waiting for it to expire (2 minutes)", async () => {
    const run = randomUUID().slice(0, 6);
    const pool = names(`lost-${run}`, 300);
    const seeded = await seedRecipients(pool, cert.certificateId);
    const key = msgKey("lost-answer");
    // Only this event's calls from here: its first commit is the inline batches' shared claim,
    // which also creates the message record. The emulator applies it; the functions hear INTERNAL.
    assert.ok((await firestoreProxy.waitQuiet({ quietMs: 1_000, timeoutMs: 60_000 })).quiet);
    const fault = await firestoreProxy.addFault({ kind: "lose-answer", methods: ["Commit"], calls: 1 });
    const started = Date.now();
    await publish(PUSH_TOPIC, event(key, pool));
    const docs = await waitForMessage(key, 100_000);
    const elapsedMs = Date.now() - started;
    assert.ok(elapsedMs < 60_000, `done after ${elapsedMs} ms: well inside the 120 s lease it would otherwise have waited out`);
    assert.equal((await firestoreProxy.faults()).find((f) => f.id === fault.id), undefined, "the fault was spent");
    assert.equal((await firestoreProxy.stats()).faulted["lose-answer"] >= 1, true);
    assert.deepEqual(docs.map((d) => d.claims), [1, 1], "resumed, not taken over");
    const record = await adminDb().doc(`pushMessages/${msgKeyId(key)}`).get();
    assert.ok(docs.every((d) => d.epoch === record.get("epoch")), "the lost commit's record and batches are the ones used");
    await assertEachOnce(seeded.eligibleTokens, key);
    assertOneOutcomeEach(docs, pool);
  });
});

describe("a continuation that starts after MAX_EVENT_AGE_SECONDS", () => {
  it("records event-too-old for every device still without an outcome, also of a recipient with some devices done", async () => {
    // bob has two devices (his login on phone-b kicked phone-a, which is still his device); carol one.
    const [bob, carol] = (await createUsers(2)) as [TestUser, TestUser];
    await callOk("login", { deviceId: "phone-a", platform: "android" }, bob);
    await callOk("login", { deviceId: "phone-b", platform: "android" }, bob);
    await callOk("login", { deviceId: "phone", platform: "android" }, carol);
    const key = msgKey("late-continuation");
    const uids = [bob.uid, carol.uid].sort();
    const publishTime = new Date(Date.now() - 2 * 3_600_000);
    // The batch as its first delivery left it: phone-a's outcome recorded, then out of time.
    const { message } = await seedRunningBatch({
      msgKey: key,
      from: sender,
      uids,
      owner: "first-delivery",
      deliveryId: "first-message",
      leaseUntilMs: Date.now() - 1_000,
      entries: [{ outcome: "skipped", uid: bob.uid, deviceId: "phone-a", reason: "kicked", detail: "recorded by the first delivery", at: Timestamp.now() }],
    });
    await publish(PUSH_BATCH_TOPIC, {
      v: 1,
      content: { MsgKey: key, From_Account: sender, MsgBody: text("late") },
      batchIndex: 0,
      batchCount: 1,
      uids,
      publishTime: publishTime.toISOString(),
      eventId: "first-message",
      continuation: 1,
      message,
    });
    const [doc] = await waitForMessage(key);
    const outcomes = doc!.entries.map((e) => [e.uid === bob.uid ? "bob" : "carol", e.deviceId, e.reason]).sort();
    assert.deepEqual(outcomes, [
      ["bob", "phone-a", "kicked"],
      ["bob", "phone-b", "event-too-old"],
      ["carol", null, "event-too-old"],
    ]);
    assert.equal(doc!.claims, 2);
  });
});
