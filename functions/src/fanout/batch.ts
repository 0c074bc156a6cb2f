// One batch of one message: claim it while its recipients and their certificates are read
// (recipientReads.ts), decide per device with the sessions' pushEligibility, send, record. The same
// code runs for the batches the event's invocation processes itself and for each published batch.
import { randomUUID } from "node:crypto";
import { Timestamp } from "firebase-admin/firestore";
import * as logger from "firebase-functions/logger";
import { loadCredentials } from "../certificates/store";
import { db } from "../common/firestore";
import type { FanoutSettings } from "../config";
import { eligibilityConfig, pushEligibility } from "../sessions/eligibility";
import { USERS, parseUserDevices, type Device } from "../sessions/schemas";
import { CostCounter } from "./cost";
import { jobKey, sendAll, type Recheck, type SendJob } from "./deliver";
import { TOKEN_RESERVE, checkedFcmMessage, messageDecision, type Placeholders } from "./message";
import { BatchBusyError } from "./claim";
import { claimBatch, type BatchProgress } from "./progress";
import type { GroupClaims } from "./groupClaims";
import { GroupReads, readRecipients, recipientsToRead, rememberCertificates, type RecipientRead } from "./recipientReads";
import { batchLogId } from "./recipients";
import { MAX_MSG_LIFETIME_SECONDS, type PushContent, type PushLogEntry, type SkipReason } from "./schemas";
import type { SendingGroup } from "./sendingGroup";
import { withSenderTitle } from "./senderName";

export interface BatchInput {
  content: PushContent;
  uids: string[];
  batchIndex: number;
  batchCount: number;
  /** Pub/Sub message ID of the original event. */
  eventId: string;
  /** Pub/Sub message ID of the message being processed (the event, or the batch message). */
  deliveryId: string;
  /** Publication time of the original event (epoch ms). */
  publishTimeMs: number;
  /** For a continuation: how many hand-ons so far, and the time before which FCM must not be asked. */
  continuation?: number;
  notBeforeMs?: number;
  /** Came in a batch message the fan-out published (its publish is counted in this batch's cost). */
  published?: boolean;
}

export interface BatchDeps {
  settings: FanoutSettings;
  placeholders: Placeholders;
  /** The key-encryption key; throws when the secret is missing or malformed. */
  kek: () => Buffer;
  /** Publishes a continuation of the batch (its lease already released) to run after `notBeforeMs`. */
  handOn: (input: BatchInput, notBeforeMs: number) => Promise<void>;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** The batches processed alongside this one in the same invocation (see sendingGroup.ts). */
  group?: SendingGroup;
  /** Their reads and their claims, shared (see recipientReads.ts, groupClaims.ts). */
  reads?: GroupReads;
  claims?: GroupClaims;
}

/** How long a redelivery of the message that holds a batch waits for it before failing (to be redelivered). */
const maxBusyWaitMs = (leaseMs: number) => Math.min(2 * leaseMs, 300_000);

export type BatchResult =
  | { status: "done"; logId: string; counts: { sent: number; skipped: number; failed: number }; cost: ReturnType<CostCounter["snapshot"]> }
  | { status: "duplicate"; logId: string }
  | { status: "lease-lost"; logId: string }
  | { status: "continued"; logId: string; open: number; notBefore: string }
  | { status: "in-progress-elsewhere"; logId: string };

/** The last moment a retry may start: MsgLifeTime (if the sender set one) or MAX_EVENT_AGE_SECONDS, whichever ends first. */
export function eventExpiresAt(content: PushContent, publishTimeMs: number, maxEventAgeMs: number): number {
  const lifetimeMs = content.MsgLifeTime !== undefined ? content.MsgLifeTime * 1000 : Infinity;
  return publishTimeMs + Math.min(maxEventAgeMs, lifetimeMs);
}

export async function processBatch(input: BatchInput, deps: BatchDeps): Promise<BatchResult> {
  const member = deps.group?.member();
  try {
    return await processOneBatch(input, deps, member?.beforeFinalWrite);
  } finally {
    member?.doneSending();
  }
}

type BeforeFinalWrite = (() => Promise<void>) | undefined;

async function processOneBatch(input: BatchInput, deps: BatchDeps, beforeFinalWrite: BeforeFinalWrite): Promise<BatchResult> {
  const now = deps.now ?? Date.now;
  const startedAt = now();
  const { content } = input;
  const { settings } = deps;
  const cost = new CostCounter();
  // Whether to push never depends on the title: the sender's display name (an Auth lookup, when the
  // message has no Title) is fetched alongside the claim and the reads, and awaited only for the text.
  const titled = withSenderTitle(content);
  titled.catch(() => undefined); // a batch that ends early never awaits it
  const decision = messageDecision(content, deps.placeholders);
  const logId = batchLogId(content.MsgKey, input.batchIndex, input.uids);
  let tooOld = now() - input.publishTimeMs > settings.maxEventAgeMs;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  /** Hands the batch to a continuation that may ask FCM again from `notBeforeMs`. */
  const handOn = async (notBeforeMs: number, open: number): Promise<BatchResult> => {
    await deps.handOn({ ...input, continuation: (input.continuation ?? 0) + 1 }, notBeforeMs);
    return { status: "continued", logId, open, notBefore: new Date(notBeforeMs).toISOString() };
  };

  // A continuation waits out the pause FCM asked for before it claims the batch (holding no lease
  // meanwhile). Pub/Sub cannot delay a message, so a pause longer than this invocation may run is
  // waited out in hops of one budget each (a 10-minute Retry-After: two hops), never a hot loop.
  if (input.notBeforeMs !== undefined && input.notBeforeMs > now() && !tooOld) {
    const wait = input.notBeforeMs - now();
    await sleep(Math.min(wait, settings.invocationBudgetMs));
    if (input.notBeforeMs > now()) return handOn(input.notBeforeMs, -1);
    tooOld = now() - input.publishTimeMs > settings.maxEventAgeMs;
  }

  const identity = {
    msgKey: content.MsgKey,
    from: content.From_Account,
    batchIndex: input.batchIndex,
    batchCount: input.batchCount,
    eventId: input.eventId,
    uids: input.uids,
    notes: decision.notes,
    publishTime: new Date(input.publishTimeMs).toISOString(), // for latency and statistics
  };
  const leaseOptions = {
    owner: randomUUID(),
    deliveryId: input.deliveryId,
    leaseMs: settings.leaseMs,
    ttlMs: settings.pushLogTtlMs,
    checkpointEvery: settings.checkpointEvery,
    now,
    sleep,
  };
  // The recipients whose devices must be read: known before the claim (it only depends on the
  // message), so the read runs alongside the claim instead of after it. Nothing is sent before the
  // claim is won, and a claim that had to wait reads again.
  const candidates = tooOld || !decision.push ? [] : recipientsToRead(input.uids, content.From_Account);
  const readFor = (uids: string[], shared: boolean) => {
    const read = (shared ? deps.reads?.read(input.batchIndex, uids, cost) : null) ?? readRecipients(uids, deps.kek, cost);
    read.catch(() => undefined); // awaited below; not an unhandled rejection if the claim fails first
    return read;
  };
  let early: Promise<RecipientRead> | null = candidates.length > 0 ? readFor(candidates, true) : null;
  const phases: Record<string, number> = {};
  const mark = (name: string) => (phases[name] = now() - startedAt);
  let claim = await (deps.claims ? deps.claims.claim({ logId, batch: identity, options: leaseOptions, cost }) : claimBatch(logId, identity, leaseOptions, cost));
  mark("claimedMs");
  const waitUntil = now() + maxBusyWaitMs(settings.leaseMs);
  if (claim.status === "busy" && claim.sameDelivery && !tooOld) early = null;
  // Our own message holds the batch (a redelivery after a crash, or a double delivery): wait for
  // it to finish or for its lease to expire, then take over.
  while (claim.status === "busy" && claim.sameDelivery && !tooOld) {
    if (now() >= waitUntil) throw new BatchBusyError(`batch ${logId} is still held by another delivery of this message (lease until ${claim.until.toISOString()}); retry later`);
    await sleep(Math.max(250, Math.min(5_000, claim.until.getTime() - now() + 100, waitUntil - now())));
    claim = await claimBatch(logId, identity, leaseOptions, cost);
  }
  if (claim.status === "done") {
    logger.info("offline push batch already done: duplicate delivery ignored", { msgKey: content.MsgKey, batchIndex: input.batchIndex, logId });
    return { status: "duplicate", logId };
  }
  if (claim.status === "busy") {
    // Another Pub/Sub message holds it; that message is redelivered if its delivery dies.
    logger.info("offline push batch in progress in another delivery: this one is acknowledged", { logId, until: claim.until.toISOString(), tooOld });
    return { status: "in-progress-elsewhere", logId };
  }
  const progress = claim.progress;
  // The fan-out's publish of this batch, counted once: by the delivery that created the record.
  if (input.published && claim.claims === 1) cost.publishes++;
  if (claim.claims > 1) {
    logger.info("offline push batch resumed", { logId, claims: claim.claims, alreadyRecorded: progress.previous.length, previousOwner: claim.previousOwner, continuation: input.continuation ?? 0 });
  }
  for (const note of decision.notes) logger.info(`offline push ${content.MsgKey}: ${note}`);

  const skipUser = (uid: string, reason: SkipReason, detail: string) =>
    progress.record({ outcome: "skipped", uid, deviceId: null, reason, detail, at: ts() });

  if (tooOld) {
    const age = Math.round((now() - input.publishTimeMs) / 1000);
    for (const uid of input.uids) {
      // Only recipients with no outcome at all (a continuation may find some devices done).
      if (!progress.hasAny(uid)) {
        await skipUser(uid, "event-too-old", `the event was published ${age} s ago, longer than MAX_EVENT_AGE_SECONDS (${settings.maxEventAgeMs / 1000} s): dropped rather than pushed late`);
      }
    }
    return finish(progress, logId, cost, beforeFinalWrite);
  }

  const toRead: string[] = [];
  for (const uid of input.uids) {
    if (progress.has({ uid, deviceId: null })) continue;
    if (uid === content.From_Account) await skipUser(uid, "sender", "the recipient is the sender: the sender's own devices are never pushed");
    else if (!decision.push) await skipUser(uid, decision.reason, decision.detail);
    else toRead.push(uid);
  }
  if (!decision.push || toRead.length === 0) return finish(progress, logId, cost, beforeFinalWrite);

  // The batch's recipients and, usually, their certificates (recipientReads.ts).
  const recipients = await (early ?? readFor(toRead, false));
  mark("readMs");
  // Outcomes decided without a request (skips, unusable messages or certificates) are recorded
  // after the sends: recording costs CPU that the batch's first FCM request, and the other batches
  // of the invocation, should not wait for. A delivery that loses its lease drops them, and the
  // one that took over decides them again.
  const decided: PushLogEntry[] = [];
  const skipLater = (uid: string, reason: SkipReason, detail: string) => decided.push({ outcome: "skipped", uid, deviceId: null, reason, detail, at: ts() });
  // The snapshots are taken out of the read (splice) and let go once the devices are parsed: a
  // batch holds only what it sends through its sends, less for the garbage collector to copy
  // while the other batches of the invocation work.
  const devices = devicesToDecide(recipients.users.splice(0), new Set(toRead), progress, skipLater);

  const certificateIds = [...new Set(devices.flatMap(({ device }) => (device.token ? [device.token.certificateId] : [])))];
  const loaded = recipients.certificates;
  // Certificates this instance had not seen yet: one more read (a cold instance, a new certificate).
  const unread = certificateIds.filter((id) => !recipients.certificatesRead.has(id));
  if (unread.length > 0) {
    cost.firestoreReads++;
    await loadCredentials(unread, deps.kek, loaded);
  }
  rememberCertificates(certificateIds);
  for (const id of certificateIds) {
    const why = loaded.unreadable.get(id);
    if (why !== undefined) logger.error("push certificate cannot be used: its devices are recorded as failed, the others are sent", { certificateId: id, why });
  }
  const { credentials, unreadable } = loaded;
  const ctx = eligibilityConfig((id) => credentials.has(id) || unreadable.has(id));
  const nowDate = new Date(now());
  const textDecision = messageDecision(await titled, deps.placeholders);
  const text = textDecision.push ? { title: textDecision.title, body: textDecision.body } : { title: decision.title, body: decision.body };
  const lifetimeEndsAt = input.publishTimeMs + (content.MsgLifeTime ?? MAX_MSG_LIFETIME_SECONDS) * 1000;
  // The message is built, measured and validated once per batch, with a stand-in token as long as
  // any real one (TOKEN_RESERVE_CHARS, ASCII by FcmTokenSchema): a device's message is that one
  // with its token, and cannot be larger. A longer token goes the whole way on its own.
  const ageMs = now() - input.publishTimeMs;
  const template = checkedFcmMessage(content, text, TOKEN_RESERVE, { ageMs });
  const messageFor = (token: string) =>
    template.ok && token.length <= TOKEN_RESERVE.length ? { ok: true as const, message: { ...template.message, token } } : checkedFcmMessage(content, text, token, { ageMs });
  const jobs: SendJob[] = [];
  for (const { uid, device } of devices) {
    const deviceId = device.deviceId;
    const eligibility = pushEligibility(device, nowDate, ctx);
    if (!eligibility.eligible) {
      decided.push({ outcome: "skipped", uid, deviceId, reason: eligibility.reason, detail: eligibility.detail, at: ts() });
      continue;
    }
    const token = device.token;
    if (!token) continue; // eligibility guarantees a token; narrows the type
    const why = unreadable.get(token.certificateId);
    if (why !== undefined) {
      decided.push(failedEntry(uid, deviceId, token.certificateId, "certificate-unreadable", `push certificate ${token.certificateId} cannot be used: ${why}`));
      continue;
    }
    const checked = messageFor(token.token);
    if (!checked.ok) {
      if (checked.reason === "payload-too-large") {
        decided.push({ outcome: "skipped", uid, deviceId, reason: "payload-too-large", detail: checked.detail, at: ts() });
      } else {
        decided.push(failedEntry(uid, deviceId, token.certificateId, "invalid-message", checked.detail));
      }
      continue;
    }
    jobs.push({ uid, deviceId, sessionId: device.sessionId, certificateId: token.certificateId, tokenHash: token.tokenHash, message: checked.message, lifetimeEndsAt });
  }

  mark("decidedMs");
  const outcome = await sendAll(jobs, {
    credentials,
    settings,
    cost,
    expiresAt: eventExpiresAt(content, input.publishTimeMs, settings.maxEventAgeMs),
    continuation: input.continuation !== undefined,
    budgetEndsAt: startedAt + settings.invocationBudgetMs,
    mayProceed: () => progress.mayProceed(),
    record: (entry) => progress.record(entry),
    recheck: (retrying) => recheckDevices(retrying, ctx, now, cost),
    now,
    sleep,
  });
  mark("sentMs");
  if (outcome.leaseLost || progress.lost) {
    logger.warn("offline push batch taken over by another delivery: stopping", { logId });
    return { status: "lease-lost", logId };
  }
  for (const entry of decided) await progress.record(entry);
  if (outcome.open.length > 0) {
    // Out of time with devices still open (FCM throttling or an outage): what is known is written,
    // the lease released, and a continuation published; it claims the batch and goes on.
    await progress.release();
    if (progress.lost) return { status: "lease-lost", logId };
    const notBeforeMs = outcome.notBefore ?? now();
    cost.publishes++;
    logger.warn("offline push batch handed to a continuation: its invocation's time is up", { logId, open: outcome.open.length, notBefore: new Date(notBeforeMs).toISOString() });
    return handOn(notBeforeMs, outcome.open.length);
  }
  return finish(progress, logId, cost, beforeFinalWrite, phases);
}

/** The devices of the recipients read (those without an outcome yet); a recipient with none is skipped. */
function devicesToDecide(
  users: FirebaseFirestore.DocumentSnapshot[],
  wanted: Set<string>,
  progress: BatchProgress,
  skip: (uid: string, reason: SkipReason, detail: string) => void,
): Array<{ uid: string; device: Device }> {
  const devices: Array<{ uid: string; device: Device }> = [];
  for (const snap of users) {
    if (!wanted.has(snap.id)) continue;
    const uid = snap.id;
    let map: Record<string, Device>;
    try {
      map = parseUserDevices(snap.exists ? snap.data() : undefined);
    } catch (err) {
      logger.error("unreadable users document: recipient skipped", { uid, error: String(err) });
      skip(uid, "invalid-device-record", "the user's stored device record does not match the expected format");
      continue;
    }
    const list = Object.values(map);
    if (list.length === 0) {
      skip(uid, "no-device", "the user has never logged in on any device");
      continue;
    }
    for (const device of list) if (!progress.has({ uid, deviceId: device.deviceId })) devices.push({ uid, device });
  }
  return devices;
}

/**
 * Before a retry: the devices as stored now (one getAll). A device still gets the retry only if it
 * is in the same session with the same token and certificate, and still eligible; otherwise the
 * outcome says why (binding-changed, or the eligibility reason, e.g. it came to the foreground).
 */
async function recheckDevices(jobs: SendJob[], ctx: ReturnType<typeof eligibilityConfig>, now: () => number, cost: CostCounter): Promise<Map<string, Recheck>> {
  const uids = [...new Set(jobs.map((j) => j.uid))];
  cost.firestoreReads++;
  const snaps = await db().getAll(...uids.map((uid) => db().collection(USERS).doc(uid)));
  const byUid = new Map<string, Record<string, Device>>();
  for (const snap of snaps) {
    try {
      byUid.set(snap.id, parseUserDevices(snap.exists ? snap.data() : undefined));
    } catch {
      byUid.set(snap.id, Object.create(null) as Record<string, Device>);
    }
  }
  const result = new Map<string, Recheck>();
  const nowDate = new Date(now());
  for (const job of jobs) {
    const device = byUid.get(job.uid)?.[job.deviceId];
    const changed = (what: string): Recheck => ({
      ok: false,
      entry: { outcome: "skipped", uid: job.uid, deviceId: job.deviceId, reason: "binding-changed", detail: `not retried: ${what} since the first attempt`, at: ts() },
    });
    if (!device || device.sessionId !== job.sessionId) result.set(jobKey(job), changed(`device ${job.deviceId} logged in again or was removed`));
    else if (device.session !== "logged-in") result.set(jobKey(job), changed(`device ${job.deviceId} ${device.session === "kicked" ? "was kicked offline" : "logged out"}`));
    else if (device.token?.tokenHash !== job.tokenHash || device.token.certificateId !== job.certificateId) {
      result.set(jobKey(job), changed(`the push token of device ${job.deviceId} was ${device.token ? "replaced" : "unbound (it moved to another account or device, or FCM refused it)"}`));
    } else {
      const eligibility = pushEligibility(device, nowDate, ctx);
      result.set(
        jobKey(job),
        eligibility.eligible ? { ok: true } : { ok: false, entry: { outcome: "skipped", uid: job.uid, deviceId: job.deviceId, reason: eligibility.reason, detail: `not retried: ${eligibility.detail}`, at: ts() } },
      );
    }
  }
  return result;
}

const ts = () => Timestamp.now();

function failedEntry(uid: string, deviceId: string, certificateId: number, reason: "certificate-unreadable" | "invalid-message", detail: string): PushLogEntry {
  return { outcome: "failed", uid, deviceId, reason, detail, certificateId, error: null, attempts: 0, at: ts() };
}

/** `phases`: ms from the start of the invocation's work on the batch to each step, for the log. */
async function finish(progress: BatchProgress, logId: string, cost: CostCounter, beforeFinalWrite: BeforeFinalWrite, phases: Record<string, number> = {}): Promise<BatchResult> {
  await beforeFinalWrite?.();
  await progress.finish();
  if (progress.lost) return { status: "lease-lost", logId };
  const counts = progress.counts();
  // The reasons by count, in the line itself ("skipped 1 (foreground 1)").
  const reasons = progress.stats.reasonsLine();
  logger.info(`offline push batch done: sent ${counts.sent}, skipped ${counts.skipped}, failed ${counts.failed}${reasons ? ` (${reasons})` : ""}`, { logId, ...counts, reasons, cost: cost.snapshot(), phases });
  return { status: "done", logId, counts, cost: cost.snapshot() };
}
