/**
 * Runs the fake FCM for the emulator and the demo:
 *   node --import tsx tools/fake-fcm/main.ts
 * Ports: FAKE_FCM_API_PORT (default 9470, HTTP/2 h2c), FAKE_FCM_CONTROL_PORT (default 9471).
 * Host: FAKE_FCM_HOST (default 127.0.0.1).
 */
import { startFakeFcm } from "./server.js";
import type { RecordedRequest } from "./types.js";

function port(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`${name} must be a port number, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

function describe(r: RecordedRequest): string {
  const m = (r.message ?? {}) as Record<string, unknown>;
  const n = (m.notification ?? {}) as Record<string, unknown>;
  const an = (((m.android ?? {}) as Record<string, unknown>).notification ?? {}) as Record<string, unknown>;
  const token = typeof m.token === "string" ? `…${m.token.slice(-8)}` : "(no token)";
  const title = String(n.title ?? an.title ?? "");
  const body = String(n.body ?? an.body ?? "");
  const status =
    r.answeredStatus === 200
      ? r.validateOnly
        ? "validated"
        : "delivered"
      : `${r.answeredStatus ?? "reset"} ${r.errorCode ?? r.errorStatus ?? r.errorMessage ?? ""}`.trim();
  return `[fake-fcm] ${r.receivedAt} ${r.projectId} ${token} ${JSON.stringify(title)} ${JSON.stringify(body)} -> ${status}`;
}

async function main(): Promise<void> {
  const fake = await startFakeFcm({
    host: process.env.FAKE_FCM_HOST || "127.0.0.1",
    apiPort: port("FAKE_FCM_API_PORT", 9470),
    controlPort: port("FAKE_FCM_CONTROL_PORT", 9471),
    // `--quiet` (npm test): the tests read the records over the control API; no line per push.
    ...(process.argv.includes("--quiet") ? {} : { onRequest: (r: RecordedRequest) => console.log(describe(r)) }),
  });
  console.log(`[fake-fcm] FCM API (HTTP/2 cleartext): ${fake.apiOrigin}   -> FCM_API_ORIGIN`);
  console.log(`[fake-fcm] OAuth token endpoint:        ${fake.tokenUrl}   -> FCM_TOKEN_URL`);
  console.log(`[fake-fcm] control API + push viewer:   ${fake.controlOrigin}/`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`[fake-fcm] ${signal}: shutting down`);
    fake.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
}

main().catch((err: unknown) => {
  console.error("[fake-fcm] failed to start:", err);
  process.exit(1);
});
