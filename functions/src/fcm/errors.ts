/**
 * Errors and result types of the FCM client.
 *
 * Nothing here ever carries a private key, a signed JWT assertion or an access token:
 * error messages end up in logs and in the push log.
 */

/**
 * The OAuth token endpoint rejected the grant (HTTP 4xx), e.g. the key was deleted or
 * rotated in the Google Cloud console, the service account was disabled, or the
 * private key is malformed. Retrying does not help: the certificate must be fixed.
 */
export class FcmAuthError extends Error {
  override readonly name = "FcmAuthError";
  /** OAuth `error`, e.g. `invalid_grant`; `invalid_private_key` if the key could not be parsed locally. */
  readonly oauthError: string;
  /** OAuth `error_description`, e.g. `Invalid JWT Signature.` */
  readonly oauthErrorDescription: string | undefined;
  /** HTTP status of the token endpoint; 0 when the error was detected locally. */
  readonly httpStatus: number;

  constructor(oauthError: string, oauthErrorDescription: string | undefined, httpStatus: number) {
    super(
      oauthErrorDescription
        ? `${oauthError}: ${oauthErrorDescription}`
        : oauthError,
    );
    this.oauthError = oauthError;
    this.oauthErrorDescription = oauthErrorDescription;
    this.httpStatus = httpStatus;
  }
}

/**
 * The token endpoint could not be reached or answered 5xx / something unparseable.
 * Transient: retry later.
 */
export class FcmTokenEndpointError extends Error {
  override readonly name = "FcmTokenEndpointError";
  readonly retryable = true;
  /** HTTP status, or 0 for a network error. */
  readonly httpStatus: number;

  constructor(message: string, httpStatus: number) {
    super(message);
    this.httpStatus = httpStatus;
  }
}

/**
 * How a failed send is to be handled:
 * - `token-unregistered`: the app was uninstalled / the token expired: unbind it.
 * - `token-invalid`: the token is not a valid FCM registration token: unbind it.
 * - `sender-mismatch`: the token belongs to another Firebase project than the
 *   certificate's service account (wrong certificateId reported by the app).
 * - `auth`: the service account cannot send (401, 403).
 * - `third-party-auth`: THIRD_PARTY_AUTH_ERROR: FCM could not pass this message on to APNs or web
 *   push (an iOS or web token whose project lacks valid credentials there): this token's failure.
 * - `retryable`: 429/5xx, timeouts, connection failures: retry with backoff.
 * - `invalid-message`: the message itself was rejected (bug on our side or too big).
 * - `other`: anything else.
 */
export type FcmErrorKind =
  | "token-unregistered"
  | "token-invalid"
  | "sender-mismatch"
  | "auth"
  | "third-party-auth"
  | "retryable"
  | "invalid-message"
  | "other";

export interface FcmSendSuccess {
  ok: true;
  /** `projects/{projectId}/messages/{messageId}` */
  name: string;
}

export interface FcmSendFailure {
  ok: false;
  kind: FcmErrorKind;
  /** HTTP status; 0 when no response was received (timeout, reset, refused). */
  httpStatus: number;
  /** google.rpc.Status `status`, e.g. `NOT_FOUND`, when the body had one. */
  status?: string;
  /**
   * FcmError `errorCode`, e.g. `UNREGISTERED`, when the body had one; when httpStatus is 0,
   * the transport error code instead (ETIMEDOUT, ECONNREFUSED, ERR_HTTP2_STREAM_ERROR...).
   */
  errorCode?: string;
  /** Human-readable reason (from the response, or the transport error). */
  message: string;
  /** Minimum wait before retrying, from `Retry-After` (or google.rpc.RetryInfo). */
  retryAfterMs?: number;
}

export type FcmSendResult = FcmSendSuccess | FcmSendFailure;
