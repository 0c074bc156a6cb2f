import { z } from "zod";
import type { FcmErrorKind, FcmSendFailure, FcmSendResult } from "./errors.js";
import {
  Http2ConnectionError,
  Http2TimeoutError,
  type Http2Request,
  type Http2Requester,
  type Http2Response,
} from "./http2Pool.js";
import type { FcmMessage } from "./message.js";

export const FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError";
/** What APNs answered FCM for an iOS token (its HTTP status and reason, e.g. 400 BadDeviceToken). */
export const APNS_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.ApnsError";
export const BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest";
export const RETRY_INFO_TYPE = "type.googleapis.com/google.rpc.RetryInfo";

export interface SendFcmMessageParams {
  /** From `fcmEndpoints()`. */
  apiOrigin: string;
  /** The Firebase project of the service account (its `project_id`). */
  projectId: string;
  /** OAuth access token from `fetchAccessToken` / `AccessTokenCache`. */
  accessToken: string;
  message: FcmMessage;
  /** FCM validates the message without delivering it. */
  validateOnly?: boolean;
  /** Overrides the pool's request timeout. */
  timeoutMs?: number;
  /** Clock for HTTP-date `Retry-After` values (epoch ms). */
  now?: () => number;
}

/**
 * One FCM HTTP v1 send: `POST /v1/projects/{projectId}/messages:send`.
 * Never throws for an FCM error or a transport failure (timeout, reset, refused): those
 * are classified into the result. Throws only for programming errors (closed pool...).
 */
export function sendFcmMessage(
  params: SendFcmMessageParams,
  pool: Http2Requester,
): Promise<FcmSendResult> {
  // A plain promise chain, not an async function: one promise less per message. Anything thrown
  // synchronously (building the request, a stub requester) still becomes a rejection.
  try {
    // The message is not validated again here: it was when it was built (checkedFcmMessage), and
    // this is the hot path of a fan-out. The constant wrapping is concatenated around the one
    // stringify the message needs, the same bytes as JSON.stringify({ message, validate_only }).
    const body = `{"message":${JSON.stringify(params.message)}${params.validateOnly ? ',"validate_only":true}' : "}"}`;
    const request: Http2Request = {
      origin: params.apiOrigin,
      path: sendPath(params.projectId),
      method: "POST",
      headers: sendHeaders(params.accessToken),
      body,
    };
    if (params.timeoutMs !== undefined) request.timeoutMs = params.timeoutMs;
    const now = params.now;
    return pool.request(request).then(
      (response) => classifyFcmResponse(response, now === undefined ? Date.now() : now()),
      onRequestError,
    );
  } catch (err) {
    return Promise.reject(err);
  }
}

function onRequestError(err: unknown): FcmSendResult {
  if (err instanceof Http2TimeoutError || err instanceof Http2ConnectionError) return classifyTransportError(err);
  throw err;
}

// A fan-out sends thousands of messages with one project and one access token: their path and
// headers are built once (the pool copies the headers into each stream and never changes them).
let lastPath: { projectId: string; path: string } | undefined;
let lastHeaders: { accessToken: string; headers: Readonly<Record<string, string>> } | undefined;

function sendPath(projectId: string): string {
  if (lastPath?.projectId !== projectId) lastPath = { projectId, path: `/v1/projects/${encodeURIComponent(projectId)}/messages:send` };
  return lastPath.path;
}

function sendHeaders(accessToken: string): Record<string, string> {
  if (lastHeaders?.accessToken !== accessToken) {
    lastHeaders = {
      accessToken,
      headers: Object.freeze({
        authorization: `Bearer ${accessToken}`,
        "content-type": "application/json; charset=utf-8",
        accept: "application/json",
      }),
    };
  }
  return lastHeaders.headers;
}

/** A request that got no (complete) response. */
export function classifyTransportError(err: Http2TimeoutError | Http2ConnectionError): FcmSendFailure {
  return {
    ok: false,
    kind: err instanceof Http2ConnectionError && err.code === "ERR_RESPONSE_TOO_LARGE" ? "other" : "retryable",
    httpStatus: 0,
    errorCode: err.code,
    message: err.message,
  };
}

const successSchema = z.object({ name: z.string().min(1) });

function isSuccessBody(json: unknown): json is { name: string } {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return false;
  const name = (json as { name?: unknown }).name;
  return typeof name === "string" && name.length > 0;
}

const rpcStatusSchema = z.object({
  error: z.object({
    code: z.number().optional(),
    message: z.string().optional(),
    status: z.string().optional(),
    details: z.array(z.unknown()).optional(),
  }),
});

const fcmErrorDetailSchema = z.object({
  "@type": z.literal(FCM_ERROR_TYPE),
  errorCode: z.string(),
});

const badRequestDetailSchema = z.object({
  "@type": z.literal(BAD_REQUEST_TYPE),
  fieldViolations: z
    .array(z.object({ field: z.string().optional(), description: z.string().optional() }))
    .optional(),
});

const apnsErrorDetailSchema = z.object({
  "@type": z.literal(APNS_ERROR_TYPE),
  statusCode: z.number().optional(),
  reason: z.string().optional(),
});

/** APNs' verdicts on a device token, passed on by FCM: the token's failure, never the message's or the key's. */
const APNS_TOKEN_REASONS: Readonly<Record<string, FcmErrorKind>> = {
  BadDeviceToken: "token-invalid",
  DeviceTokenNotForTopic: "token-invalid",
  Unregistered: "token-unregistered",
  ExpiredToken: "token-unregistered",
};

const retryInfoDetailSchema = z.object({
  "@type": z.literal(RETRY_INFO_TYPE),
  retryDelay: z.string(),
});

const RETRYABLE_ERROR_CODES = new Set(["QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"]);
const RETRYABLE_HTTP = new Set([429, 500, 502, 503, 504]);
const RETRYABLE_STATUS = new Set(["RESOURCE_EXHAUSTED", "UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED"]);
const INVALID_TOKEN_TEXT = /registration token is not a valid FCM registration token/i;

/** Classifies an HTTP response of `messages:send`. */
export function classifyFcmResponse(res: Http2Response, now: number = Date.now()): FcmSendResult {
  const json = parseJson(res.body);
  if (res.status >= 200 && res.status < 300) {
    // Every send's answer: the same check as successSchema, by hand, because zod's safeParse costs
    // as much as the rest of the answer's handling; zod still words the failure of anything else.
    if (isSuccessBody(json)) return { ok: true, name: json.name };
    const ok = successSchema.safeParse(json);
    if (ok.success) return { ok: true, name: ok.data.name };
    return { ok: false, kind: "other", httpStatus: res.status, message: `unexpected success body: ${snippet(res.body)}` };
  }

  const rpc = rpcStatusSchema.safeParse(json);
  const status = rpc.success ? rpc.data.error.status : undefined;
  let errorCode: string | undefined;
  let retryInfoMs: number | undefined;
  let apnsReason: string | undefined;
  const violations: Array<{ field?: string | undefined; description?: string | undefined }> = [];
  for (const detail of rpc.success ? (rpc.data.error.details ?? []) : []) {
    const fcm = fcmErrorDetailSchema.safeParse(detail);
    if (fcm.success) {
      errorCode ??= fcm.data.errorCode;
      continue;
    }
    const bad = badRequestDetailSchema.safeParse(detail);
    if (bad.success) {
      violations.push(...(bad.data.fieldViolations ?? []));
      continue;
    }
    const apns = apnsErrorDetailSchema.safeParse(detail);
    if (apns.success) {
      apnsReason ??= apns.data.reason;
      continue;
    }
    const retry = retryInfoDetailSchema.safeParse(detail);
    if (retry.success) retryInfoMs = parseDurationMs(retry.data.retryDelay);
    // other detail types (ErrorInfo, Help, ...) are ignored
  }
  const fcmMessage =
    (rpc.success ? rpc.data.error.message : undefined) ||
    `HTTP ${res.status}${res.body ? `: ${snippet(res.body)}` : ""}`;
  // APNs' reason is what an operator acts on: it is kept in the message the push log records.
  const message = apnsReason !== undefined && !fcmMessage.includes(apnsReason) ? `${fcmMessage} (APNs: ${snippet(apnsReason)})` : fcmMessage;

  const apnsKind = apnsReason !== undefined && Object.hasOwn(APNS_TOKEN_REASONS, apnsReason) ? APNS_TOKEN_REASONS[apnsReason] : undefined;
  const kind = apnsKind ?? classify(res.status, status, errorCode, message, violations);
  const failure: FcmSendFailure = { ok: false, kind, httpStatus: res.status, message };
  if (status !== undefined) failure.status = status;
  if (errorCode !== undefined) failure.errorCode = errorCode;
  if (kind === "retryable") {
    const retryAfterMs = parseRetryAfter(res.headers["retry-after"], now) ?? retryInfoMs;
    if (retryAfterMs !== undefined) failure.retryAfterMs = retryAfterMs;
  }
  return failure;
}

function classify(
  http: number,
  status: string | undefined,
  errorCode: string | undefined,
  message: string,
  violations: Array<{ field?: string | undefined; description?: string | undefined }>,
): FcmErrorKind {
  if (errorCode === "UNREGISTERED") return "token-unregistered";
  if (errorCode === "SENDER_ID_MISMATCH") return "sender-mismatch";
  if (errorCode === "THIRD_PARTY_AUTH_ERROR") return "third-party-auth";
  if (errorCode !== undefined && RETRYABLE_ERROR_CODES.has(errorCode)) return "retryable";
  if (http === 404) {
    // Only a Google error body means "token not found". A bare 404 (HTML from a proxy,
    // wrong path or origin) must not make us delete tokens.
    return status === "NOT_FOUND" ? "token-unregistered" : "other";
  }
  if (errorCode === "INVALID_ARGUMENT" || status === "INVALID_ARGUMENT" || http === 400) {
    const namesToken =
      violations.some((v) => v.field === "message.token") ||
      INVALID_TOKEN_TEXT.test(message) ||
      violations.some((v) => v.description !== undefined && INVALID_TOKEN_TEXT.test(v.description));
    return namesToken ? "token-invalid" : "invalid-message";
  }
  if (http === 401 || http === 403 || status === "UNAUTHENTICATED" || status === "PERMISSION_DENIED") return "auth";
  if (RETRYABLE_HTTP.has(http) || (status !== undefined && RETRYABLE_STATUS.has(status))) return "retryable";
  return "other";
}

/** `Retry-After`: delay-seconds or an HTTP-date. Returns milliseconds (>= 0). */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (v === "") return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

function parseDurationMs(value: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)s$/.exec(value.trim());
  return m ? Math.ceil(Number(m[1]) * 1000) : undefined;
}

export interface RetryOptions {
  /** Total attempts including the first (default 4). */
  maxAttempts?: number;
  /** Backoff base: attempt n waits up to baseDelayMs * 2^(n-1) (default 500). */
  baseDelayMs?: number;
  /** Cap of one backoff delay (default 30 s). A Retry-After longer than this ends the retries. */
  maxDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /** Uniform in [0, 1); default Math.random. */
  random?: () => number;
}

export interface RetryOutcome {
  result: FcmSendResult;
  /** Attempts made (1 = no retry). */
  attempts: number;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `fn` until it succeeds or fails with a non-`retryable` kind, at most
 * `maxAttempts` times. Between attempts: exponential backoff with full jitter
 * (random in [0, min(maxDelayMs, baseDelayMs * 2^(attempt-1)))), but never less than
 * the server's Retry-After. If the server asks to wait longer than `maxDelayMs`, the
 * retryable result is returned at once (with its `retryAfterMs`) so the caller can
 * reschedule instead of holding a function instance.
 * Exceptions thrown by `fn` propagate.
 */
export async function sendWithRetry(
  fn: (attempt: number) => Promise<FcmSendResult>,
  options: RetryOptions = {},
): Promise<RetryOutcome> {
  const maxAttempts = Math.max(1, options.maxAttempts ?? 4);
  const baseDelayMs = options.baseDelayMs ?? 500;
  const maxDelayMs = options.maxDelayMs ?? 30_000;
  const sleep = options.sleep ?? defaultSleep;
  const random = options.random ?? Math.random;
  for (let attempt = 1; ; attempt++) {
    const result = await fn(attempt);
    if (result.ok || result.kind !== "retryable" || attempt >= maxAttempts) return { result, attempts: attempt };
    const retryAfterMs = result.retryAfterMs ?? 0;
    if (retryAfterMs > maxDelayMs) return { result, attempts: attempt };
    const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
    const backoff = Math.floor(random() * ceiling);
    await sleep(Math.max(backoff, retryAfterMs));
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function snippet(s: string): string {
  const oneLine = s.replace(/\s+/g, " ").trim();
  return oneLine.length > 200 ? `${oneLine.slice(0, 200)}…` : oneLine;
}
