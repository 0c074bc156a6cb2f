// Every callable goes through `callable()`: the protocol's envelope checked before the framework
// sees the request (requestShape.ts: nothing a caller sent is ever logged), authentication, the
// admin claim and, for operators, that the sign-in was not revoked, zod validation of the request
// (a ZodError becomes `invalid-argument` naming the field) and the single mapping of domain errors
// to HttpsError. Unknown failures become a generic `internal`.
import { HttpsError, onCall, type CallableRequest } from "firebase-functions/v2/https";
import type { SecretParam } from "firebase-functions/params";
import * as logger from "firebase-functions/logger";
import { z } from "zod";
import { assertSignInNotRevoked } from "./auth";
import { DomainError } from "./errors";
import { retryableFirestoreError } from "./firestore";
import { withRequestShapeCheck } from "./requestShape";
import { APP_CHECK_ENFORCED, ConfigurationError } from "../config";

export interface Caller {
  uid: string;
  admin: boolean;
}

export type Access = "user" | "admin";

interface CallableOptions<S extends z.ZodType> {
  name: string;
  access: Access;
  schema: S;
  secrets?: SecretParam[];
  timeoutSeconds?: number;
}

/** Firebase Auth uids: 1-128 characters; here also a valid Firestore document ID (no "/", not "." or ".."). */
const UID_PATTERN = /^(?!\.\.?$)(?!__.*__$)[^/]{1,128}$/;

export function fieldOf(issue: z.core.$ZodIssue): string {
  const path = issue.path.map(String);
  if (issue.code === "unrecognized_keys" && issue.keys.length > 0) path.push(issue.keys[0] as string);
  // An empty key ({"": 0}) must still name something a person can see.
  return path.length ? path.map((p) => (p === "" ? '""' : p)).join(".") : "(request)";
}

/** Each issue as the field it names and zod's message: never the input value. */
export function zodIssues(error: z.ZodError): Array<{ field: string; message: string }> {
  return error.issues.map((issue) => ({ field: fieldOf(issue), message: issue.message }));
}

/** The first issue names the field; all issues are in details. */
export function zodToDomainError(error: z.ZodError): DomainError {
  const issues = zodIssues(error);
  const first = issues[0] ?? { field: "(request)", message: "invalid" };
  return new DomainError("invalid-argument", `${first.field}: ${first.message}`, { field: first.field, issues });
}

export function toHttpsError(err: unknown, name: string): HttpsError {
  if (err instanceof HttpsError) return err;
  if (err instanceof z.ZodError) err = zodToDomainError(err);
  // A Firestore outage or contention outside a bounded transaction: the caller may retry, so say
  // so rather than `internal` (which clients treat as a bug).
  const retryable = retryableFirestoreError(err);
  if (retryable) {
    logger.warn(`${name}: ${retryable.message}`);
    err = retryable;
  }
  // A misconfiguration: the operator reads which setting to fix.
  if (err instanceof ConfigurationError) err = new DomainError("internal", err.message);
  if (err instanceof DomainError) {
    if (err.kind === "internal") {
      logger.error(`${name}: ${err.message}`);
      return new HttpsError("internal", err.message);
    }
    return new HttpsError(err.kind, err.message, err.details);
  }
  // Unexpected: log the error class and message (our errors never carry key material), answer generically.
  logger.error(`${name}: unexpected error`, { error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
  return new HttpsError("internal", "internal error");
}

/** A callable's data parsed with its schema, or the error its caller gets (`invalid-argument` naming the field). */
export function parseRequest<S extends z.ZodType>(schema: S, data: unknown, name: string): { ok: true; data: z.output<S> } | { ok: false; error: HttpsError } {
  const parsed = schema.safeParse(data ?? {});
  return parsed.success ? { ok: true, data: parsed.data } : { ok: false, error: toHttpsError(parsed.error, name) };
}

export function callable<S extends z.ZodType, R>(
  options: CallableOptions<S>,
  handler: (data: z.output<S>, caller: Caller, request: CallableRequest) => Promise<R>,
) {
  // firebase-functions trips over keys present with an undefined value: pass only the ones given.
  const runtime = {
    ...(options.secrets ? { secrets: options.secrets } : {}),
    ...(options.timeoutSeconds ? { timeoutSeconds: options.timeoutSeconds } : {}),
  };
  // App Check guards the app's callables (operators' tools carry no App Check token).
  const appCheck = options.access === "user" && APP_CHECK_ENFORCED ? { enforceAppCheck: true } : {};
  return withRequestShapeCheck(options.name, onCall({ ...runtime, ...appCheck, cors: false }, async (request) => {
    // A uid that cannot name a users/{uid} document is no identity: production verifies ID tokens,
    // but the emulator decodes any bearer string ("Bearer abc" arrives with an empty uid).
    const uid: unknown = request.auth?.uid;
    if (!request.auth || typeof uid !== "string" || !UID_PATTERN.test(uid)) {
      throw new HttpsError("unauthenticated", "sign in first: this function requires a valid Firebase ID token");
    }
    const caller: Caller = { uid, admin: request.auth.token?.admin === true };
    if (options.access === "admin" && !caller.admin) {
      throw new HttpsError("permission-denied", "this function requires the admin custom claim");
    }
    if (options.access === "admin") await assertSignInNotRevoked(request.auth.rawToken).catch((err: unknown) => Promise.reject(toHttpsError(err, options.name)));
    const parsed = parseRequest(options.schema, request.data, options.name);
    if (!parsed.ok) throw parsed.error;
    try {
      return await handler(parsed.data, caller, request);
    } catch (err) {
      throw toHttpsError(err, options.name);
    }
  }));
}
