// Resuming a batch at the right time, without a function that waits for it.
//
// A batch whose open devices must wait longer than FANOUT_MAX_INLINE_WAIT_SECONDS (FCM answered
// 429 with Retry-After: 60, an outage's backoff grew long) or whose invocation ran out of time
// records what it has, releases its lease (batch.ts) and is handed to Cloud Tasks: a task for the
// task-queue function offlinePushResume, scheduled at the time FCM may be asked again. Until then
// nothing runs for it: its function slot went back to the other batches and events at once, so a
// throttled project cannot starve any other (each Firebase project is paced on its own).
//
// The task carries the batch as the batch topic does (BatchMessageSchema, with `continuation` and
// `notBefore`); its delivery claims the existing record (never a new one: a record gone means
// nothing to resume) and goes on where the last delivery stopped, exactly once (progress.ts).
//
// - Named `resume-<lease owner>`: one task per hand-on. Enqueueing it again after a lost answer
//   finds it there (task-already-exists) and is done; another delivery's hand-on is another task.
// - Arriving early (a clock skew; the Cloud Tasks emulator dispatches at once, whatever the
//   schedule): by at most FANOUT_MAX_INLINE_WAIT_SECONDS it is slept through, more is answered 503
//   (HttpsError unavailable) before anything is read, and Cloud Tasks tries again with backoff.
// - Failing (Firestore unavailable, its own earlier attempt still holding the lease): Cloud Tasks
//   retries it (RESUME_RETRY) for as long as the event may still be pushed; the handler
//   acknowledges once the event is older than MAX_EVENT_AGE_SECONDS, as the Pub/Sub triggers do.
// - The enqueue failing: the delivery that handed on fails, and its retry (Pub/Sub's redelivery,
//   or the task's own retry) finds the lease released and takes the batch over.
import { getApps, initializeApp } from "firebase-admin/app";
import { getFunctions } from "firebase-admin/functions";
import { REGION } from "../config";
import type { BatchInput } from "./batch";
import type { BatchMessage } from "./schemas";

export const RESUME_FUNCTION = "offlinePushResume";

/**
 * How long Cloud Tasks waits for a resumption's answer: longer than the function may run (540 s),
 * so a resumption still running is never dispatched a second time beside itself.
 */
export const RESUME_DISPATCH_DEADLINE_SECONDS = 600;

/** An enqueue that has not answered by then failed (its retry may find the task created: already there). */
const ENQUEUE_TIMEOUT_MS = 20_000;

/**
 * Cloud Tasks' retries of a failed resumption: 1 s doubling to 10 s, and on for as long as
 * MAX_EVENT_AGE_SECONDS (the handler acknowledges a resumption of an event older than that).
 * Both limits must be reached before Cloud Tasks gives up, so a few attempts is no bound of its own.
 */
export const RESUME_RETRY = { minBackoffSeconds: 1, maxBackoffSeconds: 10, maxDoublings: 4, maxAttempts: 10 } as const;

/**
 * At most as many resumptions at once as the function can run (maxInstances 20 at concurrency 8),
 * and 100 a second: 20,000 devices a second at full batches, twice FCM's default quota.
 */
export const RESUME_RATE_LIMITS = { maxConcurrentDispatches: 160, maxDispatchesPerSecond: 100 } as const;

/** The task's payload: the batch, as the batch topic carries it. */
export function resumptionMessage(input: BatchInput, notBeforeMs: number): BatchMessage {
  return {
    v: 1,
    content: input.content,
    batchIndex: input.batchIndex,
    batchCount: input.batchCount,
    uids: input.uids,
    publishTime: new Date(input.publishTimeMs).toISOString(),
    eventId: input.eventId,
    ...(input.continuation !== undefined ? { continuation: input.continuation } : {}),
    notBefore: new Date(notBeforeMs).toISOString(),
    ...(input.message ? { message: input.message } : {}),
    ...(input.ownedElsewhere?.length ? { ownedElsewhere: input.ownedElsewhere } : {}),
  };
}

/** Schedules the batch's resumption at `notBeforeMs` (Cloud Tasks; its emulator under the Functions emulator). */
export async function enqueueResumption(input: BatchInput, notBeforeMs: number, taskId: string): Promise<void> {
  if (getApps().length === 0) initializeApp();
  const queue = getFunctions().taskQueue<BatchMessage>(`locations/${REGION}/functions/${RESUME_FUNCTION}`);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Cloud Tasks did not answer the enqueue within ${ENQUEUE_TIMEOUT_MS} ms`)), ENQUEUE_TIMEOUT_MS);
  });
  try {
    await Promise.race([
      queue.enqueue(resumptionMessage(input, notBeforeMs), { id: taskId, scheduleTime: new Date(notBeforeMs), dispatchDeadlineSeconds: RESUME_DISPATCH_DEADLINE_SECONDS }),
      timeout,
    ]);
  } catch (err) {
    // This hand-on's task exists already (an earlier enqueue's answer was lost): done.
    if ((err as { code?: unknown }).code === "functions/task-already-exists") return;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
