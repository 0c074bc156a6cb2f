// Reading and merging users/{uid}.prefs. One transaction per change: the merge reads what it
// changes, so two concurrent calls (the app on two devices) never lose each other's settings.
import { FieldValue, Timestamp } from "firebase-admin/firestore";
import * as logger from "firebase-functions/logger";
import { DomainError } from "../common/errors";
import { db, runBoundedTransaction } from "../common/firestore";
import { USERS } from "../sessions/schemas";
import { PREFS } from "./read";
import {
  MAX_CONVERSATION_SETTINGS,
  MAX_CONVERSATION_SETTINGS_BYTES,
  StoredPreferencesSchema,
  preferencesView,
  type PushPreferencesView,
  type SetPushPreferencesRequest,
  type StoredConversationSetting,
  type StoredPreferences,
} from "./schemas";

const userRef = (uid: string) => db().collection(USERS).doc(uid);

/** The stored preferences; a prefs field that does not parse counts as none (logged), so the user can set them again. */
function parseStored(raw: unknown, uid: string): StoredPreferences | null {
  if (raw === undefined || raw === null) return null;
  const parsed = StoredPreferencesSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  logger.error("unreadable users/{uid}.prefs: treated as empty", { uid });
  return null;
}

export async function getPreferences(uid: string): Promise<PushPreferencesView> {
  const snap = await userRef(uid).get();
  return preferencesView(parseStored(snap.get(PREFS), uid));
}

const utf8 = (s: string) => Buffer.byteLength(s, "utf8");

/** prefs.conversations' stored size by Firestore's rules (field name: UTF-8 bytes + 1; string: + 1; timestamp: 8). */
export function conversationSettingsBytes(conversations: Record<string, StoredConversationSetting>): number {
  let total = utf8("conversations") + 1;
  for (const [id, s] of Object.entries(conversations)) {
    total += utf8(id) + 1;
    if (s.mode !== undefined) total += utf8("mode") + 1 + utf8(s.mode) + 1;
    if (s.mutedUntil !== undefined) total += utf8("mutedUntil") + 1 + 8;
  }
  return total;
}

/** The stored preferences after a request: each field given replaces or (null) removes its setting; a conversation's fields merge. */
export function mergePreferences(stored: StoredPreferences | null, request: SetPushPreferencesRequest, now: Timestamp): StoredPreferences {
  const next: StoredPreferences = { ...(stored ?? {}) };
  if (request.doNotDisturb === null) delete next.doNotDisturb;
  else if (request.doNotDisturb !== undefined) next.doNotDisturb = { ...request.doNotDisturb, allowMentions: request.doNotDisturb.allowMentions ?? false };
  if (request.locale === null) delete next.locale;
  else if (request.locale !== undefined) next.locale = request.locale;
  if (request.conversations !== undefined) {
    const conversations = new Map(Object.entries(stored?.conversations ?? {}));
    for (const [id, given] of Object.entries(request.conversations)) {
      if (given === null) {
        conversations.delete(id);
        continue;
      }
      const setting: StoredConversationSetting = { ...conversations.get(id) };
      if (given.mode !== undefined) setting.mode = given.mode;
      if (given.mutedUntil === null) delete setting.mutedUntil;
      else if (given.mutedUntil !== undefined) setting.mutedUntil = Timestamp.fromDate(new Date(given.mutedUntil));
      // A setting that says what no setting says (all messages, not muted) is not kept: the bound counts real settings only.
      if ((setting.mode === undefined || setting.mode === "all") && setting.mutedUntil === undefined) conversations.delete(id);
      else conversations.set(id, setting);
    }
    if (conversations.size > 0) next.conversations = Object.fromEntries(conversations);
    else delete next.conversations;
  }
  next.updatedAt = now;
  return next;
}

function checkBounds(prefs: StoredPreferences): void {
  const conversations = prefs.conversations ?? {};
  const count = Object.keys(conversations).length;
  if (count > MAX_CONVERSATION_SETTINGS) {
    throw new DomainError(
      "invalid-argument",
      `conversations: the user would have ${count} conversation settings, more than ${MAX_CONVERSATION_SETTINGS}: remove some (set them to null) first`,
      { field: "conversations" },
    );
  }
  const bytes = conversationSettingsBytes(conversations);
  if (bytes > MAX_CONVERSATION_SETTINGS_BYTES) {
    throw new DomainError(
      "invalid-argument",
      `conversations: the user's conversation settings would take ${bytes} bytes, more than ${MAX_CONVERSATION_SETTINGS_BYTES}: remove some (set them to null) first`,
      { field: "conversations" },
    );
  }
}

export async function setPreferences(uid: string, request: SetPushPreferencesRequest): Promise<PushPreferencesView> {
  const ref = userRef(uid);
  const merged = await runBoundedTransaction(async (tx) => {
    const snap = await tx.get(ref);
    const next = mergePreferences(parseStored(snap.get(PREFS), uid), request, Timestamp.now());
    checkBounds(next);
    // The prefs field is replaced whole: removed settings disappear with it. A user who never logged
    // in gets a document with no devices (the sessions add them to it).
    if (snap.exists) tx.update(ref, PREFS, next);
    else tx.set(ref, { devices: {}, [PREFS]: next, updatedAt: FieldValue.serverTimestamp() });
    return next;
  });
  return preferencesView(merged);
}
