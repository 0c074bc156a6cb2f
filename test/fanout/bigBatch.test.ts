// A batch at the limits: the largest batch size (MAX_FANOUT_BATCH_SIZE, 500 recipients), 20 devices
// per user (MAX_DEVICES, as the multi-device policy allows), every device ID at its 128-character
// bound. Before outcomes were sharded, such a batch's log passed Firestore's 1 MiB limit and nobody
// in it was pushed. The emulated functions run with FANOUT_BATCH_SIZE=200, so the batch is
// delivered here by the fan-out's own processBatch, in this process, against the Firestore
// emulator and the fake FCM (the same endpoints the emulated functions use).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { before, describe, it } from "node:test";
import { Timestamp } from "firebase-admin/firestore";
import { processBatch } from "../../functions/src/fanout/batch.ts";
import { DEFAULT_PLACEHOLDERS } from "../../functions/src/fanout/message.ts";
import { SHARD_ENTRIES, batchRef, readBatchEntries } from "../../functions/src/fanout/pushLog.ts";
import { PushContentSchema } from "../../functions/src/fanout/schemas.ts";
import { MAX_FANOUT_BATCH_SIZE } from "../../functions/src/config.ts";
import { MAX_DEVICES } from "../../functions/src/sessions/policy.ts";
import { DeviceSchema, tokenHash } from "../../functions/src/sessions/schemas.ts";
import { adminDb, clearFirestore, createUser } from "../helpers/emulators.ts";
import { registerCertificate, type TestCertificate } from "../helpers/certificates.ts";
import { fakeFcm } from "../helpers/fakeFcm.ts";
import { dotenv, runAsEmulatedFunctions } from "../helpers/functionsEnv.ts";
import { fakeFcmToken } from "../helpers/sessions.ts";

let cert: TestCertificate;

before(async () => {
  await clearFirestore();
  cert = await registerCertificate(await createUser({ admin: true }), "big batch");
  // The emulated functions' FCM endpoints (the fake) and Firestore (through the proxy).
  runAsEmulatedFunctions();
});

describe("a batch at the limits", () => {
  it("500 recipients x 20 devices with 128-character IDs: every device pushed once, every outcome recorded, no document near 1 MiB", async (t) => {
    const kek = Buffer.from(dotenv("functions/.secret.local").PUSH_KEY_ENCRYPTION_KEY!, "base64");
    const now = Date.now();
    const at = Timestamp.fromMillis(now - 60_000);
    const uids = Array.from({ length: MAX_FANOUT_BATCH_SIZE }, (_, i) => `big-${String(i).padStart(3, "0")}-${"u".repeat(116)}`);
    const tokens = new Set<string>();
    for (let i = 0; i < uids.length; i += 100) {
      const batch = adminDb().batch();
      for (const uid of uids.slice(i, i + 100)) {
        const devices: Record<string, unknown> = {};
        for (let d = 0; d < MAX_DEVICES; d++) {
          const deviceId = `${String(d).padStart(2, "0")}-${"d".repeat(125)}`;
          const token = fakeFcmToken();
          tokens.add(token);
          devices[deviceId] = DeviceSchema.parse({
            deviceId,
            platform: "android",
            session: "logged-in",
            sessionId: randomUUID(),
            loggedInAt: at,
            endedAt: null,
            kickedByDeviceId: null,
            appState: "background",
            appStateAt: at,
            unreadCount: 1,
            lastHeartbeatAt: at,
            token: { certificateId: cert.certificateId, token, tokenHash: tokenHash(token), boundAt: at, refreshedAt: at },
          });
        }
        batch.set(adminDb().doc(`users/${uid}`), { devices, updatedAt: at });
      }
      await batch.commit();
    }
    assert.equal(tokens.size, MAX_FANOUT_BATCH_SIZE * MAX_DEVICES);

    const key = `big-${randomUUID()}`;
    const started = Date.now();
    const result = await processBatch(
      {
        content: PushContentSchema.parse({ MsgKey: key, From_Account: "big-sender", MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: "to everyone" } }] }),
        uids,
        message: { epoch: "b16", generation: 0 },
        batchIndex: 0,
        batchCount: 1,
        eventId: key,
        deliveryId: key,
        publishTimeMs: Date.now(),
      },
      {
        settings: {
          batchSize: MAX_FANOUT_BATCH_SIZE,
          maxEventAgeMs: 3_600_000,
          leaseMs: 120_000,
          checkpointEvery: 100,
          sendConcurrency: 50,
          retryBaseDelayMs: 1_000,
          retryMaxDelayMs: 30_000,
          pushLogTtlMs: 86_400_000,
          invocationBudgetMs: 420_000,
          inlineBatches: 5,
        },
        placeholders: DEFAULT_PLACEHOLDERS,
        kek: () => kek,
        handOn: () => Promise.reject(new Error("a healthy FCM never needs a continuation")),
      },
    );
    t.diagnostic(`processBatch: ${Date.now() - started} ms`);
    assert.equal(result.status, "done");
    assert.deepEqual(result.status === "done" && result.counts, { sent: tokens.size, skipped: 0, failed: 0 });

    const entries = await readBatchEntries(batchRef(result.logId));
    assert.equal(entries.length, tokens.size, "one outcome per device");
    assert.equal(new Set(entries.map((e) => `${e.uid}/${e.deviceId}`)).size, tokens.size, "no device twice");
    const shards = await batchRef(result.logId).collection("outcomes").get();
    const largest = Math.max(...shards.docs.map((d) => Buffer.byteLength(JSON.stringify(d.data()))));
    assert.ok(shards.docs.every((d) => (d.get("entries") as unknown[]).length <= SHARD_ENTRIES));
    assert.ok(largest < 400_000, `largest shard ~${largest} bytes as JSON`);
    const batchDocBytes = Buffer.byteLength(JSON.stringify((await batchRef(result.logId).get()).data()));
    assert.ok(batchDocBytes < 200_000, `batch document ~${batchDocBytes} bytes as JSON`);
    t.diagnostic(`${shards.size} shards, largest ~${largest} bytes; batch document ~${batchDocBytes} bytes`);

    const accepted = (await fakeFcm.requests({ projectId: cert.sa.project_id })).filter((r) => !r.validateOnly && r.answeredStatus === 200);
    const perToken = new Map<string, number>();
    for (const r of accepted) {
      const token = (r.message as { token: string }).token;
      perToken.set(token, (perToken.get(token) ?? 0) + 1);
    }
    assert.equal(perToken.size, tokens.size, "every device reached");
    assert.ok([...perToken.values()].every((n) => n === 1), "each exactly once");
  });
});
