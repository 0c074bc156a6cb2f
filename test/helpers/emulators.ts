// Talks to the running emulators the way real clients do: the Auth emulator's REST API for users
// and ID tokens, callables over HTTP, the Pub/Sub emulator's REST publish, and the Admin SDK for
// Firestore (the admin view, to assert on stored state). No stand-ins.
import { getApps, initializeApp } from "firebase-admin/app";
import { getFirestore, type Firestore } from "firebase-admin/firestore";
import { randomUUID } from "node:crypto";

export const PROJECT = process.env.GCLOUD_PROJECT ?? "demo-offline-push";
export const REGION = "us-central1";
const AUTH = process.env.FIREBASE_AUTH_EMULATOR_HOST ?? "127.0.0.1:9099";
const FIRESTORE = process.env.FIRESTORE_EMULATOR_HOST ?? "127.0.0.1:8080";
const PUBSUB = process.env.PUBSUB_EMULATOR_HOST ?? "127.0.0.1:8085";
const FUNCTIONS = process.env.FUNCTIONS_EMULATOR_HOST ?? "127.0.0.1:5001";

process.env.FIRESTORE_EMULATOR_HOST ??= FIRESTORE;

let firestore: Firestore | undefined;
export function adminDb(): Firestore {
  if (!firestore) {
    const app = getApps()[0] ?? initializeApp({ projectId: PROJECT });
    firestore = getFirestore(app);
  }
  return firestore;
}

/**
 * Every request the tests make has a deadline, so a request nobody answers fails the test in
 * seconds with what it was, instead of waiting for undici's 300 s headers timeout. Longest
 * legitimate answer: a cold Functions-emulator worker (seconds) plus a callable's bounded
 * transaction under contention (TRANSACTION_BUDGET_MS, 20 s).
 */
export const REQUEST_DEADLINE_MS = 75_000;

async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_DEADLINE_MS),
    });
    text = await res.text();
  } catch (err) {
    const timedOut = err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError");
    const what = `POST ${new URL(url).pathname}`;
    if (timedOut) {
      // The Functions emulator answers nothing when it fails to start a worker (see firebase-debug.log).
      throw new Error(`${what}: no answer within ${REQUEST_DEADLINE_MS / 1000} s (an emulator dropped the request; see firebase-debug.log)`, { cause: err });
    }
    throw new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = { raw: text };
  }
  return { status: res.status, json };
}

export interface TestUser {
  uid: string;
  email: string;
  idToken: string;
}

const PASSWORD = "password-123";

/**
 * A user in the Auth emulator (with `displayName` and `phoneNumber` when given); `admin: true`
 * sets the operator claim and signs in again to carry it.
 */
export async function createUser(options: { admin?: boolean; email?: string; displayName?: string; phoneNumber?: string } = {}): Promise<TestUser> {
  const email = options.email ?? `u-${randomUUID()}@example.com`;
  const signUp = await postJson(`http://${AUTH}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=any`, { email, password: PASSWORD, returnSecureToken: true });
  if (signUp.status !== 200) throw new Error(`signUp failed: ${JSON.stringify(signUp.json)}`);
  const uid = signUp.json.localId as string;
  const attributes = {
    ...(options.admin ? { customAttributes: JSON.stringify({ admin: true }) } : {}),
    ...(options.displayName ? { displayName: options.displayName } : {}),
    ...(options.phoneNumber ? { phoneNumber: options.phoneNumber } : {}),
  };
  if (Object.keys(attributes).length === 0) return { uid, email, idToken: signUp.json.idToken };
  const update = await postJson(`http://${AUTH}/identitytoolkit.googleapis.com/v1/projects/${PROJECT}/accounts:update`, { localId: uid, ...attributes }, { authorization: "Bearer owner" });
  if (update.status !== 200) throw new Error(`updating the user failed: ${JSON.stringify(update.json)}`);
  return signIn(email);
}

/** A new sign-in of an existing user (e-mail and the test password): a fresh ID token with the current claims. */
export async function signIn(email: string): Promise<TestUser> {
  const res = await postJson(`http://${AUTH}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=any`, { email, password: PASSWORD, returnSecureToken: true });
  if (res.status !== 200) throw new Error(`signIn failed: ${JSON.stringify(res.json)}`);
  return { uid: res.json.localId as string, email, idToken: res.json.idToken };
}

/** Creates users a few at a time: the Functions/Auth emulators drop connections when flooded. */
export async function createUsers(count: number, options: { admin?: boolean } = {}, parallel = 8): Promise<TestUser[]> {
  return mapLimit(Array.from({ length: count }, (_, i) => i), parallel, () => createUser(options));
}

export interface CallResult<T = any> {
  httpStatus: number;
  result?: T;
  error?: { status: string; message: string; details?: any };
}

/** Calls a callable over HTTP exactly as the Firebase client SDKs do. */
export async function call<T = any>(name: string, data: unknown, user?: TestUser | string): Promise<CallResult<T>> {
  const token = typeof user === "string" ? user : user?.idToken;
  const { status, json } = await postJson(`http://${FUNCTIONS}/${PROJECT}/${REGION}/${name}`, { data }, token ? { authorization: `Bearer ${token}` } : {});
  return { httpStatus: status, result: json.result, error: json.error };
}

/** call() with the request already serialized (`{"data": ...}`), so that a timing covers the request alone. */
export async function callSerialized<T = any>(name: string, body: string, user: TestUser): Promise<CallResult<T>> {
  const { status, json } = await postJson(`http://${FUNCTIONS}/${PROJECT}/${REGION}/${name}`, body, { authorization: `Bearer ${user.idToken}` });
  return { httpStatus: status, result: json.result, error: json.error };
}

/**
 * call(), retried the way an app retries: ABORTED (contention) and UNAVAILABLE are the answers
 * our API documents as "try again", so concurrency tests retry them with backoff, a bounded number
 * of times, and count how often they had to.
 */
export async function callRetrying<T = any>(name: string, data: unknown, user: TestUser, stats?: { retries: number }, maxAttempts = 5): Promise<CallResult<T>> {
  for (let attempt = 1; ; attempt++) {
    const res = await call<T>(name, data, user);
    const retryable = res.error?.status === "ABORTED" || res.error?.status === "UNAVAILABLE";
    if (!retryable || attempt >= maxAttempts) return res;
    if (stats) stats.retries++;
    await new Promise((r) => setTimeout(r, 100 * 2 ** attempt * Math.random()));
  }
}

/** Like call(), but fails the test with the server's error if the call did not succeed. */
export async function callOk<T = any>(name: string, data: unknown, user?: TestUser | string): Promise<T> {
  const res = await call<T>(name, data, user);
  if (res.error || res.httpStatus !== 200) throw new Error(`${name} failed (${res.httpStatus}): ${JSON.stringify(res.error)}`);
  return res.result as T;
}

/** Publishes one JSON message to a Pub/Sub emulator topic; returns the message ID. */
export async function publish(topic: string, message: unknown, attributes?: Record<string, string>): Promise<string> {
  const data = Buffer.from(typeof message === "string" ? message : JSON.stringify(message)).toString("base64");
  const { status, json } = await postJson(`http://${PUBSUB}/v1/projects/${PROJECT}/topics/${topic}:publish`, { messages: [{ data, attributes }] });
  if (status !== 200) throw new Error(`publish to ${topic} failed (${status}): ${JSON.stringify(json)}`);
  return json.messageIds[0];
}

/** Deletes every Firestore document (between test files; not between tests that share users). */
export async function clearFirestore(): Promise<void> {
  const res = await fetch(`http://${FIRESTORE}/emulator/v1/projects/${PROJECT}/databases/(default)/documents`, {
    method: "DELETE",
    signal: AbortSignal.timeout(REQUEST_DEADLINE_MS),
  });
  if (!res.ok) throw new Error(`clearing Firestore failed: ${res.status}`);
}

/** Polls until `check` returns a value other than undefined (async outcomes of Pub/Sub triggers). */
export async function eventually<T>(check: () => Promise<T | undefined>, { timeoutMs = 30_000, intervalMs = 200, what = "condition" } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T, i);
    }
  });
  await Promise.all(workers);
  return results;
}
