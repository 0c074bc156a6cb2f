// A user's push preferences (setPushPreferences / getPushPreferences), kept in the users/{uid}
// document the fan-out already reads per recipient, so that deciding on them costs no read:
//   users/{uid}.prefs = { doNotDisturb?, conversations?: { [conversationId]: setting }, locale?, updatedAt }
// The fan-out reads only the parts a message needs (a field mask: doNotDisturb, locale and the one
// conversation's setting), however many conversations a user has set.
import type { Timestamp } from "firebase-admin/firestore";
import { z } from "zod";
import { TimestampSchema } from "../sessions/schemas";

/** Conversation settings per user at most: more than any chat list a person curates by hand. */
export const MAX_CONVERSATION_SETTINGS = 2_000;
/**
 * The stored size of prefs.conversations at most (Firestore's size rules: a field name's UTF-8
 * bytes + 1, a string's + 1, a timestamp 8). 2,000 settings of ASCII IDs take about 150 KB; IDs of
 * many multi-byte characters reach this bound first. With the devices map at its own bounds
 * (about 100 KB) a users document stays well under Firestore's 1 MiB.
 */
export const MAX_CONVERSATION_SETTINGS_BYTES = 400 * 1024;
/** `c2c_` + an account (128 characters) or `group_` + a group ID (128 characters). */
export const MAX_CONVERSATION_ID_CHARS = 6 + 128;

export const CONVERSATION_MODES = ["all", "mentions", "none"] as const;
export type ConversationMode = (typeof CONVERSATION_MODES)[number];

/** The original SDK's conversation IDs: `c2c_<account>` or `group_<GroupId>`. */
export const ConversationIdSchema = z
  .string({ error: "must be a conversation ID" })
  .max(MAX_CONVERSATION_ID_CHARS, `is longer than ${MAX_CONVERSATION_ID_CHARS} characters`)
  .regex(/^(c2c_|group_)./s, 'must be a conversation ID: "c2c_<account>" or "group_<GroupId>"')
  .refine((id) => !id.startsWith("c2c_") || !id.slice(4).includes("/"), "names an account, which must not contain '/'");

/** "HH:MM", 24-hour, local time of the user's zone. */
export const TimeOfDaySchema = z.string({ error: 'must be a time of day "HH:MM"' }).regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a time of day "HH:MM" (00:00 to 23:59)');

/** An IANA time zone name (Europe/Berlin, America/New_York, UTC) as the runtime's Intl knows it, stored in its canonical spelling. */
export const TimeZoneSchema = z
  .string({ error: "must be an IANA time zone name" })
  .max(64, "is longer than 64 characters")
  .regex(/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/, 'must be an IANA time zone name such as "Europe/Berlin"')
  .transform((zone, ctx) => {
    const canonical = canonicalTimeZone(zone);
    if (canonical === undefined) {
      ctx.addIssue({ code: "custom", message: `is not a time zone this runtime knows (an IANA name such as "Europe/Berlin")` });
      return z.NEVER;
    }
    return canonical;
  });

/**
 * The zone's spelling as stored: the runtime's own when it differs only in case ("europe/berlin");
 * otherwise as given. ICU resolves some current names to older aliases (Asia/Kolkata to
 * Asia/Calcutta), and the user's name must come back as they gave it. Undefined: not a zone.
 */
export function canonicalTimeZone(zone: string): string | undefined {
  try {
    const resolved = new Intl.DateTimeFormat("en-US", { timeZone: zone }).resolvedOptions().timeZone;
    return resolved.toLowerCase() === zone.toLowerCase() ? resolved : zone;
  } catch {
    return undefined;
  }
}

/** A BCP 47 language tag ("de-DE", "zh-Hant-TW"), stored in its canonical form. */
export const LocaleSchema = z
  .string({ error: "must be a BCP 47 language tag" })
  .max(64, "is longer than 64 characters")
  .transform((tag, ctx) => {
    try {
      const [canonical] = Intl.getCanonicalLocales(tag);
      if (canonical) return canonical;
    } catch {
      // reported below
    }
    ctx.addIssue({ code: "custom", message: 'must be a BCP 47 language tag such as "de-DE"' });
    return z.NEVER;
  });

export const DoNotDisturbSchema = z.strictObject({
  start: TimeOfDaySchema,
  end: TimeOfDaySchema,
  timeZone: TimeZoneSchema,
  allowMentions: z.boolean({ error: "must be true or false" }).optional(),
});
export type DoNotDisturbInput = z.output<typeof DoNotDisturbSchema>;

const ConversationSettingInputSchema = z.strictObject({
  mode: z.enum(CONVERSATION_MODES, { error: `must be one of: ${CONVERSATION_MODES.map((m) => `"${m}"`).join(", ")}` }).optional(),
  mutedUntil: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 time such as "2026-12-24T18:00:00Z"' }).nullable().optional(),
});

/** More keys than `max` in an object, counted up to the bound only: a request of a million keys is refused without walking it. */
const moreKeysThan =
  (max: number, what: string) =>
  (value: unknown): string | null => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
    let n = 0;
    for (const key in value) if (Object.hasOwn(value, key) && ++n > max) return `has more than ${max} ${what}`;
    return null;
  };

const guardedKeys = <S extends z.ZodType>(max: number, what: string, schema: S) =>
  z
    .unknown()
    .superRefine((value, ctx) => {
      const problem = moreKeysThan(max, what)(value);
      if (problem !== null) ctx.addIssue({ code: "custom", message: problem });
    })
    .pipe(schema);

/** setPushPreferences: each field given is merged into what is stored; `null` removes that setting. */
export const SetPushPreferencesRequestSchema = z.strictObject({
  doNotDisturb: DoNotDisturbSchema.nullable().optional(),
  conversations: guardedKeys(
    MAX_CONVERSATION_SETTINGS,
    "conversations",
    z.record(ConversationIdSchema, ConversationSettingInputSchema.nullable(), { error: "must be an object of conversation ID -> setting (or null)" }),
  ).optional(),
  locale: LocaleSchema.nullable().optional(),
});
export type SetPushPreferencesRequest = z.output<typeof SetPushPreferencesRequestSchema>;

export const GetPushPreferencesRequestSchema = z.strictObject({});

// --- Stored (users/{uid}.prefs) ----------------------------------------------------------------------

export const StoredDoNotDisturbSchema = z.object({
  start: z.string(),
  end: z.string(),
  timeZone: z.string(),
  allowMentions: z.boolean(),
});
export type StoredDoNotDisturb = z.output<typeof StoredDoNotDisturbSchema>;

export const StoredConversationSettingSchema = z.object({
  mode: z.enum(CONVERSATION_MODES).optional(),
  mutedUntil: TimestampSchema.optional(),
});
export type StoredConversationSetting = z.output<typeof StoredConversationSettingSchema>;

export const StoredPreferencesSchema = z.object({
  doNotDisturb: StoredDoNotDisturbSchema.optional(),
  conversations: z.record(z.string(), StoredConversationSettingSchema).optional(),
  locale: z.string().optional(),
  updatedAt: TimestampSchema.optional(),
});
export type StoredPreferences = z.output<typeof StoredPreferencesSchema>;

/** What one message's decision needs of a recipient's preferences (the fan-out reads only this). */
export interface MessagePreferences {
  doNotDisturb: StoredDoNotDisturb | null;
  /** The setting of the message's conversation, if the user has one. */
  conversation: StoredConversationSetting | null;
  locale: string | null;
}

export const NO_PREFERENCES: MessagePreferences = { doNotDisturb: null, conversation: null, locale: null };

// --- Answers -------------------------------------------------------------------------------------------

export const ConversationSettingViewSchema = z.object({
  mode: z.enum(CONVERSATION_MODES),
  mutedUntil: z.iso.datetime().nullable(),
});
export type ConversationSettingView = z.output<typeof ConversationSettingViewSchema>;

/** What getPushPreferences and setPushPreferences answer, and diagnosePush shows: plain JSON, ISO times. */
export const PushPreferencesViewSchema = z.object({
  doNotDisturb: z.object({ start: z.string(), end: z.string(), timeZone: z.string(), allowMentions: z.boolean() }).nullable(),
  /** Conversation ID -> setting; a conversation not listed gets every message. */
  conversations: z.record(z.string(), ConversationSettingViewSchema),
  locale: z.string().nullable(),
  updatedAt: z.iso.datetime().nullable(),
});
export type PushPreferencesView = z.output<typeof PushPreferencesViewSchema>;

export function preferencesView(stored: StoredPreferences | null): PushPreferencesView {
  const conversations: Record<string, ConversationSettingView> = {};
  for (const [id, s] of Object.entries(stored?.conversations ?? {})) conversations[id] = { mode: s.mode ?? "all", mutedUntil: isoOrNull(s.mutedUntil) };
  const dnd = stored?.doNotDisturb;
  return {
    doNotDisturb: dnd ? { start: dnd.start, end: dnd.end, timeZone: dnd.timeZone, allowMentions: dnd.allowMentions } : null,
    conversations,
    locale: stored?.locale ?? null,
    updatedAt: isoOrNull(stored?.updatedAt),
  };
}

const isoOrNull = (t: Timestamp | undefined): string | null => (t ? new Date(t.toMillis()).toISOString() : null);
