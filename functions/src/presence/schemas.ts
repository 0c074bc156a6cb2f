// The IM backend's presence events (topic im-presence, PRESENCE_TOPIC) and the records kept of
// events that could not be applied. Zod schemas are the single source of their types.
//
// One event: {"Account","DeviceId","Action":"Connect"|"Disconnect"|"Logout","Reason"?,"EventTime":ms}
// Many:      {"Events":[event, ...]} (at most MAX_PRESENCE_EVENTS): the backend's periodic Connect
//            refresh for every device still connected, or whatever changed in its last second.
// Fields the backend adds beside these (the original service's callbacks carry more) are ignored.
import { z } from "zod";
import { AccountSchema } from "../fanout/schemas";
import { DeviceIdSchema, PresenceActionSchema, TimestampSchema } from "../sessions/schemas";

/** Events in one batch message: a refresh of 500 devices is about 60 KB, far inside Pub/Sub's 10 MB. */
export const MAX_PRESENCE_EVENTS = 500;
/**
 * How far EventTime may run ahead of our clock. An event far in the future would outrank every real
 * event after it (the newest applied wins) and pin the device's state: refused instead.
 */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;
/** EventTime is milliseconds: a time before this is seconds (or garbage), and refused. */
export const EARLIEST_EVENT_TIME_MS = Date.UTC(2020, 0, 1);
export const MAX_PRESENCE_REASON_CHARS = 128;

export const PresenceEventSchema = z
  .object({
    Account: AccountSchema,
    DeviceId: DeviceIdSchema,
    Action: z.enum(PresenceActionSchema.options, { error: 'must be one of: "Connect", "Disconnect", "Logout"' }),
    /** The backend's reason, e.g. LinkClose, TimeOut: shown to operators as it came. */
    Reason: z
      .string({ error: "must be a string" })
      .max(MAX_PRESENCE_REASON_CHARS, `is longer than ${MAX_PRESENCE_REASON_CHARS} characters`)
      .nullish(),
    EventTime: z
      .number({ error: "must be a number: milliseconds since the epoch" })
      .int("must be whole milliseconds since the epoch")
      .min(EARLIEST_EVENT_TIME_MS, "must be milliseconds since the epoch (this is before 2020: seconds?)")
      .refine((ms) => ms <= Date.now() + MAX_CLOCK_SKEW_MS, `is more than ${MAX_CLOCK_SKEW_MS / 60_000} minutes in the future (the IM backend's clock?)`),
  })
  .transform((e) => ({ Account: e.Account, DeviceId: e.DeviceId, Action: e.Action, Reason: e.Reason ?? null, EventTime: e.EventTime }));
export type PresenceEvent = z.output<typeof PresenceEventSchema>;

/** The batch form's envelope: each event is then validated on its own (one bad event spoils no other). */
export const PresenceBatchSchema = z.object({
  Events: z
    .array(z.unknown(), { error: "must be an array of presence events" })
    .min(1, "must not be empty")
    .max(MAX_PRESENCE_EVENTS, `has more than ${MAX_PRESENCE_EVENTS} events`),
});

/** A message is a batch when it has `Events`; otherwise it is one event. */
export function isBatchMessage(json: unknown): boolean {
  return typeof json === "object" && json !== null && !Array.isArray(json) && Object.hasOwn(json, "Events");
}

// --- presenceLog/{id}: events acknowledged without being applied ---------------------------------

export const PRESENCE_LOG = "presenceLog";

/**
 * unknown-account: no users/{Account} document (the app never logged in with it); unknown-device:
 * the account has no device DeviceId (never logged in there, or forgotten among old ended devices);
 * invalid-event: the message or an event in it did not match the schema. Each is recorded,
 * acknowledged and never retried.
 */
export const PresenceRecordKindSchema = z.enum(["unknown-account", "unknown-device", "invalid-event"]);
export type PresenceRecordKind = z.output<typeof PresenceRecordKindSchema>;

/**
 * One document per unknown (account, device), counting the events it got, or one per invalid
 * message. Bounded (issues clipped, at most MAX_RECORD_ACCOUNTS accounts) and expiring (TTL on
 * presenceLog.expireAt, PUSH_LOG_TTL_DAYS).
 */
export const PresenceRecordSchema = z.object({
  kind: PresenceRecordKindSchema,
  /** The accounts it names, when readable: diagnosePush finds a user's records by them. */
  accounts: z.array(z.string()),
  deviceId: z.string().nullable(),
  action: z.string().nullable(),
  eventTime: TimestampSchema.nullable(),
  reason: z.string().nullable(),
  /** Events recorded here (for unknown devices: every message that named it, counted once each). */
  count: z.number(),
  detail: z.string(),
  issues: z.array(z.object({ field: z.string(), message: z.string() })),
  topic: z.string(),
  /** The Pub/Sub message that last added to it. */
  eventId: z.string(),
  /** When it was last written (a merge without a read: no first time is kept). */
  lastAt: TimestampSchema,
  expireAt: TimestampSchema,
});
export type PresenceRecord = z.output<typeof PresenceRecordSchema>;
export const MAX_RECORD_ACCOUNTS = 50;
