// A certificate is only stored once FCM has accepted it: we obtain an access token with the key
// and make a validate_only send (to a topic, so no device token is needed). That proves the key is
// live, the account may send for its project, and the FCM API is enabled there.
import { DomainError } from "../common/errors";
import { fetchAccessToken } from "../fcm/accessToken";
import { fcmEndpoints } from "../fcm/endpoints";
import { FcmAuthError, FcmTokenEndpointError } from "../fcm/errors";
import { fcmPool } from "../fcm/runtime";
import { sendFcmMessage, sendWithRetry } from "../fcm/send";
import { logCertificateRejected } from "./logs";
import type { ServiceAccount } from "./schemas";

const VERIFY_TOPIC = "offline-push-certificate-check";

export async function verifyWithFcm(sa: ServiceAccount): Promise<void> {
  const { apiOrigin, tokenUrl } = fcmEndpoints();
  let accessToken: string;
  try {
    // Never cached: the point is to prove this exact key works now.
    accessToken = (await fetchAccessToken(sa, { tokenUrl })).accessToken;
  } catch (err) {
    if (err instanceof FcmAuthError) {
      logCertificateRejected(sa.project_id, sa.client_email, err.message);
      throw new DomainError("failed-precondition", `serviceAccount: Google refused an access token for ${sa.client_email} (${err.message}); the key may be deleted, rotated or disabled`, {
        field: "serviceAccount",
        fcm: { stage: "access-token", error: err.oauthError, description: err.oauthErrorDescription ?? null },
      });
    }
    if (err instanceof FcmTokenEndpointError) {
      throw new DomainError("unavailable", `could not reach Google's token endpoint to check the key (${err.message}); try again`);
    }
    throw err;
  }
  const { result } = await sendWithRetry(
    () =>
      sendFcmMessage(
        {
          apiOrigin,
          projectId: sa.project_id,
          accessToken,
          validateOnly: true,
          message: { topic: VERIFY_TOPIC, notification: { title: "certificate check", body: "validate_only" } },
        },
        fcmPool,
      ),
    { maxAttempts: 3, maxDelayMs: 5_000 },
  );
  if (result.ok) return;
  if (result.kind === "retryable") {
    throw new DomainError("unavailable", `FCM did not answer the certificate check (${result.message}); try again`);
  }
  const said = [result.httpStatus || null, result.status, result.errorCode, result.message].filter(Boolean).join(" ");
  logCertificateRejected(sa.project_id, sa.client_email, said);
  throw new DomainError("failed-precondition", `serviceAccount: FCM refused a validate_only send for project ${sa.project_id}: ${said}`, {
    field: "serviceAccount",
    fcm: { stage: "validate-only-send", httpStatus: result.httpStatus, status: result.status ?? null, errorCode: result.errorCode ?? null, message: result.message },
  });
}
