import {
  AccessTokenCache,
  fetchAccessToken,
  type ServiceAccountCredentials,
} from "./accessToken.js";
import { fcmEndpoints, type FcmEndpoints } from "./endpoints.js";
import type { FcmSendResult } from "./errors.js";
import { Http2Pool } from "./http2Pool.js";
import type { FcmMessage } from "./message.js";
import { sendFcmMessage, sendWithRetry, type RetryOptions, type RetryOutcome } from "./send.js";

export interface FcmClientOptions {
  /** Default: `fcmEndpoints()` (production unless in the emulator). */
  endpoints?: FcmEndpoints;
  /** Default: a new pool owned (and closed) by this client. */
  pool?: Http2Pool;
  /** Default: a new cache. */
  tokenCache?: AccessTokenCache;
  /** Default retry policy of `send`. */
  retry?: RetryOptions;
  /** For the token grant; default global fetch. */
  fetch?: typeof fetch;
}

export interface FcmClientSendParams {
  /** Token cache key; use `certificateId:version` so a rotated key is never served a stale token. */
  cacheKey: string;
  /** The certificate's service account: its key signs the grant, its project receives the send. */
  serviceAccount: ServiceAccountCredentials & { project_id: string };
  message: FcmMessage;
  validateOnly?: boolean;
  /** Overrides the client's retry policy. */
  retry?: RetryOptions;
}

/**
 * Glue for callers: access token (cached, single-flight) + send + retry. If FCM answers
 * 401 UNAUTHENTICATED (the cached token was revoked or expired early), the token is
 * dropped from the cache and the send is repeated once with a fresh one.
 *
 * `send` resolves with the classified result of the last attempt; it rejects only
 * when no access token can be obtained: FcmAuthError (the certificate is broken, do not
 * retry) or FcmTokenEndpointError (transient).
 */
export class FcmClient {
  readonly endpoints: FcmEndpoints;
  readonly pool: Http2Pool;
  readonly tokenCache: AccessTokenCache;
  private readonly ownsPool: boolean;
  private readonly retry: RetryOptions;
  private readonly fetchImpl: typeof fetch | undefined;

  constructor(options: FcmClientOptions = {}) {
    this.endpoints = options.endpoints ?? fcmEndpoints();
    this.ownsPool = options.pool === undefined;
    this.pool = options.pool ?? new Http2Pool();
    this.tokenCache = options.tokenCache ?? new AccessTokenCache();
    this.retry = options.retry ?? {};
    this.fetchImpl = options.fetch;
  }

  /** An access token for the service account (from the cache when fresh). */
  async accessToken(cacheKey: string, serviceAccount: ServiceAccountCredentials): Promise<string> {
    const token = await this.tokenCache.get(cacheKey, () =>
      fetchAccessToken(serviceAccount, {
        tokenUrl: this.endpoints.tokenUrl,
        ...(this.fetchImpl ? { fetch: this.fetchImpl } : {}),
      }),
    );
    return token.accessToken;
  }

  send(params: FcmClientSendParams): Promise<RetryOutcome> {
    return sendWithRetry(() => this.sendOnce(params), params.retry ?? this.retry);
  }

  /** One attempt (plus the single re-send after a 401 with a fresh token). */
  async sendOnce(params: FcmClientSendParams): Promise<FcmSendResult> {
    let refreshed = false;
    for (;;) {
      const accessToken = await this.accessToken(params.cacheKey, params.serviceAccount);
      const result = await sendFcmMessage(
        {
          apiOrigin: this.endpoints.apiOrigin,
          projectId: params.serviceAccount.project_id,
          accessToken,
          message: params.message,
          ...(params.validateOnly ? { validateOnly: true } : {}),
        },
        this.pool,
      );
      if (
        !refreshed &&
        !result.ok &&
        result.httpStatus === 401 &&
        result.errorCode !== "THIRD_PARTY_AUTH_ERROR"
      ) {
        this.tokenCache.invalidate(params.cacheKey);
        refreshed = true;
        continue;
      }
      return result;
    }
  }

  /** Closes the pool if this client created it. */
  async close(): Promise<void> {
    if (this.ownsPool) await this.pool.close();
  }
}
