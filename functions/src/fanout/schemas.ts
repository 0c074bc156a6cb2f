// Schemas are the single source of the fan-out types: the Pub/Sub event (in the original IM
// service's REST field names, so existing payloads carry over), the batch messages, the
// sendMessage request and the push-log documents.
import { z } from "zod";
import { MAX_FANOUT_BATCH_SIZE } from "../config";
import { DeviceIdSchema, IneligibleReasonSchema, TimestampSchema } from "../sessions/schemas";
import { notificationElements } from "./elements";
import { guarded, jsonBytesUpTo, longerThan } from "./sizeGuard";

/**
 * An IM account is a Firebase uid (at most 128 characters) and the ID of its users/{uid}
 * document, so it must be a valid Firestore document ID.
 */
export const AccountSchema = z
  .string({ error: "must be a string (an IM account)" })
  .min(1, "must not be empty")
  .max(128, "is longer than 128 characters")
  .refine((s) => !s.includes("/"), "must not contain '/'")
  .refine((s) => s !== "." && s !== ".." && !/^__.*__$/.test(s), "is not a valid account ID");

/** Bounds one event: Pub/Sub messages are at most 10 MB, and this many accounts fit. */
export const MAX_RECIPIENTS_PER_EVENT = 100_000;
/** sendMessage comes from an app: a conversation, not a broadcast. */
export const MAX_SEND_MESSAGE_RECIPIENTS = 500;
/** The original service's MsgLifeTime bound (7 days), also its default. */
export const MAX_MSG_LIFETIME_SECONDS = 604_800;

// --- String bounds. Without them one oversized field (a 1.5 MB Sound) travels into the push log
// and makes its write fail, and the event is retried for an hour. An event over a bound is
// rejected as invalid-event naming the field. FCM's whole payload is 4 KB, so everything that is
// copied into the notification is truncated to fit anyway (message.ts); these bounds only keep an
// event within what any legitimate sender produces.
/** Element texts: a chat message can be long; the original service allows a 12 KB message body. */
export const MAX_TEXT_CHARS = 12_000;
/** Title: a notification shows one line; longer is truncated to fit FCM anyway. */
export const MAX_TITLE_CHARS = 1_000;
/** Desc: often the message text copied by the IM backend, so the same bound as a text element. */
export const MAX_DESC_CHARS = MAX_TEXT_CHARS;
/**
 * Ext is copied into data.ext exactly (the app parses it) and never truncated: more than FCM's
 * whole 4096-byte payload can never be sent.
 */
export const MAX_EXT_CHARS = 4_096;
/** Sound and GoogleChannelID are resource names / Android channel IDs: short identifiers. */
export const MAX_IDENTIFIER_CHARS = 256;

// --- Size bounds, checked before the schema walks the value (sizeGuard.ts). The original service
// allows a message body of 12 KB in any number of elements. MsgBody is measured as the JSON it
// arrives in (UTF-8, escapes not counted), which adds each element's framing to its content
// ({"MsgType":"TIMTextElem","MsgContent":{"Text":""}} is 51 bytes): 64 KiB holds any 12 KB body
// in up to a thousand elements, and a single text element at its 12,000-character bound in any
// script. Only what cannot be a message of the original service is refused.
/** MsgBody as JSON, in bytes. */
export const MAX_MSG_BODY_BYTES = 64 * 1024;
/** The smallest element, {"MsgType":"TIMFaceElem","MsgContent":{}}, and its comma. */
const MIN_ELEM_JSON_BYTES = 42;
/** More elements than this cannot fit in MAX_MSG_BODY_BYTES (1,560): refused without measuring. */
export const MAX_MSG_BODY_ELEMENTS = Math.floor(MAX_MSG_BODY_BYTES / MIN_ELEM_JSON_BYTES);
/**
 * sendMessage's offlinePushInfo as JSON, in bytes: every field at its bound fits (Title, Desc, Ext,
 * AndroidInfo: about 17,600 characters), with room for vendor fields and ApnsInfo. An event's
 * unknown fields are dropped by contentOf and bounded by Pub/Sub's 10 MB; an app's request is
 * published as it is, and must stay far below that.
 */
export const MAX_OFFLINE_PUSH_INFO_BYTES = 64 * 1024;

const KIB = 1024;
/** A value over `maxBytes` of JSON, measured only up to the bound. */
const largerThan =
  (maxBytes: number) =>
  (value: unknown): string | null =>
    value !== undefined && jsonBytesUpTo(value, maxBytes) > maxBytes ? `is larger than ${maxBytes / KIB} KiB of JSON` : null;

/** A MsgBody array too long or too large to be a message: the count is compared first, the size measured up to its bound. */
function oversizedBody(value: unknown): string | null {
  if (!Array.isArray(value)) return null;
  return longerThan(MAX_MSG_BODY_ELEMENTS, "elements")(value) ?? (jsonBytesUpTo(value, MAX_MSG_BODY_BYTES) > MAX_MSG_BODY_BYTES ? `is larger than ${MAX_MSG_BODY_BYTES / KIB} KiB of JSON (the original service allows a 12 KB message)` : null);
}

const boundedString = (max: number, error = "must be a string") => z.string({ error }).max(max, `is longer than ${max} characters`);

// --- MsgBody elements (original names). Content objects are loose: fields we do not use pass through.
const TextElemSchema = z.object({
  MsgType: z.literal("TIMTextElem"),
  MsgContent: z.looseObject({ Text: boundedString(MAX_TEXT_CHARS) }),
});
const CustomElemSchema = z.object({
  MsgType: z.literal("TIMCustomElem"),
  MsgContent: z.looseObject({
    Data: boundedString(MAX_TEXT_CHARS).optional(),
    Desc: boundedString(MAX_DESC_CHARS).optional(),
    Ext: boundedString(MAX_EXT_CHARS).optional(),
    Sound: boundedString(MAX_IDENTIFIER_CHARS).optional(),
  }),
});
const LocationElemSchema = z.object({
  MsgType: z.literal("TIMLocationElem"),
  MsgContent: z.looseObject({ Desc: boundedString(MAX_DESC_CHARS).optional(), Latitude: z.number().optional(), Longitude: z.number().optional() }),
});
const FaceElemSchema = z.object({
  MsgType: z.literal("TIMFaceElem"),
  MsgContent: z.looseObject({ Index: z.number().optional(), Data: boundedString(MAX_TEXT_CHARS).optional() }),
});
const otherElem = <T extends string>(type: T) => z.object({ MsgType: z.literal(type), MsgContent: z.looseObject({}) });

export const MSG_TYPES = [
  "TIMTextElem",
  "TIMCustomElem",
  "TIMLocationElem",
  "TIMFaceElem",
  "TIMSoundElem",
  "TIMImageElem",
  "TIMFileElem",
  "TIMVideoFileElem",
  "TIMRelayElem",
] as const;
export type MsgType = (typeof MSG_TYPES)[number];

export const MsgElemSchema = z.discriminatedUnion(
  "MsgType",
  [
    TextElemSchema,
    CustomElemSchema,
    LocationElemSchema,
    FaceElemSchema,
    otherElem("TIMSoundElem"),
    otherElem("TIMImageElem"),
    otherElem("TIMFileElem"),
    otherElem("TIMVideoFileElem"),
    otherElem("TIMRelayElem"),
  ],
  { error: `must have MsgType one of ${MSG_TYPES.join(", ")}` },
);
export type MsgElem = z.output<typeof MsgElemSchema>;

export const MsgBodySchema = guarded(oversizedBody, z.array(MsgElemSchema));

/** A localization key of the app's string resources (Localizable.strings / strings.xml): an identifier. */
const LocKeySchema = boundedString(MAX_IDENTIFIER_CHARS).min(1, "must not be empty");
/** Format arguments of a loc key: few and short (they count in the 4 KB message, on two platforms). */
export const MAX_LOC_ARGS = 10;
export const MAX_LOC_ARG_CHARS = 256;
const LocArgsSchema = z
  .array(boundedString(MAX_LOC_ARG_CHARS), { error: "must be an array of strings" })
  .max(MAX_LOC_ARGS, `has more than ${MAX_LOC_ARGS} arguments`);
/** An image URL for the iPhone's Notification Service Extension (which downloads it: https, unless the app allows http). */
export const MAX_IMAGE_URL_CHARS = 1_024;

/**
 * OfflinePushInfo.ApnsInfo, in the original service's names: the iOS notification (apnsMessage.ts).
 * BadgeMode 0 (default): the badge shows the unread count; 1: leave the badge unchanged.
 */
export const ApnsInfoSchema = z.looseObject({
  Title: boundedString(MAX_TITLE_CHARS).optional(),
  SubTitle: boundedString(MAX_TITLE_CHARS).optional(),
  Sound: boundedString(MAX_IDENTIFIER_CHARS).optional(),
  BadgeMode: z.union([z.literal(0), z.literal(1)], { error: "must be 0 (the badge shows the unread count) or 1 (leave the badge unchanged)" }).optional(),
  Image: boundedString(MAX_IMAGE_URL_CHARS)
    .regex(/^https?:\/\/\S+$/, "must be an http(s) URL")
    .optional(),
  MutableContent: z.union([z.literal(0), z.literal(1)], { error: "must be 0 or 1 (1: the app's Notification Service Extension may change it)" }).optional(),
});
export type ApnsInfo = z.output<typeof ApnsInfoSchema>;

// --- OfflinePushInfo (original names). AndroidInfo's vendor fields (OPPOChannelID, XiaoMiChannelID...)
// are accepted and ignored: this backend pushes through FCM only. ApnsInfo shapes the iOS message;
// TitleLocKey/TitleLocArgs/DescLocKey/DescLocArgs (our extension, in the original style) let the
// phone render the texts in its own language, the literal Title/Desc staying the fallback.
export const OfflinePushInfoSchema = z.looseObject({
  PushFlag: z.union([z.literal(0), z.literal(1)], { error: "must be 0 (push) or 1 (no push)" }).optional(),
  Title: boundedString(MAX_TITLE_CHARS).optional(),
  Desc: boundedString(MAX_DESC_CHARS).optional(),
  Ext: boundedString(MAX_EXT_CHARS, "must be a string (the app reads it as the intent extra \"ext\")").optional(),
  AndroidInfo: z
    .looseObject({
      GoogleChannelID: boundedString(MAX_IDENTIFIER_CHARS).optional(),
      Sound: boundedString(MAX_IDENTIFIER_CHARS).optional(),
    })
    .optional(),
  ApnsInfo: ApnsInfoSchema.optional(),
  TitleLocKey: LocKeySchema.optional(),
  TitleLocArgs: LocArgsSchema.optional(),
  DescLocKey: LocKeySchema.optional(),
  DescLocArgs: LocArgsSchema.optional(),
});
export type OfflinePushInfo = z.output<typeof OfflinePushInfoSchema>;

/** MsgKey: the original service's keys are short; 512 bounds the push-log document IDs and queries. */
const MsgKeySchema = z.string({ error: "must be a string" }).min(1, "must not be empty").max(512, "is longer than 512 characters");
const MsgLifeTimeSchema = z
  .number({ error: "must be a number of seconds" })
  .int("must be a whole number of seconds")
  .min(0, "must not be negative")
  .max(MAX_MSG_LIFETIME_SECONDS, `must be at most ${MAX_MSG_LIFETIME_SECONDS} (7 days)`);

/** The original service's group IDs are at most 48 bytes; 128 like an account leaves room for other IM backends. */
const GroupIdSchema = z.string({ error: "must be a string (a group ID)" }).min(1, "must not be empty").max(128, "is longer than 128 characters");

/**
 * GroupAtInfo entries at most: a message that names more members than this is a broadcast, which
 * `GroupAtAllFlag: 1` says in one entry. Bounds what every batch of the message carries.
 */
export const MAX_GROUP_AT_ENTRIES = 1_000;

/** One mention (the original group message's GroupAtInfo entry): @all, or one member. */
const GroupAtEntrySchema = z.looseObject({
  GroupAtAllFlag: z.union([z.literal(0), z.literal(1)], { error: "must be 0 (one member) or 1 (@all)" }),
  GroupAt_Account: AccountSchema.optional(),
});

/** Everything about the message that the push depends on; the recipients travel beside it. */
export const PushContentSchema = z.looseObject({
  MsgKey: MsgKeySchema,
  From_Account: AccountSchema,
  /** The message was sent in this group: the recipients' conversation is `group_<GroupId>`. */
  GroupId: GroupIdSchema.optional(),
  /** Who the message mentions: a recipient named in an entry, or every recipient with `GroupAtAllFlag: 1`. */
  GroupAtInfo: guarded(longerThan(MAX_GROUP_AT_ENTRIES, "entries"), z.array(GroupAtEntrySchema, { error: "must be an array of {GroupAtAllFlag, GroupAt_Account}" })).optional(),
  MsgBody: MsgBodySchema.default([]),
  MsgLifeTime: MsgLifeTimeSchema.optional(),
  OfflinePushInfo: OfflinePushInfoSchema.optional(),
});
export type PushContent = z.output<typeof PushContentSchema>;

/**
 * One IM message on the `im-offline-push` topic. Top-level fields of the original REST payload
 * that the push does not use (SyncOtherMachine, MsgRandom, CloudCustomData...) are accepted.
 */
export const PushEventSchema = PushContentSchema.extend({
  To_Account: guarded(
    longerThan(MAX_RECIPIENTS_PER_EVENT, "accounts"),
    z.union([AccountSchema, z.array(AccountSchema).min(1, "must not be empty")], { error: "must be an account or a non-empty array of accounts" }),
  ),
});
export type PushEvent = z.output<typeof PushEventSchema>;

// --- Events that follow the conversation (Event: "Read" | "Recall"; absent: a message) --------------

/** The kinds of event on the offline-push topic besides a message, told apart by `Event`. */
export const FOLLOW_UP_EVENTS = ["Read", "Recall"] as const;
export type FollowUpEventName = (typeof FOLLOW_UP_EVENTS)[number];

/**
 * A conversation ID in the original SDK's format: `c2c_<account>` or `group_<GroupId>` (message.ts,
 * conversationOf). 140 characters: `group_` and the longest GroupId.
 */
export const ConversationSchema = z
  .string({ error: "must be a string (a conversation ID: c2c_<account> or group_<GroupId>)" })
  .max(140, "is longer than 140 characters")
  .regex(/^(c2c_|group_)./s, "must be c2c_<account> or group_<GroupId>");

/** EventKey: the Read's own key, unique per Read like a MsgKey (it makes the Read exactly-once). */
const EventKeySchema = z.string({ error: "must be a string" }).min(1, "must not be empty").max(512, "is longer than 512 characters");

/**
 * `Account` read `Conversation` (on `DeviceId`, when given): each of the account's other devices that
 * got a push in that conversation since its last clear gets a data-only `{type: "clear", conversation}`.
 */
export const ReadEventSchema = z.looseObject({
  Event: z.literal("Read"),
  EventKey: EventKeySchema,
  Account: AccountSchema,
  Conversation: ConversationSchema,
  /** The device it was read on (the app's deviceId, as in login): not cleared. */
  DeviceId: DeviceIdSchema.optional(),
});
export type ReadEvent = z.output<typeof ReadEventSchema>;

/** `From_Account` recalled message `MsgKey`: the devices that were pushed it get a replacement notification. */
export const RecallEventSchema = z.looseObject({
  Event: z.literal("Recall"),
  MsgKey: MsgKeySchema,
  From_Account: AccountSchema,
});
export type RecallEvent = z.output<typeof RecallEventSchema>;

/** The follow-up kinds as the push log names them (BatchLog.event). */
export const FollowUpKindSchema = z.enum(["read", "recall"]);
export type FollowUpKind = z.output<typeof FollowUpKindSchema>;

/** Copies only the fields named, and only those present. */
function pick<T extends object, K extends keyof T>(obj: T, keys: readonly K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}

/**
 * What each batch carries: the event without its recipients (which can be 100,000 accounts) and
 * with only the fields the push reads: of the body, the few elements the notification is made of
 * (elements.ts), whatever their number in the event. Unknown fields are dropped, not copied into
 * every batch: no amplification, and nothing that parsed but cannot be serialized again travels further.
 */
export function contentOf(event: PushEvent): PushContent {
  const info = event.OfflinePushInfo;
  return {
    MsgKey: event.MsgKey,
    From_Account: event.From_Account,
    ...(event.GroupId !== undefined ? { GroupId: event.GroupId } : {}),
    ...(event.GroupAtInfo !== undefined ? { GroupAtInfo: event.GroupAtInfo.map((e) => pick(e, ["GroupAtAllFlag", "GroupAt_Account"] as const)) } : {}),
    MsgBody: notificationElements(event.MsgBody),
    ...(event.MsgLifeTime !== undefined ? { MsgLifeTime: event.MsgLifeTime } : {}),
    ...(info
      ? {
          OfflinePushInfo: {
            ...pick(info, ["PushFlag", "Title", "Desc", "Ext"] as const),
            ...(info.AndroidInfo ? { AndroidInfo: pick(info.AndroidInfo, ["GoogleChannelID", "Sound"] as const) } : {}),
            ...(info.ApnsInfo ? { ApnsInfo: pick(info.ApnsInfo, ["Title", "SubTitle", "Sound", "BadgeMode", "Image", "MutableContent"] as const) } : {}),
            ...pick(info, ["TitleLocKey", "TitleLocArgs", "DescLocKey", "DescLocArgs"] as const),
          },
        }
      : {}),
  };
}

/**
 * Which publication of a MsgKey a batch belongs to (messageRecord.ts): the epoch of the message
 * record (a MsgKey reused after its log expired gets a new one) and the generation, the index of
 * the batch's recipient list among the lists published under that MsgKey.
 */
export const MessageIdentitySchema = z.strictObject({
  epoch: z.string().regex(/^[a-z0-9]{1,16}$/),
  generation: z.number().int().min(0),
});
export type MessageIdentity = z.output<typeof MessageIdentitySchema>;

/** A recipient listed by this batch that an earlier publication of the MsgKey listed first: decided there. */
export const OwnedElsewhereSchema = z.strictObject({ uid: AccountSchema, generation: z.number().int().min(0) });
export type OwnedElsewhere = z.output<typeof OwnedElsewhereSchema>;

/** One batch of a large fan-out, on the batch topic. Only our own code publishes these. */
export const BatchMessageSchema = z.strictObject({
  v: z.literal(1),
  content: PushContentSchema,
  batchIndex: z.number().int().min(0),
  batchCount: z.number().int().min(1),
  uids: z.array(AccountSchema).min(1).max(MAX_FANOUT_BATCH_SIZE),
  /** Publication time of the original event: the age limit counts from it, across hops and retries. */
  publishTime: z.iso.datetime(),
  /** Pub/Sub message ID of the original event, for the log. */
  eventId: z.string(),
  /** A continuation: how many times the batch was handed on because its delivery ran out of time. */
  continuation: z.number().int().min(1).max(10_000).optional(),
  /** A continuation sends nothing before this time (FCM asked to wait that long). */
  notBefore: z.iso.datetime().optional(),
  /** The publication the batch belongs to; absent in a message published before message records existed (its batch keeps the old ID). */
  message: MessageIdentitySchema.optional(),
  /** Its recipients that an earlier publication of the MsgKey owns. */
  ownedElsewhere: z.array(OwnedElsewhereSchema).max(MAX_FANOUT_BATCH_SIZE).optional(),
});
export type BatchMessage = z.output<typeof BatchMessageSchema>;

// --- sendMessage (app side)
const SEND_MESSAGE_FIELDS = new Set(["to", "body", "offlinePushInfo"]);
/** Unknown fields reported at most: a request of a million keys is answered with the first few. */
const MAX_REPORTED_KEYS = 5;

/** The request's first unknown fields (at most MAX_REPORTED_KEYS, each clipped), without listing them all. */
function unknownFields(value: unknown): string[] {
  const keys: string[] = [];
  if (typeof value !== "object" || value === null || Array.isArray(value)) return keys;
  for (const key in value) {
    if (!Object.hasOwn(value, key) || SEND_MESSAGE_FIELDS.has(key)) continue;
    keys.push(key.length > 100 ? `${key.slice(0, 100)}…` : key);
    if (keys.length >= MAX_REPORTED_KEYS) break;
  }
  return keys;
}

/**
 * sendMessage's request. Every size bound is checked on the raw value before the schema walks it
 * (sizeGuard.ts): a 500,000-entry `to` costs a length comparison. The function checks
 * SEND_MESSAGE_POLICY before it parses the request at all.
 */
export const SendMessageRequestSchema = z
  .unknown()
  .superRefine((value, ctx) => {
    const keys = unknownFields(value);
    if (keys.length > 0) ctx.addIssue({ code: "unrecognized_keys", keys });
  })
  .pipe(
    z.strictObject({
      to: guarded(
        longerThan(MAX_SEND_MESSAGE_RECIPIENTS, "accounts"),
        z.union([AccountSchema, z.array(AccountSchema).min(1, "must not be empty")], { error: "must be an account or a non-empty array of accounts" }),
      ),
      /** MsgBody in the original element format, or a plain text (a single TIMTextElem). */
      body: guarded(
        oversizedBody,
        z.union([z.string().min(1, "must not be empty").max(MAX_TEXT_CHARS, `is longer than ${MAX_TEXT_CHARS} characters`), z.array(MsgElemSchema).min(1, "must not be empty")], {
          error: "must be a text or a MsgBody array",
        }),
      ).optional(),
      offlinePushInfo: guarded(largerThan(MAX_OFFLINE_PUSH_INFO_BYTES), OfflinePushInfoSchema).optional(),
    }),
  );
export type SendMessageRequest = z.output<typeof SendMessageRequestSchema>;

// --- Push log ------------------------------------------------------------------------------------

/** Message-wide and per-device reasons for not sending, besides the sessions' eligibility reasons. */
export const SkipReasonSchema = z.union([
  IneligibleReasonSchema,
  z.enum([
    "sender", // the recipient is the sender: their own devices are never pushed
    "push-disabled", // OfflinePushInfo.PushFlag = 1
    "custom-without-desc", // a custom message without Desc, as in the original service
    "payload-too-large", // the FCM message would exceed FCM's 4096-byte limit
    "event-too-old", // the event was published longer ago than MAX_EVENT_AGE_SECONDS
    "invalid-device-record", // the user's stored document does not parse
    "binding-changed", // between the read of the device and a retry or late send, it logged out, was kicked, or its token was unbound: not sent
    "left-since-push", // a Read's clear or a Recall's replacement: the device logged out, was kicked or lost its token since it was pushed the message
  ]),
]);
export type SkipReason = z.output<typeof SkipReasonSchema>;

export const FailReasonSchema = z.enum([
  "token-unregistered", // FCM: UNREGISTERED / 404: token unbound
  "token-invalid", // FCM: INVALID_ARGUMENT naming the token: token unbound
  "sender-mismatch", // FCM: SENDER_ID_MISMATCH: token unbound, certificate named
  "certificate-auth", // FCM or Google's token endpoint refused the certificate: flagged unhealthy
  "certificate-unhealthy", // not sent: the certificate was refused earlier in this batch
  "certificate-unreadable", // the stored key could not be decrypted (key-encryption key?)
  "token-endpoint-unavailable", // Google's token endpoint did not answer
  "retries-exhausted", // (older logs) 429/5xx/timeouts/resets after a bounded number of retries
  "expired", // still throttled or failing when the event passed MsgLifeTime or MAX_EVENT_AGE_SECONDS
  "third-party-auth", // FCM: THIRD_PARTY_AUTH_ERROR for this token (APNs/web push credentials): this token's failure
  "invalid-message", // FCM rejected the message itself
  "fcm-error", // any other FCM answer
]);
export type FailReason = z.output<typeof FailReasonSchema>;

export const FcmErrorRecordSchema = z.object({
  kind: z.string(),
  httpStatus: z.number(),
  status: z.string().nullable(),
  errorCode: z.string().nullable(),
  message: z.string(),
});
export type FcmErrorRecord = z.output<typeof FcmErrorRecordSchema>;

/** One device's outcome. `deviceId` is null when the outcome is per user (no device read). */
export const PushLogEntrySchema = z.discriminatedUnion("outcome", [
  z.object({
    outcome: z.literal("sent"),
    uid: z.string(),
    deviceId: z.string(),
    reason: z.literal("sent"),
    certificateId: z.number(),
    fcmName: z.string(),
    attempts: z.number(),
    at: TimestampSchema,
  }),
  z.object({
    outcome: z.literal("skipped"),
    uid: z.string(),
    deviceId: z.string().nullable(),
    reason: SkipReasonSchema,
    detail: z.string(),
    at: TimestampSchema,
  }),
  z.object({
    outcome: z.literal("failed"),
    uid: z.string(),
    deviceId: z.string(),
    reason: FailReasonSchema,
    detail: z.string(),
    certificateId: z.number().nullable(),
    error: FcmErrorRecordSchema.nullable(),
    attempts: z.number(),
    at: TimestampSchema,
  }),
]);
export type PushLogEntry = z.output<typeof PushLogEntrySchema>;

export const CostSchema = z.object({
  firestoreReads: z.number(),
  firestoreWrites: z.number(),
  fcmRequests: z.number(),
  publishes: z.number(),
});
export type CostCounts = z.output<typeof CostSchema>;

export const OutcomeCountsSchema = z.object({ sent: z.number(), skipped: z.number(), failed: z.number() });

/**
 * pushLog/{msgKeyId}__{epoch}__{generation}__{batchIndex}: one batch of one publication of a
 * message, and its progress record (before message records: pushLog/{msgKeyId}__{batchIndex}__{uidsHash}).
 */
export const BatchLogSchema = z.object({
  kind: z.literal("batch"),
  msgKey: z.string(),
  from: z.string(),
  /** The message record's epoch and the publication's index (absent on batches recorded before them). */
  epoch: z.string().optional(),
  generation: z.number().optional(),
  batchIndex: z.number(),
  batchCount: z.number(),
  eventId: z.string(),
  /** The recipients this batch decides: its share of the list, less those an earlier publication owns. */
  uids: z.array(z.string()),
  /** The recipients' conversation (message.ts, conversationOf); absent on batches recorded before it. */
  conversation: z.string().optional(),
  /** A Read or a Recall (followUp.ts): its devices come from the push log; absent: a message. */
  event: FollowUpKindSchema.optional(),
  /** A Read: the messages whose notifications it cleared (at most MAX_FOLLOWED), so their trace shows it. */
  follows: z.array(z.string()).optional(),
  /** Its share of the list that an earlier publication of the MsgKey listed first: their outcomes are in that publication's batches. */
  ownedElsewhere: z.array(z.object({ uid: z.string(), generation: z.number() })).optional(),
  /** Publication time of the event (ISO), for latency; absent on batches recorded before it was added. */
  publishTime: z.string().optional(),
  state: z.enum(["running", "done"]),
  lease: z.object({ owner: z.string(), deliveryId: z.string(), until: TimestampSchema }).nullable(),
  /** Deliveries that claimed this batch: more than 1 means a retry or takeover continued it. */
  claims: z.number(),
  /** Deliveries that found the batch already done and sent nothing (Pub/Sub redeliveries, republished events). */
  duplicates: z.number(),
  /** Deliveries of another Pub/Sub message that found the batch held by a live lease and left it to the holder. */
  concurrentDeliveries: z.number().default(0),
  /** Outcome shard documents under it (pushLog/{logId}/outcomes/{claim}-{seq}). */
  shards: z.number().default(0),
  /** The last progress write applied: a retried write whose first commit did land is recognised. */
  lastWriteId: z.string().nullable().default(null),
  counts: OutcomeCountsSchema,
  /** Message-wide remarks, e.g. a Sound that FCM cannot apply. */
  notes: z.array(z.string()),
  /** Calls made for this batch, over all its deliveries. */
  cost: CostSchema,
  /** Peak resident memory of the instance's process when the batch was done, MiB (capacity planning). */
  peakRssMb: z.number().nullable().default(null),
  createdAt: TimestampSchema,
  updatedAt: TimestampSchema,
  completedAt: TimestampSchema.nullable(),
  /**
   * Written by the final write: every outcome of the batch (all deliveries) by reason, and the
   * failures by FCM error code (keyed as pushStats keys them) or, without one, by reason; so that a
   * message's counts need no shard read. Absent while running, and on batches recorded before it.
   */
  outcomes: z
    .object({
      skipped: z.record(z.string(), z.number()),
      failed: z.record(z.string(), z.number()),
      failedByErrorCode: z.record(z.string(), z.number()),
      failedWithoutCode: z.record(z.string(), z.number()),
    })
    .optional(),
  expireAt: TimestampSchema,
});
export type BatchLog = z.output<typeof BatchLogSchema>;

/** pushLog/{logId}/outcomes/{claim}-{seq}: up to SHARD_ENTRIES device outcomes of one batch. */
export const OutcomeShardSchema = z.object({
  msgKey: z.string(),
  /** The accounts with an entry here: "by user" queries (array-contains). */
  uids: z.array(z.string()),
  entries: z.array(PushLogEntrySchema),
  createdAt: TimestampSchema,
  expireAt: TimestampSchema,
});
export type OutcomeShard = z.output<typeof OutcomeShardSchema>;

/** pushLog/rejected__{eventId}: an event that was acknowledged without any push. */
export const RejectedLogSchema = z.object({
  kind: z.literal("rejected"),
  /** Always null: lets "by message key, ordered by batchIndex" queries include rejections. */
  batchIndex: z.null(),
  /**
   * unprocessable: Firestore refused a write for good (INVALID_ARGUMENT, e.g. a document over
   * 1 MiB), which no retry can fix: acknowledged instead of retried for MAX_EVENT_AGE_SECONDS.
   * too-many-publications: the MsgKey was published with more distinct recipient lists, or to
   * more accounts over all of them, than its message record keeps (messageRecord.ts).
   * recall-not-sender: a Recall whose From_Account is not the message's sender (refused).
   * recall-unknown-message: a Recall of a MsgKey the push log has no batch of (never pushed, or expired).
   */
  reason: z.enum(["invalid-event", "event-too-old", "unprocessable", "too-many-publications", "recall-not-sender", "recall-unknown-message"]),
  topic: z.string(),
  eventId: z.string(),
  msgKey: z.string().nullable(),
  from: z.string().nullable(),
  /** Recipients when known (at most one batch's worth), for "by user" queries. */
  uids: z.array(z.string()),
  recipientCount: z.number().nullable(),
  issues: z.array(z.object({ field: z.string(), message: z.string() })),
  detail: z.string(),
  publishTime: z.string().nullable(),
  createdAt: TimestampSchema,
  expireAt: TimestampSchema,
});
export type RejectedLog = z.output<typeof RejectedLogSchema>;

// --- Message records (messageRecord.ts) -----------------------------------------------------------

/** Sorted 8-byte hashes of accounts (messageRecord.ts, uidHash), as Firestore returns a bytes field. */
const HashesSchema = z.custom<Uint8Array>((v) => v instanceof Uint8Array && v.length % 8 === 0, "must be bytes, 8 per account").transform((v): Buffer => Buffer.from(v));

/** One publication of a MsgKey: a distinct recipient list, in the order they were first registered. */
export const PublicationSchema = z.object({
  /** Hash of the sorted, deduplicated recipient list (recipients.ts, generationId). */
  id: z.string(),
  /** Accounts it lists. */
  recipients: z.number(),
  /** Accounts it owns: listed by no earlier publication. Its batches decide only these. */
  owned: z.number(),
  /** Pub/Sub message ID of the event that registered it. */
  eventId: z.string(),
  at: TimestampSchema,
  /** The owned accounts' hashes when few (inline); null: in pushMessages/{id}/generations/{epoch}-{index}. */
  ownedHashes: HashesSchema.nullable(),
});
export type Publication = z.output<typeof PublicationSchema>;

/**
 * pushMessages/{msgKeyId}: the message record, one per MsgKey. `epoch` goes into every batch ID;
 * a record whose expireAt has passed counts as absent (the MsgKey is then a new message).
 */
export const MessageRecordSchema = z.object({
  kind: z.literal("message"),
  msgKey: z.string(),
  epoch: z.string(),
  generations: z.array(PublicationSchema),
  /** Accounts owned over all publications (each listed once). */
  accounts: z.number(),
  createdAt: TimestampSchema,
  updatedAt: TimestampSchema,
  expireAt: TimestampSchema,
});
export type MessageRecord = z.output<typeof MessageRecordSchema>;

/** pushMessages/{msgKeyId}/generations/{epoch}-{index}: a publication's owned accounts, when too many to keep inline. */
export const PublicationDocSchema = z.object({
  msgKey: z.string(),
  epoch: z.string(),
  generation: z.number(),
  ownedHashes: HashesSchema,
  createdAt: TimestampSchema,
  expireAt: TimestampSchema,
});
export type PublicationDoc = z.output<typeof PublicationDocSchema>;
