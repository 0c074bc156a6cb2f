import { z } from "zod";

/** The FCM HTTP v1 API origin. */
export const FCM_PRODUCTION_API_ORIGIN = "https://fcm.googleapis.com";
/** Google's OAuth 2.0 token endpoint (JWT-bearer grant for service accounts). */
export const GOOGLE_OAUTH_TOKEN_URL = "https://oauth2.googleapis.com/token";

export interface FcmEndpoints {
  /** Scheme + host (+ port), no path, e.g. `https://fcm.googleapis.com`. */
  apiOrigin: string;
  /** Full URL of the OAuth token endpoint; also the `aud` of the JWT assertion. */
  tokenUrl: string;
}

/** The subset of `process.env` that matters here. */
export type FcmEnv = Readonly<Record<string, string | undefined>>;

export class FcmEndpointConfigError extends Error {
  override readonly name = "FcmEndpointConfigError";
}

function tryUrl(s: string): URL | undefined {
  try {
    return new URL(s);
  } catch {
    return undefined;
  }
}

// zod runs refinements even after the url check failed, hence tryUrl.
const httpUrl = z
  .url({ protocol: /^https?$/ })
  .refine((s) => {
    const u = tryUrl(s);
    return u !== undefined && u.username === "" && u.password === "";
  }, "must not contain credentials");

const emulatorEnvSchema = z.object({
  FCM_API_ORIGIN: httpUrl.refine((s) => {
    const u = tryUrl(s);
    return u !== undefined && (u.pathname === "/" || u.pathname === "") && u.search === "" && u.hash === "";
  }, "must be an origin (scheme://host[:port]) without a path"),
  FCM_TOKEN_URL: httpUrl,
});

/**
 * Where FCM requests and OAuth token grants go.
 *
 * Production always uses Google's fixed endpoints. They are deliberately NOT read from
 * configuration: the access token we mint from an operator's service-account key and
 * the signed JWT assertion are bearer credentials, so an environment variable or config
 * value that could point them elsewhere (a typo, a leaked `.env` file, a compromised
 * deployment parameter) would hand those credentials and every push payload to a third
 * party. Only the Functions emulator (`FUNCTIONS_EMULATOR === "true"`, set by the
 * emulator itself, never in a deployed function) may redirect them, to the local fake
 * FCM used by tests and the demo, because FCM has no emulator of its own. In the
 * emulator the variables are required: silently falling back to the real FCM from a
 * local test run would send real pushes with demo data.
 */
export function fcmEndpoints(env: FcmEnv = process.env): FcmEndpoints {
  if (env.FUNCTIONS_EMULATOR !== "true") {
    return { apiOrigin: FCM_PRODUCTION_API_ORIGIN, tokenUrl: GOOGLE_OAUTH_TOKEN_URL };
  }
  const parsed = emulatorEnvSchema.safeParse({
    FCM_API_ORIGIN: env.FCM_API_ORIGIN,
    FCM_TOKEN_URL: env.FCM_TOKEN_URL,
  });
  if (!parsed.success) {
    const problems = parsed.error.issues
      .map((i) => `${i.path.join(".") || "env"}: ${i.message}`)
      .join("; ");
    throw new FcmEndpointConfigError(
      "Running in the Functions emulator (FUNCTIONS_EMULATOR=true), where FCM has no " +
        "emulator: set FCM_API_ORIGIN (e.g. http://127.0.0.1:9470) and FCM_TOKEN_URL " +
        `(e.g. http://127.0.0.1:9471/token) to the fake FCM server. Problem: ${problems}`,
    );
  }
  return {
    apiOrigin: new URL(parsed.data.FCM_API_ORIGIN).origin,
    tokenUrl: new URL(parsed.data.FCM_TOKEN_URL).toString(),
  };
}
