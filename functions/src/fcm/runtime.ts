// Process-wide FCM plumbing shared by every function in an instance: one HTTP/2 connection per
// origin (reused across invocations while the instance is warm) and one access-token cache.
import { AccessTokenCache, fetchAccessToken, type AccessToken } from "./accessToken";
import { fcmEndpoints } from "./endpoints";
import { Http2Pool } from "./http2Pool";

export const fcmPool = new Http2Pool({ maxConcurrentStreamsPerOrigin: 100, requestTimeoutMs: 10_000 });
export const accessTokens = new AccessTokenCache();

export interface SendingCredentials {
  certificateId: number;
  version: number;
  clientEmail: string;
  privateKey: string;
  privateKeyId: string;
}

/**
 * The version changes with every key replacement, so a new key misses the cache at once on every
 * instance. The key ID is in too: certificate IDs are never reused in one database, but a wiped
 * database (emulator runs) starts them again, and a warm instance must not send one project's
 * pushes with another project's token.
 */
export const accessTokenCacheKey = (cred: SendingCredentials): string => `${cred.certificateId}:${cred.version}:${cred.privateKeyId}`;

export function cachedAccessToken(cred: SendingCredentials): Promise<AccessToken> {
  return accessTokens.get(accessTokenCacheKey(cred), () =>
    fetchAccessToken(
      { client_email: cred.clientEmail, private_key: cred.privateKey, private_key_id: cred.privateKeyId },
      { tokenUrl: fcmEndpoints().tokenUrl },
    ),
  );
}

/** After FCM refused a cached token (401): the next send obtains a fresh one. */
export function dropAccessToken(cred: SendingCredentials): void {
  accessTokens.invalidate(accessTokenCacheKey(cred));
}
