// The fan-out's deployed functions:
//   offlinePushFanout  Pub/Sub trigger on PUSH_TOPIC (default im-offline-push): one IM message.
//                      Validates it, splits the recipients into batches; a single batch is
//                      delivered right here, more are published to PUSH_BATCH_TOPIC.
//   offlinePushBatch   Pub/Sub trigger on PUSH_BATCH_TOPIC: one batch, in parallel with the others.
//   offlinePushResume  Cloud Tasks (task-queue function): a batch that had to wait, resumed at its
//                      time (resume.ts).
//   sendMessage        callable: an app publishes the same event with itself as the sender.
// The triggers run with retry: true (the task queue retries too). That is safe because every batch
// has an exactly-once progress record (progress.ts); invalid events are recorded and acknowledged,
// never retried, and anything that keeps failing is acknowledged once the event is older than
// MAX_EVENT_AGE_SECONDS.
import { randomUUID } from "node:crypto";
import * as logger from "firebase-functions/logger";
import { onMessagePublished, type MessagePublishedData, type PubSubOptions } from "firebase-functions/v2/pubsub";
import { HttpsError } from "firebase-functions/v2/https";
import { onTaskDispatched } from "firebase-functions/v2/tasks";
import type { CloudEvent } from "firebase-functions/v2";
import { z } from "zod";
import { callable, zodIssues, type Caller } from "../common/callable";
import {
  PUSH_BATCH_TOPIC,
  PUSH_TOPIC,
  fanoutSettings,
  maxEventAgeSecondsParam,
  keyEncryptionKey,
  keyEncryptionKeySecret,
  pushPlaceholderTextsRaw,
  sendMessageSettings,
  type FanoutSettings,
  type SendMessageSettings,
} from "../config";
import { DomainError, invalidArgument } from "../common/errors";
import { GRPC, grpcCode } from "../common/firestore";
import { takeSendAllowance } from "./sendLimit";
import { GroupClaims } from "./groupClaims";
import { GroupReads, recipientsToRead } from "./recipientReads";
import { SendingGroup } from "./sendingGroup";
import { decidedRecipients, processBatch, type BatchDeps, type BatchInput, type BatchResult } from "./batch";
import { CostCounter, addCost, zeroCost } from "./cost";
import { TooManyPublicationsError, elsewhereIn, firstRegistration, registerFirst, registerInTransaction, type FirstRegistration, type Registration } from "./messageRecord";
import { localeTextsFrom } from "./localeTexts";
import { clip } from "./message";
import { BatchBusyError } from "./claim";
import { publishEach, publishJson } from "./publish";
import { RESUME_FUNCTION, RESUME_RATE_LIMITS, RESUME_RETRY, enqueueResumption } from "./resume";
import { recordRejected } from "./pushLog";
import { processRead } from "./readEvent";
import { RecallRefused, processRecall } from "./recallEvent";
import { recipientsOf, splitIntoBatches } from "./recipients";
import {
  AccountSchema,
  BatchMessageSchema,
  FOLLOW_UP_EVENTS,
  PushEventSchema,
  ReadEventSchema,
  RecallEventSchema,
  type FollowUpEventName,
  SendMessageRequestSchema,
  type BatchMessage,
  contentOf,
  type PushContent,
  type PushEvent,
  type RejectedLog,
} from "./schemas";

/**
 * 2nd-gen concurrency: several executions share an instance, its HTTP/2 connection to FCM, its
 * access tokens and its warm Firestore channel. The fan-out trigger may push a 10,000-recipient
 * group inline (FANOUT_INLINE_BATCHES): npm run bench measured about 115 MiB above the emulator
 * worker's 185 MiB baseline for one, so it gets 1 GiB for 4 at once. A batch alone (200
 * recipients, or 500 x 20 devices at the limits) stays far below that: 8 per 512 MiB instance.
 */
function triggerOptions(topic: string, memory: "512MiB" | "1GiB", concurrency: number): PubSubOptions {
  return { topic, retry: true, secrets: [keyEncryptionKeySecret], timeoutSeconds: 540, memory, cpu: 1, concurrency };
}

export interface Delivery {
  topic: string;
  eventId: string;
  publishTimeMs: number;
  /** The message data, decoded; undefined when it is not JSON. */
  json: unknown;
  jsonError: string | null;
}

/** The Pub/Sub message as the handlers see it (exported for the fuzz tests). */
export function delivery(topic: string, event: CloudEvent<MessagePublishedData>): Delivery {
  const message = event.data.message;
  const publishTimeMs = Date.parse(message.publishTime ?? event.time);
  let json: unknown;
  let jsonError: string | null = null;
  const text = Buffer.from(message.data ?? "", "base64").toString("utf8");
  try {
    json = JSON.parse(text);
  } catch {
    // Not the parser's message: it quotes the input, and message content never goes into logs.
    jsonError = `the message data is not JSON (${text.length} characters)`;
  }
  return { topic, eventId: message.messageId, publishTimeMs: Number.isNaN(publishTimeMs) ? Date.now() : publishTimeMs, json, jsonError };
}

/** A batch that must wait is resumed by Cloud Tasks at its time (resume.ts): no function waits for it. */
function deps(settings: FanoutSettings): BatchDeps {
  const texts = localeTextsFrom(pushPlaceholderTextsRaw());
  return { settings, placeholders: texts.fallback, texts, kek: keyEncryptionKey, handOn: enqueueResumption };
}

export function isPermanentFirestoreError(err: unknown): boolean {
  // INVALID_ARGUMENT: Firestore refused the request itself (e.g. a document over 1 MiB).
  return grpcCode(err) === GRPC.INVALID_ARGUMENT;
}

const describeError = (err: unknown): string => clip(err instanceof Error ? `${err.name}: ${err.message}` : String(err), 1_000);

/**
 * Retries end: an error (a bug, an outage) makes Pub/Sub redeliver with backoff, but once the
 * event is older than the age limit it is acknowledged with an error log instead of looping. An
 * error that no retry can fix is acknowledged at once, recorded as far as Firestore lets us.
 */
async function guarded(d: Delivery, settings: FanoutSettings, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (err) {
    if (isPermanentFirestoreError(err)) {
      logger.error("offline push delivery failed for good: Firestore refused a write (INVALID_ARGUMENT); acknowledged, not retried", {
        topic: d.topic,
        eventId: d.eventId,
        error: describeError(err),
      });
      try {
        await reject(d, settings, "unprocessable", `Firestore refused a write that no retry can fix: ${describeError(err)}`);
      } catch (recordErr) {
        logger.error("the unprocessable event could not be recorded either", { topic: d.topic, eventId: d.eventId, error: describeError(recordErr) });
      }
      return;
    }
    const expired = Date.now() - d.publishTimeMs > settings.maxEventAgeMs;
    if (err instanceof BatchBusyError) {
      logger.info(err.message, { eventId: d.eventId });
      if (expired) return;
      throw err;
    }
    logger.error("offline push delivery failed", { topic: d.topic, eventId: d.eventId, error: describeError(err), willRetry: !expired });
    if (!expired) throw err;
  }
}

async function reject(d: Delivery, settings: FanoutSettings, reason: RejectedLog["reason"], detail: string, extra: { issues?: Array<{ field: string; message: string }>; event?: Partial<PushEvent> } = {}) {
  const event = extra.event;
  const recipients = event?.To_Account !== undefined ? recipientsOf({ To_Account: event.To_Account }) : rawRecipients(d.json);
  // A batch message carries the event's fields in `content`.
  const raw = ((d.json as { content?: unknown } | undefined)?.content ?? d.json) as { MsgKey?: unknown; From_Account?: unknown; EventKey?: unknown; Account?: unknown } | undefined;
  // A Read is found by its EventKey and its Account (trace, the user's log).
  const rawKey = raw?.MsgKey ?? raw?.EventKey;
  const rawFrom = raw?.From_Account ?? raw?.Account;
  const id = await recordRejected(
    {
      reason,
      topic: d.topic,
      eventId: d.eventId,
      msgKey: event?.MsgKey ?? (typeof rawKey === "string" ? rawKey.slice(0, 512) : null),
      from: event?.From_Account ?? (typeof rawFrom === "string" ? rawFrom.slice(0, 128) : null),
      uids: recipients && recipients.length <= settings.batchSize ? recipients : [],
      recipientCount: recipients?.length ?? null,
      // Bounded: whatever the event holds, the record must fit in its document.
      issues: (extra.issues ?? []).map((i) => ({ field: clip(i.field, 200), message: clip(i.message, 300) })),
      detail: clip(detail, 2_000),
      publishTime: new Date(d.publishTimeMs).toISOString(),
    },
    settings.pushLogTtlMs,
  );
  logger.warn(`offline push event rejected: ${reason}`, { topic: d.topic, eventId: d.eventId, logId: id, detail: clip(detail, 2_000), issues: extra.issues });
}

/** The accounts an invalid event was meant for, when they can be read: so "by user" queries find it. */
function rawRecipients(json: unknown): string[] | null {
  const to = (json as { To_Account?: unknown } | undefined)?.To_Account ?? (json as { uids?: unknown } | undefined)?.uids ?? (json as { Account?: unknown } | undefined)?.Account;
  const list = typeof to === "string" ? [to] : Array.isArray(to) ? to : null;
  if (!list) return null;
  return recipientsOf({ To_Account: list.filter((a): a is string => AccountSchema.safeParse(a).success) });
}

/** The delivery's JSON parsed with `schema`, or undefined once it is recorded as an invalid event. */
async function parsedOrRejected<S extends z.ZodType>(d: Delivery, settings: FanoutSettings, schema: S, what: string): Promise<z.output<S> | undefined> {
  if (d.jsonError !== null) {
    await reject(d, settings, "invalid-event", d.jsonError);
    return undefined;
  }
  const parsed = schema.safeParse(d.json);
  if (parsed.success) return parsed.data;
  const issues = zodIssues(parsed.error).slice(0, 20);
  await reject(d, settings, "invalid-event", `invalid ${what}: ${issues.map((i) => `${i.field}: ${i.message}`).join("; ")}`, { issues });
  return undefined;
}

export async function handlePushEvent(d: Delivery): Promise<void> {
  const settings = fanoutSettings();
  const kind = eventKind(d.json);
  if (kind !== "message") return handleFollowUpEvent(d, settings, kind);
  await guarded(d, settings, async () => {
    const event = await parsedOrRejected(d, settings, PushEventSchema, "offline-push event");
    if (!event) return;
    const ageMs = Date.now() - d.publishTimeMs;
    const recipients = recipientsOf(event);
    const batches = splitIntoBatches(recipients, settings.batchSize);
    if (ageMs > settings.maxEventAgeMs && batches.length > 1) {
      // A single batch goes through processBatch, which records the age per recipient.
      return reject(d, settings, "event-too-old", `published ${Math.round(ageMs / 1000)} s ago, longer than MAX_EVENT_AGE_SECONDS (${settings.maxEventAgeMs / 1000} s)`, { event });
    }
    try {
      await fanOut(d, settings, event, recipients, batches);
    } catch (err) {
      if (err instanceof TooManyPublicationsError) return reject(d, settings, "too-many-publications", err.message, { event });
      throw err;
    }
  });
}

/** Which kind of event the topic carries: `Event` absent is a message (as before Read and Recall existed). */
function eventKind(json: unknown): "message" | FollowUpEventName | "unknown" {
  const name = typeof json === "object" && json !== null && !Array.isArray(json) ? (json as { Event?: unknown }).Event : undefined;
  if (name === undefined) return "message";
  return (FOLLOW_UP_EVENTS as readonly unknown[]).includes(name) ? (name as FollowUpEventName) : "unknown";
}

/**
 * A Read or a Recall (followUp.ts): validated like a message, refused ones recorded and
 * acknowledged; one older than MAX_EVENT_AGE_SECONDS is recorded as too old. An unknown `Event`
 * is an invalid event naming the field.
 */
async function handleFollowUpEvent(d: Delivery, settings: FanoutSettings, kind: FollowUpEventName | "unknown"): Promise<void> {
  await guarded(d, settings, async () => {
    if (kind === "unknown") {
      const issues = [{ field: "Event", message: `must be one of ${FOLLOW_UP_EVENTS.join(", ")} (absent for a message)` }];
      return reject(d, settings, "invalid-event", `invalid offline-push event: Event: ${issues[0]?.message}`, { issues });
    }
    const ageMs = Date.now() - d.publishTimeMs;
    const tooOld = () => reject(d, settings, "event-too-old", `published ${Math.round(ageMs / 1000)} s ago, longer than MAX_EVENT_AGE_SECONDS (${settings.maxEventAgeMs / 1000} s)`);
    if (kind === "Read") {
      const event = await parsedOrRejected(d, settings, ReadEventSchema, "Read event");
      if (!event) return;
      if (ageMs > settings.maxEventAgeMs) return tooOld();
      await processRead(event, d, settings, keyEncryptionKey);
      return;
    }
    const event = await parsedOrRejected(d, settings, RecallEventSchema, "Recall event");
    if (!event) return;
    if (ageMs > settings.maxEventAgeMs) return tooOld();
    try {
      await processRecall(event, d, settings, keyEncryptionKey, localeTextsFrom(pushPlaceholderTextsRaw()));
    } catch (err) {
      if (err instanceof RecallRefused) return reject(d, settings, err.reason, err.message, { event: { MsgKey: event.MsgKey, From_Account: event.From_Account } });
      throw err;
    }
  });
}

/**
 * The event's batches. Deterministic: a redelivered event republishes the same batches and
 * reprocesses the same inline ones, which find their progress records and send nothing twice.
 * Which publication of the MsgKey the event is, and so the batches' IDs and whom each decides,
 * comes from the message record (messageRecord.ts). The first FANOUT_INLINE_BATCHES are processed
 * right here (no Pub/Sub hop, no cold instance: a group of up to 10,000 by default is pushed at
 * chat speed); the rest are published first, so that other instances start on them while this
 * one works.
 */
async function fanOut(d: Delivery, settings: FanoutSettings, event: PushEvent, recipients: string[], batches: string[][]): Promise<void> {
  const content = contentOf(event);
  const inline = batches.slice(0, settings.inlineBatches);
  const rest = batches.slice(inline.length);
  const first = firstRegistration({ msgKey: event.MsgKey, recipients, eventId: d.eventId, ttlMs: settings.pushLogTtlMs });
  const registering = new CostCounter();
  // Published batches carry their publication, so it is registered before they go (one create);
  // otherwise the inline batches' shared claim creates the record (groupClaims.ts).
  let registration: Registration | null = rest.length > 0 ? await registerFirst(first, registering) : null;
  if (registration) {
    await publishRest(d, content, registration, inline.length, rest);
    logger.info("offline push event split into batches", { msgKey: event.MsgKey, recipients: recipients.length, batches: batches.length, inline: inline.length, topic: PUSH_BATCH_TOPIC, generation: registration.identity.generation });
  }
  const inputOf = inlineInputs(d, content, inline, batches.length);
  const results = await runInline(
    inline.map((_, i) => inputOf(i, registration ?? first, i === 0 ? registering.snapshot() : zeroCost())),
    inline.length,
    settings,
    registration ? null : first,
  );
  // The shared claim that was to create the message record did not apply (the record exists: a
  // redelivery, a republish; or its answer was lost): which publication this is is settled first,
  // then those batches claim again, each under its own ID.
  const again = results.flatMap((r, i) => (r.status === "fulfilled" && r.value.status === "unregistered" ? [{ i, cost: r.value.cost }] : []));
  if (again.length > 0) {
    registration = await registerInTransaction(first, registering);
    const settled = registration;
    // A publication registered before (usually a redelivery): its batches are most likely done, so
    // they read their recipients only if their claim is won (a crashed delivery's batch, or ours
    // whose answer was lost), not alongside it.
    const retried = await runInline(
      again.map(({ i, cost }, k) => ({ ...inputOf(i, settled, k === 0 ? addCost(cost, registering.snapshot()) : cost), ...(settled.existing ? { readAfterClaim: true } : {}) })),
      inline.length,
      settings,
      null,
    );
    again.forEach(({ i }, k) => (results[i] = retried[k] as PromiseSettledResult<BatchResult>));
  }
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}

/** The batches beyond the inline ones, one message each on the batch topic, with their publication. */
async function publishRest(d: Delivery, content: PushContent, known: Registration, inlineCount: number, rest: string[][]): Promise<void> {
  const publishTime = new Date(d.publishTimeMs).toISOString();
  // A few at a time (publish.ts): a million recipients are 4,950 messages, not all in memory at once.
  await publishEach(PUSH_BATCH_TOPIC, rest.length, (i): BatchMessage => {
    const uids = rest[i] as string[];
    const elsewhere = elsewhereIn(known, uids);
    return {
      v: 1,
      content,
      batchIndex: inlineCount + i,
      batchCount: inlineCount + rest.length,
      uids,
      publishTime,
      eventId: d.eventId,
      message: known.identity,
      ...(elsewhere.length > 0 ? { ownedElsewhere: elsewhere } : {}),
    };
  });
}

/** An inline batch's input under a publication (`r`), with the cost already spent on its behalf. */
function inlineInputs(d: Delivery, content: PushContent, inline: string[][], batchCount: number) {
  // The same lease owner on a second attempt at a claim: a claim whose answer was lost is found as ours.
  const owners = inline.map(() => randomUUID());
  return (batchIndex: number, r: Registration | FirstRegistration, priorCost = zeroCost()): BatchInput => {
    const uids = inline[batchIndex] as string[];
    const elsewhere = "elsewhere" in r ? elsewhereIn(r, uids) : [];
    return {
      content,
      uids,
      batchIndex,
      batchCount,
      eventId: d.eventId,
      deliveryId: d.eventId,
      publishTimeMs: d.publishTimeMs,
      message: r.identity,
      ...(elsewhere.length > 0 ? { ownedElsewhere: elsewhere } : {}),
      leaseOwner: owners[batchIndex] as string,
      priorCost,
    };
  };
}

/**
 * The inline batches, side by side: they share their claims (one commit, with the message record
 * when `registering`), their reads, and hold their final writes until all have sent
 * (groupClaims.ts, recipientReads.ts, sendingGroup.ts). Every batch runs to its end even when
 * another fails: the first error then makes Pub/Sub redeliver the event, and the finished batches
 * are found done.
 */
async function runInline(inputs: BatchInput[], inlineCount: number, settings: FanoutSettings, registering: FirstRegistration | null): Promise<Array<PromiseSettledResult<BatchResult>>> {
  const claims = inputs.length > 1 || registering ? { claims: new GroupClaims(inputs.length, registering) } : {};
  const planned: string[][] = Array.from({ length: inlineCount }, () => []);
  for (const input of inputs) planned[input.batchIndex] = recipientsToRead(decidedRecipients(input), input.content.From_Account);
  const shared = inputs.length > 1 ? { reads: new GroupReads(planned, keyEncryptionKey), group: new SendingGroup(inputs.length) } : {};
  return Promise.allSettled(inputs.map((input) => processBatch(input, { ...deps(settings), ...claims, ...shared })));
}

/** A batch message (or a resumption task's payload) as processBatch takes it. */
function batchInput(m: BatchMessage, deliveryId: string): BatchInput {
  return {
    content: m.content,
    uids: m.uids,
    batchIndex: m.batchIndex,
    batchCount: m.batchCount,
    eventId: m.eventId,
    deliveryId,
    publishTimeMs: Date.parse(m.publishTime),
    // This batch's own Pub/Sub message, counted in its cost (a continuation's task is counted by
    // the delivery that handed on).
    ...(m.continuation === undefined ? { published: true } : {}),
    ...(m.continuation !== undefined ? { continuation: m.continuation } : {}),
    ...(m.notBefore !== undefined ? { notBeforeMs: Date.parse(m.notBefore) } : {}),
    ...(m.message ? { message: m.message } : {}),
    ...(m.ownedElsewhere?.length ? { ownedElsewhere: m.ownedElsewhere } : {}),
  };
}

export async function handleBatchMessage(d: Delivery): Promise<void> {
  const settings = fanoutSettings();
  await guarded(d, settings, async () => {
    const m = await parsedOrRejected(d, settings, BatchMessageSchema, "offline-push batch message");
    if (!m) return;
    // A message with `notBefore` is a continuation published by an earlier version: processBatch
    // hands it to Cloud Tasks rather than wait for it.
    await processBatch(batchInput(m, d.eventId), deps(settings));
  });
}

/**
 * A resumption task (resume.ts). Its payload is a batch message with `notBefore`; the task's name
 * is its delivery ID (the same across Cloud Tasks' retries of it). One that arrives much earlier
 * than its time is answered 503 before anything is read, and Cloud Tasks tries it again later.
 */
export async function handleResumeTask(data: unknown, taskId: string): Promise<void> {
  const settings = fanoutSettings();
  const parsed = BatchMessageSchema.safeParse(data);
  const early = parsed.success && parsed.data.notBefore !== undefined ? Date.parse(parsed.data.notBefore) - Date.now() : 0;
  if (early > settings.maxInlineWaitMs) {
    logger.info("offline push resumption arrived before its time: Cloud Tasks retries it later", { taskId, earlyMs: early });
    throw new HttpsError("unavailable", `resumption ${taskId} arrived ${Math.round(early / 1000)} s before its time`);
  }
  const d: Delivery = { topic: `task:${RESUME_FUNCTION}`, eventId: taskId, publishTimeMs: parsed.success ? Date.parse(parsed.data.publishTime) : Date.now(), json: data, jsonError: null };
  await guarded(d, settings, async () => {
    const m = await parsedOrRejected(d, settings, BatchMessageSchema, "offline-push resumption task");
    if (!m) return;
    await processBatch({ ...batchInput(m, taskId), resume: true }, deps(settings));
  });
}

export const offlinePushFanout = onMessagePublished(triggerOptions(PUSH_TOPIC, "1GiB", 4), (event) => handlePushEvent(delivery(PUSH_TOPIC, event)));

export const offlinePushBatch = onMessagePublished(triggerOptions(PUSH_BATCH_TOPIC, "512MiB", 8), (event) =>
  handleBatchMessage(delivery(PUSH_BATCH_TOPIC, event)),
);

/** Cloud Tasks resumes batches here (resume.ts): the batch trigger's resources, retried while the event may be pushed. */
export const offlinePushResume = onTaskDispatched<unknown>(
  {
    retryConfig: { ...RESUME_RETRY, maxRetrySeconds: maxEventAgeSecondsParam },
    rateLimits: RESUME_RATE_LIMITS,
    secrets: [keyEncryptionKeySecret],
    timeoutSeconds: 540,
    memory: "512MiB",
    cpu: 1,
    concurrency: 8,
  },
  (request) => handleResumeTask(request.data, request.id),
);

/**
 * The original SDK's setOfflinePushSettings + sendMessage: the app publishes the event the IM
 * backend would publish, with itself as From_Account and a generated MsgKey. Not an open relay:
 * off unless SEND_MESSAGE_POLICY=on, and then, for non-admins, rate-limited per sender, a few
 * recipients per call, and titled with the sender's account whatever Title says (no "System").
 * The request reaches sendAsApp unparsed: when the function is off, PERMISSION_DENIED costs
 * nothing, whatever the request holds; when it is on, the schema's size guards run first.
 */
export const sendMessage = callable({ name: "sendMessage", access: "user", schema: z.unknown() }, (data, caller) => sendAsApp(data, caller, sendMessageSettings()));

export async function sendAsApp(data: unknown, caller: Caller, limits: SendMessageSettings): Promise<{ msgKey: string; messageId: string; recipients: number }> {
  if (limits.policy !== "on") {
    throw new DomainError(
      "permission-denied",
      "sendMessage is off in this project (SEND_MESSAGE_POLICY=off): the IM backend publishes offline-push events to Pub/Sub",
    );
  }
  // A ZodError becomes INVALID_ARGUMENT naming the field (common/callable.ts), as the wrapper's own parse would.
  const { to, body, offlinePushInfo } = SendMessageRequestSchema.parse(data ?? {});
  const recipients = recipientsOf({ To_Account: to });
  if (!caller.admin && recipients.length > limits.maxRecipients) {
    throw invalidArgument("to", `names ${recipients.length} accounts; an app may send to at most ${limits.maxRecipients} per call (SEND_MESSAGE_MAX_RECIPIENTS)`);
  }
  if (!caller.admin) await takeSendAllowance(caller.uid, limits.perMinute);
  // a non-admin's Title is dropped: the fan-out titles it with the sender's displayName, then the account.
  const info = offlinePushInfo !== undefined && !caller.admin ? (Object.fromEntries(Object.entries(offlinePushInfo).filter(([k]) => k !== "Title")) as typeof offlinePushInfo) : offlinePushInfo;
  const msgKey = `app-${Date.now()}-${randomUUID()}`;
  const event = PushEventSchema.parse({
    MsgKey: msgKey,
    From_Account: caller.uid,
    To_Account: to,
    MsgBody: typeof body === "string" ? [{ MsgType: "TIMTextElem", MsgContent: { Text: body } }] : (body ?? []),
    ...(info !== undefined ? { OfflinePushInfo: info } : {}),
  });
  const messageId = await publishJson(PUSH_TOPIC, event);
  return { msgKey, messageId, recipients: recipients.length };
}
