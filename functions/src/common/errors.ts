// Domain errors: services throw these, never HttpsError, so HTTP concerns stay in callable.ts
// (the only place that maps them). Messages are shown to callers: never put secrets in them.
export type ErrorKind =
  | "invalid-argument"
  | "not-found"
  | "already-exists"
  | "failed-precondition"
  | "permission-denied"
  | "unauthenticated"
  | "resource-exhausted"
  | "aborted"
  | "unavailable"
  | "internal";

export class DomainError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "DomainError";
  }
}

/** `invalid-argument` naming the field that is wrong, as every caller of our API expects. */
export function invalidArgument(field: string, problem: string): DomainError {
  return new DomainError("invalid-argument", `${field}: ${problem}`, { field });
}
