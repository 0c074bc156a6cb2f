// The operator callables, typed from the functions' own schemas and handlers (type-only imports:
// nothing of functions/ is bundled). A change of contract there is a type error here.
import { httpsCallable, type Functions } from "firebase/functions";
import { FirebaseError } from "firebase/app";
import type { z } from "zod";
import type * as certificateFunctions from "../../functions/src/certificates/functions";
import type { DeleteRequestSchema, RegisterRequestSchema, UpdateRequestSchema } from "../../functions/src/certificates/schemas";
import type {
  DiagnosePushRequest,
  DiagnosePushResponse,
  PushStatsRequest,
  PushStatsResponse,
  SendTestPushRequest,
  SendTestPushResponse,
  TraceMessageRequest,
  TraceMessageResponse,
} from "../../functions/src/diagnostics/schemas";

export type { PublicCertificate } from "../../functions/src/certificates/schemas";
export type * from "../../functions/src/diagnostics/schemas";

type ResultOf<F extends { run: (...args: never[]) => unknown }> = Awaited<ReturnType<F["run"]>>;

/** Request (as the client sends it, before the server's transforms) and response of each callable. */
interface Callables {
  registerPushCertificate: [z.input<typeof RegisterRequestSchema>, ResultOf<typeof certificateFunctions.registerPushCertificate>];
  updatePushCertificate: [z.input<typeof UpdateRequestSchema>, ResultOf<typeof certificateFunctions.updatePushCertificate>];
  listPushCertificates: [Record<string, never>, ResultOf<typeof certificateFunctions.listPushCertificates>];
  deletePushCertificate: [z.input<typeof DeleteRequestSchema>, ResultOf<typeof certificateFunctions.deletePushCertificate>];
  diagnosePush: [DiagnosePushRequest, DiagnosePushResponse];
  traceMessage: [TraceMessageRequest, TraceMessageResponse];
  sendTestPush: [SendTestPushRequest, SendTestPushResponse];
  pushStats: [PushStatsRequest, PushStatsResponse];
}

/** What went wrong, in words for the person at the screen, with what FCM said when it said something. */
export class CallError extends Error {
  constructor(
    message: string,
    readonly code: string,
    /** The request field the server named, when it named one. */
    readonly field: string | null,
    /** FCM's own answer (certificate checks), when there was one. */
    readonly fcm: { stage?: string; httpStatus?: number; status?: string | null; errorCode?: string | null; error?: string; description?: string | null; message?: string } | null,
    /** The server's details as sent (e.g. the certificate that already holds a key). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

// Longer than a cold emulator worker plus a bounded transaction (the tests' REQUEST_DEADLINE_MS).
const CALL_TIMEOUT_MS = 70_000;

const PLAIN: Record<string, string> = {
  unauthenticated: "You are signed out. Sign in again.",
  "permission-denied": "Your account does not have the admin claim.",
  unavailable: "The server is unreachable or busy. Try again in a moment.",
  aborted: "The server was busy with the same data. Try again.",
  "deadline-exceeded": "No answer in time. Check your connection and try again.",
  internal: "The server failed unexpectedly. Try again; if it persists, check the functions' logs.",
  "not-found": "Not found.",
};

function toCallError(err: unknown): CallError {
  if (err instanceof FirebaseError) {
    const code = err.code.replace(/^functions\//, "");
    const raw = (err as FirebaseError & { details?: unknown }).details;
    const details = (typeof raw === "object" && raw !== null ? raw : {}) as { field?: string; fcm?: CallError["fcm"] } & Record<string, unknown>;
    // The SDK appends the HTTP status ("... [400]"): that is for developers, not for the page.
    const text = err.message.replace(/ \[\d{3}\]$/, "");
    // The server's own message is written for people (it names the field, never echoes input);
    // the SDK's generic text for transport failures is not, so those get ours.
    const generic = !text || text === code.toUpperCase() || text === code || text === "internal";
    const message = generic ? (PLAIN[code] ?? text) : text;
    return new CallError(message, code, details.field ?? null, details.fcm ?? null, details);
  }
  return new CallError(err instanceof Error ? err.message : String(err), "unknown", null, null);
}

export type Api = <K extends keyof Callables>(name: K, data: Callables[K][0]) => Promise<Callables[K][1]>;

export function makeApi(functions: Functions): Api {
  return async (name, data) => {
    try {
      const fn = httpsCallable(functions, name, { timeout: CALL_TIMEOUT_MS });
      return (await fn(data)).data as never;
    } catch (err) {
      throw toCallError(err);
    }
  };
}
