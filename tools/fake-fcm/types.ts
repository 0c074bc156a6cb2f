/** Types shared by the fake FCM server and its control client (the control API's JSON). */

/** A service-account key file, exactly as the Firebase console's "Generate new private key" downloads it. */
export interface ServiceAccountJson {
  type: "service_account";
  project_id: string;
  private_key_id: string;
  private_key: string;
  client_email: string;
  client_id: string;
  auth_uri: string;
  token_uri: string;
  auth_provider_x509_cert_url: string;
  client_x509_cert_url: string;
  universe_domain: string;
}

export const ERROR_PRESETS = [
  "unregistered",
  "invalid-token",
  "invalid-argument",
  "sender-id-mismatch",
  "third-party-auth",
  "quota-exceeded",
  "unavailable",
  "internal",
  /** APNs refused an iOS token (400 BadDeviceToken), as FCM passes it on: INVALID_ARGUMENT with an ApnsError detail. */
  "apns-bad-device-token",
  /** APNs says the app is gone from the iPhone (410 Unregistered): UNREGISTERED with an ApnsError detail. */
  "apns-unregistered",
] as const;
export type ErrorPreset = (typeof ERROR_PRESETS)[number];

/** `POST /control/errors` body. */
export interface ErrorRuleInput {
  /** Match only sends to this registration token. */
  token?: string;
  /** Match only sends to this project (from the URL path). */
  projectId?: string;
  /** Apply to the next N matching requests; default: until cleared. */
  times?: number;
  /** Apply only to requests received within this many ms of the rule's creation ("503 for 15 s"). */
  forMs?: number;
  /** Fills httpStatus/status/errorCode/message/fieldViolations like the real FCM (explicit fields win). */
  preset?: ErrorPreset;
  httpStatus?: number;
  /** google.rpc.Status status, e.g. NOT_FOUND (default: derived from httpStatus). */
  status?: string;
  /** FcmError errorCode, e.g. UNREGISTERED (omitted: no FcmError detail). */
  errorCode?: string;
  message?: string;
  /** google.rpc.BadRequest field violations, e.g. [{field:"message.token", ...}]. */
  fieldViolations?: Array<{ field: string; description: string }>;
  /** An ApnsError detail (what APNs answered FCM for an iOS token), e.g. {statusCode: 400, reason: "BadDeviceToken"}. */
  apnsError?: { statusCode: number; reason: string };
  /** Adds `Retry-After: <seconds>`. */
  retryAfterSeconds?: number;
  /** Adds `Retry-After: <raw value>` (e.g. an HTTP date); wins over retryAfterSeconds. */
  retryAfter?: string;
  /** Wait this long before answering (or resetting). Alone: a slow but successful FCM. */
  delayMs?: number;
  /** Reset the HTTP/2 stream (RST_STREAM INTERNAL_ERROR) instead of answering. */
  resetStream?: boolean;
}

export interface ErrorRule extends ErrorRuleInput {
  id: string;
  /** Requests this rule was applied to. */
  hits: number;
  /** Matches left when `times` was given. */
  remaining?: number;
  /** Epoch ms after which the rule no longer applies, when `forMs` was given. */
  expiresAt?: number;
}

/** `POST /control/token-errors` body: the OAuth token endpoint fails (an outage, not a verdict on the key). */
export interface TokenErrorRuleInput {
  /** Match only grants of this service account (the assertion's `iss`). */
  clientEmail?: string;
  /** HTTP status answered, e.g. 503 or 429. */
  httpStatus: number;
  times?: number;
  forMs?: number;
  /** Wait this long before answering (a slow endpoint: the client's timeout fires first). */
  delayMs?: number;
}

export interface TokenErrorRule extends TokenErrorRuleInput {
  id: string;
  /** Grants this rule was applied to. */
  hits: number;
  remaining?: number;
  expiresAt?: number;
}

export interface RecordedRequest {
  id: number;
  projectId: string;
  /** Null when the access token was missing/unknown. */
  clientEmail: string | null;
  accessToken: string | null;
  validateOnly: boolean;
  /** The `message` of the body as received (null if the body was not JSON). */
  message: unknown;
  /** ISO timestamp. */
  receivedAt: string;
  /** HTTP status answered; null when the stream was reset (error rule resetStream) or closed before the answer. */
  answeredStatus: number | null;
  /** ISO timestamp of the answer, or of the moment the fake found the stream reset or closed. */
  answeredAt: string;
  /** `projects/{p}/messages/{id}` on success. */
  name?: string;
  /** google.rpc.Status status and FcmError errorCode of the error answered. */
  errorStatus?: string;
  errorCode?: string;
  errorMessage?: string;
}

export interface FakeFcmStats {
  /** HTTP/2 sessions opened on the API port since start/reset. */
  sessions: number;
  /** HTTP/2 sessions currently open. */
  openSessions: number;
  /** Streams (requests) received on the API port since start/reset. */
  streams: number;
  /** Streams open right now. */
  activeStreams: number;
  /** Highest number of simultaneously open streams since start/reset. */
  maxActiveStreams: number;
  /** Access tokens issued by /token since start/reset. */
  tokensIssued: number;
  /** Grants refused by /token since start/reset. */
  grantsRejected: number;
}

/**
 * `POST /control/apns` body: the fake's view of iOS. FCM knows a token's platform from its
 * registration; the fake cannot, so tests register their iOS tokens (`iosTokens`). A project without
 * an APNs auth key (`apnsAuthKey: false`, Firebase console → Project settings → Cloud Messaging)
 * answers every iOS token THIRD_PARTY_AUTH_ERROR, as FCM does; Android tokens are unaffected.
 */
export interface ApnsControlInput {
  iosTokens?: string[];
  projectId?: string;
  apnsAuthKey?: boolean;
}

export interface RequestFilter {
  projectId?: string;
  token?: string;
}
