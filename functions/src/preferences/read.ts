// The parts of users/{uid}.prefs one message needs, as the fan-out reads them: a Firestore field
// mask selects the devices, the do-not-disturb window, the locale and the setting of this message's
// conversation only. A user's other conversation settings (up to MAX_CONVERSATION_SETTINGS) never
// leave Firestore for a fan-out, and the mask costs no read call of its own.
import { FieldPath, type DocumentSnapshot } from "firebase-admin/firestore";
import * as logger from "firebase-functions/logger";
import { NO_PREFERENCES, StoredConversationSettingSchema, StoredDoNotDisturbSchema, type MessagePreferences } from "./schemas";

export const PREFS = "prefs";

/** The user-document fields a message's decision reads: `devices` and the preferences it can depend on. Conversation IDs are free text: a FieldPath, never a dotted string. */
export function recipientFieldMask(conversation: string): Array<string | FieldPath> {
  return ["devices", `${PREFS}.doNotDisturb`, `${PREFS}.locale`, new FieldPath(PREFS, "conversations", conversation)];
}

/**
 * A recipient's preferences for the message in `conversation` (null: a message of no particular
 * conversation, as diagnosePush may ask), from its user document (read with or
 * without the mask). A part that does not parse (edited by hand) is left out and logged: pushes go
 * on as if it were not set, rather than a user losing them all.
 */
export function messagePreferences(snap: DocumentSnapshot, conversation: string | null): MessagePreferences {
  if (!snap.exists) return NO_PREFERENCES;
  const part = <T>(path: FieldPath, parse: (v: unknown) => { success: true; data: T } | { success: false }): T | null => {
    const raw: unknown = snap.get(path);
    if (raw === undefined || raw === null) return null;
    const parsed = parse(raw);
    if (parsed.success) return parsed.data;
    logger.error("unreadable push preference ignored", { uid: snap.id, field: path.toString() });
    return null;
  };
  return {
    doNotDisturb: part(new FieldPath(PREFS, "doNotDisturb"), (v) => StoredDoNotDisturbSchema.safeParse(v)),
    conversation: conversation ? part(new FieldPath(PREFS, "conversations", conversation), (v) => StoredConversationSettingSchema.safeParse(v)) : null,
    locale: part<string>(new FieldPath(PREFS, "locale"), (v) => (typeof v === "string" ? { success: true, data: v } : { success: false })),
  };
}
