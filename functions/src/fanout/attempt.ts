// One FCM request for one device, and FCM's answer turned into an outcome or "try again later",
// with its documented reaction (the table is in deliver.ts). A certificate's state within a batch
// (CertificateSender): its access token, and whether FCM refused it.
import * as logger from "firebase-functions/logger";
import { Timestamp } from "firebase-admin/firestore";
import { markCertificateHealthy, markCertificateUnhealthy, type CertificateCredentials } from "../certificates/store";
import { FcmAuthError, FcmTokenEndpointError, type FcmSendFailure, type FcmSendResult } from "../fcm/errors";
import type { FcmMessage } from "../fcm/message";
import type { Platform } from "../sessions/schemas";
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
  /** The locale whose texts the message carries (localeTexts.ts, textsFor); absent: the default texts. A refreshed token's message is built in it again. */
  locale?: string;
  /** When the message's lifetime (MsgLifeTime) ends, epoch ms: a late attempt carries only what is left. */
  lifetimeEndsAt: number;
  /** The device's platform (its message's form: apnsMessage.ts for "ios"). */
  platform?: Platform;
  /** The badge an iPhone's message carries, as counted in pushBadges (given back if the send fails for good). */
  badge?: number;
}

/** A job still without an outcome, between waves. */
export interface OpenJob {
  job: SendJob;
  /** When its device was last read (epoch ms): no request leaves more than maxReadAgeMs after it. */
  readAt: number;
  /** FCM requests made for it so far. */
  attempts: number;
  /** It was tried and must be tried again: its device is read again before the next try. */
  tried: boolean;
  last: FcmSendFailure | null;
  lastTokenEndpointError: string | null;
}

/**
 * One attempt's result for a job: an outcome to record, "try again later" (with why), or "its
 * device's read got too old before the request could leave" (nothing sent; read again first).
 */
export type Attempt = { done: PushLogEntry } | { retry: FcmSendFailure | null; requested: boolean; tokenEndpoint?: string } | { stale: true };

/** What an attempt needs of the batch's sends. */
export interface AttemptContext {
  cost: CostCounter;
  settings: PacingSettings & { maxReadAgeMs: number };
  /** Checked before every FCM request (the batch lease); false stops the sends. */
  mayProceed: () => Promise<boolean>;
  /** The FCM API's origin, resolved once per batch. */
  apiOrigin: string;
}

/** The batch lease was lost: the device is left without an outcome for the delivery that took over. */
export class LeaseLostError extends Error {
  override readonly name = "LeaseLostError";
}

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

export function recentlyAccepted(cred: CertificateCredentials, nowMs: number): boolean {
  const at = lastAccepted.get(acceptedKey(cred));
  return at !== undefined && nowMs - at < PROBE_FREE_MS && cred.health.state !== "unhealthy";
}

/** One certificate's sends in this batch: its access token, and whether FCM refused it. */
export class CertificateSender {
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

export function errorRecord(f: FcmSendFailure): FcmErrorRecord {
  return { kind: f.kind, httpStatus: f.httpStatus, status: f.status ?? null, errorCode: f.errorCode ?? null, message: f.message };
}

export function describe(f: FcmSendFailure): string {
  return [f.httpStatus || "no response", f.status, f.errorCode, f.message].filter(Boolean).join(" ");
}

function failed(job: SendJob, reason: FailReason, detail: string, error: FcmErrorRecord | null, attempts: number): { done: PushLogEntry } {
  return { done: { outcome: "failed", uid: job.uid, deviceId: job.deviceId, reason, detail, certificateId: job.certificateId, error, attempts, at: Timestamp.now() } };
}

/** One try for a job: its outcome, or why to try again later. Throws LeaseLostError when the lease is gone. */
export async function attemptOne(o: OpenJob, sender: CertificateSender | undefined, ctx: AttemptContext, now: () => number): Promise<Attempt> {
  const { job } = o;
  if (!sender) {
    // The caller only makes jobs for certificates it loaded; kept total for safety.
    return failed(job, "certificate-unreadable", `push certificate ${job.certificateId} could not be loaded`, null, o.attempts);
  }
  if (sender.refused !== null) {
    return failed(job, "certificate-unhealthy", `not sent: FCM refused push certificate ${job.certificateId} earlier in this batch (${sender.refused})`, null, o.attempts);
  }
  const sent = await request(o, sender, ctx, now);
  if ("attempt" in sent) return sent.attempt;
  const res = sent.res;
  const attempts = o.attempts + 1;
  const pacer = pacerFor(sender.cred.projectId);
  if (res.ok) {
    pacer.succeeded();
    noteAccepted(sender.cred, now());
    await sender.accepted();
    return { done: { outcome: "sent", uid: job.uid, deviceId: job.deviceId, reason: "sent", certificateId: job.certificateId, fcmName: res.name, attempts, at: Timestamp.now() } };
  }
  if (res.kind === "retryable") {
    if (res.httpStatus === 429) pacer.throttled(res.retryAfterMs, now());
    else pacer.failed(res.retryAfterMs, now(), ctx.settings);
    return { retry: res, requested: true };
  }
  pacer.succeeded();
  return refusal(res, job, sender, ctx, attempts);
}

/** The request, with the certificate's access token (no token: what that means for the job). A 401 gets one more try with a fresh token. */
async function request(o: OpenJob, sender: CertificateSender, ctx: AttemptContext, now: () => number): Promise<{ res: FcmSendResult } | { attempt: Attempt }> {
  const { job } = o;
  let accessToken: string;
  try {
    accessToken = await sender.accessToken();
  } catch (err) {
    return { attempt: await tokenGrantFailure(err, o, sender, ctx, now) };
  }
  if (!(await ctx.mayProceed())) throw new LeaseLostError("the batch lease was lost");
  // The access token and the lease check may have taken a while (a token endpoint slow to answer, a
  // checkpoint): a request never leaves on a read older than the bound.
  if (now() - o.readAt > ctx.settings.maxReadAgeMs) return { attempt: { stale: true } };
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
      return { attempt: await tokenGrantFailure(err, o, sender, ctx, now) };
    }
    ctx.cost.fcmRequests++;
    res = await sendFcmMessage({ apiOrigin, projectId: sender.cred.projectId, accessToken, message }, fcmPool);
  }
  return { res };
}

/** FCM's final answer about this device (nothing to retry): the failure recorded, with its reaction. */
async function refusal(res: Exclude<FcmSendResult, { ok: true }>, job: SendJob, sender: CertificateSender, ctx: AttemptContext, attempts: number): Promise<Attempt> {
  const error = errorRecord(res);
  switch (res.kind) {
    case "token-unregistered":
    case "token-invalid": {
      const unbound = await unbind(job, ctx);
      const what = res.kind === "token-unregistered" ? "FCM no longer knows this token (app uninstalled or token expired)" : "FCM says this is not a valid registration token";
      return failed(job, res.kind, `${what}: ${describe(res)}; ${unbound}`, error, attempts);
    }
    case "sender-mismatch": {
      const unbound = await unbind(job, ctx);
      return failed(
        job,
        "sender-mismatch",
        `SENDER_ID_MISMATCH: the token was issued for another Firebase project than push certificate ${job.certificateId} (project ${sender.cred.projectId}); the app reported the wrong certificateId for its google-services.json; ${unbound}`,
        error,
        attempts,
      );
    }
    case "third-party-auth":
      return failed(
        job,
        "third-party-auth",
        `THIRD_PARTY_AUTH_ERROR for this token: FCM could not deliver through APNs or web push (an iOS or web token; check the APNs key or web push credentials of project ${sender.cred.projectId}); the certificate and the other devices are not affected: ${describe(res)}`,
        error,
        attempts,
      );
    case "auth": {
      await sender.refuse(`FCM refused sends: ${describe(res)}`);
      return failed(job, "certificate-auth", `FCM refused push certificate ${job.certificateId} (project ${sender.cred.projectId}): ${describe(res)}; the certificate is flagged unhealthy`, error, attempts);
    }
    case "invalid-message":
      return failed(job, "invalid-message", `FCM rejected the message: ${describe(res)}`, error, attempts);
    default:
      return failed(job, "fcm-error", `FCM answered ${describe(res)}`, error, attempts);
  }
}

async function tokenGrantFailure(err: unknown, o: OpenJob, sender: CertificateSender, ctx: AttemptContext, now: () => number): Promise<Attempt> {
  if (err instanceof FcmAuthError) {
    await sender.refuse(`Google's token endpoint refused the key: ${err.message}`);
    return failed(
      o.job,
      "certificate-auth",
      `no access token for push certificate ${o.job.certificateId} (${sender.cred.clientEmail}): ${err.message}; the certificate is flagged unhealthy`,
      { kind: "auth", httpStatus: err.httpStatus, status: null, errorCode: err.oauthError, message: err.message },
      o.attempts,
    );
  }
  if (err instanceof FcmTokenEndpointError) {
    // An outage of Google's token endpoint (429/5xx/timeout) says nothing about the key: the
    // certificate is not flagged, and the project's sends back off like any other outage.
    pacerFor(sender.cred.projectId).failed(undefined, now(), ctx.settings);
    return { retry: null, requested: false, tokenEndpoint: err.message };
  }
  throw err;
}

/** Unbinds through sessions' own transaction, so the token/device invariants hold. Never fails the batch. */
async function unbind(job: SendJob, ctx: AttemptContext): Promise<string> {
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

/** The message with android.ttl counted down to the time of this attempt. */
function withRemainingTtl(message: FcmMessage, lifetimeEndsAt: number, nowMs: number): FcmMessage {
  const remaining = Math.max(0, Math.floor((lifetimeEndsAt - nowMs) / 1000));
  // An iPhone's apns-expiration is a time, not a duration: only "nothing left" ("0": try once) changes it.
  const headers = message.apns?.headers;
  if (headers?.["apns-expiration"] !== undefined && message.apns) {
    return remaining > 0 ? message : { ...message, apns: { ...message.apns, headers: { ...headers, "apns-expiration": "0" } } };
  }
  if (!message.android) return message;
  return { ...message, android: { ...message.android, ttl: `${remaining}s` } };
}
