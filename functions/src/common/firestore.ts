import { getApps, initializeApp } from "firebase-admin/app";
import { getFirestore, type Firestore, type Transaction } from "firebase-admin/firestore";
import { DomainError } from "./errors";

let firestore: Firestore | undefined;

/**
 * The Firestore proxy the tests put between the functions and the Firestore emulator
 * (tools/firestore-proxy: it counts calls and injects faults), or undefined. Honoured only in the
 * Functions emulator (`FUNCTIONS_EMULATOR === "true"`, set by the emulator itself, never in a
 * deployed function) and only in place of an emulator the SDK would use anyway
 * (`FIRESTORE_EMULATOR_HOST` set): a deployed function always talks to the real Firestore, and no
 * configuration can send its traffic anywhere else (as with the FCM origin, fcm/endpoints.ts).
 * A separate variable, because the Functions emulator sets FIRESTORE_EMULATOR_HOST for its
 * workers itself, over anything the environment or an .env file says.
 */
export function emulatorProxyHost(env: Readonly<Record<string, string | undefined>> = process.env): string | undefined {
  if (env.FUNCTIONS_EMULATOR !== "true" || !env.FIRESTORE_EMULATOR_HOST) return undefined;
  const host = env.FIRESTORE_PROXY_HOST;
  return host && /^[^\s/]+:\d+$/.test(host) ? host : undefined;
}

/** Lazily initialised so that modules can be imported (and unit-tested) without an app. */
export function db(): Firestore {
  if (!firestore) {
    if (getApps().length === 0) initializeApp();
    const proxy = emulatorProxyHost();
    if (!proxy) {
      firestore = getFirestore();
      firestore.settings({ ignoreUndefinedProperties: true });
      return firestore;
    }
    // The SDK takes its emulator's address from FIRESTORE_EMULATOR_HOST (over any setting) when
    // the client is constructed and configured: both happen here, synchronously, with the
    // proxy's address in it; everything else in the process (a test's own Admin SDK) still sees
    // the emulator's. Emulator semantics are kept: no credentials, `Bearer owner`.
    const emulator = process.env.FIRESTORE_EMULATOR_HOST;
    process.env.FIRESTORE_EMULATOR_HOST = proxy;
    try {
      firestore = getFirestore();
      firestore.settings({ ignoreUndefinedProperties: true });
    } finally {
      process.env.FIRESTORE_EMULATOR_HOST = emulator;
    }
  }
  return firestore;
}

/** gRPC status codes Firestore answers with (the Admin SDK puts them in `err.code`). */
export const GRPC = { UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, INTERNAL: 13, UNAVAILABLE: 14 } as const;

export function grpcCode(err: unknown): number | undefined {
  const code = typeof err === "object" && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === "number" ? code : undefined;
}

/**
 * How long a request-path transaction may keep retrying under contention before the caller is
 * told to retry. Well inside a callable's 60 s timeout: the app gets a clear ABORTED it can retry
 * (the Firebase SDKs' callers do), never a request that hangs until the platform kills it.
 */
export const TRANSACTION_BUDGET_MS = 20_000;

export class TransactionContentionError extends DomainError {
  constructor(attempts: number, elapsedMs: number) {
    super(
      "aborted",
      `too many concurrent changes to the same records: gave up after ${attempts} attempt(s) in ${Math.round(elapsedMs / 1000)} s; retry the call`,
      { retryable: true, attempts },
    );
  }
}

/**
 * `runTransaction` with a bound: no new attempt starts after `budgetMs`, and contention or an
 * outage ends as a DomainError (`aborted` / `unavailable`) the caller can retry, instead of the
 * Admin SDK's raw gRPC error (which callable.ts would have to call `internal`). The body must be
 * safe to re-run, as any transaction body is.
 */
export async function runBoundedTransaction<T>(fn: (tx: Transaction) => Promise<T>, budgetMs = TRANSACTION_BUDGET_MS): Promise<T> {
  const started = Date.now();
  let attempts = 0;
  try {
    return await db().runTransaction(
      async (tx) => {
        if (attempts > 0 && Date.now() - started > budgetMs) throw new TransactionContentionError(attempts, Date.now() - started);
        attempts++;
        return fn(tx);
      },
      // The SDK backs off between attempts (exponential, capped); the budget is the real bound.
      { maxAttempts: 10 },
    );
  } catch (err) {
    if (grpcCode(err) === GRPC.ABORTED) throw new TransactionContentionError(attempts, Date.now() - started);
    throw retryableFirestoreError(err) ?? err;
  }
}

/**
 * A raw Firestore error the caller may retry, as the DomainError it is answered with: contention
 * (`aborted`) or an outage (`unavailable`). Null for anything else. The one place that maps them.
 */
export function retryableFirestoreError(err: unknown): DomainError | null {
  const code = grpcCode(err);
  if (code === GRPC.ABORTED) return new DomainError("aborted", "concurrent changes to the same records; retry the call", { retryable: true });
  if (code === GRPC.UNAVAILABLE || code === GRPC.DEADLINE_EXCEEDED) {
    return new DomainError("unavailable", "the database is temporarily unavailable; retry the call", { retryable: true });
  }
  return null;
}
