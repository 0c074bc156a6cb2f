// The diagnostics contract: requests and responses of diagnosePush, traceMessage, sendTestPush,
// pushStats (operator callables) and reportPushOpened (app callable), and the explanation table.
// The CLI and the operator console build against these shapes, so they only ever grow: a field
// is added, never renamed, removed or retyped. Responses are plain JSON: times are ISO-8601 UTC
// strings, durations are milliseconds or seconds as named, no Firestore types.
import { z } from "zod";
import { CertificateIdSchema } from "../certificates/schemas";
import { AccountSchema } from "../fanout/schemas";
import { ConversationIdSchema, PushPreferencesViewSchema } from "../preferences/schemas";
import { DeviceIdSchema } from "../sessions/schemas";

const IsoTime = z.iso.datetime();
/** A count keyed by reason or error code, e.g. { "foreground": 3, "no-token": 1 }. */
const CountsByKey = z.record(z.string(), z.number().int().nonnegative());

// --- The explanation table ------------------------------------------------------------------------

/**
 * skip-reason: a device (or recipient) that was deliberately not pushed (push-log outcome "skipped").
 * fail-reason: a push that was attempted, or meant to be, and did not succeed (outcome "failed").
 * fcm-error: an FCM HTTP v1 error code (FcmError errorCode, google.rpc status, OAuth error or transport code).
 * rejected-event: an event acknowledged without any push (invalid, too old, unprocessable).
 */
export const ExplanationCategorySchema = z.enum(["skip-reason", "fail-reason", "fcm-error", "rejected-event"]);
export type ExplanationCategory = z.output<typeof ExplanationCategorySchema>;

/** One row of the table: what a code means and what to do about it, for operators and support. */
export const ExplanationSchema = z.object({
  category: ExplanationCategorySchema,
  /** The code as it appears in the push log and in responses, e.g. "kicked", "UNREGISTERED". */
  code: z.string(),
  /** A few words, for tables: "Kicked by a login elsewhere". */
  title: z.string(),
  /** What happened, one or two sentences. */
  meaning: z.string(),
  /** What to do about it (or "nothing: working as intended"). */
  action: z.string(),
});
export type Explanation = z.output<typeof ExplanationSchema>;

/** The whole table, as exported for the CLI and README (diagnostics/explain.ts holds the rows). */
export const ExplanationTableSchema = z.array(ExplanationSchema);
export type ExplanationTable = z.output<typeof ExplanationTableSchema>;

// --- Shared pieces ----------------------------------------------------------------------------------

export const OutcomeSchema = z.enum(["sent", "skipped", "failed"]);
export type Outcome = z.output<typeof OutcomeSchema>;

/** FCM's answer to a failed request, as recorded (never a token or key). */
export const FcmErrorViewSchema = z.object({
  /** HTTP status; 0 when no response arrived (timeout, reset) or the OAuth step failed locally. */
  httpStatus: z.number().int(),
  /** google.rpc status, e.g. "NOT_FOUND". */
  status: z.string().nullable(),
  /** FcmError errorCode (e.g. "UNREGISTERED"), OAuth error (e.g. "invalid_grant") or transport code. */
  errorCode: z.string().nullable(),
  message: z.string(),
});
export type FcmErrorView = z.output<typeof FcmErrorViewSchema>;

/** A push certificate as diagnostics show it: never key material. */
export const CertificateViewSchema = z.object({
  certificateId: z.number().int(),
  /** False when the certificate was deleted (or never existed). */
  exists: z.boolean(),
  label: z.string().nullable(),
  projectId: z.string().nullable(),
  /** null when it does not exist. "unhealthy": FCM or Google's token endpoint refused it (reason says how). */
  health: z
    .object({ state: z.enum(["healthy", "unhealthy"]), reason: z.string().nullable(), since: IsoTime.nullable() })
    .nullable(),
});
export type CertificateView = z.output<typeof CertificateViewSchema>;

/** One push-log outcome of one device (deviceId null: decided for the whole recipient, no device read). */
export const DeviceOutcomeSchema = z.object({
  uid: z.string(),
  deviceId: z.string().nullable(),
  outcome: OutcomeSchema,
  /** "sent", a skip reason, or a fail reason: look it up in the explanation table. */
  reason: z.string(),
  /** The push log's own sentence about this device ("" for sent). */
  detail: z.string(),
  certificateId: z.number().int().nullable(),
  /** FCM's message name (projects/{p}/messages/{id}) when sent. */
  fcmName: z.string().nullable(),
  /** FCM's last error when failed after a request. */
  error: FcmErrorViewSchema.nullable(),
  /** FCM requests made for this device (null for skipped). */
  attempts: z.number().int().nullable(),
  /** When the outcome was decided (for sent: when FCM accepted the message). */
  at: IsoTime,
  /** When the app reported the notification opened (reportPushOpened); null if not (yet). */
  openedAt: IsoTime.nullable(),
  /** The reason explained (and, when failed, FCM's error code explained); null for sent. */
  explanation: ExplanationSchema.nullable(),
  fcmErrorExplanation: ExplanationSchema.nullable(),
});
export type DeviceOutcome = z.output<typeof DeviceOutcomeSchema>;

// --- diagnosePush {uid} -----------------------------------------------------------------------------

/** A phone number as Firebase Auth stores it (E.164): "+", then up to 15 digits. */
export const E164_PHONE = /^\+[1-9]\d{1,14}$/;
export const EmailSchema = z.email({ error: "must be an e-mail address" }).max(320, "is longer than 320 characters");

/**
 * `{uid}`: that Firebase uid (the IM account) exactly. `{account}`: how an operator knows the
 * user, a uid, an e-mail address or a phone number (E.164, "+15555550100"): looked up in Firebase
 * Auth by what it looks like, then as a uid. Exactly one of the two.
 */
export const DiagnosePushRequestSchema = z
  .strictObject({
    uid: AccountSchema.optional(),
    /** "Would a message in this conversation reach the user now": its preference (muted, mentions only) is applied. */
    conversation: ConversationIdSchema.optional(),
    /** ... and would it if it mentioned them (mentions pass "mentions" mode and, with allowMentions, quiet hours). Default false. */
    mentioned: z.boolean({ error: "must be true or false" }).optional(),
    account: z.string({ error: "must be a string: a uid, an e-mail address or a phone number" }).trim().min(1, "must not be empty").max(320, "is longer than 320 characters").optional(),
  })
  .superRefine((r, ctx) => {
    if (r.uid === undefined && r.account === undefined) ctx.addIssue({ code: "custom", path: ["uid"], message: "give uid, or account (a uid, an e-mail address or a phone number)" });
    else if (r.uid !== undefined && r.account !== undefined) ctx.addIssue({ code: "custom", path: ["account"], message: "give uid or account, not both" });
  });
export type DiagnosePushRequest = z.output<typeof DiagnosePushRequestSchema>;

export const DiagnosedDeviceSchema = z.object({
  deviceId: z.string(),
  platform: z.string(),
  session: z.enum(["logged-in", "logged-out", "kicked"]),
  loggedInAt: IsoTime,
  /** When the session ended (logged-out, kicked); null while logged in. */
  endedAt: IsoTime.nullable(),
  /** For kicked: the device whose login kicked this one. */
  kickedByDeviceId: z.string().nullable(),
  appState: z.enum(["foreground", "background"]),
  appStateAt: IsoTime,
  unreadCount: z.number().nullable(),
  lastHeartbeatAt: IsoTime,
  heartbeatAgeSeconds: z.number().int(),
  /** True when the last heartbeat is within the lease (a foreground device counts as connected). */
  heartbeatWithinLease: z.boolean(),
  /** The IM backend's last presence event applied to this device (topic im-presence); null when it never reported one. */
  presence: z
    .object({
      state: z.enum(["connected", "disconnected"]),
      action: z.string(),
      /** The backend's Reason (e.g. LinkClose, TimeOut), as it came. */
      reason: z.string().nullable(),
      /** EventTime: the backend's clock. */
      eventTime: IsoTime,
      /** When it was applied here. */
      appliedAt: IsoTime,
    })
    .nullable(),
  /** The device's connection as the fan-out judges it now, under PRESENCE_SOURCE (the newest signal decides). */
  connection: z.object({
    connected: z.boolean(),
    /** app: its heartbeat, login or app-state call; im-backend: the IM backend's presence event. */
    decidedBy: z.enum(["app", "im-backend"]),
    /** When the deciding signal was given. */
    at: IsoTime,
    /** How long that signal counts without a newer one (heartbeat lease or presence lease). */
    leaseSeconds: z.number().int(),
    /** Until when it counts as connected without a newer signal; null when it does not (a Disconnect, or the lease is over). */
    until: IsoTime.nullable(),
  }),
  /**
   * An iPhone's badge (IOS_BADGES=on): the count its next push starts from (the app's last
   * unreadCount plus the pushes since, less what Reads took off), and the unread pushes per
   * conversation since that report. null for other platforms, or with badges off.
   */
  badge: z
    .object({
      count: z.number().int(),
      /** When the app last reported the unreadCount it counts from (doBackground); null: counted from 0 in this session. */
      reportedAt: IsoTime.nullable(),
      conversations: z.record(z.string(), z.number().int()),
    })
    .nullable(),
  /** The push token bound to this session; null when none. Only a prefix of its SHA-256, never the token. */
  token: z
    .object({
      hashPrefix: z.string(),
      certificateId: z.number().int(),
      boundAt: IsoTime,
      refreshedAt: IsoTime,
      /** Seconds since the app last reported it. */
      ageSeconds: z.number().int(),
      stale: z.boolean(),
      certificate: CertificateViewSchema,
    })
    .nullable(),
  /** pushEligibility now: would this device get an offline push if a message arrived this second? */
  eligibility: z.object({
    eligible: z.boolean(),
    /** null when eligible. */
    reason: z.string().nullable(),
    /** The sentence of pushEligibility ("" when eligible). */
    detail: z.string(),
    explanation: ExplanationSchema.nullable(),
  }),
  /** One sentence about this device, e.g. "pixel-8 was kicked 3 h ago by a login on pixel-9". */
  summary: z.string(),
});
export type DiagnosedDevice = z.output<typeof DiagnosedDeviceSchema>;

/**
 * A presence event of the user that was acknowledged without being applied (presenceLog): for an
 * unknown device (or account), or invalid. Explained in the table (category rejected-event).
 */
export const PresenceRecordViewSchema = z.object({
  kind: z.enum(["unknown-account", "unknown-device", "invalid-event"]),
  deviceId: z.string().nullable(),
  action: z.string().nullable(),
  reason: z.string().nullable(),
  eventTime: IsoTime.nullable(),
  /** Deliveries that named this (account, device); 1 for an invalid message. */
  count: z.number().int(),
  detail: z.string(),
  issues: z.array(z.object({ field: z.string(), message: z.string() })),
  lastAt: IsoTime,
  explanation: ExplanationSchema.nullable(),
});
export type PresenceRecordView = z.output<typeof PresenceRecordViewSchema>;

/** One recent message that concerned the user, with the user's device outcomes. */
export const RecentMessageSchema = z.object({
  msgKey: z.string().nullable(),
  logId: z.string(),
  from: z.string().nullable(),
  at: IsoTime,
  /** Set when the whole event was rejected (invalid, too old): then `devices` is empty. */
  rejected: z.object({ reason: z.string(), detail: z.string(), explanation: ExplanationSchema.nullable() }).nullable(),
  devices: z.array(DeviceOutcomeSchema),
});
export type RecentMessage = z.output<typeof RecentMessageSchema>;

export const DiagnosePushResponseSchema = z.object({
  uid: z.string(),
  /** Firebase Auth displayName, when the account has one. */
  displayName: z.string().nullable(),
  /** The account's e-mail address and phone number in Firebase Auth, when it has them. */
  email: z.string().nullable(),
  phoneNumber: z.string().nullable(),
  /** False when Firebase Auth has no such uid: an IM account the push records know (a recipient of events), not a Firebase user. */
  authAccount: z.boolean(),
  /** How the request found the account: by "uid", "email" or "phoneNumber". */
  foundBy: z.enum(["uid", "email", "phoneNumber"]),
  checkedAt: IsoTime,
  /** One sentence a support person can paste. */
  summary: z.string(),
  /** True when at least one device would get a push now. */
  wouldPushNow: z.boolean(),
  eligibleDeviceIds: z.array(z.string()),
  devices: z.array(DiagnosedDeviceSchema),
  /** The user's last (at most 20) messages, newest first. */
  recent: z.array(RecentMessageSchema),
  /** The user's presence events acknowledged without being applied (unknown device or account, invalid), newest first; at most 10. */
  presenceRecords: z.array(PresenceRecordViewSchema),
  /** The message the eligibility was evaluated for: its conversation (null: none given, only quiet hours apply) and whether it mentions the user. */
  message: z.object({ conversation: z.string().nullable(), mentioned: z.boolean() }),
  /** The user's push preferences (setPushPreferences). */
  preferences: PushPreferencesViewSchema,
  /** The settings the eligibility was evaluated with. */
  settings: z.object({
    sessionPolicy: z.string(),
    heartbeatLeaseSeconds: z.number(),
    tokenStaleDays: z.number(),
    /** PRESENCE_SOURCE: app, im-backend or both (an invalid value is named, and app used). */
    presenceSource: z.string(),
    presenceLeaseSeconds: z.number(),
    /** ACTIVE_ELSEWHERE_SECONDS; 0: off. */
    activeElsewhereSeconds: z.number(),
    /** IOS_BADGES: whether iPhones' badges are counted. */
    iosBadges: z.enum(["on", "off"]),
  }),
});
export type DiagnosePushResponse = z.output<typeof DiagnosePushResponseSchema>;

// --- traceMessage {msgKey} --------------------------------------------------------------------------

/** MsgKey as the fan-out accepts it. */
export const MsgKeySchema = z.string({ error: "must be a string" }).min(1, "must not be empty").max(512, "is longer than 512 characters");

export const TraceMessageRequestSchema = z.strictObject({ msgKey: MsgKeySchema });
export type TraceMessageRequest = z.output<typeof TraceMessageRequestSchema>;

/**
 * published: the IM backend published the event (Pub/Sub publish time);
 * received: the fan-out took the device's batch (its push-log record was created);
 * decided: sent / skipped (reason) / failed (error) was decided for the device;
 * accepted: FCM accepted the message (sent only; same time as decided);
 * opened: the app reported the tap (reportPushOpened).
 */
export const TraceStageSchema = z.object({
  stage: z.enum(["published", "received", "decided", "accepted", "opened"]),
  at: IsoTime,
  detail: z.string(),
});
export type TraceStage = z.output<typeof TraceStageSchema>;

export const TracedDeviceSchema = DeviceOutcomeSchema.extend({
  stages: z.array(TraceStageSchema),
  /** Publish to FCM's acceptance, ms (sent only, when the publish time is known). */
  latencyMs: z.number().nullable(),
});
export type TracedDevice = z.output<typeof TracedDeviceSchema>;

export const TraceBatchSchema = z.object({
  logId: z.string(),
  /** The publication (distinct recipient list of the MsgKey) it belongs to: 0 for the first. */
  generation: z.number().int(),
  /** Recipients of its share of the list left to an earlier publication that listed them first (their outcome is there). */
  ownedElsewhere: z.number().int(),
  batchIndex: z.number().int(),
  batchCount: z.number().int(),
  state: z.enum(["running", "done"]),
  recipients: z.number().int(),
  counts: z.object({ sent: z.number().int(), skipped: z.number().int(), failed: z.number().int() }),
  /** Deliveries that worked on it: more than 1 means a retry, takeover or continuation. */
  claims: z.number().int(),
  /** Redeliveries that found it done and sent nothing. */
  duplicates: z.number().int(),
  /** Message-wide remarks (a Sound FCM cannot apply, a truncated title). */
  notes: z.array(z.string()),
  createdAt: IsoTime,
  completedAt: IsoTime.nullable(),
});
export type TraceBatch = z.output<typeof TraceBatchSchema>;

export const TraceRejectedSchema = z.object({
  logId: z.string(),
  reason: z.string(),
  detail: z.string(),
  publishedAt: IsoTime.nullable(),
  createdAt: IsoTime,
  issues: z.array(z.object({ field: z.string(), message: z.string() })),
  explanation: ExplanationSchema.nullable(),
});
export type TraceRejected = z.output<typeof TraceRejectedSchema>;

/** One distinct recipient list the MsgKey was published with, in the order they came (the message record's). */
export const TracePublicationSchema = z.object({
  generation: z.number().int(),
  /** Accounts it listed. */
  recipients: z.number().int(),
  /** Accounts no earlier publication listed: its batches decided these; the others were left to the earlier ones. */
  owned: z.number().int(),
  /** Pub/Sub message ID of the event that brought it. */
  eventId: z.string(),
  at: IsoTime,
});
export type TracePublication = z.output<typeof TracePublicationSchema>;

export const LatencySchema = z.object({
  /** Sent devices with a known publish time. */
  samples: z.number().int(),
  p50Ms: z.number(),
  p95Ms: z.number(),
  maxMs: z.number(),
});
export type Latency = z.output<typeof LatencySchema>;

/** A Read or Recall that followed the message (or the Read traced by its EventKey). */
export const TraceFollowUpSchema = z.object({
  kind: z.enum(["read", "recall"]),
  /** The Read's EventKey; a Recall's MsgKey (the message's). */
  key: z.string(),
  logId: z.string(),
  /** Who read (a Read's Account) or recalled (the sender). */
  account: z.string(),
  conversation: z.string().nullable(),
  state: z.enum(["running", "done"]),
  /** Its clears (Read) or replacements (Recall): sent, skipped, failed; per device in `devices`. */
  counts: z.object({ sent: z.number().int(), skipped: z.number().int(), failed: z.number().int() }),
  notes: z.array(z.string()),
  /** Its outcomes (with reasons; at most MAX_TRACE_DEVICES), under the same shape as the message's devices. */
  devices: z.array(z.object({ uid: z.string(), deviceId: z.string().nullable(), outcome: z.enum(["sent", "skipped", "failed"]), reason: z.string(), detail: z.string() })),
  createdAt: IsoTime,
  completedAt: IsoTime.nullable(),
});
export type TraceFollowUp = z.output<typeof TraceFollowUpSchema>;

export const TraceMessageResponseSchema = z.object({
  msgKey: z.string(),
  /** The recipients' conversation (c2c_<sender> or group_<GroupId>); null when unknown (older batches, nothing found). */
  conversation: z.string().nullable(),
  /** The Reads that cleared it and its Recall, oldest first (not counted in `counts`). */
  followUps: z.array(TraceFollowUpSchema),
  /** False when nothing is recorded for this key (never published, not yet processed, or expired from the log). */
  found: z.boolean(),
  from: z.string().nullable(),
  publishedAt: IsoTime.nullable(),
  /** One sentence a support person can paste. */
  summary: z.string(),
  /** The distinct recipient lists the MsgKey was published with (more than one: republished with a changed list). */
  publications: z.array(TracePublicationSchema),
  batches: z.array(TraceBatchSchema),
  rejected: z.array(TraceRejectedSchema),
  /** Every device outcome, with its stages (at most MAX_TRACE_DEVICES; see devicesTruncated). */
  devices: z.array(TracedDeviceSchema),
  devicesTruncated: z.boolean(),
  counts: z.object({
    batches: z.number().int(),
    recipients: z.number().int(),
    /** Outcomes recorded (devices, plus recipients decided as a whole). */
    outcomes: z.number().int(),
    sent: z.number().int(),
    skipped: z.number().int(),
    failed: z.number().int(),
    opened: z.number().int(),
    /** Over the whole message: "sent", each skip reason and each fail reason. */
    byReason: CountsByKey,
    /** Failed outcomes by FCM error code. */
    byErrorCode: CountsByKey,
    /** Batches still running beyond the ones listed, whose outcomes are in the totals but not yet in byReason / byErrorCode. */
    reasonsPending: z.number().int(),
  }),
  /** From publish to FCM acceptance over the sent devices; null when none was sent. */
  latency: LatencySchema.nullable(),
  /** Every code that appears above, explained. */
  explanations: z.array(ExplanationSchema),
});
export type TraceMessageResponse = z.output<typeof TraceMessageResponseSchema>;

// --- sendTestPush {uid, deviceId?, title?, body?, dryRun?} ----------------------------------------

export const SendTestPushRequestSchema = z.strictObject({
  uid: AccountSchema,
  deviceId: DeviceIdSchema.optional(),
  title: z.string({ error: "must be a string" }).min(1, "must not be empty").max(200, "is longer than 200 characters").optional(),
  body: z.string({ error: "must be a string" }).min(1, "must not be empty").max(1000, "is longer than 1000 characters").optional(),
  /** FCM validate_only: FCM checks the message, token and certificate but delivers nothing. */
  dryRun: z.boolean({ error: "must be true or false" }).optional(),
});
export type SendTestPushRequest = z.output<typeof SendTestPushRequestSchema>;

export const TestPushDeviceSchema = z.object({
  deviceId: z.string(),
  /** sent: FCM accepted it; validated: dryRun and FCM accepted it; failed: FCM or the certificate refused; skipped: not tried. */
  result: z.enum(["sent", "validated", "failed", "skipped"]),
  /** For skipped: logged-out, kicked, no-token, no-device, certificate-missing, platform-without-push; for failed: the fail reason. Null otherwise. */
  reason: z.string().nullable(),
  detail: z.string(),
  certificateId: z.number().int().nullable(),
  tokenHashPrefix: z.string().nullable(),
  /** The FCM HTTP v1 message built for the device, its token replaced by "sha256:<hashPrefix>". Null when skipped. */
  message: z.record(z.string(), z.unknown()).nullable(),
  /** FCM's answer: the message name, or the error. Null when no request was made. */
  fcm: z.object({ name: z.string().nullable(), error: FcmErrorViewSchema.nullable() }).nullable(),
  explanation: ExplanationSchema.nullable(),
  fcmErrorExplanation: ExplanationSchema.nullable(),
});
export type TestPushDevice = z.output<typeof TestPushDeviceSchema>;

export const SendTestPushResponseSchema = z.object({
  uid: z.string(),
  dryRun: z.boolean(),
  /** The data.msgKey the test notifications carry ("test-..."): not in the push log or the statistics. */
  msgKey: z.string(),
  at: IsoTime,
  summary: z.string(),
  devices: z.array(TestPushDeviceSchema),
});
export type SendTestPushResponse = z.output<typeof SendTestPushResponseSchema>;

// --- pushStats {from, to, certificateId?} -----------------------------------------------------------

/** Longest range one call may read. */
export const MAX_STATS_DAYS = 366;
const DaySchema = z.iso.date({ error: "must be a UTC date YYYY-MM-DD" });

export const PushStatsRequestSchema = z
  .strictObject({ from: DaySchema, to: DaySchema, certificateId: CertificateIdSchema.optional() })
  .superRefine((r, ctx) => {
    const days = (Date.parse(`${r.to}T00:00:00Z`) - Date.parse(`${r.from}T00:00:00Z`)) / 86_400_000 + 1;
    if (days < 1) ctx.addIssue({ code: "custom", path: ["to"], message: "must not be before from" });
    else if (days > MAX_STATS_DAYS) ctx.addIssue({ code: "custom", path: ["to"], message: `the range must be at most ${MAX_STATS_DAYS} days` });
  });
export type PushStatsRequest = z.output<typeof PushStatsRequestSchema>;

/**
 * One UTC day (by the event's publish time; `opened` by the time of the tap). With certificateId,
 * only what is attributed to a certificate is counted: events, recipients and skips (decided
 * before any certificate is involved) are null / empty.
 */
export const StatsFiguresSchema = z.object({
  events: z.number().int().nullable(),
  recipients: z.number().int().nullable(),
  sent: z.number().int(),
  skipped: z.number().int().nullable(),
  skippedByReason: CountsByKey,
  failed: z.number().int(),
  failedByReason: CountsByKey,
  failedByErrorCode: CountsByKey,
  opened: z.number().int(),
  /** opened / sent; null when nothing was sent. */
  openRate: z.number().nullable(),
  /** Reads and Recalls by kind ("read", "recall"): events, and their clears/replacements sent, skipped, failed (not in the figures above). Empty for a certificate. */
  byEvent: z.record(z.string(), z.object({ events: z.number().int(), sent: z.number().int(), skipped: z.number().int(), failed: z.number().int() })),
});
export type StatsFigures = z.output<typeof StatsFiguresSchema>;

export const StatsDaySchema = StatsFiguresSchema.extend({ date: z.string() });
export type StatsDay = z.output<typeof StatsDaySchema>;

export const PushStatsResponseSchema = z.object({
  from: z.string(),
  to: z.string(),
  certificateId: z.number().int().nullable(),
  /** Every day of the range in order, zeros included. */
  days: z.array(StatsDaySchema),
  totals: StatsFiguresSchema,
  /** Every reason and error code that appears above, explained. */
  explanations: z.array(ExplanationSchema),
});
export type PushStatsResponse = z.output<typeof PushStatsResponseSchema>;

// --- reportPushOpened {msgKey, deviceId} (app) ------------------------------------------------------

export const ReportPushOpenedRequestSchema = z.strictObject({ msgKey: MsgKeySchema, deviceId: DeviceIdSchema });
export type ReportPushOpenedRequest = z.output<typeof ReportPushOpenedRequestSchema>;

/**
 * Always { ok: true }: a receipt for an unknown message, another user's message, or one already
 * reported is ignored, and the answer does not say which (nothing leaks).
 */
export const ReportPushOpenedResponseSchema = z.object({ ok: z.literal(true) });
export type ReportPushOpenedResponse = z.output<typeof ReportPushOpenedResponseSchema>;
