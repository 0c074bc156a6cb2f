/** Shared setup for the FCM client tests: the fake FCM in-process on ephemeral ports. */
import { resolve } from "node:path";
import { startFakeFcm, type FakeFcm } from "../../tools/fake-fcm/server.js";
import { FakeFcmClient, type ServiceAccountJson } from "../../tools/fake-fcm/client.js";
import {
  fetchAccessToken,
  Http2Pool,
  sendFcmMessage,
  type FcmMessage,
  type FcmSendResult,
  type Http2PoolOptions,
} from "../../functions/src/fcm/index.js";

/** The repository root (tests are CommonJS under tsx; fall back to the cwd otherwise). */
export const repoRoot: string = typeof __dirname !== "undefined" ? resolve(__dirname, "../..") : process.cwd();

export interface TestEnv {
  fake: FakeFcm;
  ctl: FakeFcmClient;
  pool: Http2Pool;
  sa: ServiceAccountJson;
  accessToken: string;
  send(message: FcmMessage, extra?: { validateOnly?: boolean; timeoutMs?: number; accessToken?: string; projectId?: string }): Promise<FcmSendResult>;
  close(): Promise<void>;
}

export async function startEnv(poolOptions: Http2PoolOptions = {}): Promise<TestEnv> {
  const fake = await startFakeFcm({ apiPort: 0, controlPort: 0 });
  const ctl = new FakeFcmClient(fake.controlOrigin);
  const pool = new Http2Pool(poolOptions);
  const sa = await ctl.createServiceAccount();
  const { accessToken } = await fetchAccessToken(sa, { tokenUrl: fake.tokenUrl });
  return {
    fake,
    ctl,
    pool,
    sa,
    accessToken,
    send: (message, extra = {}) =>
      sendFcmMessage(
        {
          apiOrigin: fake.apiOrigin,
          projectId: extra.projectId ?? sa.project_id,
          accessToken: extra.accessToken ?? accessToken,
          message,
          ...(extra.validateOnly !== undefined ? { validateOnly: extra.validateOnly } : {}),
          ...(extra.timeoutMs !== undefined ? { timeoutMs: extra.timeoutMs } : {}),
        },
        pool,
      ),
    async close() {
      await pool.close();
      await fake.close();
    },
  };
}

/** Raw HTTP/2 POST to the fake's messages:send (bypasses the typed client, for malformed bodies). */
export async function rawSend(
  env: TestEnv,
  body: unknown,
  projectId = env.sa.project_id,
): Promise<{ status: number; json: unknown; headers: Record<string, string> }> {
  const res = await env.pool.request({
    origin: env.fake.apiOrigin,
    path: `/v1/projects/${projectId}/messages:send`,
    method: "POST",
    headers: { authorization: `Bearer ${env.accessToken}`, "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  let json: unknown;
  try {
    json = JSON.parse(res.body);
  } catch {
    json = res.body;
  }
  return { status: res.status, json, headers: res.headers };
}

export function assertFailure(result: FcmSendResult): asserts result is Extract<FcmSendResult, { ok: false }> {
  if (result.ok) throw new Error(`expected a failure, got success ${result.name}`);
}
