// The operator's ID token for the callables. One way for both targets: the Admin SDK mints a custom
// token carrying the admin claim for the CLI's own operator account, and the Identity Toolkit API
// exchanges it for an ID token (the Auth emulator's copy of that API on the emulators). So the CLI
// goes through exactly the authorization rule every operator tool goes through, and the functions'
// secrets (the key-encryption key) never leave the functions.
import { z } from "zod";
import { adminAuth } from "./admin.ts";
import { CliError } from "./errors.ts";
import { postJson } from "./http.ts";
import type { Target } from "./target.ts";

/** The account the CLI acts as; the functions' logs name it as the caller of every change. */
export const CLI_OPERATOR_UID = "offline-push-cli";

const SignInResponseSchema = z.object({ idToken: z.string().min(1) });
const ErrorResponseSchema = z.object({ error: z.object({ message: z.string() }) });

let cached: Promise<string> | undefined;

export function operatorIdToken(target: Target): Promise<string> {
  cached ??= mintIdToken(target);
  return cached;
}

async function mintIdToken(target: Target): Promise<string> {
  if (target.mode === "project" && !target.apiKey) {
    throw new CliError(
      "the callables need an operator ID token, and exchanging a custom token for one needs the project's web API key: pass --api-key or set OFFLINE_PUSH_API_KEY (Firebase console > Project settings > General > Web API key)",
      "usage",
    );
  }
  const auth = await adminAuth(target);
  let customToken: string;
  try {
    customToken = await auth.createCustomToken(CLI_OPERATOR_UID, { admin: true });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new CliError(
      target.mode === "project"
        ? `could not sign a custom token with Application Default Credentials: ${message}. Use a service-account key (GOOGLE_APPLICATION_CREDENTIALS), or pass --signer <firebase-adminsdk service account email> with the Service Account Token Creator role`
        : `could not make a custom token on the Auth emulator: ${message}`,
      "auth",
    );
  }
  const url =
    target.mode === "emulators"
      ? `http://${target.authHost}/identitytoolkit.googleapis.com/v1/accounts:signInWithCustomToken?key=emulator`
      : `https://identitytoolkit.googleapis.com/v1/accounts:signInWithCustomToken?key=${encodeURIComponent(target.apiKey ?? "")}`;
  const res = await postJson(url, { token: customToken, returnSecureToken: true }, {
    timeoutMs: target.timeoutMs,
    what: "signing in as the CLI operator",
    hint: target.mode === "emulators" ? "Are the emulators running? Start them with `npm start` (or pass --project for a real project)" : undefined,
  });
  const ok = SignInResponseSchema.safeParse(res.json);
  if (res.status === 200 && ok.success) return ok.data.idToken;
  const error = ErrorResponseSchema.safeParse(res.json);
  throw new CliError(`signing in as the CLI operator failed (${res.status}): ${error.success ? error.data.error.message : "unexpected answer"}`, "auth");
}
