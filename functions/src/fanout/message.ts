// What an IM message becomes on the device: the message-wide push decision (PushFlag, custom
// messages without Desc) and the FCM HTTP v1 message. Pure, so every rule is unit-tested.
import { FCM_MAX_PAYLOAD_BYTES, fcmMessageSchema, fcmPayloadSize, type FcmAndroidNotification, type FcmMessage } from "../fcm/message";
import { hasCustomDesc, hasCustomSound, hasText, nonEmpty } from "./elements";
import { DEFAULT_LOCALE_TEXTS, localeTextsFrom, type Texts } from "./localeTexts";
import { MAX_MSG_LIFETIME_SECONDS, type PushContent } from "./schemas";

/** The notification text of a message without Desc and without text, by its first element's type (and "message recalled"), in English. */
export const DEFAULT_PLACEHOLDERS: Texts = DEFAULT_LOCALE_TEXTS.fallback;
/** One locale's texts (localeTexts.ts picks them by the recipient's locale). */
export type Placeholders = Texts;

/** PUSH_PLACEHOLDER_TEXTS' fallback texts (for a recipient without a locale); see localeTextsFrom for all of them. */
export function placeholdersFrom(raw: string): Placeholders {
  return localeTextsFrom(raw).fallback;
}

export type MessageDecision =
  | { push: true; title: string; body: string; notes: string[] }
  | { push: false; reason: "push-disabled" | "custom-without-desc"; detail: string; notes: string[] };

/** Longest user-provided text quoted in a log note or detail: the push log is for reading, not a copy of the event. */
export const MAX_QUOTED_CHARS = 100;

/** A user-provided string as quoted in the log: at most MAX_QUOTED_CHARS characters. */
export function clip(s: string, max = MAX_QUOTED_CHARS): string {
  // Every outcome's detail goes through here: a string of at most `max` UTF-16 units has at most
  // `max` characters, so the usual case returns without splitting it into an array of characters.
  if (s.length <= max) return s;
  const chars = Array.from(s);
  return chars.length <= max ? s : `${chars.slice(0, max).join("")}…`;
}

const ELLIPSIS = "…";
/**
 * The room for title + body below which a truncated notification says nothing useful (about 20
 * CJK characters): such a message (e.g. a huge Ext) is skipped as payload-too-large instead.
 */
export const MIN_NOTIFICATION_TEXT_BYTES = 60;
/**
 * The device token is part of the measured payload. Texts are fitted once per message with a
 * token this long (real FCM tokens are ~160 characters), so every device gets the same text and
 * the log notes the truncation once; a longer token is fitted again for its own message.
 */
export const TOKEN_RESERVE = "x".repeat(256);

const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });
/** A string's bytes inside the JSON payload (escapes included), the measure fcmPayloadSize uses. */
const jsonBytes = (s: string): number => Buffer.byteLength(JSON.stringify(s), "utf8") - 2;

/** Cut on a character (grapheme) boundary so that the result plus an ellipsis fits maxBytes of JSON. */
export function truncateToJsonBytes(s: string, maxBytes: number): string {
  if (jsonBytes(s) <= maxBytes) return s;
  const room = maxBytes - jsonBytes(ELLIPSIS);
  if (room < 0) return "";
  let used = 0;
  let end = 0;
  for (const { segment, index } of segmenter.segment(s)) {
    const size = jsonBytes(segment);
    if (used + size > room) break;
    used += size;
    end = index + segment.length;
  }
  return `${s.slice(0, end).trimEnd()}${ELLIPSIS}`;
}

export type NotificationText = { title: string; body: string };
export type FittedText =
  | { ok: true; text: NotificationText; truncated: { title: boolean; body: boolean } }
  | { ok: false; bytes: number };

/**
 * Shortens title and body (never Ext, which the app parses) until the message fits FCM's payload
 * limit. The body carries the message: the title keeps at most a quarter of the room, unless the
 * body needs less.
 */
export function fitNotificationText(content: PushContent, text: NotificationText, token: string, options: BuildOptions = {}): FittedText {
  return fitTextTo((t) => buildFcmMessage(content, t, token, options), text);
}

/**
 * The fitting rule, for any platform's builder (apnsMessage.ts fits the iOS message with it): the
 * texts as they are when the message fits, else shortened into the room the rest leaves.
 */
export function fitTextTo(build: (text: NotificationText) => FcmMessage, text: NotificationText): FittedText {
  const bytes = fcmPayloadSize(build(text));
  if (bytes <= FCM_MAX_PAYLOAD_BYTES) return { ok: true, text, truncated: { title: false, body: false } };
  const budget = FCM_MAX_PAYLOAD_BYTES - fcmPayloadSize(build({ title: "", body: "" }));
  if (budget < MIN_NOTIFICATION_TEXT_BYTES) return { ok: false, bytes };
  const titleRoom = Math.min(jsonBytes(text.title), Math.max(Math.floor(budget / 4), budget - jsonBytes(text.body)));
  const title = truncateToJsonBytes(text.title, titleRoom);
  const body = truncateToJsonBytes(text.body, budget - jsonBytes(title));
  const fitted = { title, body };
  if (fcmPayloadSize(build(fitted)) > FCM_MAX_PAYLOAD_BYTES) return { ok: false, bytes };
  return { ok: true, text: fitted, truncated: { title: title !== text.title, body: body !== text.body } };
}

/**
 * The title of a message without OfflinePushInfo.Title: who sent it (the display name when known,
 * else the account), and for a group message the group too, as `Alice (team-42)`: the event carries
 * the group's ID only, and a notification that does not say it came from a group reads as a
 * one-to-one message. Language-neutral punctuation: the title is not one of the locale's texts.
 */
export function defaultTitle(content: Pick<PushContent, "From_Account" | "GroupId">, senderName?: string | null): string {
  const who = senderName ?? content.From_Account;
  return content.GroupId !== undefined ? `${who} (${content.GroupId})` : who;
}

/** The decision that is the same for every recipient. */
export function messageDecision(content: PushContent, placeholders: Placeholders = DEFAULT_PLACEHOLDERS): MessageDecision {
  const info = content.OfflinePushInfo;
  const notes = soundNotes(content);
  if (info?.PushFlag === 1) {
    return { push: false, reason: "push-disabled", detail: "OfflinePushInfo.PushFlag is 1: the sender asked for no offline push", notes };
  }
  const body = content.MsgBody;
  // The elements read here are the ones contentOf keeps (elements.ts): change both together.
  const customDesc = body.find(hasCustomDesc);
  const desc = nonEmpty(info?.Desc) ?? (customDesc?.MsgType === "TIMCustomElem" ? customDesc.MsgContent.Desc : undefined);
  // As in the original service: a custom message only says what to show through a Desc.
  if (desc === undefined && body.length > 0 && body.every((e) => e.MsgType === "TIMCustomElem")) {
    return {
      push: false,
      reason: "custom-without-desc",
      detail: "a custom message (TIMCustomElem) without OfflinePushInfo.Desc or MsgContent.Desc gets no offline push, as in the original service",
      notes,
    };
  }
  const firstText = body.find(hasText);
  const text =
    desc ??
    (firstText?.MsgType === "TIMTextElem" ? firstText.MsgContent.Text : undefined) ??
    (body[0] ? placeholders[body[0].MsgType] : placeholders.default);
  const full = { title: nonEmpty(info?.Title) ?? defaultTitle(content), body: text };
  // Fitted here, once per message: every device gets the same text and the log says so once.
  const fitted = fitNotificationText(content, full, TOKEN_RESERVE);
  if (!fitted.ok) return { push: true, ...full, notes };
  for (const field of ["title", "body"] as const) {
    if (fitted.truncated[field]) {
      notes.push(
        `notification ${field} truncated from ${Array.from(full[field]).length} to ${Array.from(fitted.text[field]).length} characters to fit FCM's ${FCM_MAX_PAYLOAD_BYTES}-byte payload limit`,
      );
    }
  }
  return { push: true, ...fitted.text, notes };
}

function soundNotes(content: PushContent): string[] {
  const notes: string[] = [];
  const sound = content.OfflinePushInfo?.AndroidInfo?.Sound;
  if (nonEmpty(sound) !== undefined) {
    notes.push(
      `OfflinePushInfo.AndroidInfo.Sound ${JSON.stringify(clip(sound ?? ""))} is not applied: FCM does not support custom notification sounds, so the channel's sound plays`,
    );
  }
  const custom = content.MsgBody.find(hasCustomSound);
  if (custom?.MsgType === "TIMCustomElem") {
    notes.push(`TIMCustomElem Sound ${JSON.stringify(clip(custom.MsgContent.Sound ?? ""))} is not applied on Android: FCM does not support custom notification sounds (iOS devices play it unless ApnsInfo.Sound names another)`);
  }
  return notes;
}

/**
 * The conversation the message belongs to, from the recipient's side, in the original SDK's
 * conversation ID format: `group_<GroupId>` for a group message, `c2c_<sender>` otherwise. It is
 * the collapse key. A notification message is always collapsible: while a phone is offline FCM
 * keeps only the newest message per collapse key, and at most four keys per device (which four is
 * not determined). One key per conversation keeps the newest message of each chat instead of
 * folding a group's messages into the sender's one-to-one chat.
 */
export function conversationOf(content: PushContent): string {
  return content.GroupId !== undefined ? `group_${content.GroupId}` : `c2c_${content.From_Account}`;
}

export interface BuildOptions {
  /** Time since the event was published (ms): counted off MsgLifeTime. */
  ageMs?: number;
}

/** MsgLifeTime (default: the original service's 7 days) minus the time already spent, never negative. */
export function remainingTtlSeconds(lifetimeSeconds: number | undefined, ageMs = 0): number {
  return Math.max(0, (lifetimeSeconds ?? MAX_MSG_LIFETIME_SECONDS) - Math.ceil(Math.max(0, ageMs) / 1000));
}

/**
 * The FCM HTTP v1 message for one device.
 * - `data.ext` is `Ext` exactly: the app reads `getIntent().getExtras().getString("ext")` on tap.
 * - The sender is `data.sender`, not `data.from`: FCM reserves the data key "from".
 * - `android.ttl` is what is left of MsgLifeTime: a message sent late after retries must not live
 *   on FCM longer than the sender allowed ("0s": deliver now or drop).
 * - `android.notification.tag` is the message key: if the same message ever reaches a device twice
 *   (the crash window described in progress.ts), the second notification replaces the first
 *   instead of showing twice.
 */
export function buildFcmMessage(content: PushContent, text: NotificationText, token: string, options: BuildOptions = {}): FcmMessage {
  const info = content.OfflinePushInfo;
  const conversation = conversationOf(content);
  const data: Record<string, string> = { msgKey: content.MsgKey, sender: content.From_Account, conversation };
  if (info?.Ext !== undefined) data.ext = info.Ext;
  const channelId = nonEmpty(info?.AndroidInfo?.GoogleChannelID);
  return {
    token,
    notification: { title: text.title, body: text.body },
    data,
    android: {
      priority: "HIGH",
      ttl: `${remainingTtlSeconds(content.MsgLifeTime, options.ageMs)}s`,
      collapse_key: conversation,
      notification: { ...(channelId !== undefined ? { channel_id: channelId } : {}), tag: content.MsgKey, ...androidLocKeys(info) },
    },
  };
}

/** The loc keys (only those given: a message without them is unchanged): the phone renders the texts from the app's strings.xml. */
function androidLocKeys(info: PushContent["OfflinePushInfo"]): Pick<FcmAndroidNotification, "title_loc_key" | "title_loc_args" | "body_loc_key" | "body_loc_args"> {
  if (info === undefined) return {};
  return {
    ...(info.TitleLocKey !== undefined ? { title_loc_key: info.TitleLocKey } : {}),
    ...(info.TitleLocKey !== undefined && info.TitleLocArgs !== undefined ? { title_loc_args: info.TitleLocArgs } : {}),
    ...(info.DescLocKey !== undefined ? { body_loc_key: info.DescLocKey } : {}),
    ...(info.DescLocKey !== undefined && info.DescLocArgs !== undefined ? { body_loc_args: info.DescLocArgs } : {}),
  };
}

export type CheckedMessage = { ok: true; message: FcmMessage; bytes: number } | { ok: false; reason: "payload-too-large" | "invalid-message"; detail: string };

/**
 * Builds and checks the message: FCM's size limit (title and body shortened if need be; a message
 * that still does not fit is not sent), and the strict v1 schema (a bug here must not reach FCM).
 */
export function checkedFcmMessage(content: PushContent, text: NotificationText, token: string, options: BuildOptions = {}): CheckedMessage {
  const fitted = fitNotificationText(content, text, token, options);
  if (!fitted.ok) {
    return {
      ok: false,
      reason: "payload-too-large",
      detail: `the FCM message would be ${fitted.bytes} bytes, over FCM's ${FCM_MAX_PAYLOAD_BYTES}-byte limit even with a shortened title and body: shorten Ext`,
    };
  }
  const message = buildFcmMessage(content, fitted.text, token, options);
  const bytes = fcmPayloadSize(message);
  const parsed = fcmMessageSchema.safeParse(message);
  if (!parsed.success) {
    return { ok: false, reason: "invalid-message", detail: `the FCM message is invalid: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}` };
  }
  return { ok: true, message, bytes };
}
