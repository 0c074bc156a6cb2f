// For tests that run the functions' own code in this process (processBatch, handlePushEvent, the
// progress record): the environment the Functions emulator gives its workers, as far as that code
// reads it. FUNCTIONS_EMULATOR=true makes fcmEndpoints() take the fake FCM's endpoints and db()
// take the Firestore proxy (FIRESTORE_PROXY_HOST, which scripts/emulators.mjs gives the emulators
// and this process alike), so the calls this process makes are counted where the functions' are.
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";

/** Tests run from the repository root (scripts/emulators.mjs). */
const root = process.cwd();

/** `KEY=value` lines of a dotenv file (relative to the repository root). */
export function dotenv(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(resolve(root, file), "utf8").split("\n")) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/**
 * Call before the code first uses db(). The FCM endpoints are the emulated functions' (the fake),
 * as fcmEndpoints() reads them in the emulator: functions/.env.local (written by
 * scripts/emulators.mjs under OFFLINE_PUSH_PORT_OFFSET) over .env.demo-offline-push.
 */
export function runAsEmulatedFunctions(): void {
  const local = resolve(root, "functions/.env.local");
  const demo = { ...dotenv("functions/.env.demo-offline-push"), ...(existsSync(local) ? dotenv("functions/.env.local") : {}) };
  process.env.FUNCTIONS_EMULATOR = "true";
  process.env.FCM_API_ORIGIN = demo.FCM_API_ORIGIN;
  process.env.FCM_TOKEN_URL = demo.FCM_TOKEN_URL;
}
