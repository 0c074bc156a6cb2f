// Process-wide FCM plumbing shared by every function in an instance: one HTTP/2 connection per
// origin (reused across invocations while the instance is warm) and one access-token cache keyed by
// `certificateId:version`, so a replaced key misses the cache at once on every instance.
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

export function cachedAccessToken(cred: SendingCredentials): Promise<AccessToken> {
  return accessTokens.get(`${cred.certificateId}:${cred.version}`, () =>
    fetchAccessToken(
      { client_email: cred.clientEmail, private_key: cred.privateKey, private_key_id: cred.privateKeyId },
      { tokenUrl: fcmEndpoints().tokenUrl },
    ),
  );
}
