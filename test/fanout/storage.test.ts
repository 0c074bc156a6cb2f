// Storage that stays bounded, end to end: every document the push log writes, at every level,
// expires (a TTL policy on its collection group in firestore.indexes.json, an expireAt on the
// document: a TTL delete never deletes subcollections), and the statistics are spread over enough
// documents that concurrent batches lose no count.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { before, describe, it } from "node:test";
import { Timestamp, type CollectionReference } from "firebase-admin/firestore";
import { adminDb, callOk, clearFirestore, createUser, eventually, publish, type TestUser } from "../helpers/emulators.ts";
import { PUSH_TOPIC, killedDevice, msgKey, waitForMessage, waitForPublications, waitForRejected, type BatchDoc } from "../helpers/fanout.ts";
import { registerCertificate, type TestCertificate } from "../helpers/certificates.ts";
import { seedRecipients } from "../helpers/fanoutSeed.ts";
import { fakeFcmToken } from "../helpers/sessions.ts";
import { stats, todayUtc } from "../diagnostics/helpers.ts";

let admin: TestUser;
let cert: TestCertificate;
const text = (t: string) => [{ MsgType: "TIMTextElem", MsgContent: { Text: t } }];

/** Collections that are the service's state, not its log: they live as long as the accounts, devices and certificates they describe. */
const PERMANENT: Record<string, string> = {
  users: "each user's devices, kept while the account exists",
  pushTokens: "a token's one owner, deleted when the token is unbound",
  pushCertificates: "the uploaded keys, deleted by deletePushCertificate",
  meta: "the certificate ID counter",
};

interface FieldOverride {
  collectionGroup: string;
  fieldPath: string;
  ttl?: boolean;
  indexes: unknown[];
}
// Tests run from the repository root (scripts/emulators.mjs).
const overrides = (JSON.parse(readFileSync("firestore.indexes.json", "utf8")) as { fieldOverrides: FieldOverride[] }).fieldOverrides;

before(async () => {
  await clearFirestore();
  admin = await createUser({ admin: true });
  cert = await registerCertificate(admin, "storage");
});

describe("every document the push log writes expires", () => {
  it("after a push, a receipt, a publication with its own document and a later one, a rejected event and an app's send: every collection has a TTL policy, every document an expireAt", async () => {
    const [alice, bob, carol] = [await createUser(), await createUser(), await createUser()];
    await killedDevice(bob, cert.certificateId);
    // carol's iPhone: its badge count (pushBadges).
    await callOk("login", { deviceId: "iphone", platform: "ios" }, carol);
    await callOk("setOfflinePushToken", { deviceId: "iphone", certificateId: cert.certificateId, token: fakeFcmToken() }, carol);
    await callOk("doBackground", { deviceId: "iphone", unreadCount: 1 }, carol);
    // A push and its receipt (pushLog, outcomes, pushMessages, pushOpened, pushStats).
    const key = msgKey("ttl");
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: "ttl-sender", To_Account: [bob.uid, carol.uid], MsgBody: text("hi") });
    await waitForMessage(key);
    await callOk("reportPushOpened", { msgKey: key, deviceId: "phone" }, bob);
    await eventually(async () => ((await adminDb().collection("pushOpened").where("msgKey", "==", key).get()).size === 1 ? true : undefined), { what: "the receipt" });
    // A publication too large to keep its accounts in the message record, then a changed list (generations).
    const big = msgKey("ttl-big");
    const many = Array.from({ length: 1_100 }, (_, i) => `ttl-${String(i).padStart(4, "0")}`);
    await publish(PUSH_TOPIC, { MsgKey: big, From_Account: "ttl-sender", To_Account: many, MsgBody: text("to many") });
    await waitForPublications(big, 1, 120_000);
    await publish(PUSH_TOPIC, { MsgKey: big, From_Account: "ttl-sender", To_Account: [...many, "ttl-late"], MsgBody: text("to many") });
    await waitForPublications(big, 2, 120_000);
    // A rejected event, and an app's own send (sendLimits).
    const bad = msgKey("ttl-bad");
    await publish(PUSH_TOPIC, { MsgKey: bad, From_Account: "ttl-sender" });
    await waitForRejected(bad);
    const sent = await callOk<{ msgKey: string }>("sendMessage", { to: bob.uid, body: "from the app" }, alice);
    await waitForMessage(sent.msgKey);

    const seen = new Map<string, number>();
    const withoutExpiry: string[] = [];
    const walk = async (collection: CollectionReference): Promise<void> => {
      const docs = await collection.get();
      seen.set(collection.id, (seen.get(collection.id) ?? 0) + docs.size);
      for (const doc of docs.docs) {
        if (!(doc.get("expireAt") instanceof Timestamp)) withoutExpiry.push(doc.ref.path);
        for (const sub of await doc.ref.listCollections()) await walk(sub);
      }
    };
    const topLevel = await adminDb().listCollections();
    for (const collection of topLevel) if (!(collection.id in PERMANENT)) await walk(collection);

    assert.deepEqual(withoutExpiry, [], "every document has an expireAt");
    const ttlGroups = new Set(overrides.filter((o) => o.fieldPath === "expireAt" && o.ttl === true).map((o) => o.collectionGroup));
    assert.deepEqual([...seen.keys()].filter((group) => !ttlGroups.has(group)), [], "every collection group has a TTL policy on expireAt");
    // The walk saw what it claims: every kind of log document was written and checked.
    for (const group of ["pushLog", "outcomes", "pushMessages", "generations", "pushOpened", "pushStats", "sendLimits", "pushBadges"]) assert.ok((seen.get(group) ?? 0) > 0, `${group} was written`);
    assert.deepEqual(topLevel.map((c) => c.id).filter((id) => !seen.has(id) && !(id in PERMANENT)), []);
    // Big array, bytes and map fields are not indexed (an index entry per element otherwise).
    const exempt = new Set(overrides.filter((o) => o.fieldPath !== "expireAt" && o.indexes.length === 0).map((o) => `${o.collectionGroup}.${o.fieldPath}`));
    for (const field of ["outcomes.entries", "generations.ownedHashes", "pushMessages.generations", "pushLog.ownedElsewhere", "pushLog.outcomes", "pushStats.days", "pushBadges.devices"]) assert.ok(exempt.has(field), `${field} is exempt from indexing`);
  });
});

describe("statistics spread over documents", () => {
  it("40 batches finishing at once lose no count: pushStats adds up to what their batch documents say", async () => {
    const range = { from: todayUtc(-1), to: todayUtc(1) };
    const before = (await stats(admin, range)).totals;
    const run = randomUUID().slice(0, 6);
    const uids = Array.from({ length: 40 }, (_, i) => `spread-${run}-${String(i).padStart(2, "0")}`);
    await seedRecipients(uids, cert.certificateId);
    const keys = uids.map(() => msgKey("spread"));
    await Promise.all(keys.map((key, i) => publish(PUSH_TOPIC, { MsgKey: key, From_Account: "spread-sender", To_Account: uids[i], MsgBody: text("at once") })));
    const docs: BatchDoc[] = (await Promise.all(keys.map((key) => waitForMessage(key, 120_000)))).flat();
    const after = (await stats(admin, range)).totals;

    const sum = (f: (d: BatchDoc) => number) => docs.reduce((n, d) => n + f(d), 0);
    assert.equal((after.events ?? 0) - (before.events ?? 0), 40);
    assert.equal((after.recipients ?? 0) - (before.recipients ?? 0), 40);
    assert.equal(after.sent - before.sent, sum((d) => d.counts.sent));
    assert.equal((after.skipped ?? 0) - (before.skipped ?? 0), sum((d) => d.counts.skipped));
    const skippedBy: Record<string, number> = {};
    for (const e of docs.flatMap((d) => d.entries)) if (e.outcome === "skipped") skippedBy[e.reason] = (skippedBy[e.reason] ?? 0) + 1;
    for (const [reason, n] of Object.entries(skippedBy)) assert.equal((after.skippedByReason[reason] ?? 0) - (before.skippedByReason[reason] ?? 0), n, reason);
    // Spread: the 40 batches' counts went to many documents (a hash of each batch among 1,024 a month), not 4.
    const month = new Date().toISOString().slice(0, 7);
    const shards = await adminDb().collection("pushStats").where("month", "==", month).get();
    assert.ok(shards.size >= 20, `${shards.size} statistics documents this month`);
  });
});
