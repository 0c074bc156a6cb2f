/**
 * Runs the Firestore proxy beside the emulators (scripts/emulators.mjs starts it for `npm test`):
 *   FIRESTORE_PROXY_UPSTREAM=127.0.0.1:8080 node --import tsx tools/firestore-proxy/main.ts
 * Ports: FIRESTORE_PROXY_PORT (default 9472, HTTP/2 h2c: what the functions use as their Firestore
 * host), FIRESTORE_PROXY_CONTROL_PORT (default 9473, the control API). Host: FIRESTORE_PROXY_BIND
 * (default 127.0.0.1).
 */
import { startFirestoreProxy } from "./server.js";

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

async function main(): Promise<void> {
  const upstream = process.env.FIRESTORE_PROXY_UPSTREAM ?? "";
  if (!/^[^\s/]+:\d+$/.test(upstream)) {
    console.error(`FIRESTORE_PROXY_UPSTREAM must be the Firestore emulator's host:port, got ${JSON.stringify(upstream)}`);
    process.exit(2);
  }
  const proxy = await startFirestoreProxy({
    upstream,
    host: process.env.FIRESTORE_PROXY_BIND || "127.0.0.1",
    port: port("FIRESTORE_PROXY_PORT", 9472),
    controlPort: port("FIRESTORE_PROXY_CONTROL_PORT", 9473),
  });
  console.log(`[firestore-proxy] gRPC (HTTP/2 cleartext): ${proxy.proxyHost} -> ${upstream}   -> FIRESTORE_PROXY_HOST`);
  console.log(`[firestore-proxy] control API:             ${proxy.controlOrigin}/control/stats`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    proxy.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(`[firestore-proxy] ${signal}:`, err);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
}

main().catch((err: unknown) => {
  console.error("[firestore-proxy] failed to start:", err);
  process.exit(1);
});
