// Firebase Auth for the functions: one lazily initialised client, and the operators' revocation check.
import { getApps, initializeApp } from "firebase-admin/app";
import { getAuth, type Auth } from "firebase-admin/auth";
import { DomainError } from "./errors";

export function auth(): Auth {
  if (getApps().length === 0) initializeApp();
  return getAuth();
}

/** Auth error codes that mean "this sign-in no longer counts", not "Auth could not answer". */
const REFUSED = new Set(["auth/id-token-revoked", "auth/user-disabled", "auth/user-not-found", "auth/id-token-expired", "auth/argument-error", "auth/invalid-id-token"]);

/**
 * An operator's ID token stays valid for up to an hour after the operator's refresh tokens were
 * revoked (or the account disabled or deleted): the framework checks its signature and expiry only.
 * verifyIdToken(token, true) also reads the account (one Auth lookup) and refuses a token issued
 * before the revocation. Operator calls are few, so every one pays that lookup; app calls do not.
 * Fails closed: when Auth cannot answer, the call is refused as retryable, not let through.
 */
export async function assertSignInNotRevoked(rawToken: string): Promise<void> {
  try {
    await auth().verifyIdToken(rawToken, true);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === "string" && REFUSED.has(code)) {
      throw new DomainError("unauthenticated", "this sign-in was revoked or the account disabled: sign in again");
    }
    throw new DomainError("unavailable", "could not check with Firebase Auth whether this sign-in was revoked: retry", { retryable: true });
  }
}
