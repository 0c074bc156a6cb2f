// The one table that explains, for operators and support, every skip reason, every fail reason,
// every FCM error code and every rejected-event reason: what it means, what to do. The callables
// attach its rows to their answers; the CLI and README print it. Keyed by the schemas' own enums,
// so a new reason that is not explained here does not compile.
import type { IneligibleReason } from "../sessions/schemas";
import type { FailReason, RejectedLog, SkipReason } from "../fanout/schemas";
import type { PresenceRecordKind } from "../presence/schemas";
import type { Explanation, ExplanationCategory, ExplanationTable } from "./schemas";

type Row = { title: string; meaning: string; action: string };

const ELIGIBILITY: Record<IneligibleReason, Row> = {
  "no-device": {
    title: "Never logged in",
    meaning: "The user has no device record: the app never called login for this account (or the device was removed).",
    action: "Make the app call login after the IM login, then setOfflinePushToken with the FCM token.",
  },
  "logged-out": {
    title: "Logged out",
    meaning: "The device's session ended with logout; logged-out devices get no offline pushes (and their token was unbound).",
    action: "Nothing if the user logged out. If not, the app calls logout where it should not (check its logout paths).",
  },
  kicked: {
    title: "Kicked by a login elsewhere",
    meaning:
      "Another device of the same platform logged in to this account and took over the session (one device per platform and user with SESSION_POLICY=single-device-per-platform: a web or desktop login does not kick the phone); the kicked device gets no pushes. kickedByDeviceId names the device.",
    action: "Log in again on this device, or set SESSION_POLICY=multi-device if users really use several phones at once.",
  },
  "no-token": {
    title: "Token never reported",
    meaning: "The device is logged in but its app has not reported an FCM token for this session (setOfflinePushToken after login).",
    action: "In the app: after every login, get FirebaseMessaging.getInstance().token and call setOfflinePushToken; also from onNewToken.",
  },
  "certificate-missing": {
    title: "Certificate deleted",
    meaning: "The device's token is bound to a push certificate ID that does not exist (deleted, or the app was built with a wrong certificateId). A certificate deleted while a retry waited stops the retry with this reason.",
    action: "Register the service-account key again (registerPushCertificate / offline-push cert add) and ship or configure the app with the new certificate ID; the app must then report its token again.",
  },
  "token-stale": {
    title: "Token stale",
    meaning: "The app has not re-reported its token for longer than TOKEN_STALE_DAYS (FCM advises treating month-old tokens as stale: the app is probably uninstalled or unused).",
    action: "The app should report its token on every start (setOfflinePushToken is cheap and idempotent); the device gets pushes again as soon as it does.",
  },
  foreground: {
    title: "App in the foreground",
    meaning:
      "The app is in the foreground and its last call (heartbeat, login, doForeground) is within the lease (HEARTBEAT_LEASE_SECONDS; with PRESENCE_SOURCE=im-backend, PRESENCE_LEASE_SECONDS): the message reaches it over the IM connection, so no offline push is sent.",
    action:
      "Nothing: working as intended. If the app was in fact killed, it did not call doBackground, and pushes resume once the lease runs out; with the IM backend's presence events (PRESENCE_SOURCE=im-backend or both) its Disconnect ends it at once.",
  },
  connected: {
    title: "Connected (IM backend)",
    meaning:
      "The IM backend reported the device's connection open (a Connect on the presence topic, newer than any Disconnect and than the app's own calls) and the app is in the foreground: the message reaches it over that connection. The detail gives the event's time and reason.",
    action:
      "Nothing: working as intended. If the app was in fact killed, the IM backend did not publish its Disconnect (check its presence feed); the Connect stops counting after PRESENCE_LEASE_SECONDS unless the backend refreshes it.",
  },
  "active-elsewhere": {
    title: "Active on another device",
    meaning:
      "Another device of the same user (the detail names it) is in the foreground and connected, or was within ACTIVE_ELSEWHERE_SECONDS: the user reads messages there, so this device is not pushed (as Signal does for a phone while the desktop app is in use).",
    action:
      "Nothing: working as intended; pushes resume ACTIVE_ELSEWHERE_SECONDS after the other device leaves the foreground or disconnects. Set ACTIVE_ELSEWHERE_SECONDS=0 to turn it off.",
  },
  "platform-without-push": {
    title: "Desktop app (no push)",
    meaning: "The device is a desktop app: it has no FCM token and is reached only over its IM connection. It counts for active-elsewhere.",
    action: "Nothing: working as intended. The user's phone or browser gets the push.",
  },
  muted: {
    title: "Conversation muted",
    meaning:
      "The user muted the message's conversation (setPushPreferences: conversations.<id>.mode \"none\", or mutedUntil in the future): no push from it, mentions included. The detail names the conversation and until when.",
    action: "Nothing if the user muted it. The app unmutes with setPushPreferences {conversations: {\"<id>\": {mode: \"all\", mutedUntil: null}}} (or null to remove the setting).",
  },
  "not-mentioned": {
    title: "Mentions only",
    meaning: "The user set the message's conversation to mentions only (mode \"mentions\") and the message's GroupAtInfo neither names them nor has GroupAtAllFlag 1.",
    action: "Nothing: working as intended. If the user was meant to be mentioned, the IM backend must put them in the event's GroupAtInfo; the app sets mode \"all\" to get every message.",
  },
  "quiet-hours": {
    title: "Quiet hours",
    meaning:
      "The message came inside the user's do-not-disturb window (prefs.doNotDisturb: start-end in the user's time zone, daylight saving included), and it is not a mention the window lets through (allowMentions). The detail gives the window and the local time.",
    action: "Nothing: working as intended; pushes resume at the window's end. The app changes or removes the window with setPushPreferences (doNotDisturb: null), or sets allowMentions: true.",
  },
};

const SKIPS: Record<Exclude<SkipReason, IneligibleReason>, Row> = {
  "left-since-push": {
    title: "Left since it was pushed (Read/Recall)",
    meaning:
      "A Read's clear or a Recall's replacement was not sent to this device: it was pushed the message, but has since logged out, been kicked, or lost its token (moved to another account, or refused by FCM). The app removes its notifications at logout; the next owner of a moved token must not receive them.",
    action: "Nothing: working as intended. If the device should still be logged in, see its session on the User page (logout and kick come from the app's calls or a login elsewhere).",
  },
  sender: {
    title: "Recipient is the sender",
    meaning: "The sender's own devices are never pushed for their own message.",
    action: "Nothing: working as intended.",
  },
  "push-disabled": {
    title: "PushFlag 1 (no push)",
    meaning: "The message carried OfflinePushInfo.PushFlag = 1: the sender asked for no offline push.",
    action: "Nothing, unless the IM backend sets PushFlag by mistake: then fix the payload it publishes.",
  },
  "custom-without-desc": {
    title: "Custom message without Desc",
    meaning: "A message made only of custom elements (TIMCustomElem) without OfflinePushInfo.Desc or MsgContent.Desc gets no offline push, as in the original service.",
    action: "Give custom messages that should notify an OfflinePushInfo.Desc (the notification text).",
  },
  "payload-too-large": {
    title: "Message too large for FCM",
    meaning: "The FCM message would exceed FCM's 4096-byte payload even with a shortened title and body (usually a large Ext).",
    action: "Shorten OfflinePushInfo.Ext; send an ID in Ext and let the app fetch the rest.",
  },
  "event-too-old": {
    title: "Event too old",
    meaning: "The event was processed longer than MAX_EVENT_AGE_SECONDS after it was published (a backlog or a long outage): dropped rather than pushed late.",
    action: "Find why the event waited (Pub/Sub backlog, functions failing, a publisher that batches); raise MAX_EVENT_AGE_SECONDS if late pushes are acceptable.",
  },
  "invalid-device-record": {
    title: "Unreadable device record",
    meaning: "The user's stored users/{uid} document does not match the expected format (edited by hand?).",
    action: "Fix or delete the users/{uid} document; the app's next login rewrites it.",
  },
  "binding-changed": {
    title: "Device changed before the send",
    meaning:
      "Between the batch's read of the device and its send (a retry after a failed attempt, or a first send that left more than FANOUT_MAX_READ_AGE_MS after the read), the device logged out, was kicked, logged in again, or its token was unbound (it moved to another account or device, or FCM refused it): nothing was sent (it could have reached the next owner of the phone). A token the same device refreshed in the same session is not a change: that retry goes to the new token.",
    action: "Nothing: working as intended. The next message goes to the device's current binding.",
  },
};

const FAILS: Record<FailReason, Row> = {
  "token-unregistered": {
    title: "Token unregistered (UNREGISTERED)",
    meaning: "FCM no longer knows the token: the app was uninstalled, its data cleared, or the token expired. The token was unbound from the device.",
    action: "Nothing on the server. The app reports a fresh token (setOfflinePushToken) on its next start; until then the device gets no pushes.",
  },
  "token-invalid": {
    title: "Not a valid FCM token",
    meaning:
      "FCM says the reported string is not a valid registration token (INVALID_ARGUMENT naming the token), or, for an iPhone, APNs refused the device token FCM maps it to (BadDeviceToken, DeviceTokenNotForTopic: the error message says \"APNs: ...\"). It was unbound.",
    action:
      "Check what the app passes to setOfflinePushToken: it must be FirebaseMessaging.getInstance().token (Android) or Messaging.messaging().token (iOS), unchanged. An iPhone's BadDeviceToken: the APNs key uploaded to Firebase is for the sandbox while the app is a production build (or the reverse), or the bundle ID of the iOS app in Firebase is not the app's.",
  },
  "sender-mismatch": {
    title: "Token from another Firebase project (SENDER_ID_MISMATCH)",
    meaning: "The token was issued for another Firebase project than the certificate's service account: the app reported the wrong certificateId for its google-services.json. The token was unbound.",
    action: "Make the app report the certificate ID registered for the project in its google-services.json (or register that project's key).",
  },
  "certificate-auth": {
    title: "Certificate refused by FCM",
    meaning: "FCM (401/403) or Google's token endpoint (invalid_grant...) refused the certificate's service account: the key was deleted or rotated in Google Cloud, the account disabled, or it lacks the Firebase Cloud Messaging permission. The certificate is flagged unhealthy.",
    action: "Generate a new private key in the Firebase console (Project settings > Service accounts) and replace it: updatePushCertificate / offline-push cert update <id> --key file.json. Check that the FCM API is enabled for the project.",
  },
  "certificate-unhealthy": {
    title: "Not sent: certificate refused earlier",
    meaning: "FCM refused the certificate earlier in the same batch, so its remaining sends stopped.",
    action: "As for certificate-auth: replace the certificate's key.",
  },
  "certificate-unreadable": {
    title: "Certificate cannot be decrypted",
    meaning: "The stored key could not be decrypted or its document is malformed: usually PUSH_KEY_ENCRYPTION_KEY was changed after the certificate was registered.",
    action: "Restore the previous PUSH_KEY_ENCRYPTION_KEY, or upload the service account again (updatePushCertificate) under the current one.",
  },
  "token-endpoint-unavailable": {
    title: "Google's token endpoint unavailable",
    meaning: "No OAuth access token could be obtained because Google's token endpoint did not answer (an outage, not a key problem).",
    action: "Usually nothing: sends are retried until the event expires. If it persists, check outbound network access from Cloud Functions.",
  },
  "retries-exhausted": {
    title: "Retries exhausted (older logs)",
    meaning: "FCM kept answering 429/5xx or timing out after a bounded number of retries (recorded by older versions).",
    action: "Check the FCM status dashboard and the project's FCM quota.",
  },
  expired: {
    title: "Expired while FCM was unavailable",
    meaning: "FCM was throttling or failing until the message passed its MsgLifeTime or MAX_EVENT_AGE_SECONDS, so it was not sent late. The detail gives FCM's last answer.",
    action: "Check FCM's status and the project's quota (QUOTA_EXCEEDED means too many messages per minute, or to one device). Raise MAX_EVENT_AGE_SECONDS or MsgLifeTime if late pushes are acceptable.",
  },
  "third-party-auth": {
    title: "APNs / web push credentials (THIRD_PARTY_AUTH_ERROR)",
    meaning:
      "FCM could not pass the message to APNs (an iPhone) or web push (a browser) for this token: the Firebase project has no APNs authentication key, or the key was revoked, belongs to another Apple team, or the web push credentials are missing. Only that platform's devices of the project fail: the certificate itself is fine (Android devices are sent), so it is not flagged, and the token stays bound.",
    action:
      "Upload the APNs authentication key (.p8, with its Key ID and your Team ID) in the Firebase console → Project settings → Cloud Messaging → Apple app configuration (or the web push certificates for web), then check with sendTestPush to the iPhone.",
  },
  "invalid-message": {
    title: "FCM rejected the message",
    meaning: "FCM refused the message itself (INVALID_ARGUMENT not about the token): e.g. a channel or TTL value it does not accept. This is a bug or a payload problem, not the device's.",
    action: "Read the error message; check OfflinePushInfo fields (GoogleChannelID, Ext) in the event; report it if the payload looks right.",
  },
  "fcm-error": {
    title: "Other FCM error",
    meaning: "FCM answered with an error this backend does not classify.",
    action: "Read the error message and code (see the FCM error codes in this table); retry with sendTestPush.",
  },
};

const UNSPECIFIED: Row = {
  title: "Unspecified FCM error",
  meaning: "FCM gave no further information, or a code this table does not know.",
  action: "Read the error message; retry with sendTestPush.",
};

const FCM_ERRORS: Record<string, Row> = {
  UNREGISTERED: {
    title: "Token no longer valid",
    meaning: "HTTP 404: the app instance was unregistered from FCM (uninstalled, data cleared, token expired or rotated).",
    action: "The token is unbound; the app must report its new token (onNewToken / on start).",
  },
  INVALID_ARGUMENT: {
    title: "Invalid request",
    meaning: "HTTP 400: the token is malformed, or a message field is invalid (the message text says which).",
    action: "If it names the token: the app reports something else than its FCM token. Otherwise: a payload problem (see invalid-message).",
  },
  SENDER_ID_MISMATCH: {
    title: "Wrong Firebase project for this token",
    meaning: "HTTP 403: the token belongs to another Firebase project than the certificate's service account.",
    action: "The app must report the certificate ID of the project in its google-services.json.",
  },
  QUOTA_EXCEEDED: {
    title: "FCM quota exceeded",
    meaning: "HTTP 429: too many messages for the project, or to one device; FCM asks to wait (Retry-After). Sends pause and resume.",
    action: "Usually nothing: sends resume after the pause. If frequent, ask for a quota increase or send fewer messages to one device.",
  },
  UNAVAILABLE: {
    title: "FCM overloaded",
    meaning: "HTTP 503: FCM could not handle the request in time. Retried with backoff.",
    action: "Nothing unless it lasts: check the Firebase status dashboard.",
  },
  INTERNAL: {
    title: "FCM internal error",
    meaning: "HTTP 500: an unknown error inside FCM. Retried with backoff.",
    action: "Nothing unless it lasts: check the Firebase status dashboard.",
  },
  THIRD_PARTY_AUTH_ERROR: {
    title: "APNs / web push credentials invalid",
    meaning: "HTTP 401: FCM could not deliver through APNs or web push for an iOS or web token: the Firebase project has no valid APNs authentication key (or web push credentials). Not the service account's fault: Android sends go on.",
    action: "Upload the APNs authentication key in the Firebase console → Project settings → Cloud Messaging (Apple app configuration), or the web push credentials.",
  },
  UNSPECIFIED_ERROR: UNSPECIFIED,
  UNAUTHENTICATED: {
    title: "Access token refused",
    meaning: "HTTP 401: FCM did not accept the OAuth access token of the certificate's service account (a key revoked or rotated).",
    action: "Replace the certificate's key (updatePushCertificate).",
  },
  PERMISSION_DENIED: {
    title: "Service account may not send",
    meaning: "HTTP 403: the service account lacks permission to send with FCM in this project, or the FCM API is disabled.",
    action: "Use the key the Firebase console generates (Firebase Admin SDK service account) and enable the Firebase Cloud Messaging API.",
  },
  NOT_FOUND: {
    title: "Not found",
    meaning: "HTTP 404 with a Google error body: the token is not known to FCM (treated as UNREGISTERED).",
    action: "As UNREGISTERED: the app reports its new token.",
  },
  invalid_grant: {
    title: "Key refused by Google (invalid_grant)",
    meaning: "Google's token endpoint refused the service account's signed request: the key was deleted or disabled in Google Cloud, or the machine clock is wrong.",
    action: "Generate a new private key and replace it (updatePushCertificate / offline-push cert update).",
  },
  invalid_client: {
    title: "Service account unknown (invalid_client)",
    meaning: "Google's token endpoint does not know the service account (deleted or disabled).",
    action: "Generate a key for an existing service account and register it.",
  },
  invalid_private_key: {
    title: "Private key unusable",
    meaning: "The stored private key could not be parsed to sign a request.",
    action: "Upload the service-account JSON file again, unchanged.",
  },
  ETIMEDOUT: {
    title: "FCM did not answer in time",
    meaning: "The request timed out without an answer (network or FCM slowness). Retried.",
    action: "Nothing unless it lasts: check outbound networking from Cloud Functions.",
  },
  ECONNRESET: {
    title: "Connection reset",
    meaning: "The connection to FCM was reset mid-request. Retried.",
    action: "Nothing unless it lasts.",
  },
  ECONNREFUSED: {
    title: "Connection refused",
    meaning: "FCM's address refused the connection. Retried.",
    action: "Check outbound networking (VPC egress, firewall).",
  },
};

const REJECTED: Record<RejectedLog["reason"], Row> = {
  "invalid-event": {
    title: "Invalid event",
    meaning:
      "The published event (a message, or a presence event on the presence topic) did not match the expected format (the issues name the fields); it was acknowledged without any push, or without changing any device.",
    action: "Fix the IM backend's payload (offline-push publish <event.json>, or publish --presence for a presence event, checks one); the issues list each wrong field.",
  },
  "event-too-old": {
    title: "Event too old",
    meaning: "The event was older than MAX_EVENT_AGE_SECONDS when processed; nothing was pushed.",
    action: "Find why it waited (Pub/Sub backlog, failing functions); raise MAX_EVENT_AGE_SECONDS if late pushes are acceptable.",
  },
  unprocessable: {
    title: "Unprocessable",
    meaning: "Firestore refused a write for good (e.g. a document over 1 MiB): the event was acknowledged instead of retried.",
    action: "Report it with the event ID: this needs a fix in the backend.",
  },
  "recall-not-sender": {
    title: "Recall by someone else",
    meaning:
      "A Recall event's From_Account is not the sender of the message it names (the push log's batches of that MsgKey say who sent it): it was refused, nothing was sent, and the detail names both accounts.",
    action: "Have the IM backend publish the Recall with the original sender's account (an admin's recall in the original service is still published as the sender), and check that the MsgKey is the recalled message's.",
  },
  "recall-unknown-message": {
    title: "Recall of a message not in the push log",
    meaning:
      "A Recall named a MsgKey that has no batch in the push log: it was never published to the offline-push topic, was pushed to nobody's device, or is older than the push log's retention (PUSH_LOG_TTL_DAYS). No device can hold its notification from us, so nothing was sent.",
    action: "Nothing if the message was never pushed. Otherwise check the MsgKey the IM backend puts in the Recall (it must be the original message's MsgKey).",
  },
  "too-many-publications": {
    title: "Too many publications of one MsgKey",
    meaning:
      "The MsgKey was already published with 1,000 different recipient lists, or this list would take it past 200,000 accounts over all of them: a message keeps that many, so that each device gets it once whatever list it is in. Nothing of this event was pushed; the earlier publications were.",
    action: "Publish a group message as one event naming all its recipients, not one event per member; give each new message its own MsgKey.",
  },
};

/** Presence events acknowledged without being applied (presenceLog); invalid ones share the row above. */
const PRESENCE_REJECTED: Record<Exclude<PresenceRecordKind, "invalid-event">, Row> = {
  "unknown-account": {
    title: "Presence for an unknown account",
    meaning: "The IM backend published a presence event (Connect, Disconnect, Logout) for an account that never logged in here (no users document). Recorded and acknowledged, never retried.",
    action: "Nothing if the account does not use offline push. Otherwise check that the IM backend's Account is the Firebase uid the app logs in with.",
  },
  "unknown-device": {
    title: "Presence for an unknown device",
    meaning:
      "The IM backend published a presence event for a DeviceId this account has no session on (the app never called login on it, or the device was forgotten among old ended ones). A Connect just before a device's very first login is the usual case: the login itself then counts as connected. Recorded and acknowledged.",
    action: "Check that the IM backend's DeviceId is the deviceId the app passes to login. Nothing to do for an occasional first-login Connect.",
  },
};

const rows = (category: ExplanationCategory, table: Record<string, Row>): Explanation[] =>
  Object.entries(table).map(([code, row]) => ({ category, code, ...row }));

/** Every row, in a stable order: skip reasons, fail reasons, FCM error codes, rejected events. */
export const EXPLANATIONS: ExplanationTable = [
  ...rows("skip-reason", { ...ELIGIBILITY, ...SKIPS }),
  ...rows("fail-reason", FAILS),
  ...rows("fcm-error", FCM_ERRORS),
  ...rows("rejected-event", { ...REJECTED, ...PRESENCE_REJECTED }),
];

const byKey = new Map(EXPLANATIONS.map((e) => [`${e.category}:${e.code}`, e]));

export function explain(category: ExplanationCategory, code: string | null | undefined): Explanation | null {
  if (code === null || code === undefined) return null;
  return byKey.get(`${category}:${code}`) ?? null;
}

/** A push-log outcome's reason: skip or fail reason (null for "sent"). */
export function explainOutcome(outcome: "sent" | "skipped" | "failed", reason: string): Explanation | null {
  if (outcome === "sent") return null;
  return explain(outcome === "skipped" ? "skip-reason" : "fail-reason", reason);
}

/** An FCM error: by its FcmError code first, then its google.rpc status; an unknown code gets the generic row. */
export function explainFcmError(error: { errorCode: string | null; status: string | null } | null): Explanation | null {
  if (!error) return null;
  const found = explain("fcm-error", error.errorCode) ?? explain("fcm-error", error.status);
  if (found) return found;
  if (error.errorCode === null && error.status === null) return null;
  return { category: "fcm-error", code: error.errorCode ?? error.status ?? "UNSPECIFIED_ERROR", ...UNSPECIFIED };
}

/** The rows for a set of codes, in table order, without repeats (for responses' `explanations`). */
export function explanationsFor(keys: Iterable<{ category: ExplanationCategory; code: string }>): Explanation[] {
  const wanted = new Set<string>();
  for (const k of keys) wanted.add(`${k.category}:${k.code}`);
  return EXPLANATIONS.filter((e) => wanted.has(`${e.category}:${e.code}`));
}
