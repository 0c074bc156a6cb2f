/**
 * FCM HTTP v1 client: pure Node (node:http2, fetch) + zod + jose, no firebase-admin,
 * so it works against the fake FCM in the emulator and is unit-testable.
 */
export {
  FCM_PRODUCTION_API_ORIGIN,
  GOOGLE_OAUTH_TOKEN_URL,
  FcmEndpointConfigError,
  fcmEndpoints,
  type FcmEndpoints,
  type FcmEnv,
} from "./endpoints.js";
export {
  FCM_SCOPE,
  AccessTokenCache,
  fetchAccessToken,
  serviceAccountCredentialsSchema,
  type AccessToken,
  type AccessTokenCacheOptions,
  type FetchAccessTokenOptions,
  type ServiceAccountCredentials,
} from "./accessToken.js";
export {
  Http2ConnectionError,
  Http2Pool,
  Http2TimeoutError,
  type Http2PoolOptions,
  type Http2PoolStats,
  type Http2Request,
  type Http2Requester,
  type Http2Response,
} from "./http2Pool.js";
export {
  FcmAuthError,
  FcmTokenEndpointError,
  type FcmErrorKind,
  type FcmSendFailure,
  type FcmSendResult,
  type FcmSendSuccess,
} from "./errors.js";
export {
  BAD_REQUEST_TYPE,
  FCM_ERROR_TYPE,
  RETRY_INFO_TYPE,
  classifyFcmResponse,
  classifyTransportError,
  parseRetryAfter,
  sendFcmMessage,
  sendWithRetry,
  type RetryOptions,
  type RetryOutcome,
  type SendFcmMessageParams,
} from "./send.js";
export {
  FCM_MAX_PAYLOAD_BYTES,
  fcmAndroidConfigSchema,
  fcmAndroidNotificationSchema,
  fcmApnsConfigSchema,
  fcmDurationSchema,
  fcmMessageSchema,
  fcmNotificationSchema,
  fcmPayloadSize,
  fcmStringMapSchema,
  fcmWebpushConfigSchema,
  type FcmAndroidConfig,
  type FcmAndroidNotification,
  type FcmApnsConfig,
  type FcmMessage,
  type FcmNotification,
  type FcmWebpushConfig,
} from "./message.js";
