// sendTestPush: a notification sent now, outside the fan-out, to a user's logged-in devices that
// have a token (app state ignored: the point is to see the notification arrive), or only checked
// by FCM (validate_only) with dryRun. Answers per device with the message built and FCM's answer.
// Not recorded in the push log or the statistics; a real send that FCM answers with a dead token
// unbinds it, as the fan-out does (a dry run changes nothing).
import { randomUUID } from "node:crypto";
import * as logger from "firebase-functions/logger";
import { loadCredentials, type CertificateCredentials } from "../certificates/store";
import { keyEncryptionKey } from "../config";
import { db } from "../common/firestore";
import { fcmEndpoints } from "../fcm/endpoints";
import { FcmAuthError, FcmTokenEndpointError, type FcmSendFailure, type FcmSendResult } from "../fcm/errors";
import { cachedAccessToken, dropAccessToken, fcmPool } from "../fcm/runtime";
import { sendFcmMessage } from "../fcm/send";
import { buildApnsFcmMessage } from "../fanout/apnsMessage";
import { buildFcmMessage } from "../fanout/message";
import type { FailReason } from "../fanout/schemas";
import { USERS, hasPushToken, parseUserDevices, type Device } from "../sessions/schemas";
import { unbindToken } from "../sessions/store";
import { DomainError } from "../common/errors";
import { explain, explainFcmError } from "./explain";
import type { FcmErrorView, SendTestPushRequest, SendTestPushResponse, TestPushDevice } from "./schemas";
import { counted } from "../common/format";
import { hashPrefix } from "./views";

export const TEST_SENDER = "offline-push-test";

function failureReason(f: FcmSendFailure): FailReason {
  switch (f.kind) {
    case "token-unregistered":
    case "token-invalid":
    case "sender-mismatch":
    case "third-party-auth":
    case "invalid-message":
      return f.kind;
    case "auth":
      return "certificate-auth";
    default:
      return "fcm-error";
  }
}

const errorView = (f: FcmSendFailure): FcmErrorView => ({ httpStatus: f.httpStatus, status: f.status ?? null, errorCode: f.errorCode ?? null, message: f.message });

async function sendOne(cred: CertificateCredentials, message: ReturnType<typeof buildFcmMessage>, dryRun: boolean): Promise<FcmSendResult | { tokenError: FcmErrorView; reason: FailReason }> {
  const { apiOrigin } = fcmEndpoints();
  const send = async () => {
    const accessToken = (await cachedAccessToken(cred)).accessToken;
    return sendFcmMessage({ apiOrigin, projectId: cred.projectId, accessToken, message, validateOnly: dryRun }, fcmPool);
  };
  try {
    let res = await send();
    // A cached access token may have been revoked: one fresh token, one more try (as the fan-out does).
    if (!res.ok && res.httpStatus === 401 && res.errorCode !== "THIRD_PARTY_AUTH_ERROR") {
      dropAccessToken(cred);
      res = await send();
    }
    return res;
  } catch (err) {
    if (err instanceof FcmAuthError) {
      return { tokenError: { httpStatus: err.httpStatus, status: null, errorCode: err.oauthError, message: err.message }, reason: "certificate-auth" };
    }
    if (err instanceof FcmTokenEndpointError) {
      return { tokenError: { httpStatus: err.httpStatus, status: null, errorCode: null, message: err.message }, reason: "token-endpoint-unavailable" };
    }
    throw err;
  }
}

function skipped(deviceId: string, reason: string, detail: string, certificateId: number | null = null, tokenHash: string | null = null): TestPushDevice {
  return {
    deviceId,
    result: "skipped",
    reason,
    detail,
    certificateId,
    tokenHashPrefix: tokenHash ? hashPrefix(tokenHash) : null,
    message: null,
    fcm: null,
    explanation: explain("skip-reason", reason),
    fcmErrorExplanation: null,
  };
}

export async function sendTestPush(req: SendTestPushRequest, operatorUid: string, nowMs = Date.now()): Promise<SendTestPushResponse> {
  const dryRun = req.dryRun === true;
  const snap = await db().collection(USERS).doc(req.uid).get();
  let devices: Record<string, Device>;
  try {
    devices = parseUserDevices(snap.exists ? snap.data() : undefined);
  } catch {
    throw new DomainError("failed-precondition", `the stored device record of ${req.uid} does not match the expected format`);
  }
  const msgKey = `test-${randomUUID()}`;
  const title = req.title ?? "Test notification";
  const body = req.body ?? `Sent by an operator with sendTestPush at ${new Date(nowMs).toISOString()}`;
  const targets: Array<Device | string> = req.deviceId !== undefined ? [devices[req.deviceId] ?? req.deviceId] : Object.values(devices);

  const withToken = targets.filter((d): d is Device => typeof d !== "string" && d.session === "logged-in" && d.token !== null);
  const loaded = await loadCredentials(
    withToken.map((d) => (d.token as NonNullable<Device["token"]>).certificateId),
    keyEncryptionKey,
  );

  const results = await Promise.all(
    targets.map(async (d): Promise<TestPushDevice> => {
      if (typeof d === "string") return skipped(d, "no-device", `${req.uid} has no device ${d}`);
      if (d.session === "logged-out") return skipped(d.deviceId, "logged-out", `device ${d.deviceId} is logged out: test pushes go to logged-in devices only`);
      if (d.session === "kicked") return skipped(d.deviceId, "kicked", `device ${d.deviceId} was kicked offline by a login on ${d.kickedByDeviceId ?? "another device"}: test pushes go to logged-in devices only`);
      const token = d.token;
      if (!hasPushToken(d.platform)) return skipped(d.deviceId, "platform-without-push", `device ${d.deviceId} is a ${d.platform} app: it has no FCM token, so no push can reach it`);
      if (!token) return skipped(d.deviceId, "no-token", `device ${d.deviceId} is logged in but has not reported a push token (setOfflinePushToken)`);
      const why = loaded.unreadable.get(token.certificateId);
      const cred = loaded.credentials.get(token.certificateId);
      if (!cred && why === undefined) {
        return skipped(d.deviceId, "certificate-missing", `device ${d.deviceId}'s token is bound to push certificate ${token.certificateId}, which does not exist`, token.certificateId, token.tokenHash);
      }
      const content = { MsgKey: msgKey, From_Account: TEST_SENDER, MsgBody: [] };
      // An iPhone gets its own form (no badge: a test push changes no count).
      const message = d.platform === "ios" ? buildApnsFcmMessage(content, { title, body }, token.token) : buildFcmMessage(content, { title, body }, token.token);
      const shown = { ...message, token: `sha256:${hashPrefix(token.tokenHash)}` } as Record<string, unknown>;
      const base = { deviceId: d.deviceId, certificateId: token.certificateId, tokenHashPrefix: hashPrefix(token.tokenHash), message: shown };
      if (!cred) {
        return { ...base, result: "failed", reason: "certificate-unreadable", detail: `push certificate ${token.certificateId} cannot be used: ${why ?? ""}`, fcm: null, explanation: explain("fail-reason", "certificate-unreadable"), fcmErrorExplanation: null };
      }
      const res = await sendOne(cred, message, dryRun);
      if ("tokenError" in res) {
        return {
          ...base,
          result: "failed",
          reason: res.reason,
          detail: `no access token for push certificate ${token.certificateId}: ${res.tokenError.message}`,
          fcm: { name: null, error: res.tokenError },
          explanation: explain("fail-reason", res.reason),
          fcmErrorExplanation: explainFcmError(res.tokenError),
        };
      }
      if (res.ok) {
        return {
          ...base,
          result: dryRun ? "validated" : "sent",
          reason: null,
          detail: dryRun ? "FCM validated the message for this token (validate_only): nothing was delivered" : `FCM accepted it as ${res.name}`,
          fcm: { name: res.name, error: null },
          explanation: null,
          fcmErrorExplanation: null,
        };
      }
      const reason = failureReason(res);
      let detail = `FCM answered ${[res.httpStatus || "no response", res.status, res.errorCode, res.message].filter(Boolean).join(" ")}`;
      if (!dryRun && (res.kind === "token-unregistered" || res.kind === "token-invalid" || res.kind === "sender-mismatch")) {
        const owner = await unbindToken(token.tokenHash, { uid: req.uid, deviceId: d.deviceId, certificateId: token.certificateId });
        if (owner) detail += "; the token is unbound from this device";
      }
      const error = errorView(res);
      return { ...base, result: "failed", reason, detail, fcm: { name: null, error }, explanation: explain("fail-reason", reason), fcmErrorExplanation: explainFcmError(error) };
    }),
  );

  const count = (r: TestPushDevice["result"]) => results.filter((x) => x.result === r).length;
  const ok = dryRun ? count("validated") : count("sent");
  let summary: string;
  if (results.length === 0) summary = `${req.uid} has no device: nothing to send`;
  else {
    const verb = dryRun ? "validated by FCM (dry run, nothing delivered)" : "accepted by FCM";
    const others = results.filter((r) => r.result === "failed" || r.result === "skipped").map((r) => `${r.deviceId} ${r.result} (${r.reason ?? ""}${r.fcm?.error?.errorCode ? ` ${r.fcm.error.errorCode}` : ""})`);
    summary = `${ok} of ${counted(results.length, "device")} of ${req.uid} ${verb}${others.length ? `; ${others.join(", ")}` : ""}`;
  }
  logger.info("test push", { operator: operatorUid, uid: req.uid, dryRun, msgKey, sent: count("sent"), validated: count("validated"), failed: count("failed"), skipped: count("skipped") });
  return { uid: req.uid, dryRun, msgKey, at: new Date(nowMs).toISOString(), summary, devices: results };
}
