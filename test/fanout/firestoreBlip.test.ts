// A Firestore blip in the middle of a batch never re-sends what was sent. The fault is injected at
// the Firestore proxy in front of the emulator (tools/firestore-proxy), on Commit only, after the
// claim's commit went through: the batch's first checkpoint (after 100 sends) meets it while the
// batch still has devices to send. FCM answers every request after 1 s, so the batch is mid-way
// when it does. What must hold, counted at the fake FCM: every device accepted exactly once, the
// batch done (a delivery that gave up would leave it running: the emulator never redelivers), and
// no new request while the record could not keep up.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Timestamp } from "firebase-admin/firestore";
import { adminDb, clearFirestore, createUser, eventually, publish, type TestUser } from "../helpers/emulators.ts";
import { registerCertificate } from "../helpers/certificates.ts";
import { PUSH_TOPIC, msgKey, sendsToProject, waitForMessage } from "../helpers/fanout.ts";
import { fakeFcm, type RecordedRequest } from "../helpers/fakeFcm.ts";
import { firestoreProxy, type Fault, type FaultInput } from "../helpers/firestoreProxy.ts";
import { fakeFcmToken } from "../helpers/sessions.ts";
import { seedDevice, seedToken } from "../helpers/fanoutSeed.ts";

let admin: TestUser;

before(async () => {
  await clearFirestore();
  admin = await createUser({ admin: true });
});

after(async () => {
  await firestoreProxy.clearFaults();
  await fakeFcm.clearErrors();
});

/** `users` recipients with two backgrounded devices each (a phone and a tablet), written directly: their tokens. */
async function seedTwoDeviceUsers(uids: string[], certificateId: number): Promise<string[]> {
  const at = Timestamp.fromMillis(Date.now() - 60_000);
  const tokens: string[] = [];
  const write = adminDb().batch();
  for (const uid of uids) {
    const devices: Record<string, unknown> = {};
    for (const deviceId of ["phone", "tablet"]) {
      const token = fakeFcmToken();
      tokens.push(token);
      devices[deviceId] = seedDevice(deviceId, { token: seedToken(certificateId, undefined, undefined, token) });
    }
    write.set(adminDb().doc(`users/${uid}`), { devices, updatedAt: at });
  }
  await write.commit();
  return tokens;
}

const tokenOf = (r: RecordedRequest) => (r.message as { token?: string } | null)?.token;

/**
 * 150 recipients, 300 devices, every FCM answer after 1 s: the probe, then 100 requests at a time.
 * `fault` applies to the functions' commits after the claim's; it is read back once it applied.
 */
async function batchThroughBlip(label: string, fault: FaultInput): Promise<{ requests: RecordedRequest[]; tokens: string[]; applied: Fault; sent: number }> {
  const cert = await registerCertificate(admin, label);
  const uids = Array.from({ length: 150 }, (_, i) => `blip-${label.replace(/\W/g, "")}-${String(i).padStart(3, "0")}`);
  const tokens = await seedTwoDeviceUsers(uids, cert.certificateId);
  await fakeFcm.addErrorRule({ projectId: cert.sa.project_id, delayMs: 1_000 });
  const injected = await firestoreProxy.addFault({ ...fault, methods: ["Commit"], skip: 1 });
  const key = msgKey("blip");
  await publish(PUSH_TOPIC, { MsgKey: key, From_Account: "blip-sender", To_Account: uids, MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: "through a blip" } }] });
  // The fault's record while it is in force: when it started applying and until when.
  const applied = await eventually(
    async () => {
      const f = (await firestoreProxy.faults()).find((x) => x.id === injected.id);
      return f && f.applied >= 1 && f.until !== null ? f : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 50, what: "the fault to meet a progress write" },
  );
  const [doc] = await waitForMessage(key, 120_000);
  assert.ok(doc);
  const requests = (await sendsToProject(cert.sa.project_id)).filter((r) => (r.message as { data?: { msgKey?: string } } | null)?.data?.msgKey === key);
  return { requests, tokens, applied, sent: doc.counts.sent };
}

function assertEachOnce(requests: RecordedRequest[], tokens: string[]): void {
  const perToken = new Map<string, number>();
  for (const r of requests) perToken.set(tokenOf(r) ?? "", (perToken.get(tokenOf(r) ?? "") ?? 0) + 1);
  assert.equal(perToken.size, tokens.length, "every device was sent to");
  for (const token of tokens) assert.equal(perToken.get(token), 1, `token ${token.slice(0, 12)}… requested ${perToken.get(token)} times`);
  assert.ok(requests.every((r) => r.answeredStatus === 200));
}

describe("a Firestore blip in the middle of a batch", () => {
  it("every commit refused for 8 s (stream reset: INTERNAL) once 100 devices were sent: no new request while the checkpoint is retried, then the rest; each device exactly once", async (t) => {
    const { requests, tokens, applied, sent } = await batchThroughBlip("reset", { kind: "reset", forMs: 8_000 });
    assertEachOnce(requests, tokens);
    assert.equal(sent, tokens.length);
    const from = Date.parse(applied.activeSince ?? "");
    const until = Date.parse(applied.until ?? "");
    // Requests already past their lease check when the first commit failed arrive within moments.
    const duringBlip = requests.filter((r) => Date.parse(r.receivedAt) > from + 2_000 && Date.parse(r.receivedAt) < until);
    assert.deepEqual(duringBlip.length, 0, "no request started while the record could not be written");
    const afterBlip = requests.filter((r) => Date.parse(r.receivedAt) >= until);
    assert.ok(afterBlip.length >= 1, "the devices left were sent once the record was written");
    t.diagnostic(`refused commits: ${applied.applied}; ${requests.length} requests, ${afterBlip.length} after the blip`);
  });

  it("every commit stalled for 15 s (longer than a write attempt's 10 s): the abandoned attempt lands late and is recognised; each device exactly once", async (t) => {
    const { requests, tokens, applied, sent } = await batchThroughBlip("stall", { kind: "stall", forMs: 15_000 });
    assertEachOnce(requests, tokens);
    assert.equal(sent, tokens.length);
    t.diagnostic(`stalled commits: ${applied.applied}; ${requests.length} requests`);
  });
});
