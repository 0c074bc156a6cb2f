// The Firestore proxy that `npm test` puts between the functions and the Firestore emulator
// (tools/firestore-proxy), driven over its control API: the functions' Firestore calls counted per
// gRPC method, and Firestore faults injected. The tests' own Admin SDK (adminDb) talks to the
// emulator directly, so a test's polling never shows in the counts.
import assert from "node:assert/strict";
import { FIRESTORE_SERVICE, FirestoreProxyClient, type CallDelta } from "../../tools/firestore-proxy/client.ts";

export type { CallCounts, CallDelta, Fault, FaultInput } from "../../tools/firestore-proxy/client.ts";

export const firestoreProxy = new FirestoreProxyClient(process.env.FIRESTORE_PROXY_CONTROL_ORIGIN ?? "http://127.0.0.1:9473");

/**
 * README's "read calls" and "write calls" are Firestore calls, not documents: a `get`/`getAll`
 * (BatchGetDocuments), a query (RunQuery, RunAggregationQuery) is a read call; a commit (a write, a
 * batched write, a transaction's commit) is a write call. A transaction is its reads and its
 * commit (the Admin SDK starts it lazily, with its first read); a BeginTransaction or a Rollback
 * (a transaction given up after its reads) is bookkeeping of a write transaction and counts as a
 * write call too, so that the ceilings cover every call.
 */
const READ_METHODS = ["BatchGetDocuments", "RunQuery", "RunAggregationQuery", "GetDocument", "ListDocuments", "ListCollectionIds", "PartitionQuery"];
const WRITE_METHODS = ["Commit", "BatchWrite", "BeginTransaction", "Rollback", "CreateDocument", "UpdateDocument", "DeleteDocument"];

export interface FirestoreCalls {
  reads: number;
  writes: number;
  /** Calls that are neither (Listen, Write streams): the fan-out makes none. */
  other: Record<string, number>;
  /** Every method by its short name (`Commit`), for messages. */
  byMethod: Record<string, number>;
}

export function readWriteCalls(delta: CallDelta): FirestoreCalls {
  const calls: FirestoreCalls = { reads: 0, writes: 0, other: {}, byMethod: {} };
  for (const [path, n] of Object.entries(delta.byMethod)) {
    const name = path.startsWith(`${FIRESTORE_SERVICE}/`) ? path.slice(FIRESTORE_SERVICE.length + 1) : path;
    calls.byMethod[name] = n;
    if (READ_METHODS.includes(name)) calls.reads += n;
    else if (WRITE_METHODS.includes(name)) calls.writes += n;
    else calls.other[name] = n;
  }
  return calls;
}

/**
 * The functions' Firestore calls made by `work` (and by whatever it set off, until the functions
 * have been quiet for `quietMs`). `work` must wait for what it starts to be done (e.g. the push
 * log of a message): quiet is measured after it returns. Nothing else may run in the emulators
 * meanwhile (test files run one at a time); the window starts only once earlier work is quiet.
 */
export async function countFirestoreCalls<T>(work: () => Promise<T>, { quietMs = 1_000, timeoutMs = 60_000 } = {}): Promise<{ result: T; calls: FirestoreCalls }> {
  const before = await firestoreProxy.waitQuiet({ quietMs, timeoutMs });
  assert.ok(before.quiet, `Firestore calls of earlier work still running after ${timeoutMs} ms (${before.inFlight} in flight)`);
  const mark = await firestoreProxy.mark();
  const result = await work();
  const after = await firestoreProxy.waitQuiet({ quietMs, timeoutMs });
  assert.ok(after.quiet, `the counted work's Firestore calls did not end within ${timeoutMs} ms (${after.inFlight} in flight)`);
  return { result, calls: readWriteCalls(await firestoreProxy.since(mark)) };
}
