import { importPKCS8, SignJWT } from "jose";
import { z } from "zod";
import { FcmAuthError, FcmTokenEndpointError } from "./errors.js";

/** OAuth scope needed to send with the FCM HTTP v1 API. */
export const FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging";
const JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ASSERTION_LIFETIME_S = 3600;

/** The fields of a service-account key JSON that the grant needs. */
export const serviceAccountCredentialsSchema = z.object({
  client_email: z.string().min(1),
  private_key: z.string().min(1),
  private_key_id: z.string().min(1),
});
export type ServiceAccountCredentials = z.infer<typeof serviceAccountCredentialsSchema>;

const tokenResponseSchema = z.object({
  access_token: z.string().min(1),
  expires_in: z.number().positive(),
  token_type: z.string().refine((t) => t.toLowerCase() === "bearer", "token_type must be Bearer"),
});

const oauthErrorSchema = z.object({
  error: z.string().min(1),
  error_description: z.string().optional(),
});

export interface AccessToken {
  /** The bearer token. Never log it. */
  accessToken: string;
  /** Epoch milliseconds at which the token expires (measured from when the grant was requested). */
  expiresAt: number;
}

export interface FetchAccessTokenOptions {
  tokenUrl: string;
  scope?: string;
  /** Defaults to global fetch. */
  fetch?: typeof fetch;
  /** Clock in epoch milliseconds; defaults to Date.now. */
  now?: () => number;
  /** Abort the grant after this long (default 10 s). */
  timeoutMs?: number;
}

/**
 * OAuth 2.0 JWT-bearer grant (RFC 7523) for a service account, as Google's client
 * libraries do it: an RS256 JWT signed with the service account's private key,
 * exchanged at the token endpoint for a one-hour access token.
 *
 * Throws FcmAuthError when the grant is rejected (4xx) or the key cannot be parsed,
 * FcmTokenEndpointError when the endpoint is unreachable / 5xx / answers garbage.
 */
export async function fetchAccessToken(
  credentials: ServiceAccountCredentials,
  options: FetchAccessTokenOptions,
): Promise<AccessToken> {
  const now = options.now ?? Date.now;
  const doFetch = options.fetch ?? fetch;
  const startedAt = now();
  const iat = Math.floor(startedAt / 1000);

  let key: Awaited<ReturnType<typeof importPKCS8>>;
  try {
    key = await importPKCS8(credentials.private_key, "RS256");
  } catch {
    // The underlying error is dropped on purpose: never risk echoing key material.
    throw new FcmAuthError(
      "invalid_private_key",
      "The service account private_key is not a PKCS#8 PEM RSA private key.",
      0,
    );
  }

  const assertion = await new SignJWT({ scope: options.scope ?? FCM_SCOPE })
    .setProtectedHeader({ alg: "RS256", typ: "JWT", kid: credentials.private_key_id })
    .setIssuer(credentials.client_email)
    .setAudience(options.tokenUrl)
    .setIssuedAt(iat)
    .setExpirationTime(iat + ASSERTION_LIFETIME_S)
    .sign(key);

  let response: Response;
  let text: string;
  try {
    response = await doFetch(options.tokenUrl, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        accept: "application/json",
      },
      body: new URLSearchParams({ grant_type: JWT_BEARER_GRANT, assertion }).toString(),
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
    text = await response.text();
  } catch (err) {
    throw new FcmTokenEndpointError(
      `OAuth token endpoint ${options.tokenUrl} unreachable: ${describeNetworkError(err)}`,
      0,
    );
  }

  const body = parseJson(text);
  // Whatever the endpoint (or a proxy in front of it) answers is shown only after
  // redaction: an echo of the request must not put the assertion into an error message.
  const clean = (s: string) => truncate(redact(s, assertion), 200);
  // 408 and 429 are the endpoint being busy or slow, not a verdict on the key: an outage.
  if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) {
    const oauth = oauthErrorSchema.safeParse(body);
    if (oauth.success) {
      const description = oauth.data.error_description;
      throw new FcmAuthError(
        clean(oauth.data.error),
        description === undefined ? undefined : clean(description),
        response.status,
      );
    }
    throw new FcmAuthError(`http_${response.status}`, clean(text) || undefined, response.status);
  }
  if (!response.ok) {
    throw new FcmTokenEndpointError(
      `OAuth token endpoint answered HTTP ${response.status}: ${clean(text)}`,
      response.status,
    );
  }
  const parsed = tokenResponseSchema.safeParse(body);
  if (!parsed.success) {
    // Do not echo the body: it may contain a (malformed) token.
    throw new FcmTokenEndpointError(
      `OAuth token endpoint answered HTTP ${response.status} with an unexpected body ` +
        `(${parsed.error.issues.map((i) => i.path.join(".") || "body").join(", ")} invalid)`,
      response.status,
    );
  }
  return {
    accessToken: parsed.data.access_token,
    expiresAt: startedAt + parsed.data.expires_in * 1000,
  };
}

export interface AccessTokenCacheOptions {
  /** Tokens are refreshed this long before they expire (default 5 minutes). */
  refreshMarginMs?: number;
  /** Clock in epoch milliseconds; defaults to Date.now. */
  now?: () => number;
}

/**
 * Access tokens per caller-chosen key (use `certificateId:version`, so a rotated key
 * misses the cache at once). A token is reused until `refreshMarginMs` before its
 * expiry; concurrent callers for the same key share one in-flight grant; failed grants
 * are not cached (the next caller tries again).
 */
export class AccessTokenCache {
  private readonly tokens = new Map<string, AccessToken>();
  private readonly inFlight = new Map<string, Promise<AccessToken>>();
  private readonly refreshMarginMs: number;
  private readonly now: () => number;

  constructor(options: AccessTokenCacheOptions = {}) {
    this.refreshMarginMs = options.refreshMarginMs ?? 5 * 60_000;
    this.now = options.now ?? Date.now;
  }

  /** Returns a fresh cached token for `key`, or obtains one with `fetcher` (single-flight). */
  async get(key: string, fetcher: () => Promise<AccessToken>): Promise<AccessToken> {
    const cached = this.tokens.get(key);
    if (cached && this.isFresh(cached)) return cached;
    if (cached) this.tokens.delete(key);

    const pending = this.inFlight.get(key);
    if (pending) return pending;

    // The callbacks run asynchronously, after `promise` has been assigned.
    const promise: Promise<AccessToken> = Promise.resolve()
      .then(fetcher)
      .then(
        (token) => {
          // Only store if nobody invalidated this key while the grant was running.
          if (this.inFlight.get(key) === promise) {
            this.inFlight.delete(key);
            this.pruneExpired();
            this.tokens.set(key, token);
          }
          return token;
        },
        (err: unknown) => {
          if (this.inFlight.get(key) === promise) this.inFlight.delete(key);
          throw err;
        },
      );
    this.inFlight.set(key, promise);
    return promise;
  }

  /** Convenience: `get` with a JWT-bearer grant for a service account. */
  getForServiceAccount(
    key: string,
    credentials: ServiceAccountCredentials,
    options: FetchAccessTokenOptions,
  ): Promise<AccessToken> {
    return this.get(key, () => fetchAccessToken(credentials, options));
  }

  /** Forget the token of `key` (e.g. FCM answered 401 with it). */
  invalidate(key: string): void {
    this.tokens.delete(key);
    this.inFlight.delete(key);
  }

  clear(): void {
    this.tokens.clear();
    this.inFlight.clear();
  }

  /** Number of cached tokens (fresh or not yet pruned). */
  get size(): number {
    return this.tokens.size;
  }

  private isFresh(token: AccessToken): boolean {
    return token.expiresAt - this.refreshMarginMs > this.now();
  }

  private pruneExpired(): void {
    for (const [k, t] of this.tokens) if (!this.isFresh(t)) this.tokens.delete(k);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Removes the assertion, anything JWT-shaped and PEM blocks from text we did not write. */
function redact(text: string, assertion: string): string {
  return text
    .split(assertion)
    .join("[assertion]")
    .replace(/-----BEGIN [A-Z ]+-----[\s\S]*?(-----END [A-Z ]+-----|$)/g, "[pem]")
    .replace(/eyJ[\w-]*\.[\w-]+\.[\w-]*/g, "[jwt]");
}

function truncate(s: string, max: number): string {
  const oneLine = s.replace(/\s+/g, " ").trim();
  return oneLine.length > max ? `${oneLine.slice(0, max)}…` : oneLine;
}

function describeNetworkError(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === "TimeoutError") return "timed out";
    const cause = (err as { cause?: unknown }).cause;
    if (cause && typeof cause === "object") {
      const c = cause as { code?: unknown; message?: unknown };
      if (c.code !== undefined) return `${err.message} (${String(c.code)})`;
      if (typeof c.message === "string" && c.message) return `${err.message} (${c.message})`;
    }
    return err.message;
  }
  return String(err);
}
