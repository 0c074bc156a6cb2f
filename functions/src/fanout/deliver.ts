// FCM sends for one batch, grouped by certificate (each is its own Firebase project and OAuth
// token, cached until shortly before expiry), over the instance's one HTTP/2 connection with
// bounded concurrency, each FCM answer with its documented reaction:
//   UNREGISTERED / INVALID_ARGUMENT naming the token  -> that token is unbound
//   SENDER_ID_MISMATCH                                -> the token is unbound, the log names the certificate
//   401/403 / THIRD_PARTY_AUTH_ERROR                  -> certificate flagged unhealthy, its other sends here stop
//   429 / 5xx / timeouts / resets                     -> retried (backoff, jitter, Retry-After), bounded, then failed
import * as logger from "firebase-functions/logger";
import { Timestamp } from "firebase-admin/firestore";
import { markCertificateUnhealthy, type CertificateCredentials } from "../certificates/store";
import { fcmEndpoints } from "../fcm/endpoints";
import { FcmAuthError, FcmTokenEndpointError, type FcmSendFailure, type FcmSendResult } from "../fcm/errors";
import type { FcmMessage } from "../fcm/message";
import { cachedAccessToken, dropAccessToken, fcmPool } from "../fcm/runtime";
import { sendFcmMessage, sendWithRetry } from "../fcm/send";
import { unbindToken } from "../sessions/store";
import type { CostCounter } from "./cost";
import type { FailReason, FcmErrorRecord, PushLogEntry } from "./schemas";

export interface SendJob {
  uid: string;
  deviceId: string;
  certificateId: number;
  tokenHash: string;
  message: FcmMessage;
}

export interface SendSettings {
  sendConcurrency: number;
  maxAttempts: number;
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
}

export interface SendContext {
  credentials: Map<number, CertificateCredentials>;
  settings: SendSettings;
  cost: CostCounter;
  /** Checked before every FCM request (the batch lease); false stops the sends. */
  mayProceed: () => Promise<boolean>;
  /** Receives each device's outcome as soon as it is known. */
  record: (entry: PushLogEntry) => Promise<void>;
  sleep?: (ms: number) => Promise<void>;
}

/** The batch lease was lost: the device is left without an outcome for the delivery that took over. */
export class LeaseLostError extends Error {
  override readonly name = "LeaseLostError";
}

/** One certificate's sends in this batch: its access token, and whether FCM refused it. */
class CertificateSender {
  refused: string | null = null;
  private refusing: Promise<void> | null = null;

  constructor(
    readonly cred: CertificateCredentials,
    private readonly cost: CostCounter,
  ) {}

  async accessToken(): Promise<string> {
    return (await cachedAccessToken(this.cred)).accessToken;
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
}

function errorRecord(f: FcmSendFailure): FcmErrorRecord {
  return { kind: f.kind, httpStatus: f.httpStatus, status: f.status ?? null, errorCode: f.errorCode ?? null, message: f.message };
}

function describe(f: FcmSendFailure): string {
  return [f.httpStatus || "no response", f.status, f.errorCode, f.message].filter(Boolean).join(" ");
}

/** Sends every job; outcomes go to `ctx.record`. Resolves when all are handled or the lease is lost. */
export async function sendAll(jobs: SendJob[], ctx: SendContext): Promise<{ leaseLost: boolean }> {
  const senders = new Map<number, CertificateSender>();
  for (const [id, cred] of ctx.credentials) senders.set(id, new CertificateSender(cred, ctx.cost));
  const groups = new Map<number, SendJob[]>();
  for (const job of jobs) groups.set(job.certificateId, [...(groups.get(job.certificateId) ?? []), job]);

  let stop = false;
  let leaseLost = false;
  let firstError: unknown;
  const run = async (job: SendJob) => {
    if (stop) return;
    try {
      await ctx.record(await sendOne(job, senders.get(job.certificateId), ctx));
    } catch (err) {
      stop = true;
      if (err instanceof LeaseLostError) leaseLost = true;
      else firstError ??= err;
    }
  };
  // Each certificate's first send goes alone (all certificates in parallel): it fetches the access
  // token and proves FCM accepts the certificate, so a refused certificate costs one request per
  // batch, not one per device in flight.
  await Promise.all([...groups.values()].map((group) => run(group[0] as SendJob)));
  const rest = [...groups.values()].flatMap((group) => group.slice(1));
  let next = 0;
  const worker = async () => {
    while (!stop && next < rest.length) await run(rest[next++] as SendJob);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(ctx.settings.sendConcurrency, rest.length)) }, worker));
  if (firstError !== undefined) throw firstError;
  return { leaseLost };
}

async function sendOne(job: SendJob, sender: CertificateSender | undefined, ctx: SendContext): Promise<PushLogEntry> {
  const at = () => Timestamp.now();
  const failed = (reason: FailReason, detail: string, error: FcmErrorRecord | null, attempts: number): PushLogEntry => ({
    outcome: "failed",
    uid: job.uid,
    deviceId: job.deviceId,
    reason,
    detail,
    certificateId: job.certificateId,
    error,
    attempts,
    at: at(),
  });
  if (!sender) {
    // The caller only makes jobs for certificates it loaded; kept total for safety.
    return failed("certificate-unreadable", `push certificate ${job.certificateId} could not be loaded`, null, 0);
  }
  const refusedEarlier = () =>
    failed("certificate-unhealthy", `not sent: FCM refused push certificate ${job.certificateId} earlier in this batch (${sender.refused})`, null, 0);
  if (sender.refused !== null) return refusedEarlier();

  const { apiOrigin } = fcmEndpoints();
  let refreshed = false;
  let accessToken: string;
  try {
    accessToken = await sender.accessToken();
  } catch (err) {
    return tokenGrantFailure(err, job, sender, failed);
  }
  let grantError: unknown;
  const { result, attempts } = await sendWithRetry(
    async (): Promise<FcmSendResult> => {
      if (sender.refused !== null) return { ok: false, kind: "auth", httpStatus: 0, message: "refused earlier in this batch" };
      if (!(await ctx.mayProceed())) throw new LeaseLostError("the batch lease was lost");
      ctx.cost.fcmRequests++;
      let res = await sendFcmMessage({ apiOrigin, projectId: sender.cred.projectId, accessToken, message: job.message }, fcmPool);
      // A 401 may only mean our cached access token was revoked: one fresh token, one more try.
      if (!res.ok && res.httpStatus === 401 && res.errorCode !== "THIRD_PARTY_AUTH_ERROR" && !refreshed) {
        refreshed = true;
        sender.dropAccessToken();
        try {
          accessToken = await sender.accessToken();
        } catch (err) {
          grantError = err;
          return res;
        }
        ctx.cost.fcmRequests++;
        res = await sendFcmMessage({ apiOrigin, projectId: sender.cred.projectId, accessToken, message: job.message }, fcmPool);
      }
      return res;
    },
    {
      maxAttempts: ctx.settings.maxAttempts,
      baseDelayMs: ctx.settings.retryBaseDelayMs,
      maxDelayMs: ctx.settings.retryMaxDelayMs,
      ...(ctx.sleep ? { sleep: ctx.sleep } : {}),
    },
  );
  if (grantError !== undefined) return tokenGrantFailure(grantError, job, sender, failed);

  if (result.ok) {
    return {
      outcome: "sent",
      uid: job.uid,
      deviceId: job.deviceId,
      reason: "sent",
      certificateId: job.certificateId,
      fcmName: result.name,
      attempts,
      at: at(),
    };
  }
  if (result.httpStatus === 0 && result.kind === "auth") return refusedEarlier();
  const error = errorRecord(result);
  switch (result.kind) {
    case "token-unregistered":
    case "token-invalid": {
      const unbound = await unbind(job, ctx);
      const what = result.kind === "token-unregistered" ? "FCM no longer knows this token (app uninstalled or token expired)" : "FCM says this is not a valid registration token";
      return failed(result.kind, `${what}: ${describe(result)}; ${unbound}`, error, attempts);
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
    case "auth": {
      await sender.refuse(`FCM refused sends: ${describe(result)}`);
      return failed("certificate-auth", `FCM refused push certificate ${job.certificateId} (project ${sender.cred.projectId}): ${describe(result)}; the certificate is flagged unhealthy`, error, attempts);
    }
    case "retryable": {
      const wait = result.retryAfterMs !== undefined && result.retryAfterMs > ctx.settings.retryMaxDelayMs ? `; FCM asked to wait ${Math.ceil(result.retryAfterMs / 1000)} s, longer than the ${Math.ceil(ctx.settings.retryMaxDelayMs / 1000)} s allowed` : "";
      return failed("retries-exhausted", `FCM did not accept the message after ${attempts} attempt(s): ${describe(result)}${wait}`, error, attempts);
    }
    case "invalid-message":
      return failed("invalid-message", `FCM rejected the message: ${describe(result)}`, error, attempts);
    default:
      return failed("fcm-error", `FCM answered ${describe(result)}`, error, attempts);
  }
}

function tokenGrantFailure(
  err: unknown,
  job: SendJob,
  sender: CertificateSender,
  failed: (reason: FailReason, detail: string, error: FcmErrorRecord | null, attempts: number) => PushLogEntry,
): Promise<PushLogEntry> | PushLogEntry {
  if (err instanceof FcmAuthError) {
    const reason = `Google's token endpoint refused the key: ${err.message}`;
    return sender.refuse(reason).then(() =>
      failed(
        "certificate-auth",
        `no access token for push certificate ${job.certificateId} (${sender.cred.clientEmail}): ${err.message}; the certificate is flagged unhealthy`,
        { kind: "auth", httpStatus: err.httpStatus, status: null, errorCode: err.oauthError, message: err.message },
        0,
      ),
    );
  }
  if (err instanceof FcmTokenEndpointError) {
    return failed("token-endpoint-unavailable", `no access token for push certificate ${job.certificateId}: ${err.message}`, null, 0);
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
