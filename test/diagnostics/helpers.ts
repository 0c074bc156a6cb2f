// Diagnostics as an operator uses them: the callables over HTTP with an operator's token, every
// answer checked against the contract's response schema (so the CLI and console can rely on it).
import assert from "node:assert/strict";
import type { z } from "zod";
import {
  DiagnosePushResponseSchema,
  PushStatsResponseSchema,
  SendTestPushResponseSchema,
  TraceMessageResponseSchema,
  type DiagnosePushResponse,
  type PushStatsResponse,
  type SendTestPushResponse,
  type TraceMessageResponse,
  type TracedDevice,
} from "../../functions/src/diagnostics/schemas.ts";
import { call, eventually, type TestUser } from "../helpers/emulators.ts";
import { waitForMessage, type BatchDoc } from "../helpers/fanout.ts";

async function checked<S extends z.ZodType>(name: string, data: unknown, user: TestUser, schema: S): Promise<z.output<S>> {
  const res = await call(name, data, user);
  if (res.error || res.httpStatus !== 200) throw new Error(`${name} failed (${res.httpStatus}): ${JSON.stringify(res.error)}`);
  // JSON only: what went over the wire parses with the contract (ISO strings, no Timestamps).
  return schema.parse(res.result);
}

export const diagnose = (admin: TestUser, uid: string): Promise<DiagnosePushResponse> => checked("diagnosePush", { uid }, admin, DiagnosePushResponseSchema);
export const trace = (admin: TestUser, msgKey: string): Promise<TraceMessageResponse> => checked("traceMessage", { msgKey }, admin, TraceMessageResponseSchema);
export const testPush = (admin: TestUser, req: Record<string, unknown>): Promise<SendTestPushResponse> => checked("sendTestPush", req, admin, SendTestPushResponseSchema);
export const stats = (admin: TestUser, req: Record<string, unknown>): Promise<PushStatsResponse> => checked("pushStats", req, admin, PushStatsResponseSchema);

/** The message's push log is complete, then its trace. */
export async function traced(admin: TestUser, msgKey: string): Promise<{ docs: BatchDoc[]; trace: TraceMessageResponse }> {
  const docs = await waitForMessage(msgKey);
  return { docs, trace: await trace(admin, msgKey) };
}

export function tracedDevice(t: TraceMessageResponse, uid: string, deviceId: string | null): TracedDevice {
  const d = t.devices.find((x) => x.uid === uid && x.deviceId === deviceId);
  assert.ok(d, `trace of ${t.msgKey} has ${uid}/${deviceId}: ${JSON.stringify(t.devices.map((x) => [x.uid, x.deviceId, x.reason]))}`);
  return d;
}

/** Polls the trace until `check` accepts it (the receipt is written by another request). */
export async function traceUntil(admin: TestUser, msgKey: string, check: (t: TraceMessageResponse) => boolean, what: string): Promise<TraceMessageResponse> {
  return eventually(async () => {
    const t = await trace(admin, msgKey);
    return check(t) ? t : undefined;
  }, { what });
}

export const textBody = (t: string) => [{ MsgType: "TIMTextElem", MsgContent: { Text: t } }];

export const todayUtc = (offsetDays = 0): string => new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);
