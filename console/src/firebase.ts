// Firebase for the console: the web config comes from Hosting's reserved /__/firebase/init.json
// (served by Firebase Hosting for the project it is deployed to, and by the Hosting emulator), so
// the bundle carries no project of its own.
import { initializeApp, type FirebaseApp, type FirebaseOptions } from "firebase/app";
import { connectAuthEmulator, getAuth, type Auth } from "firebase/auth";
import { getFunctions, type Functions } from "firebase/functions";

export interface ConsoleFirebase {
  app: FirebaseApp;
  auth: Auth;
  functions: Functions;
  /** True when served by the Hosting emulator (the `npm start` demo, the browser tests). */
  emulated: boolean;
}

const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);
const FETCH_DEADLINE_MS = 15_000;

async function fetchText(path: string): Promise<string> {
  const res = await fetch(path, { signal: AbortSignal.timeout(FETCH_DEADLINE_MS), cache: "no-store" });
  if (!res.ok) throw new Error(`${path} answered HTTP ${res.status}`);
  return res.text();
}

interface EmulatorInfo {
  host: string;
  port: number;
  hostAndPort: string;
}

/**
 * The Hosting emulator names the running emulators only in its init.js (`?useEmulator=true`), as
 * a JSON literal: read it from there rather than hard-coding ports that OFFLINE_PUSH_PORT_OFFSET moves.
 */
async function emulators(): Promise<Record<string, EmulatorInfo> | undefined> {
  if (!LOCAL_HOSTS.has(location.hostname)) return undefined;
  const js = await fetchText("/__/firebase/init.js?useEmulator=true").catch(() => "");
  const match = /var firebaseEmulators = (\{[\s\S]*?\});/.exec(js);
  if (!match?.[1]) return undefined;
  try {
    return JSON.parse(match[1]) as Record<string, EmulatorInfo>;
  } catch {
    return undefined;
  }
}

export async function initFirebase(): Promise<ConsoleFirebase> {
  let config: FirebaseOptions;
  try {
    config = JSON.parse(await fetchText("/__/firebase/init.json")) as FirebaseOptions;
  } catch (err) {
    throw new Error(
      `Could not read the Firebase web config from /__/firebase/init.json (${err instanceof Error ? err.message : String(err)}). ` +
        "Open the console from Firebase Hosting (firebase deploy --only hosting) or from `npm start`, not from a file or another server.",
      { cause: err },
    );
  }
  if (!config || typeof config !== "object" || !config.projectId) {
    throw new Error("/__/firebase/init.json has no Firebase web config: add a web app to the Firebase project, then deploy again.");
  }
  // Before getAuth(): Auth starts restoring a persisted session at once, and connectAuthEmulator
  // must come before its first request (else auth/emulator-config-failed after a reload).
  const found = await emulators();
  const app = initializeApp(config);
  const auth = getAuth(app);
  if (found?.auth) connectAuthEmulator(auth, `http://${found.auth.hostAndPort}`, { disableWarnings: true });
  // Callables go through this site's own /api/<name> rewrites (firebase.json), so the browser makes
  // same-origin requests: no CORS on the functions, and the emulator's Hosting proxies them the same way.
  const functions = getFunctions(app, `${location.origin}/api`);
  return { app, auth, functions, emulated: Boolean(found?.auth) };
}
