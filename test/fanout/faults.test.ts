// The reliability promises under ordinary production weather, end to end: events published to the
// Pub/Sub emulator, faults injected at the fake FCM (throttling, outages, the token endpoint, GOAWAY,
// resets, slow answers), outcomes read from the push log and sends counted per token at the fake.
// Each case uses its own certificate (its own Firebase project), so that the project's pause in
// the fan-out's instance belongs to that case alone.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { adminDb, callOk, clearFirestore, createUser, createUsers, eventually, publish, type TestUser } from "../helpers/emulators.ts";
import { PUSH_TOPIC, entriesOf, entryFor, killedDevice, logDocs, msgKey, sendsTo, sendsToProject, waitForMessage } from "../helpers/fanout.ts";
import type { RecordedRequest } from "../helpers/fakeFcm.ts";
import { registerCertificate, type TestCertificate } from "../helpers/certificates.ts";
import { fakeFcmToken } from "../helpers/sessions.ts";
import { fakeFcm } from "../helpers/fakeFcm.ts";
import { seedRecipients } from "../helpers/fanoutSeed.ts";

let admin: TestUser;
const sender = "fault-sender";
const text = (t: string) => [{ MsgType: "TIMTextElem", MsgContent: { Text: t } }];

before(async () => {
  await clearFirestore();
  admin = await createUser({ admin: true });
});

after(async () => {
  await fakeFcm.clearErrors();
});

async function publishTo(uids: string[], extra: Record<string, unknown> = {}): Promise<string> {
  const key = msgKey("fault");
  await publish(PUSH_TOPIC, { MsgKey: key, From_Account: sender, To_Account: uids, MsgBody: text("weather"), ...extra });
  return key;
}

const msgKeyOf = (s: RecordedRequest): string | undefined => (s.message as { data?: { msgKey?: string } } | null)?.data?.msgKey;
const tokenOf = (s: RecordedRequest): string | undefined => (s.message as { token?: string } | null)?.token;

/** The fake's answers to a token, for one message. */
async function answers(token: string, key: string): Promise<Array<number | null>> {
  return (await sendsTo(token)).filter((s) => (s.message as { data?: { msgKey?: string } }).data?.msgKey === key).map((s) => s.answeredStatus);
}

/** Every token got the message accepted by FCM exactly once. */
async function assertExactlyOnce(tokens: string[], key: string): Promise<void> {
  for (const token of tokens) {
    const accepted = (await answers(token, key)).filter((s) => s === 200).length;
    assert.equal(accepted, 1, `token ${token.slice(0, 12)}… accepted ${accepted} times`);
  }
}

async function devicesOn(cert: TestCertificate, n: number): Promise<{ users: TestUser[]; tokens: string[] }> {
  const users = await createUsers(n);
  const tokens: string[] = [];
  for (const u of users) tokens.push(await killedDevice(u, cert.certificateId));
  return { users, tokens };
}

async function certificateHealth(certificateId: number): Promise<string | undefined> {
  const { certificates } = await callOk<{ certificates: Array<{ certificateId: number; health: { state: string } }> }>("listPushCertificates", {}, admin);
  return certificates.find((c) => c.certificateId === certificateId)?.health.state;
}

describe("throttling and outages lose nothing while the event is young", () => {
  it("429 with Retry-After: 30 on every request for 20 s: one throttled request pauses the project; every device pushed exactly once, by the batch resumed after the pause", async (t) => {
    const cert = await registerCertificate(admin, "throttled");
    const { users, tokens } = await devicesOn(cert, 3);
    await fakeFcm.addErrorRule({ projectId: cert.sa.project_id, preset: "quota-exceeded", retryAfterSeconds: 30, forMs: 20_000 });
    const key = await publishTo(users.map((u) => u.uid));
    const docs = await waitForMessage(key, 150_000);
    await assertExactlyOnce(tokens, key);
    const throttled = (await Promise.all(tokens.map((tk) => answers(tk, key)))).flat().filter((s) => s === 429).length;
    assert.equal(throttled, 1, "the first 429 paused the project's sends: no request per device");
    for (const u of users) assert.equal(entryFor(docs, u.uid).outcome, "sent");
    // The 30 s pause is longer than FANOUT_MAX_INLINE_WAIT_SECONDS: the batch gave its slot back and was claimed again when resumed.
    assert.ok(docs[0]!.claims >= 2, `claims: ${docs[0]!.claims}`);
    t.diagnostic(`claims ${docs[0]!.claims}, throttled requests ${throttled}`);
  });

  it("503 on every request for 15 s: backs off, resumes, every device pushed exactly once", async (t) => {
    const cert = await registerCertificate(admin, "outage");
    const { users, tokens } = await devicesOn(cert, 3);
    const rule = await fakeFcm.addErrorRule({ projectId: cert.sa.project_id, preset: "unavailable", forMs: 15_000 });
    const key = await publishTo(users.map((u) => u.uid));
    const docs = await waitForMessage(key, 150_000);
    await assertExactlyOnce(tokens, key);
    for (const u of users) assert.equal(entryFor(docs, u.uid).outcome, "sent");
    const seen = (await sendsToProject(cert.sa.project_id)).filter((s) => msgKeyOf(s) === key);
    const unavailable = seen.filter((s) => s.answeredStatus === 503);
    assert.ok(unavailable.length >= 1, "FCM answered 503 during the outage");
    assert.equal((await fakeFcm.errorRule(rule.id)).hits, unavailable.length, "every 503 of the outage went to this message's requests");
    const outageEnd = rule.expiresAt as number;
    for (const s of seen.filter((x) => x.answeredStatus === 200)) assert.ok(Date.parse(s.answeredAt) >= outageEnd, "accepted only once the outage was over");
    t.diagnostic(`503 answers during the outage: ${unavailable.length}, claims ${docs[0]!.claims}`);
  });

  it("the OAuth token endpoint answering 503 for 10 s: an outage, not a refused key; pushed exactly once, the certificate stays healthy", async () => {
    const cert = await registerCertificate(admin, "token endpoint down");
    const { users, tokens } = await devicesOn(cert, 2);
    const since = Date.now();
    const rule = await fakeFcm.addTokenErrorRule({ clientEmail: cert.sa.client_email, httpStatus: 503, forMs: 10_000 });
    const key = await publishTo(users.map((u) => u.uid));
    const docs = await waitForMessage(key, 150_000);
    assert.ok((await fakeFcm.errorRule(rule.id)).hits >= 1, "the token endpoint answered 503");
    await assertExactlyOnce(tokens, key);
    for (const u of users) assert.equal(entryFor(docs, u.uid).outcome, "sent");
    const first = Math.min(...(await Promise.all(tokens.map(sendsTo))).flat().map((s) => Date.parse(s.receivedAt)));
    assert.ok(first >= since + 9_000, "no FCM request without an access token");
    assert.equal(await certificateHealth(cert.certificateId), "healthy");
  });

  it("the token endpoint answering 429: also an outage; the certificate is not flagged", async () => {
    const cert = await registerCertificate(admin, "token endpoint busy");
    const { users, tokens } = await devicesOn(cert, 1);
    const rule = await fakeFcm.addTokenErrorRule({ clientEmail: cert.sa.client_email, httpStatus: 429, times: 2 });
    const key = await publishTo(users.map((u) => u.uid));
    await waitForMessage(key, 120_000);
    assert.equal((await fakeFcm.errorRule(rule.id)).hits, 2, "the token endpoint answered 429 twice");
    await assertExactlyOnce(tokens, key);
    assert.equal(await certificateHealth(cert.certificateId), "healthy");
  });
});

describe("never to the wrong person", () => {
  /** The phone changes hands: its owner logs out, another user logs in on it and binds the same token. */
  async function phoneChangesHands(owner: TestUser, next: TestUser, cert: TestCertificate, token: string): Promise<number> {
    await callOk("logout", { deviceId: "phone" }, owner);
    const loggedOut = Date.now();
    await callOk("login", { deviceId: "phone", platform: "android" }, next);
    await callOk("setOfflinePushToken", { deviceId: "phone", certificateId: cert.certificateId, token }, next);
    await callOk("doBackground", { deviceId: "phone" }, next);
    return loggedOut;
  }

  /** The first attempt to `token` is held at the fake for `holdMs`, then answered 503 with Retry-After. */
  async function heldFirstAttempt(token: string, holdMs: number, retryAfterSeconds: number): Promise<string> {
    return (await fakeFcm.addErrorRule({ token, preset: "unavailable", retryAfterSeconds, delayMs: holdMs, times: 1 })).id;
  }

  const untilReceived = (ruleId: string) =>
    eventually(async () => ((await fakeFcm.errorRule(ruleId)).hits >= 1 ? true : undefined), { intervalMs: 50, what: "the first attempt to reach the fake" });

  /**
   * The change the test made (committed at `at`) was in place before the retry's re-read, which
   * comes no sooner than the Retry-After (`retryAfterMs`) after the held first answer: otherwise the
   * machine was too slow for this run to prove anything, and the test says so.
   */
  async function changedBeforeRetry(token: string, key: string, at: number, retryAfterMs = 2_000): Promise<void> {
    const [first] = (await sendsTo(token)).filter((s) => msgKeyOf(s) === key);
    assert.ok(first && Date.parse(first.answeredAt) + retryAfterMs >= at, "the change was made before the retry read the device again");
  }

  it("the retry in the same invocation (503 held 6 s, Retry-After: 2): the owner logs out and another user binds the token meanwhile; the retry is dropped at its re-read, nothing more reaches the token", async () => {
    const cert = await registerCertificate(admin, "handover");
    const [alice, bob] = await createUsers(2);
    const token = await killedDevice(alice!, cert.certificateId);
    const rule = await heldFirstAttempt(token, 6_000, 2);
    const key = await publishTo([alice!.uid]);
    await untilReceived(rule);
    // Alice's logout is what the retry's re-read must see (Bob's binding may come after it).
    const loggedOut = await phoneChangesHands(alice!, bob!, cert, token);
    const docs = await waitForMessage(key, 90_000);
    await changedBeforeRetry(token, key, loggedOut);
    assert.deepEqual(await answers(token, key), [503], "only the first attempt, which failed, ever reached the token");
    const e = entryFor(docs, alice!.uid);
    assert.equal(`${e.outcome}:${e.reason}`, "skipped:binding-changed");
    assert.equal(docs[0]!.claims, 1, "retried by the same delivery (its re-read dropped it)");
  });

  it("the retry after a long pause (503 with Retry-After: 15, resumed by Cloud Tasks): the phone changes hands meanwhile; the resumption decides afresh and nothing more reaches the token", async () => {
    const cert = await registerCertificate(admin, "handover after a pause");
    const [alice, bob] = await createUsers(2);
    const token = await killedDevice(alice!, cert.certificateId);
    await fakeFcm.addErrorRule({ token, preset: "unavailable", retryAfterSeconds: 15, times: 1 });
    const key = await publishTo([alice!.uid]);
    await eventually(async () => ((await answers(token, key)).length >= 1 ? true : undefined), { what: "the first attempt at the fake" });
    await phoneChangesHands(alice!, bob!, cert, token);
    const docs = await waitForMessage(key, 90_000);
    assert.deepEqual(await answers(token, key), [503], "only the first attempt, which failed, ever reached the token");
    const e = entryFor(docs, alice!.uid);
    assert.equal(`${e.outcome}:${e.reason}`, "skipped:logged-out");
    assert.ok(docs[0]!.claims >= 2, "resumed by another delivery");
  });

  it("the device comes to the foreground between attempts: not retried (it gets the message over its connection)", async () => {
    const cert = await registerCertificate(admin, "foreground between");
    const user = await createUser();
    const token = await killedDevice(user, cert.certificateId);
    await fakeFcm.addErrorRule({ token, preset: "unavailable", retryAfterSeconds: 15, times: 1 });
    const key = await publishTo([user.uid]);
    await eventually(async () => ((await answers(token, key)).length >= 1 ? true : undefined), { what: "the first attempt at the fake" });
    await callOk("doForeground", { deviceId: "phone" }, user);
    const docs = await waitForMessage(key, 90_000);
    assert.deepEqual(await answers(token, key), [503]);
    assert.equal(entryFor(docs, user.uid).reason, "foreground");
  });

  it("a token the same device refreshes between attempts (same session) gets the retry, once; the old token never again", async () => {
    const cert = await registerCertificate(admin, "refreshed token");
    const user = await createUser();
    const oldToken = await killedDevice(user, cert.certificateId);
    const rule = await heldFirstAttempt(oldToken, 4_000, 2);
    const key = await publishTo([user.uid]);
    await untilReceived(rule);
    // FCM rotated the token; the app reports the new one (onNewToken).
    const newToken = fakeFcmToken();
    await callOk("setOfflinePushToken", { deviceId: "phone", certificateId: cert.certificateId, token: newToken }, user);
    const reported = Date.now();
    const docs = await waitForMessage(key, 90_000);
    await changedBeforeRetry(oldToken, key, reported);
    assert.deepEqual(await answers(oldToken, key), [503], "the old token: the first attempt only");
    assert.deepEqual(await answers(newToken, key), [200], "the new token: the retry, once");
    const e = entryFor(docs, user.uid);
    assert.ok(e.outcome === "sent" && e.attempts === 2, `${e.outcome}:${e.reason}`);
    assert.equal(docs[0]!.claims, 1, "retried by the same delivery, at its re-read");
  });

  it("a token refreshed between attempts under another certificate (another Firebase project): the retry goes to the new token, with the certificate loaded for it", async () => {
    const cert = await registerCertificate(admin, "refreshed from");
    const other = await registerCertificate(admin, "refreshed to");
    const user = await createUser();
    const oldToken = await killedDevice(user, cert.certificateId);
    const rule = await heldFirstAttempt(oldToken, 4_000, 2);
    const key = await publishTo([user.uid]);
    await untilReceived(rule);
    const newToken = fakeFcmToken();
    await callOk("setOfflinePushToken", { deviceId: "phone", certificateId: other.certificateId, token: newToken }, user);
    const reported = Date.now();
    const docs = await waitForMessage(key, 90_000);
    await changedBeforeRetry(oldToken, key, reported);
    assert.deepEqual(await answers(oldToken, key), [503]);
    const retried = (await sendsTo(newToken)).filter((s) => msgKeyOf(s) === key);
    assert.deepEqual(retried.map((s) => [s.projectId, s.answeredStatus]), [[other.sa.project_id, 200]], "sent once, with the new certificate's project");
    const e = entryFor(docs, user.uid);
    assert.ok(e.outcome === "sent" && e.certificateId === other.certificateId, `${e.outcome}:${e.reason}`);
  });

  it("a first send that waits (its wave's probe answered after 4 s): a device of the wave that logs out meanwhile is read again and not sent", async () => {
    const cert = await registerCertificate(admin, "late first send");
    // Recipients are sorted: the first one's device is the certificate's probe, the second waits for it.
    const [first, second] = (await createUsers(2)).sort((a, b) => (a.uid < b.uid ? -1 : 1));
    const probeToken = await killedDevice(first!, cert.certificateId);
    const waitingToken = await killedDevice(second!, cert.certificateId);
    const rule = (await fakeFcm.addErrorRule({ token: probeToken, delayMs: 4_000, times: 1 })).id;
    const key = await publishTo([first!.uid, second!.uid]);
    await untilReceived(rule);
    // The batch read both devices before its probe left; the second logs out while the probe is held.
    await callOk("logout", { deviceId: "phone" }, second!);
    const loggedOut = Date.now();
    const docs = await waitForMessage(key, 90_000);
    await changedBeforeRetry(probeToken, key, loggedOut, 0);
    assert.deepEqual(await answers(probeToken, key), [200]);
    assert.deepEqual(await answers(waitingToken, key), [], "nothing reached the device that logged out after the batch read it");
    const e = entryFor(docs, second!.uid);
    assert.equal(`${e.outcome}:${e.reason}`, "skipped:binding-changed");
    assert.match(e.outcome === "skipped" ? e.detail : "", /logged out after the batch read it/);
  });

  it("a certificate deleted between attempts: its device is not retried (certificate-missing)", async () => {
    const cert = await registerCertificate(admin, "deleted mid-retry");
    const user = await createUser();
    const token = await killedDevice(user, cert.certificateId);
    // A dry run first: the deletion's own call then runs on a warm function instance, within the hold.
    await callOk("deletePushCertificate", { certificateId: cert.certificateId, dryRun: true }, admin);
    const rule = await heldFirstAttempt(token, 7_000, 2);
    const key = await publishTo([user.uid]);
    await untilReceived(rule);
    await callOk("deletePushCertificate", { certificateId: cert.certificateId }, admin);
    const deleted = Date.now();
    const docs = await waitForMessage(key, 90_000);
    await changedBeforeRetry(token, key, deleted);
    assert.deepEqual(await answers(token, key), [503], "never retried with the deleted certificate");
    const e = entryFor(docs, user.uid);
    assert.equal(`${e.outcome}:${e.reason}`, "skipped:certificate-missing");
  });

  it("a certificate replaced between attempts (and its old key revoked): the retry uses the new key and is accepted", async () => {
    const cert = await registerCertificate(admin, "replaced mid-retry");
    const user = await createUser();
    const token = await killedDevice(user, cert.certificateId);
    const replacement = await fakeFcm.createServiceAccount(cert.sa.project_id);
    // A label change first: the key's replacement then runs on a warm function instance, within the hold.
    await callOk("updatePushCertificate", { certificateId: cert.certificateId, label: "replaced mid-retry (old key)" }, admin);
    const rule = await heldFirstAttempt(token, 7_000, 2);
    const key = await publishTo([user.uid]);
    await untilReceived(rule);
    await callOk("updatePushCertificate", { certificateId: cert.certificateId, serviceAccount: replacement }, admin);
    // The old key is gone at Google: its access tokens are refused, and no new one is granted.
    await fakeFcm.revoke(cert.sa.client_email);
    const replaced = Date.now();
    const docs = await waitForMessage(key, 90_000);
    await changedBeforeRetry(token, key, replaced);
    const seen = (await sendsTo(token)).filter((s) => msgKeyOf(s) === key);
    assert.deepEqual(seen.map((s) => [s.answeredStatus, s.clientEmail]), [[503, cert.sa.client_email], [200, replacement.client_email]], "the retry was made with the new key's access token");
    assert.equal(entryFor(docs, user.uid).outcome, "sent");
  });
});

describe("the connection misbehaves in the middle of a batch", () => {
  /**
   * Slow answers keep requests in flight while the fake closes its sessions (GOAWAY) or drops
   * them. The fake says when it closed them; its records say which of this message's requests
   * were received before that moment and answered (or found closed) after it.
   */
  async function closedInFlight(mode: "goaway" | "destroy", devices: number): Promise<void> {
    const cert = await registerCertificate(admin, mode);
    const { users, tokens } = await devicesOn(cert, devices);
    await fakeFcm.addErrorRule({ projectId: cert.sa.project_id, delayMs: 1_500, times: devices / 2 });
    const key = await publishTo(users.map((u) => u.uid));
    await eventually(async () => ((await fakeFcm.stats()).activeStreams >= 1 ? true : undefined), { intervalMs: 20, what: "requests in flight" });
    const closed = await fakeFcm.closeSessions(mode);
    const docs = await waitForMessage(key, 90_000);
    await assertExactlyOnce(tokens, key);
    assert.equal(entriesOf(docs).filter((e) => e.outcome === "sent").length, devices);
    const closedAt = Date.parse(closed.at);
    const requests = (await sendsToProject(cert.sa.project_id)).filter((s) => msgKeyOf(s) === key);
    const caught = requests.filter((s) => Date.parse(s.receivedAt) <= closedAt && Date.parse(s.answeredAt) >= closedAt);
    assert.ok(caught.length >= 1, `a request of this message was in flight when the sessions closed (${requests.length} requests)`);
    if (mode === "goaway") {
      // GOAWAY is graceful: the streams already open are answered on the closing session.
      assert.ok(caught.some((s) => s.answeredStatus === 200), "a request in flight was answered after the GOAWAY");
    } else {
      assert.ok(caught.every((s) => s.answeredStatus === null), "the requests in flight were cut off without an answer");
      // ... and their devices were pushed by a retry: exactly once (above), after the close.
      const retried = new Set(caught.map(tokenOf));
      for (const s of requests.filter((x) => x.answeredStatus === 200 && retried.has(tokenOf(x)))) assert.ok(Date.parse(s.receivedAt) >= closedAt);
    }
  }

  it("an HTTP/2 GOAWAY while requests are in flight: every device pushed exactly once", () => closedInFlight("goaway", 12));

  it("connections reset while requests are in flight: retried, every device pushed exactly once", () => closedInFlight("destroy", 8));

  it("an answer slower than the request timeout (10 s): the request is abandoned and retried; accepted exactly once", async () => {
    const cert = await registerCertificate(admin, "slow");
    const { users, tokens } = await devicesOn(cert, 1);
    await fakeFcm.addErrorRule({ token: tokens[0], delayMs: 12_000, times: 1 });
    const key = await publishTo(users.map((u) => u.uid));
    const docs = await waitForMessage(key, 90_000);
    await eventually(async () => ((await answers(tokens[0]!, key)).length >= 2 ? true : undefined), { timeoutMs: 20_000, what: "the slow request to be recorded" });
    const seen = await answers(tokens[0]!, key);
    assert.equal(seen.filter((s) => s === null).length, 1, "the slow answer was never delivered: the client had given up");
    await assertExactlyOnce(tokens, key);
    const e = entryFor(docs, users[0]!.uid);
    assert.equal(e.outcome === "sent" && e.attempts, 2);
  });
});

describe("one bad certificate harms nothing else", () => {
  it("a certificate whose key cannot be decrypted fails only its own devices; the other certificate's devices in the same batch are sent", async () => {
    const good = await registerCertificate(admin, "good");
    const bad = await registerCertificate(admin, "undecryptable");
    const [a, b] = await createUsers(2);
    const goodToken = await killedDevice(a!, good.certificateId);
    await killedDevice(b!, bad.certificateId);
    // As a KEK change or a hand edit would leave it: a ciphertext that no longer authenticates.
    const ref = adminDb().doc(`pushCertificates/${bad.certificateId}`);
    const stored = (await ref.get()).get("encryptedKey") as { ciphertext: string };
    const flipped = Buffer.from(stored.ciphertext, "base64");
    flipped[0] = (flipped[0] ?? 0) ^ 0xff;
    await ref.update({ "encryptedKey.ciphertext": flipped.toString("base64") });
    const key = await publishTo([a!.uid, b!.uid]);
    const docs = await waitForMessage(key);
    assert.equal(entryFor(docs, a!.uid).outcome, "sent");
    await assertExactlyOnce([goodToken], key);
    const e = entryFor(docs, b!.uid);
    assert.equal(`${e.outcome}:${e.reason}`, "failed:certificate-unreadable");
    assert.match(e.outcome === "failed" ? e.detail : "", /could not be decrypted/);
  });
});

describe("exactly once, whatever the order of the recipients", () => {
  it("the same 250-recipient event republished with To_Account reversed and repeated: nobody is pushed twice", async () => {
    const cert = await registerCertificate(admin, "republished");
    const uids = Array.from({ length: 250 }, (_, i) => `rep-${String(i).padStart(3, "0")}-${msgKey("u").slice(-6)}`);
    const seeded = await seedRecipients(uids, cert.certificateId);
    const key = msgKey("republished");
    const event = { MsgKey: key, From_Account: sender, To_Account: uids, MsgBody: text("group") };
    await publish(PUSH_TOPIC, event);
    await waitForMessage(key, 90_000);
    await publish(PUSH_TOPIC, { ...event, To_Account: [...uids].reverse().concat(uids.slice(0, 10)) });
    const docs = await eventually(
      async () => {
        const d = (await logDocs(key)).filter((x) => x.kind === "batch");
        return d.length === 2 && d.every((x) => x.kind === "batch" && x.duplicates >= 1) ? d : undefined;
      },
      { timeoutMs: 60_000, what: "both batches to see the republished event as a duplicate" },
    );
    assert.equal(docs.length, 2, "the same two batches, not two more");
    await assertExactlyOnce([...seeded.eligibleTokens], key);
  });
});
