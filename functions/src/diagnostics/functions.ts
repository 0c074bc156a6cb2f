// The diagnostics' deployed callables. Operators (custom claim admin: true): diagnosePush,
// traceMessage, sendTestPush, pushStats. Apps: reportPushOpened (the user's own device only).
import * as logger from "firebase-functions/logger";
import { callable } from "../common/callable";
import { keyEncryptionKeySecret } from "../config";
import { diagnosePush as diagnose } from "./diagnose";
import { explanationsFor } from "./explain";
import { recordOpened } from "./receipts";
import {
  DiagnosePushRequestSchema,
  PushStatsRequestSchema,
  ReportPushOpenedRequestSchema,
  SendTestPushRequestSchema,
  TraceMessageRequestSchema,
  type DiagnosePushResponse,
  type ExplanationCategory,
  type PushStatsResponse,
  type ReportPushOpenedResponse,
  type SendTestPushResponse,
  type TraceMessageResponse,
} from "./schemas";
import { readStats } from "./stats";
import { sendTestPush as testPush } from "./testPush";
import { traceMessage as trace } from "./trace";

export const diagnosePush = callable(
  { name: "diagnosePush", access: "admin", schema: DiagnosePushRequestSchema },
  (request): Promise<DiagnosePushResponse> => diagnose(request),
);

export const traceMessage = callable(
  { name: "traceMessage", access: "admin", schema: TraceMessageRequestSchema },
  ({ msgKey }): Promise<TraceMessageResponse> => trace(msgKey),
);

export const sendTestPush = callable(
  { name: "sendTestPush", access: "admin", schema: SendTestPushRequestSchema, secrets: [keyEncryptionKeySecret] },
  (request, caller): Promise<SendTestPushResponse> => testPush(request, caller.uid),
);

export const pushStats = callable({ name: "pushStats", access: "admin", schema: PushStatsRequestSchema }, async ({ from, to, certificateId }): Promise<PushStatsResponse> => {
  const { days, totals } = await readStats(from, to, certificateId);
  const codes: Array<{ category: ExplanationCategory; code: string }> = [
    ...Object.keys(totals.skippedByReason).map((code) => ({ category: "skip-reason" as const, code })),
    ...Object.keys(totals.failedByReason).map((code) => ({ category: "fail-reason" as const, code })),
    ...Object.keys(totals.failedByErrorCode).map((code) => ({ category: "fcm-error" as const, code })),
  ];
  return { from, to, certificateId: certificateId ?? null, days, totals, explanations: explanationsFor(codes) };
});

export const reportPushOpened = callable(
  { name: "reportPushOpened", access: "user", schema: ReportPushOpenedRequestSchema },
  async ({ msgKey, deviceId }, caller): Promise<ReportPushOpenedResponse> => {
    const result = await recordOpened(msgKey, caller.uid, deviceId);
    // The same answer whatever happened: it must not tell a caller whether someone else's message exists.
    if (result === "ignored") logger.info("push-opened receipt ignored: no push of this message was sent to this device of this user", { uid: caller.uid, deviceId });
    return { ok: true };
  },
);
