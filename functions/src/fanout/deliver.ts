// FCM sends for one batch, grouped by certificate (each is its own Firebase project and OAuth
// token, cached until shortly before expiry), over the instance's one HTTP/2 connection with
// bounded concurrency, each FCM answer with its documented reaction:
//   UNREGISTERED / INVALID_ARGUMENT naming the token  -> that token is unbound
//   SENDER_ID_MISMATCH                                -> the token is unbound, the log names the certificate
//   THIRD_PARTY_AUTH_ERROR                            -> that token's failure (APNs / web push credentials)
//   401/403, or the token endpoint refusing the key   -> certificate flagged unhealthy, its other sends here stop
//   429                                               -> the project's sends pause for Retry-After (or a minute)
//   5xx / timeouts / resets / token endpoint down     -> the project's sends back off, then resume
// Nothing retryable is ever recorded as failed while the event is young: devices still open go on
// in waves. Before each wave after the first, the devices' bindings are read again, and a device
// that logged out, was kicked or whose token moved in the meantime is dropped: a retry never
// reaches the next owner of a phone. When the invocation's time is up, the devices still open are
// returned to the caller, which hands the batch to a continuation.
import * as logger from "firebase-functions/logger";
import { Timestamp } from "firebase-admin/firestore";
import { markCertificateHealthy, markCertificateUnhealthy, type CertificateCredentials } from "../certificates/store";
import { fcmEndpoints } from "../fcm/endpoints";
import { FcmAuthError, FcmTokenEndpointError, type FcmSendFailure, type FcmSendResult } from "../fcm/errors";
import type { FcmMessage } from "../fcm/message";
import { cachedAccessToken, dropAccessToken, fcmPool } from "../fcm/runtime";
import { sendFcmMessage } from "../fcm/send";
import { unbindToken } from "../sessions/store";
import type { CostCounter } from "./cost";
import { pacerFor, type PacingSettings } from "./pacer";
import type { FailReason, FcmErrorRecord, PushLogEntry } from "./schemas";

export interface SendJob {
  uid: string;
  deviceId: string;
  /** The session the device was in when it was found eligible: a retry requires the same one. */
  sessionId: string;
  certificateId: number;
  tokenHash: string;
  message: FcmMessage;
  /** When the message's lifetime (MsgLifeTime) ends, epoch ms: a late attempt carries only what is left. */
  lifetimeEndsAt: number;
}

/** The message with android.ttl counted down to the time of this attempt. */
function withRemainingTtl(message: FcmMessage, lifetimeEndsAt: number, nowMs: number): FcmMessage {
  if (!message.android) return message;
  return { ...message, android: { ...message.android, ttl: `${Math.max(0, Math.floor((lifetimeEndsAt - nowMs) / 1000))}s` } };
}

export interface SendSettings extends PacingSettings {
  sendConcurrency: number;
}

/** What a fresh read of a device says about a job that is about to be retried. */
export type Recheck = { ok: true } | { ok: false; entry: PushLogEntry };

export interface SendContext {
  credentials: Map<number, CertificateCredentials>;
  settings: SendSettings;
  cost: CostCounter;
  /** No attempt starts after this (epoch ms): the event's MsgLifeTime or MAX_EVENT_AGE_SECONDS. */
  expiresAt: number;
  /**
   * A continuation: its first wave is no first attempt, so an expired event sends nothing. (A first
   * attempt always goes: a MsgLifeTime of 0 means "now or never", and now is allowed.)
   */
  continuation: boolean;
  /** No wave starts after this (epoch ms): the invocation's time budget. */
  budgetEndsAt: number;
  /** Checked before every FCM request (the batch lease); false stops the sends. */
  mayProceed: () => Promise<boolean>;
  /** Receives each device's outcome as soon as it is known. */
  record: (entry: PushLogEntry) => Promise<void>;
  /** Reads the jobs' devices again (one read) before a retry wave; keyed by `jobKey`. */
  recheck: (jobs: SendJob[]) => Promise<Map<string, Recheck>>;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface SendOutcome {
  leaseLost: boolean;
  /** Devices without an outcome because the invocation's time ran out: to continue later. */
  open: SendJob[];
  /** With `open`: the earliest time FCM may be asked again. */
  notBefore: number | null;
}

/** The batch lease was lost: the device is left without an outcome for the delivery that took over. */
export class LeaseLostError extends Error {
  override readonly name = "LeaseLostError";
}

export const jobKey = (j: { uid: string; deviceId: string }): string => `${j.uid}\u0000${j.deviceId}`;

/**
 * When FCM last accepted a send with each certificate (and key version) in this instance. Within
 * PROBE_FREE_MS (5 minutes) of that, a batch's first wave skips the one-request probe: a key that FCM refused
 * in between costs at most one wave of requests for its own devices, never anyone else's.
 */
const lastAccepted = new Map<string, number>();
const PROBE_FREE_MS = 5 * 60_000;
const acceptedKey = (cred: CertificateCredentials) => `${cred.certificateId}:${cred.version}:${cred.privateKeyId}`;

function noteAccepted(cred: CertificateCredentials, nowMs: number): void {
  if (lastAccepted.size > 1_000) lastAccepted.clear();
  lastAccepted.set(acceptedKey(cred), nowMs);
}

function recentlyAccepted(cred: CertificateCredentials, nowMs: number): boolean {
  const at = lastAccepted.get(acceptedKey(cred));
  return at !== undefined && nowMs - at < PROBE_FREE_MS && cred.health.state !== "unhealthy";
}

/** One certificate's sends in this batch: its access token, and whether FCM refused it. */
class CertificateSender {
  refused: string | null = null;
  private refusing: Promise<void> | null = null;
  private healed = false;

  constructor(
    readonly cred: CertificateCredentials,
    private readonly cost: CostCounter,
  ) {}

  accessToken(): Promise<string> {
    return cachedAccessToken(this.cred).then((t) => t.accessToken);
  }

  dropAccessToken(): void {
    dropAccessToken(this.cred);
  }

  /** Flags the certificate once per batch (only if it still has the key that was refused). */
  refuse(reason: string): Promise<void> {
    this.refused ??= reason;
    this.refusing ??= (async () => {
      logger.error("push certificate refused by FCM: flagged unhealthy, its remaining sends in this batch stop", {
        certificateId: this.cred.certificateId,
        projectId: this.cred.projectId,
        version: this.cred.version,
        reason,
      });
      this.cost.firestoreReads++;
      this.cost.firestoreWrites++;
      try {
        await markCertificateUnhealthy(this.cred.certificateId, this.cred.version, reason);
      } catch (err) {
        logger.error("could not flag the push certificate unhealthy", { certificateId: this.cred.certificateId, error: String(err) });
      }
    })();
    return this.refusing;
  }

  /** A certificate flagged unhealthy that FCM accepts again is healthy again: once per batch. */
  async accepted(): Promise<void> {
    if (this.healed || this.cred.health.state !== "unhealthy") return;
    this.healed = true;
    this.cost.firestoreReads++;
    this.cost.firestoreWrites++;
    try {
      await markCertificateHealthy(this.cred.certificateId, this.cred.version);
      logger.info("push certificate accepted by FCM again: healthy", { certificateId: this.cred.certificateId });
    } catch (err) {
      logger.error("could not mark the push certificate healthy", { certificateId: this.cred.certificateId, error: String(err) });
    }
  }
}

function errorRecord(f: FcmSendFailure): FcmErrorRecord {
  return { kind: f.kind, httpStatus: f.httpStatus, status: f.status ?? null, errorCode: f.errorCode ?? null, message: f.message };
}

function describe(f: FcmSendFailure): string {
  return [f.httpStatus || "no response", f.status, f.errorCode, f.message].filter(Boolean).join(" ");
}

/** One attempt's result for a job: an outcome to record, or "try again later" (with why). */
type Attempt = { done: PushLogEntry } | { retry: FcmSendFailure | null; requested: boolean; tokenEndpoint?: string };

interface OpenJob {
  job: SendJob;
  /** FCM requests made for it so far. */
  attempts: number;
  /** It was tried and must be tried again: its device is read again before the next try. */
  tried: boolean;
  last: FcmSendFailure | null;
  lastTokenEndpointError: string | null;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Sends every job in waves until each has an outcome, the lease is lost, or the invocation's time is up. */
export async function sendAll(jobs: SendJob[], context: SendContext): Promise<SendOutcome> {
  // Resolved once per batch, not per request (in the emulator it validates two URLs).
  const ctx = { ...context, apiOrigin: fcmEndpoints().apiOrigin };
  const now = ctx.now ?? Date.now;
  const sleep = ctx.sleep ?? defaultSleep;
  const senders = new Map<number, CertificateSender>();
  for (const [id, cred] of ctx.credentials) senders.set(id, new CertificateSender(cred, ctx.cost));
  const pacerOf = (job: SendJob) => pacerFor(ctx.credentials.get(job.certificateId)?.projectId ?? `certificate-${job.certificateId}`);

  let open: OpenJob[] = jobs.map((job) => ({ job, attempts: 0, tried: false, last: null, lastTokenEndpointError: null }));
  let stop = false;
  let leaseLost = false;
  let firstError: unknown;
  let firstWave = true;
  const expireAll = async () => {
    for (const o of open) await ctx.record(expiredEntry(o, ctx.expiresAt));
    open = [];
  };

  while (open.length > 0 && !stop) {
    const t = now();
    // The first wave of a new batch always goes (see `continuation`); retries only while the event lives.
    if ((!firstWave || ctx.continuation) && t >= ctx.expiresAt) {
      await expireAll();
      break;
    }
    const ready = open.filter((o) => pacerOf(o.job).openAt() <= t);
    if (ready.length === 0) {
      // Every project with open devices is paused: wait for the first to reopen.
      const wake = Math.min(...open.map((o) => pacerOf(o.job).openAt()));
      if (wake >= ctx.expiresAt) {
        // FCM asked to wait past the event's end: recorded now rather than after a pointless wait.
        await expireAll();
        break;
      }
      if (wake > ctx.budgetEndsAt) return { leaseLost: false, open: open.map((o) => o.job), notBefore: wake };
      // In slices, renewing the lease, so that a long pause never lets it lapse.
      while (now() < wake) {
        await sleep(Math.min(wake - now(), 15_000));
        if (!(await ctx.mayProceed())) return { leaseLost: true, open: [], notBefore: null };
      }
      continue;
    }
    if (t > ctx.budgetEndsAt) return { leaseLost: false, open: open.map((o) => o.job), notBefore: t };

    // Any wave after the first goes out seconds or minutes after the devices were read (a retry, or
    // a device held back by a pause): read them again first.
    let wave = ready;
    if (!firstWave) {
      const fresh = await ctx.recheck(ready.map((o) => o.job));
      const dropped = new Set<OpenJob>();
      for (const o of ready) {
        const r = fresh.get(jobKey(o.job));
        if (r && !r.ok) {
          await ctx.record(r.entry);
          dropped.add(o);
        }
      }
      if (dropped.size > 0) {
        wave = ready.filter((o) => !dropped.has(o));
        open = open.filter((o) => !dropped.has(o));
      }
    }
    const inWave = new Set(wave);
    const next: OpenJob[] = open.filter((o) => !inWave.has(o));

    const run = async (o: OpenJob) => {
      // Stopped, or paused by an answer earlier in this wave: left for later, unsent.
      if (stop || pacerOf(o.job).openAt() > now()) {
        next.push(o);
        return;
      }
      try {
        const a = await attemptOne(o, senders.get(o.job.certificateId), ctx, now);
        if ("done" in a) await ctx.record(a.done);
        else {
          next.push({
            job: o.job,
            attempts: o.attempts + (a.requested ? 1 : 0),
            tried: true,
            last: a.retry ?? o.last,
            lastTokenEndpointError: a.tokenEndpoint ?? o.lastTokenEndpointError,
          });
        }
      } catch (err) {
        stop = true;
        next.push(o);
        if (err instanceof LeaseLostError) leaseLost = true;
        else firstError ??= err;
      }
    };
    // Each certificate's first send of a wave goes alone (all certificates in parallel): it fetches
    // the access token and proves FCM accepts the certificate and is not throttling it, so a refused
    // or throttled certificate costs one request per wave, not one per device in flight.
    // A certificate FCM accepted in this instance moments ago needs no probe: its first wave goes
    // out at once (the chat-speed case: a warm instance, a healthy key).
    const probes = new Set<OpenJob>();
    const seen = new Set<number>();
    for (const o of wave) {
      if (seen.has(o.job.certificateId)) continue;
      seen.add(o.job.certificateId);
      const cred = ctx.credentials.get(o.job.certificateId);
      if (firstWave && cred && recentlyAccepted(cred, now())) continue;
      probes.add(o);
    }
    firstWave = false;
    await Promise.all([...probes].map(run));
    const rest = wave.filter((o) => !probes.has(o));
    let i = 0;
    const worker = async () => {
      while (i < rest.length) await run(rest[i++] as OpenJob);
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(ctx.settings.sendConcurrency, rest.length)) }, worker));
    open = next;
  }
  if (firstError !== undefined) throw firstError;
  return { leaseLost, open: leaseLost ? [] : open.map((o) => o.job), notBefore: null };
}

function expiredEntry(o: OpenJob, expiresAt: number): PushLogEntry {
  const last = o.last ? `; FCM's last answer: ${describe(o.last)}` : o.lastTokenEndpointError ? `; Google's token endpoint: ${o.lastTokenEndpointError}` : "";
  return {
    outcome: "failed",
    uid: o.job.uid,
    deviceId: o.job.deviceId,
    reason: "expired",
    detail: `not accepted by FCM before the event's end (${new Date(expiresAt).toISOString()}, MsgLifeTime or MAX_EVENT_AGE_SECONDS) after ${o.attempts} attempt(s)${last}`,
    certificateId: o.job.certificateId,
    error: o.last ? errorRecord(o.last) : null,
    attempts: o.attempts,
    at: Timestamp.now(),
  };
}

async function attemptOne(o: OpenJob, sender: CertificateSender | undefined, ctx: SendContext & { apiOrigin: string }, now: () => number): Promise<Attempt> {
  const { job } = o;
  const at = () => Timestamp.now();
  const failed = (reason: FailReason, detail: string, error: FcmErrorRecord | null, attempts: number): { done: PushLogEntry } => ({
    done: { outcome: "failed", uid: job.uid, deviceId: job.deviceId, reason, detail, certificateId: job.certificateId, error, attempts, at: at() },
  });
  if (!sender) {
    // The caller only makes jobs for certificates it loaded; kept total for safety.
    return failed("certificate-unreadable", `push certificate ${job.certificateId} could not be loaded`, null, o.attempts);
  }
  const refusedEarlier = () =>
    failed("certificate-unhealthy", `not sent: FCM refused push certificate ${job.certificateId} earlier in this batch (${sender.refused})`, null, o.attempts);
  if (sender.refused !== null) return refusedEarlier();
  const pacer = pacerFor(sender.cred.projectId);

  let accessToken: string;
  try {
    accessToken = await sender.accessToken();
  } catch (err) {
    return tokenGrantFailure(err, o, sender, failed, pacer, ctx, now);
  }
  if (!(await ctx.mayProceed())) throw new LeaseLostError("the batch lease was lost");
  const apiOrigin = ctx.apiOrigin;
  // A first attempt sends the message as built; a later one, with what is left of its lifetime.
  const message = o.tried ? withRemainingTtl(job.message, job.lifetimeEndsAt, now()) : job.message;
  ctx.cost.fcmRequests++;
  let res: FcmSendResult = await sendFcmMessage({ apiOrigin, projectId: sender.cred.projectId, accessToken, message }, fcmPool);
  // A 401 may only mean our cached access token was revoked: one fresh token, one more try.
  if (!res.ok && res.httpStatus === 401 && res.errorCode !== "THIRD_PARTY_AUTH_ERROR") {
    sender.dropAccessToken();
    try {
      accessToken = await sender.accessToken();
    } catch (err) {
      return tokenGrantFailure(err, o, sender, failed, pacer, ctx, now);
    }
    ctx.cost.fcmRequests++;
    res = await sendFcmMessage({ apiOrigin, projectId: sender.cred.projectId, accessToken, message }, fcmPool);
  }
  const attempts = o.attempts + 1;

  if (res.ok) {
    pacer.succeeded();
    noteAccepted(sender.cred, now());
    await sender.accepted();
    return { done: { outcome: "sent", uid: job.uid, deviceId: job.deviceId, reason: "sent", certificateId: job.certificateId, fcmName: res.name, attempts, at: at() } };
  }
  if (res.kind === "retryable") {
    if (res.httpStatus === 429) pacer.throttled(res.retryAfterMs, now());
    else pacer.failed(res.retryAfterMs, now(), ctx.settings);
    return { retry: res, requested: true };
  }
  pacer.succeeded();
  const error = errorRecord(res);
  switch (res.kind) {
    case "token-unregistered":
    case "token-invalid": {
      const unbound = await unbind(job, ctx);
      const what = res.kind === "token-unregistered" ? "FCM no longer knows this token (app uninstalled or token expired)" : "FCM says this is not a valid registration token";
      return failed(res.kind, `${what}: ${describe(res)}; ${unbound}`, error, attempts);
    }
    case "sender-mismatch": {
      const unbound = await unbind(job, ctx);
      return failed(
        "sender-mismatch",
        `SENDER_ID_MISMATCH: the token was issued for another Firebase project than push certificate ${job.certificateId} (project ${sender.cred.projectId}); the app reported the wrong certificateId for its google-services.json; ${unbound}`,
        error,
        attempts,
      );
    }
    case "third-party-auth":
      return failed(
        "third-party-auth",
        `THIRD_PARTY_AUTH_ERROR for this token: FCM could not deliver through APNs or web push (an iOS or web token; check the APNs key or web push credentials of project ${sender.cred.projectId}); the certificate and the other devices are not affected: ${describe(res)}`,
        error,
        attempts,
      );
    case "auth": {
      await sender.refuse(`FCM refused sends: ${describe(res)}`);
      return failed("certificate-auth", `FCM refused push certificate ${job.certificateId} (project ${sender.cred.projectId}): ${describe(res)}; the certificate is flagged unhealthy`, error, attempts);
    }
    case "invalid-message":
      return failed("invalid-message", `FCM rejected the message: ${describe(res)}`, error, attempts);
    default:
      return failed("fcm-error", `FCM answered ${describe(res)}`, error, attempts);
  }
}

function tokenGrantFailure(
  err: unknown,
  o: OpenJob,
  sender: CertificateSender,
  failed: (reason: FailReason, detail: string, error: FcmErrorRecord | null, attempts: number) => { done: PushLogEntry },
  pacer: ReturnType<typeof pacerFor>,
  ctx: SendContext,
  now: () => number,
): Promise<Attempt> | Attempt {
  if (err instanceof FcmAuthError) {
    const reason = `Google's token endpoint refused the key: ${err.message}`;
    return sender.refuse(reason).then(() =>
      failed(
        "certificate-auth",
        `no access token for push certificate ${o.job.certificateId} (${sender.cred.clientEmail}): ${err.message}; the certificate is flagged unhealthy`,
        { kind: "auth", httpStatus: err.httpStatus, status: null, errorCode: err.oauthError, message: err.message },
        o.attempts,
      ),
    );
  }
  if (err instanceof FcmTokenEndpointError) {
    // An outage of Google's token endpoint (429/5xx/timeout) says nothing about the key: the
    // certificate is not flagged, and the project's sends back off like any other outage.
    pacer.failed(undefined, now(), ctx.settings);
    return { retry: null, requested: false, tokenEndpoint: err.message };
  }
  throw err;
}

/** Unbinds through sessions' own transaction, so the token/device invariants hold. Never fails the batch. */
async function unbind(job: SendJob, ctx: SendContext): Promise<string> {
  ctx.cost.firestoreReads += 2;
  ctx.cost.firestoreWrites++;
  try {
    const owner = await unbindToken(job.tokenHash, { uid: job.uid, deviceId: job.deviceId, certificateId: job.certificateId });
    if (!owner) return `the token was left as it is: it is no longer bound to this device with push certificate ${job.certificateId} (already removed, or re-reported since this send)`;
    return "the token is unbound from this device";
  } catch (err) {
    logger.error("could not unbind a push token FCM refused", { uid: job.uid, deviceId: job.deviceId, error: String(err) });
    return `unbinding the token failed (${String(err)}); it will be tried again on the next failure`;
  }
}
