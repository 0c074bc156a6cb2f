// Push certificates, end to end: callables over HTTP with Auth-emulator ID tokens, state in the
// Firestore emulator, the key checked against the fake FCM.
import assert from "node:assert/strict";
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { before, describe, it } from "node:test";
import { adminDb, call, callOk, callRetrying, clearFirestore, createUser, eventually, mapLimit, type TestUser } from "../helpers/emulators.ts";
import { fakeFcm, type ServiceAccountJson } from "../helpers/fakeFcm.ts";

let admin: TestUser;
let user: TestUser;

/** Every key this file sends to the functions: none may ever appear in a log line. */
const issued: ServiceAccountJson[] = [];

async function newServiceAccount(projectId?: string): Promise<ServiceAccountJson> {
  const sa = await fakeFcm.createServiceAccount(projectId);
  issued.push(sa);
  return sa;
}

before(async () => {
  await clearFirestore();
  [admin, user] = await Promise.all([createUser({ admin: true }), createUser()]);
});

const callables = ["registerPushCertificate", "updatePushCertificate", "listPushCertificates", "deletePushCertificate"];

/** A key pair that the fake FCM has never seen: Google would refuse its grant. */
function unknownServiceAccount(): ServiceAccountJson {
  const privateKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  const projectId = `demo-unknown-${randomUUID().slice(0, 8)}`;
  const sa: ServiceAccountJson = {
    type: "service_account",
    project_id: projectId,
    private_key_id: randomUUID().replaceAll("-", ""),
    private_key: privateKey,
    client_email: `firebase-adminsdk-x@${projectId}.iam.gserviceaccount.com`,
    client_id: "1234567890",
    auth_uri: "https://accounts.google.com/o/oauth2/auth",
    token_uri: "https://oauth2.googleapis.com/token",
    auth_provider_x509_cert_url: "https://www.googleapis.com/oauth2/v1/certs",
    client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${projectId}`,
    universe_domain: "googleapis.com",
  };
  issued.push(sa);
  return sa;
}

/** A PEM whose base64 body no longer decodes to a key. */
const garbled = (pem: string) => pem.replace(/[A-Za-z]{12}/, "!!!!garbled!!");

/** Key material that must never leave the server: the PEM's base64 body lines. */
function secretFragments(sa: ServiceAccountJson): string[] {
  return sa.private_key
    .split("\n")
    .filter((line) => line && !line.startsWith("-----"))
    .map((line) => line.slice(0, 40));
}

function assertNoKeyMaterial(value: unknown, sa: ServiceAccountJson, where: string) {
  const text = JSON.stringify(value);
  assert.ok(!text.includes("PRIVATE KEY"), `${where} contains a PEM header`);
  for (const fragment of secretFragments(sa)) assert.ok(!text.includes(fragment), `${where} contains private key material`);
  assert.ok(!text.includes(sa.private_key.replaceAll("\n", "\\n").slice(0, 60)), `${where} contains the private key`);
}

async function certificateDocs() {
  return (await adminDb().collection("pushCertificates").get()).docs;
}

describe("push certificate callables: access", () => {
  for (const name of callables) {
    it(`${name}: unauthenticated -> unauthenticated`, async () => {
      const res = await call(name, {});
      assert.equal(res.error?.status, "UNAUTHENTICATED");
    });
    it(`${name}: a signed-in user without the admin claim -> permission-denied`, async () => {
      const res = await call(name, {}, user);
      assert.equal(res.error?.status, "PERMISSION_DENIED");
    });
  }
});

describe("registerPushCertificate", () => {
  it("registers a key FCM accepts, after a validate_only send, and never returns or stores the key in clear", async () => {
    const sa = await newServiceAccount();
    const res = await callOk("registerPushCertificate", { serviceAccount: JSON.stringify(sa), label: "chat app" }, admin);
    assert.equal(typeof res.certificateId, "number");
    assert.ok(Number.isInteger(res.certificateId) && res.certificateId > 0);
    assert.equal(res.projectId, sa.project_id);
    assert.equal(res.clientEmail, sa.client_email);
    assert.equal(res.privateKeyId, sa.private_key_id);
    assert.ok(!Number.isNaN(Date.parse(res.createdAt)));
    assertNoKeyMaterial(res, sa, "the response");

    const doc = await adminDb().doc(`pushCertificates/${res.certificateId}`).get();
    assert.ok(doc.exists);
    assertNoKeyMaterial(doc.data(), sa, "the stored document");
    assert.equal(doc.get("encryptedKey.alg"), "A256GCM");
    assert.equal(doc.get("version"), 1);
    assert.equal(doc.get("health.state"), "healthy");

    const checks = await fakeFcm.requests({ projectId: sa.project_id });
    assert.equal(checks.length, 1, "exactly one check send");
    assert.equal(checks[0]?.validateOnly, true);
    assert.equal(checks[0]?.clientEmail, sa.client_email);
    assert.ok((checks[0]?.message as { topic?: string }).topic, "the check targets a topic, not a device");
  });

  it("accepts the service account as an object too", async () => {
    const sa = await newServiceAccount();
    const res = await callOk("registerPushCertificate", { serviceAccount: sa }, admin);
    assert.equal(res.projectId, sa.project_id);
  });

  const malformed: Array<[string, (sa: ServiceAccountJson) => unknown, string]> = [
    ["not JSON", () => ({ serviceAccount: "{not json" }), "serviceAccount"],
    ["not a string or object", () => ({ serviceAccount: 42 }), "serviceAccount"],
    ["missing serviceAccount", () => ({}), "serviceAccount"],
    ["wrong type", (sa) => ({ serviceAccount: { ...sa, type: "authorized_user" } }), "serviceAccount.type"],
    ["missing project_id", (sa) => ({ serviceAccount: { ...sa, project_id: undefined } }), "serviceAccount.project_id"],
    ["bad project_id", (sa) => ({ serviceAccount: { ...sa, project_id: "Not A Project!" } }), "serviceAccount.project_id"],
    ["missing client_email", (sa) => ({ serviceAccount: { ...sa, client_email: undefined } }), "serviceAccount.client_email"],
    ["bad client_email", (sa) => ({ serviceAccount: { ...sa, client_email: "nobody" } }), "serviceAccount.client_email"],
    ["missing private_key_id", (sa) => ({ serviceAccount: { ...sa, private_key_id: undefined } }), "serviceAccount.private_key_id"],
    ["missing private_key", (sa) => ({ serviceAccount: { ...sa, private_key: undefined } }), "serviceAccount.private_key"],
    ["missing token_uri", (sa) => ({ serviceAccount: { ...sa, token_uri: undefined } }), "serviceAccount.token_uri"],
    [
      "a garbled PEM",
      (sa) => ({ serviceAccount: { ...sa, private_key: garbled(sa.private_key) } }),
      "serviceAccount.private_key",
    ],
    [
      "a non-RSA key",
      (sa) => ({
        serviceAccount: {
          ...sa,
          private_key: generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }),
        },
      }),
      "serviceAccount.private_key",
    ],
    ["an oversized file", (sa) => ({ serviceAccount: JSON.stringify({ ...sa, padding: "x".repeat(40_000) }) }), "serviceAccount"],
    ["an extra unknown field", (sa) => ({ serviceAccount: sa, unexpected: true }), "unexpected"],
    ["a label too long", (sa) => ({ serviceAccount: sa, label: "l".repeat(101) }), "label"],
  ];

  for (const [what, build, field] of malformed) {
    it(`${what} -> invalid-argument naming ${field}, nothing stored, no key echoed`, async () => {
      const sa = await newServiceAccount();
      const before = (await certificateDocs()).length;
      const res = await call("registerPushCertificate", build(sa), admin);
      assert.equal(res.error?.status, "INVALID_ARGUMENT", JSON.stringify(res.error));
      assert.equal(res.error?.details?.field, field, res.error?.message);
      assert.ok(res.error?.message.startsWith(`${field}:`), res.error?.message);
      assertNoKeyMaterial(res.error, sa, "the error");
      assert.equal((await certificateDocs()).length, before);
      assert.equal((await fakeFcm.requests({ projectId: sa.project_id })).length, 0, "invalid input never reaches FCM");
    });
  }

  it("a key whose access-token grant Google refuses -> failed-precondition saying why, nothing stored", async () => {
    const sa = unknownServiceAccount();
    const before = (await certificateDocs()).length;
    const res = await call("registerPushCertificate", { serviceAccount: sa }, admin);
    assert.equal(res.error?.status, "FAILED_PRECONDITION", JSON.stringify(res.error));
    assert.match(res.error?.message ?? "", /invalid_grant/);
    assertNoKeyMaterial(res.error, sa, "the error");
    assert.equal((await certificateDocs()).length, before);
  });

  it("a key FCM refuses to send with -> failed-precondition with FCM's answer, nothing stored", async () => {
    const sa = await newServiceAccount();
    await fakeFcm.addErrorRule({ projectId: sa.project_id, httpStatus: 403, status: "PERMISSION_DENIED", message: "Permission 'cloudmessaging.messages.create' denied" });
    const before = (await certificateDocs()).length;
    const res = await call("registerPushCertificate", { serviceAccount: sa }, admin);
    assert.equal(res.error?.status, "FAILED_PRECONDITION", JSON.stringify(res.error));
    assert.match(res.error?.message ?? "", /PERMISSION_DENIED/);
    assert.match(res.error?.message ?? "", /cloudmessaging\.messages\.create/);
    assert.equal((await certificateDocs()).length, before);
    await fakeFcm.clearErrors();
  });

  it("a key a certificate already holds -> already-exists naming that certificate, nothing stored; allowDuplicateKey registers it again", async () => {
    const sa = await newServiceAccount();
    const first = await callOk("registerPushCertificate", { serviceAccount: sa, label: "the original" }, admin);
    const checksBefore = (await fakeFcm.requests({ projectId: sa.project_id })).length;
    const countBefore = (await certificateDocs()).length;
    const again = await call("registerPushCertificate", { serviceAccount: JSON.stringify(sa), label: "again" }, admin);
    assert.equal(again.error?.status, "ALREADY_EXISTS", JSON.stringify(again.error));
    assert.match(again.error?.message ?? "", new RegExp(`already registered as certificate ${first.certificateId} \\("the original"\\)`));
    assert.equal(again.error?.details?.certificateId, first.certificateId);
    assert.equal(again.error?.details?.field, "serviceAccount.private_key_id");
    assert.equal(again.error?.details?.override, "allowDuplicateKey");
    assertNoKeyMaterial(again.error, sa, "the refusal");
    assert.equal((await certificateDocs()).length, countBefore, "nothing stored");
    assert.equal((await fakeFcm.requests({ projectId: sa.project_id })).length, checksBefore, "refused before any FCM round trip");

    const forced = await callOk("registerPushCertificate", { serviceAccount: sa, allowDuplicateKey: true }, admin);
    assert.ok(forced.certificateId > first.certificateId);
    assert.equal(forced.privateKeyId, first.privateKeyId);
    const bad = await call("registerPushCertificate", { serviceAccount: sa, allowDuplicateKey: "yes" }, admin);
    assert.equal(bad.error?.details?.field, "allowDuplicateKey");
  });

  it("the same key registered 5 times at once: one certificate, the others already-exists", async () => {
    const sa = await newServiceAccount();
    const results = await Promise.all(Array.from({ length: 5 }, () => callRetrying("registerPushCertificate", { serviceAccount: sa }, admin)));
    const ok = results.filter((r) => r.error === undefined);
    assert.equal(ok.length, 1, JSON.stringify(results.map((r) => r.error?.status ?? "OK")));
    for (const r of results.filter((x) => x.error)) assert.equal(r.error?.status, "ALREADY_EXISTS");
    const holders = (await certificateDocs()).filter((d) => d.get("privateKeyId") === sa.private_key_id);
    assert.equal(holders.length, 1);
  });

  it("20 concurrent registrations get 20 distinct IDs", async () => {
    const accounts = await mapLimit(Array.from({ length: 20 }), 10, () => newServiceAccount());
    // All 20 sent at once; the emulator runs FUNCTIONS_EMULATOR_PARALLEL of them at a time, and an
    // ABORTED answer (allocator contention) is retried as a client would.
    const results = await Promise.all(accounts.map((sa) => callRetrying("registerPushCertificate", { serviceAccount: sa }, admin)));
    for (const r of results) assert.equal(r.error, undefined, JSON.stringify(r.error));
    const ids = results.map((r) => r.result.certificateId as number);
    assert.equal(new Set(ids).size, 20, `IDs: ${ids.join(",")}`);
    const stored = await adminDb().getAll(...ids.map((id) => adminDb().doc(`pushCertificates/${id}`)));
    for (const [i, snap] of stored.entries()) {
      assert.equal(snap.get("projectId"), accounts[i]?.project_id, "each ID holds its own certificate");
    }
  });
});

describe("updatePushCertificate / listPushCertificates / deletePushCertificate", () => {
  it("replaces the key (version up, takes effect at once) and relabels", async () => {
    const first = await newServiceAccount();
    const { certificateId } = await callOk("registerPushCertificate", { serviceAccount: first }, admin);
    const rotated = await newServiceAccount(first.project_id);
    const updated = await callOk("updatePushCertificate", { certificateId, serviceAccount: rotated, label: "rotated" }, admin);
    assert.equal(updated.privateKeyId, rotated.private_key_id);
    assert.equal(updated.version, 2);
    assert.equal(updated.label, "rotated");
    assertNoKeyMaterial(updated, rotated, "the update response");
    const doc = await adminDb().doc(`pushCertificates/${certificateId}`).get();
    assertNoKeyMaterial(doc.data(), rotated, "the stored document");
    assert.equal(doc.get("clientEmail"), rotated.client_email);

    const relabelled = await callOk("updatePushCertificate", { certificateId, label: "only the label" }, admin);
    assert.equal(relabelled.version, 2, "a label change keeps the key");
    assert.equal(relabelled.label, "only the label");
  });

  it("an update whose key fails validation leaves the old key in place", async () => {
    const sa = await newServiceAccount();
    const { certificateId } = await callOk("registerPushCertificate", { serviceAccount: sa }, admin);
    const before = (await adminDb().doc(`pushCertificates/${certificateId}`).get()).data();

    const rejected = await call("updatePushCertificate", { certificateId, serviceAccount: unknownServiceAccount() }, admin);
    assert.equal(rejected.error?.status, "FAILED_PRECONDITION");
    const garbledRes = await call("updatePushCertificate", { certificateId, serviceAccount: { ...sa, private_key: garbled(sa.private_key) } }, admin);
    assert.equal(garbledRes.error?.status, "INVALID_ARGUMENT");
    assert.equal(garbledRes.error?.details?.field, "serviceAccount.private_key");

    const after = (await adminDb().doc(`pushCertificates/${certificateId}`).get()).data();
    assert.deepEqual(after, before, "the stored certificate is untouched");
  });

  it("a key of another Firebase project is refused unless allowProjectChange is given", async () => {
    const sa = await newServiceAccount();
    const { certificateId } = await callOk("registerPushCertificate", { serviceAccount: sa }, admin);
    const before = (await adminDb().doc(`pushCertificates/${certificateId}`).get()).data();
    const otherProject = await newServiceAccount();

    const refused = await call("updatePushCertificate", { certificateId, serviceAccount: otherProject }, admin);
    assert.equal(refused.error?.status, "FAILED_PRECONDITION");
    assert.equal(refused.error?.details?.field, "serviceAccount.project_id");
    assert.match(refused.error?.message ?? "", new RegExp(`${sa.project_id}.*${otherProject.project_id}`));
    assert.deepEqual((await adminDb().doc(`pushCertificates/${certificateId}`).get()).data(), before);
    assert.equal((await fakeFcm.requests({ projectId: otherProject.project_id })).length, 0, "refused before any FCM call");

    const moved = await callOk("updatePushCertificate", { certificateId, serviceAccount: otherProject, allowProjectChange: true }, admin);
    assert.equal(moved.projectId, otherProject.project_id);
    assert.equal(moved.version, 2);
  });

  it("validates its arguments", async () => {
    const cases: Array<[unknown, string]> = [
      [{ certificateId: "12" }, "certificateId"],
      [{ certificateId: -1, label: "x" }, "certificateId"],
      [{ certificateId: 1.5, label: "x" }, "certificateId"],
      [{ certificateId: 1 }, "serviceAccount"],
      [{ certificateId: 1, label: "x", extra: 1 }, "extra"],
      [{ certificateId: 1, label: "x", allowProjectChange: "yes" }, "allowProjectChange"],
    ];
    for (const [data, field] of cases) {
      const res = await call("updatePushCertificate", data, admin);
      assert.equal(res.error?.status, "INVALID_ARGUMENT", JSON.stringify(data));
      assert.equal(res.error?.details?.field, field, JSON.stringify(data));
    }
    const del = await call("deletePushCertificate", { certificateId: "x" }, admin);
    assert.equal(del.error?.details?.field, "certificateId");
    const list = await call("listPushCertificates", { extra: true }, admin);
    assert.equal(list.error?.details?.field, "extra");
  });

  it("unknown certificate IDs -> not-found", async () => {
    const sa = await newServiceAccount();
    assert.equal((await call("updatePushCertificate", { certificateId: 999_999, serviceAccount: sa }, admin)).error?.status, "NOT_FOUND");
    assert.equal((await call("deletePushCertificate", { certificateId: 999_999 }, admin)).error?.status, "NOT_FOUND");
  });

  it("lists metadata only, and delete says how many tokens were bound; IDs are never reused", async () => {
    const sa = await newServiceAccount();
    const { certificateId } = await callOk("registerPushCertificate", { serviceAccount: sa, label: "to delete" }, admin);
    const { certificates } = await callOk("listPushCertificates", {}, admin);
    const listed = certificates.find((c: { certificateId: number }) => c.certificateId === certificateId);
    assert.deepEqual(Object.keys(listed).sort(), ["certificateId", "clientEmail", "createdAt", "health", "label", "privateKeyId", "projectId", "updatedAt", "version"]);
    assertNoKeyMaterial(certificates, sa, "the list");

    // Two devices hold tokens of this certificate (as setOfflinePushToken records them).
    const tokens = adminDb().collection("pushTokens");
    await Promise.all([
      tokens.doc(`t1-${certificateId}`).set({ uid: "u1", deviceId: "d1", certificateId }),
      tokens.doc(`t2-${certificateId}`).set({ uid: "u2", deviceId: "d1", certificateId }),
    ]);
    // A dry run (the console's confirmation) counts them and deletes nothing.
    const counted = await callOk("deletePushCertificate", { certificateId, dryRun: true }, admin);
    assert.deepEqual(counted, { deleted: false, certificateId, boundTokens: 2 });
    assert.equal((await adminDb().doc(`pushCertificates/${certificateId}`).get()).exists, true);
    const deleted = await callOk("deletePushCertificate", { certificateId }, admin);
    assert.deepEqual(deleted, { deleted: true, certificateId, boundTokens: 2 });
    assert.equal((await adminDb().doc(`pushCertificates/${certificateId}`).get()).exists, false);
    const after = await callOk("listPushCertificates", {}, admin);
    assert.ok(!after.certificates.some((c: { certificateId: number }) => c.certificateId === certificateId));

    const next = await callOk("registerPushCertificate", { serviceAccount: await newServiceAccount() }, admin);
    assert.ok(next.certificateId > certificateId, "a deleted ID is not handed out again");
  });
});

describe("logs", () => {
  it("no log line of the functions contains any private key used above (firebase-debug.log)", async () => {
    // The Firebase CLI writes every function log line to firebase-debug.log in the project folder.
    const file = "firebase-debug.log";
    assert.ok(existsSync(file), "firebase-debug.log exists (the tests run under firebase emulators:exec)");
    const text = await eventually(async () => {
      const t = readFileSync(file, "utf8");
      return t.includes("push certificate") && t.includes("registered") ? t : undefined;
    }, { what: "certificate log lines in firebase-debug.log" });
    assert.ok(issued.length > 20, `checked ${issued.length} keys`);
    for (const sa of issued) {
      assert.ok(!text.includes(sa.private_key.slice(0, 80)), `the PEM of ${sa.private_key_id} is in a log`);
      for (const fragment of secretFragments(sa)) assert.ok(!text.includes(fragment), `key material of ${sa.private_key_id} is in a log`);
    }
    assert.ok(!text.includes("PRIVATE KEY-----"), "no PEM in the logs");
  });
});
