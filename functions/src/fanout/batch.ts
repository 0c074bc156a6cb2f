// One batch of one message, in the steps a reader names (processOneBatch):
//   wait    a resumption arrives when FCM allows sends again; one earlier than that hands on again
//   claim   the batch, its recipients read alongside (why a claim keeps sends exactly-once: progress.ts)
//   decide  without a read (the sender, a message not pushed), then per device (decide.ts)
//   send    in waves, with pauses and re-checks before retries (deliver.ts)
//   record  every outcome and close the batch, or, when what is still open must wait longer than a
//           function should (FANOUT_MAX_INLINE_WAIT_SECONDS) or the invocation's time is up, record what
//           is known, release the lease and have Cloud Tasks resume the batch at its time (resume.ts)
// The same code runs for the batches the event's invocation processes itself and for each published batch.
import { randomUUID } from "node:crypto";
import { Timestamp } from "firebase-admin/firestore";
import * as logger from "firebase-functions/logger";
import type { FanoutSettings } from "../config";
import { BatchBusyError, type BatchIdentity, type LeaseOptions } from "./claim";
import { CostCounter } from "./cost";
import { decideDevices, recheckDevices, type Decided } from "./decide";
import { sendAll, type SendOutcome } from "./deliver";
import type { GroupClaims } from "./groupClaims";
import { BadgeReturns } from "./iosBadges";
import type { LocaleTexts } from "./localeTexts";
import { mentionsOf, type Mentions } from "./mentions";
import { conversationOf, messageDecision, type MessageDecision, type Placeholders } from "./message";
import { claimBatch, type BatchProgress, type ClaimResult } from "./progress";
import { GroupReads, deviceIdsOf, readRecipients, recipientsToRead, type RecipientRead } from "./recipientReads";
import { batchLogId, legacyBatchLogId } from "./recipients";
import type { CostCounts, MessageIdentity, OwnedElsewhere, PushContent, PushLogEntry, SkipReason } from "./schemas";
import type { SendingGroup } from "./sendingGroup";
import { withSenderTitle } from "./senderName";

export interface BatchInput {
  content: PushContent;
  /** The batch's share of its publication's recipient list. */
  uids: string[];
  /** The publication it belongs to (messageRecord.ts); absent: a batch message of the version before, with its old ID. */
  message?: MessageIdentity;
  /** Those of `uids` that an earlier publication of the MsgKey owns: decided there, not here. */
  ownedElsewhere?: OwnedElsewhere[];
  /** The lease owner, when the invocation may claim the batch a second time (groupClaims.ts): it then finds its own lease. */
  leaseOwner?: string;
  /** Calls already made for the batch by this invocation (a first attempt at its claim, the message's registration). */
  priorCost?: CostCounts;
  /** Reads the recipients only once the claim is won (not alongside it): the batch is most likely done already. */
  readAfterClaim?: boolean;
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
  /** Delivered by the resumption task (resume.ts): continues an existing record, never waits for its own lease. */
  resume?: boolean;
  /** Came in a batch message the fan-out published (its publish is counted in this batch's cost). */
  published?: boolean;
}

export interface BatchDeps {
  settings: FanoutSettings;
  placeholders: Placeholders;
  /** PUSH_PLACEHOLDER_TEXTS per locale: a recipient's prefs.locale picks (absent: everyone gets `placeholders`). */
  texts?: LocaleTexts;
  /** The key-encryption key; throws when the secret is missing or malformed. */
  kek: () => Buffer;
  /**
   * Has the batch resumed at `notBeforeMs` (its lease already released): a Cloud Tasks task named
   * `taskId` (resume.ts). Throws when that fails; the delivery then fails and is retried.
   */
  handOn: (input: BatchInput, notBeforeMs: number, taskId: string) => Promise<void>;
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
  | { status: "in-progress-elsewhere"; logId: string }
  | { status: "gone"; logId: string }
  /** Its claim was to register the message and did not apply: the invocation registers it, then runs the batch again (functions.ts). */
  | { status: "unregistered"; logId: string; cost: CostCounts };

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
  const run = startRun(input, deps, beforeFinalWrite);
  const timing = await waitOutPause(run);
  if ("handedOn" in timing) return timing.handedOn;

  const claimed = await claimOrStop(run, timing.tooOld);
  if ("stopped" in claimed) return claimed.stopped;
  const { progress } = claimed;
  if (timing.tooOld) {
    await skipTooOld(run, progress);
    return finish(run, progress);
  }

  const { decision } = run;
  const toRead = await skipWithoutReading(run, progress);
  if (!decision.push || toRead.length === 0) return finish(run, progress);
  const recipients = await (claimed.early ?? readFor(run, toRead, false));
  mark(run, "readMs");
  const decided = await decideDevices({ ...run, decision }, recipients, toRead, progress);
  mark(run, "decidedMs");

  const outcome = await send(run, progress, decided);
  mark(run, "sentMs");
  return recordAndHandOn(run, progress, outcome, decided.entries);
}

/** What the steps of one batch share. */
interface BatchRun {
  input: BatchInput;
  deps: BatchDeps;
  settings: FanoutSettings;
  content: PushContent;
  publishTimeMs: number;
  placeholders: Placeholders;
  texts: LocaleTexts | undefined;
  /** The recipients' conversation (`c2c_<sender>` or `group_<GroupId>`): the preference setting each recipient's read selects. */
  conversation: string;
  mentions: Mentions;
  kek: () => Buffer;
  logId: string;
  /** This delivery's lease owner: also names the task that resumes the batch, should it hand on. */
  owner: string;
  /** The recipients this batch decides: its share of the list, less those an earlier publication owns. */
  uids: string[];
  cost: CostCounter;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  startedAt: number;
  /** Whether and what to push, from the message alone. */
  decision: MessageDecision;
  /** The content with the sender's display name as its title when it has none: looked up (once) only for a batch with a device to send to. */
  titled: () => Promise<PushContent>;
  /** ms from the start of the invocation's work on the batch to each step, for the log. */
  phases: Record<string, number>;
  beforeFinalWrite: BeforeFinalWrite;
}

function startRun(input: BatchInput, deps: BatchDeps, beforeFinalWrite: BeforeFinalWrite): BatchRun {
  const now = deps.now ?? Date.now;
  const { content } = input;
  // Whether to push never depends on the title: the sender's display name (an Auth lookup, when the
  // message has no Title) is fetched only once the read shows a device that may be sent to (decide.ts).
  let titled: Promise<PushContent> | null = null;
  const cost = new CostCounter();
  if (input.priorCost) cost.add(input.priorCost);
  return {
    input,
    deps,
    settings: deps.settings,
    content,
    publishTimeMs: input.publishTimeMs,
    placeholders: deps.placeholders,
    texts: deps.texts,
    conversation: conversationOf(content),
    mentions: mentionsOf(content),
    kek: deps.kek,
    logId: input.message ? batchLogId(content.MsgKey, input.message, input.batchIndex) : legacyBatchLogId(content.MsgKey, input.batchIndex, input.uids),
    // The same lease owner on a second attempt at a claim: a claim whose answer was lost is found as ours.
    owner: input.leaseOwner ?? randomUUID(),
    uids: decidedRecipients(input),
    cost,
    now,
    sleep: deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))),
    startedAt: now(),
    decision: messageDecision(content, deps.placeholders),
    titled: () => (titled ??= withSenderTitle(content)),
    phases: {},
    beforeFinalWrite,
  };
}

/** The recipients a batch decides: its share of the list, less those an earlier publication of the MsgKey owns. */
export function decidedRecipients(input: Pick<BatchInput, "uids" | "ownedElsewhere">): string[] {
  if (!input.ownedElsewhere?.length) return input.uids;
  const elsewhere = new Set(input.ownedElsewhere.map((o) => o.uid));
  return input.uids.filter((uid) => !elsewhere.has(uid));
}

const mark = (run: BatchRun, name: string) => (run.phases[name] = run.now() - run.startedAt);

/**
 * A continuation may not ask FCM before `notBeforeMs`. Cloud Tasks delivers a resumption at that
 * time; a moment early (clock skew) is slept through, holding no lease. Longer (a Pub/Sub
 * continuation of an earlier version, which arrives at once) is handed to Cloud Tasks without a
 * claim: no function waits. (resume.ts answers a task that comes much too early before this.)
 * `tooOld`: the event is older than MAX_EVENT_AGE_SECONDS, and nothing of it is pushed any more.
 */
async function waitOutPause(run: BatchRun): Promise<{ tooOld: boolean } | { handedOn: BatchResult }> {
  const { input, now, settings } = run;
  const ageExceeded = () => now() - input.publishTimeMs > settings.maxEventAgeMs;
  const tooOld = ageExceeded();
  if (input.notBeforeMs === undefined || input.notBeforeMs <= now() || tooOld) return { tooOld };
  if (input.notBeforeMs - now() > settings.maxInlineWaitMs) return { handedOn: await handOn(run, input.notBeforeMs, -1) };
  await run.sleep(input.notBeforeMs - now());
  return { tooOld: ageExceeded() };
}

type ClaimStep = { progress: BatchProgress; early: Promise<RecipientRead> | null } | { stopped: BatchResult };

/**
 * Claims the batch, reading its recipients alongside: whom to read depends only on the message, so
 * the read need not wait for the claim (nothing is sent before the claim is won). Stops at a
 * duplicate, or a batch another delivery holds; waits when our own message holds it.
 */
async function claimOrStop(run: BatchRun, tooOld: boolean): Promise<ClaimStep> {
  const { input, deps, cost, logId, content } = run;
  const batch = batchIdentity(run);
  const options = leaseOptions(run);
  const candidates = tooOld || !run.decision.push || input.readAfterClaim ? [] : recipientsToRead(run.uids, content.From_Account);
  let early = candidates.length > 0 ? readFor(run, candidates, true) : null;
  let claim = await (deps.claims ? deps.claims.claim({ logId, batch, options, cost }) : claimBatch(logId, batch, options, cost));
  mark(run, "claimedMs");
  if (claim.status === "busy" && claim.sameDelivery && input.resume && !tooOld) {
    // An earlier attempt of this task holds it (it crashed, or is still running): Cloud Tasks
    // retries the task later, rather than a function waiting for the lease here.
    throw new BatchBusyError(`batch ${logId} is still held by an earlier attempt of its resumption (lease until ${claim.until.toISOString()}); retried later`);
  }
  if (claim.status === "busy" && claim.sameDelivery && !tooOld) {
    early = null; // a claim that had to wait reads again
    claim = await waitForOwnDelivery(run, claim, batch, options);
  }
  if (claim.status === "gone") {
    logger.warn("offline push resumption found no batch record (expired or deleted): nothing to resume", { logId, continuation: input.continuation ?? 0 });
    return { stopped: { status: "gone", logId } };
  }
  if (claim.status === "unregistered") return { stopped: { status: "unregistered", logId, cost: cost.snapshot() } };
  if (claim.status === "done") {
    logger.info("offline push batch already done: duplicate delivery ignored", { msgKey: content.MsgKey, batchIndex: input.batchIndex, logId });
    return { stopped: { status: "duplicate", logId } };
  }
  if (claim.status === "busy") {
    // Another Pub/Sub message holds it; that message is redelivered if its delivery dies.
    logger.info("offline push batch in progress in another delivery: this one is acknowledged", { logId, until: claim.until.toISOString(), tooOld });
    return { stopped: { status: "in-progress-elsewhere", logId } };
  }
  // The fan-out's publish of this batch, counted once: by the delivery that created the record.
  if (input.published && claim.claims === 1) cost.publishes++;
  if (claim.claims > 1) {
    logger.info("offline push batch resumed", { logId, claims: claim.claims, alreadyRecorded: claim.progress.previous.length, previousOwner: claim.previousOwner, continuation: input.continuation ?? 0 });
  }
  if (input.ownedElsewhere?.length) {
    const generations = [...new Set(input.ownedElsewhere.map((o) => o.generation))];
    logger.info("offline push batch leaves recipients to an earlier publication of its MsgKey, which decides them", { logId, ownedElsewhere: input.ownedElsewhere.length, generations });
  }
  for (const note of run.decision.notes) logger.info(`offline push ${content.MsgKey}: ${note}`);
  return { progress: claim.progress, early };
}

/** Our own message holds the batch (a redelivery after a crash, or a double delivery): wait for it to finish or for its lease to expire, then take over. */
async function waitForOwnDelivery(run: BatchRun, busy: ClaimResult, batch: BatchIdentity, options: LeaseOptions): Promise<ClaimResult> {
  const { now, logId } = run;
  const waitUntil = now() + maxBusyWaitMs(run.settings.leaseMs);
  let claim = busy;
  while (claim.status === "busy" && claim.sameDelivery) {
    if (now() >= waitUntil) throw new BatchBusyError(`batch ${logId} is still held by another delivery of this message (lease until ${claim.until.toISOString()}); retry later`);
    await run.sleep(Math.max(250, Math.min(5_000, claim.until.getTime() - now() + 100, waitUntil - now())));
    claim = await claimBatch(logId, batch, options, run.cost);
  }
  return claim;
}

function batchIdentity(run: BatchRun): BatchIdentity {
  const { content, input } = run;
  return {
    msgKey: content.MsgKey,
    from: content.From_Account,
    ...(input.message ? { epoch: input.message.epoch, generation: input.message.generation } : {}),
    batchIndex: input.batchIndex,
    batchCount: input.batchCount,
    eventId: input.eventId,
    uids: run.uids,
    ...(input.ownedElsewhere?.length ? { ownedElsewhere: input.ownedElsewhere } : {}),
    notes: run.decision.notes,
    conversation: conversationOf(content),
    publishTime: new Date(input.publishTimeMs).toISOString(), // for latency and statistics
  };
}

function leaseOptions(run: BatchRun): LeaseOptions {
  const { settings } = run;
  return {
    owner: run.owner,
    deliveryId: run.input.deliveryId,
    leaseMs: settings.leaseMs,
    ttlMs: settings.pushLogTtlMs,
    checkpointEvery: settings.checkpointEvery,
    ...(run.input.resume ? { resume: true } : {}),
    now: run.now,
    sleep: run.sleep,
  };
}

/** The recipients' devices and certificates: from the invocation's shared reads when it has them (recipientReads.ts). */
function readFor(run: BatchRun, uids: string[], shared: boolean): Promise<RecipientRead> {
  const read = (shared ? run.deps.reads?.read(run.input.batchIndex, uids, run.cost, run.conversation) : null) ?? readRecipients(uids, run.kek, run.cost, run.conversation);
  read.catch(() => undefined); // awaited later; not an unhandled rejection if the claim fails first
  return read;
}

const skipUser = (progress: BatchProgress, uid: string, reason: SkipReason, detail: string) =>
  progress.record({ outcome: "skipped", uid, deviceId: null, reason, detail, at: Timestamp.now() });

/**
 * Too old to push: every device still without an outcome is skipped. A recipient with none at all
 * is skipped as a whole, without a read; a continuation or takeover may find some of a
 * recipient's devices decided, and then reads the others (one getAll) to record each of them.
 */
async function skipTooOld(run: BatchRun, progress: BatchProgress): Promise<void> {
  const age = Math.round((run.now() - run.input.publishTimeMs) / 1000);
  const detail = `the event was published ${age} s ago, longer than MAX_EVENT_AGE_SECONDS (${run.settings.maxEventAgeMs / 1000} s): dropped rather than pushed late`;
  const partly = run.uids.filter((uid) => progress.hasAny(uid) && !progress.has({ uid, deviceId: null }));
  for (const uid of run.uids) if (!progress.hasAny(uid)) await skipUser(progress, uid, "event-too-old", detail);
  if (partly.length === 0) return;
  for (const { uid, deviceId } of await deviceIdsOf(partly, run.cost)) {
    if (!progress.has({ uid, deviceId })) await progress.record({ outcome: "skipped", uid, deviceId, reason: "event-too-old", detail, at: Timestamp.now() });
  }
}

/** Recipients decided without reading their devices (the sender; everyone, for a message not pushed): the others are returned, to read. */
async function skipWithoutReading(run: BatchRun, progress: BatchProgress): Promise<string[]> {
  const { decision, content } = run;
  const toRead: string[] = [];
  for (const uid of run.uids) {
    if (progress.has({ uid, deviceId: null })) continue;
    if (uid === content.From_Account) await skipUser(progress, uid, "sender", "the recipient is the sender: the sender's own devices are never pushed");
    else if (!decision.push) await skipUser(progress, uid, decision.reason, decision.detail);
    else toRead.push(uid);
  }
  return toRead;
}

/** The sends (deliver.ts), each outcome recorded as it comes, under the batch's lease. */
async function send(run: BatchRun, progress: BatchProgress, decided: Decided): Promise<SendOutcome> {
  const { input, settings, cost, now } = run;
  const badges = new BadgeReturns(decided.jobs, input.content);
  const outcome = await sendAll(decided.jobs, {
    credentials: decided.credentials,
    settings,
    cost,
    expiresAt: eventExpiresAt(input.content, input.publishTimeMs, settings.maxEventAgeMs),
    continuation: input.continuation !== undefined,
    budgetEndsAt: run.startedAt + settings.invocationBudgetMs,
    readAt: decided.readAt,
    mayProceed: () => progress.mayProceed(),
    record: (entry) => {
      badges.note(entry);
      return progress.record(entry);
    },
    recheck: (stale) => recheckDevices(stale, { messageFor: decided.messageFor, conversation: run.conversation, mentions: run.mentions, kek: run.kek, cost, now }),
    now,
    sleep: run.sleep,
  });
  await badges.giveBack(cost);
  return outcome;
}

/**
 * After the sends. The outcomes decided without a request are recorded only now: recording costs
 * CPU that the batch's first FCM request, and the other batches of the invocation, should not
 * wait for. Then the batch is closed; or, with devices still open that must wait (FCM throttling
 * or an outage) or out of time, what is known is written, the lease released, and the batch handed
 * to Cloud Tasks, which resumes it when FCM may be asked again. Released first: the resumption may
 * come at once, and must find the batch free. Should the enqueue fail, the error fails this
 * delivery, whose retry (Pub/Sub's, or Cloud Tasks') finds the lease released and takes over.
 */
async function recordAndHandOn(run: BatchRun, progress: BatchProgress, outcome: SendOutcome, decided: PushLogEntry[]): Promise<BatchResult> {
  const { logId } = run;
  if (outcome.leaseLost || progress.lost) {
    logger.warn("offline push batch taken over by another delivery: stopping", { logId });
    return { status: "lease-lost", logId };
  }
  for (const entry of decided) await progress.record(entry);
  if (outcome.open.length === 0) return finish(run, progress, run.phases);
  // The task is counted in the release that precedes it (it is this delivery's last write).
  run.cost.publishes++;
  await progress.release();
  if (progress.lost) return { status: "lease-lost", logId };
  const notBeforeMs = outcome.notBefore ?? run.now();
  const why = outcome.handBack === "pause" ? "FCM asked to wait longer than FANOUT_MAX_INLINE_WAIT_SECONDS" : "its invocation's time is up";
  logger.warn(`offline push batch handed to Cloud Tasks: ${why}`, { logId, open: outcome.open.length, notBefore: new Date(notBeforeMs).toISOString() });
  return handOn(run, notBeforeMs, outcome.open.length);
}

/** Has Cloud Tasks resume the batch when FCM may be asked again (`notBeforeMs`). */
async function handOn(run: BatchRun, notBeforeMs: number, open: number): Promise<BatchResult> {
  try {
    await run.deps.handOn({ ...run.input, continuation: (run.input.continuation ?? 0) + 1 }, notBeforeMs, `resume-${run.owner}`);
  } catch (err) {
    logger.error("offline push batch could not be handed to Cloud Tasks: this delivery fails and its retry takes the batch over", { logId: run.logId, error: String(err) });
    throw err;
  }
  return { status: "continued", logId: run.logId, open, notBefore: new Date(notBeforeMs).toISOString() };
}

/** The final write, once the invocation's other batches are done sending (sendingGroup.ts). `phases` go in the log line. */
async function finish(run: BatchRun, progress: BatchProgress, phases: Record<string, number> = {}): Promise<BatchResult> {
  const { logId, cost } = run;
  await run.beforeFinalWrite?.();
  await progress.finish();
  if (progress.lost) return { status: "lease-lost", logId };
  const counts = progress.counts();
  // The reasons by count, in the line itself ("skipped 1 (foreground 1)").
  const reasons = progress.stats.reasonsLine();
  logger.info(`offline push batch done: sent ${counts.sent}, skipped ${counts.skipped}, failed ${counts.failed}${reasons ? ` (${reasons})` : ""}`, { logId, ...counts, reasons, cost: cost.snapshot(), phases });
  return { status: "done", logId, counts, cost: cost.snapshot() };
}
