// Which account an operator means: operators know a user by e-mail, phone number or display name,
// the push records by Firebase uid. diagnosePush accepts `{uid}` or `{account}` (a uid, an e-mail
// address or a phone number) and this is the one place that turns either into the account, from
// Firebase Auth, with the e-mail, phone number and display name to show.
import { auth } from "../common/auth";
import { DomainError } from "../common/errors";
import { AccountSchema } from "../fanout/schemas";
import { E164_PHONE, EmailSchema } from "./schemas";

export interface ResolvedAccount {
  uid: string;
  /** False when Firebase Auth has no such uid (an IM account known only to the push records). */
  inAuth: boolean;
  email: string | null;
  phoneNumber: string | null;
  displayName: string | null;
  /** How the account was found: the uid itself, or the e-mail / phone number it was asked by. */
  foundBy: "uid" | "email" | "phoneNumber";
}

const NOT_FOUND_CODES = new Set(["auth/user-not-found", "auth/invalid-uid", "auth/invalid-email", "auth/invalid-phone-number"]);

interface AuthUser {
  uid: string;
  email?: string;
  phoneNumber?: string;
  displayName?: string;
}

/** Auth's answer, null for "no such user"; Auth not answering is the caller's to retry. */
async function lookup(find: () => Promise<AuthUser>): Promise<AuthUser | null> {
  try {
    return await find();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === "string" && NOT_FOUND_CODES.has(code)) return null;
    throw new DomainError("unavailable", "Firebase Auth did not answer the account lookup: retry", { retryable: true });
  }
}

function resolved(user: AuthUser, foundBy: ResolvedAccount["foundBy"]): ResolvedAccount {
  const text = (s: string | undefined) => (s && s.trim() ? s.trim() : null);
  return { uid: user.uid, inAuth: true, email: text(user.email), phoneNumber: text(user.phoneNumber), displayName: text(user.displayName), foundBy };
}

/**
 * The account for `{uid}` (that uid exactly) or `{account}`: a phone number in E.164 form is looked
 * up by phone, an e-mail address by e-mail, and either, when Auth has no user with it, as a uid too
 * (a uid may look like either). Null when Firebase Auth has no match: `uid` is then the text itself
 * if it can be a uid (the caller decides whether the push records know it), else nothing.
 */
export async function resolveAccount(request: { uid?: string | undefined; account?: string | undefined }): Promise<ResolvedAccount | { uid: string | null; inAuth: false }> {
  const byUid = async (uid: string) => {
    const user = await lookup(() => auth().getUser(uid));
    return user ? resolved(user, "uid") : null;
  };
  if (request.uid !== undefined) return (await byUid(request.uid)) ?? { uid: request.uid, inAuth: false };
  const text = (request.account ?? "").trim();
  if (E164_PHONE.test(text)) {
    const user = await lookup(() => auth().getUserByPhoneNumber(text));
    if (user) return resolved(user, "phoneNumber");
  } else if (EmailSchema.safeParse(text).success) {
    // Firebase Auth keeps e-mail addresses in lower case.
    const user = await lookup(() => auth().getUserByEmail(text.toLowerCase()));
    if (user) return resolved(user, "email");
  }
  const asUid = AccountSchema.safeParse(text);
  if (!asUid.success) return { uid: null, inAuth: false };
  return (await byUid(asUid.data)) ?? { uid: asUid.data, inAuth: false };
}
