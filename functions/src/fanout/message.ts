// What an IM message becomes on the device: the message-wide push decision (PushFlag, custom
// messages without Desc) and the FCM HTTP v1 message. Pure, so every rule is unit-tested.
import * as logger from "firebase-functions/logger";
import { z } from "zod";
import { FCM_MAX_PAYLOAD_BYTES, fcmMessageSchema, fcmPayloadSize, type FcmMessage } from "../fcm/message";
import { MAX_MSG_LIFETIME_SECONDS, MSG_TYPES, type MsgType, type PushContent } from "./schemas";

/** The notification text of a message without Desc and without text, by its first element's type. */
export const DEFAULT_PLACEHOLDERS: Readonly<Record<MsgType | "default", string>> = {
  TIMTextElem: "[Message]",
  TIMCustomElem: "[Message]",
  TIMLocationElem: "[Location]",
  TIMFaceElem: "[Sticker]",
  TIMSoundElem: "[Voice]",
  TIMImageElem: "[Image]",
  TIMFileElem: "[File]",
  TIMVideoFileElem: "[Video]",
  TIMRelayElem: "[Chat history]",
  default: "[Message]",
};
export type Placeholders = Readonly<Record<MsgType | "default", string>>;

const PlaceholderOverridesSchema = z.partialRecord(z.enum([...MSG_TYPES, "default"]), z.string().min(1));

let cachedPlaceholders: { raw: string; value: Placeholders } | undefined;

/**
 * PUSH_PLACEHOLDER_TEXTS overrides some or all texts. A bad value must not stop pushes: it is
 * logged as an error (operators see it) and the defaults are used.
 */
export function placeholdersFrom(raw: string): Placeholders {
  if (cachedPlaceholders?.raw === raw) return cachedPlaceholders.value;
  let value: Placeholders = DEFAULT_PLACEHOLDERS;
  if (raw.trim() !== "") {
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      json = undefined;
    }
    const parsed = PlaceholderOverridesSchema.safeParse(json);
    if (parsed.success) value = { ...DEFAULT_PLACEHOLDERS, ...parsed.data };
    else logger.error("PUSH_PLACEHOLDER_TEXTS is not a JSON object of element type -> text; using the default texts", { keys: [...MSG_TYPES, "default"] });
  }
  cachedPlaceholders = { raw, value };
  return value;
}

export type MessageDecision =
  | { push: true; title: string; body: string; notes: string[] }
  | { push: false; reason: "push-disabled" | "custom-without-desc"; detail: string; notes: string[] };

const nonEmpty = (s: string | undefined): string | undefined => (s !== undefined && s.trim() !== "" ? s : undefined);

/** The decision that is the same for every recipient. */
export function messageDecision(content: PushContent, placeholders: Placeholders = DEFAULT_PLACEHOLDERS): MessageDecision {
  const info = content.OfflinePushInfo;
  const notes = soundNotes(content);
  if (info?.PushFlag === 1) {
    return { push: false, reason: "push-disabled", detail: "OfflinePushInfo.PushFlag is 1: the sender asked for no offline push", notes };
  }
  const body = content.MsgBody;
  const customDesc = body.find((e) => e.MsgType === "TIMCustomElem" && nonEmpty(e.MsgContent.Desc) !== undefined);
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
  const firstText = body.find((e) => e.MsgType === "TIMTextElem" && nonEmpty(e.MsgContent.Text) !== undefined);
  const text =
    desc ??
    (firstText?.MsgType === "TIMTextElem" ? firstText.MsgContent.Text : undefined) ??
    (body[0] ? placeholders[body[0].MsgType] : placeholders.default);
  return { push: true, title: nonEmpty(info?.Title) ?? content.From_Account, body: text, notes };
}

function soundNotes(content: PushContent): string[] {
  const notes: string[] = [];
  const sound = content.OfflinePushInfo?.AndroidInfo?.Sound;
  if (nonEmpty(sound) !== undefined) {
    notes.push(
      `OfflinePushInfo.AndroidInfo.Sound ${JSON.stringify(sound)} is not applied: FCM does not support custom notification sounds, so the channel's sound plays`,
    );
  }
  for (const e of content.MsgBody) {
    if (e.MsgType === "TIMCustomElem" && nonEmpty(e.MsgContent.Sound) !== undefined) {
      notes.push(`TIMCustomElem Sound ${JSON.stringify(e.MsgContent.Sound)} is not applied: FCM does not support custom notification sounds`);
      break;
    }
  }
  return notes;
}

/** The conversation a C2C message belongs to, from the recipient's side: one collapse key per conversation. */
export function collapseKey(content: PushContent): string {
  return `c2c_${content.From_Account}`;
}

/**
 * The FCM HTTP v1 message for one device.
 * - `data.ext` is `Ext` exactly: the app reads `getIntent().getExtras().getString("ext")` on tap.
 * - The sender is `data.sender`, not `data.from`: FCM reserves the data key "from".
 * - `android.notification.tag` is the message key: if the same message ever reaches a device twice
 *   (the crash window described in progress.ts), the second notification replaces the first
 *   instead of showing twice.
 */
export function buildFcmMessage(content: PushContent, text: { title: string; body: string }, token: string): FcmMessage {
  const info = content.OfflinePushInfo;
  const data: Record<string, string> = { msgKey: content.MsgKey, sender: content.From_Account };
  if (info?.Ext !== undefined) data.ext = info.Ext;
  const channelId = nonEmpty(info?.AndroidInfo?.GoogleChannelID);
  return {
    token,
    notification: { title: text.title, body: text.body },
    data,
    android: {
      priority: "HIGH",
      ttl: `${content.MsgLifeTime ?? MAX_MSG_LIFETIME_SECONDS}s`,
      collapse_key: collapseKey(content),
      notification: { ...(channelId !== undefined ? { channel_id: channelId } : {}), tag: content.MsgKey },
    },
  };
}

export type CheckedMessage = { ok: true; message: FcmMessage; bytes: number } | { ok: false; reason: "payload-too-large" | "invalid-message"; detail: string };

/** Builds and checks the message: FCM's size limit, and the strict v1 schema (a bug here must not reach FCM). */
export function checkedFcmMessage(content: PushContent, text: { title: string; body: string }, token: string): CheckedMessage {
  const message = buildFcmMessage(content, text, token);
  const bytes = fcmPayloadSize(message);
  if (bytes > FCM_MAX_PAYLOAD_BYTES) {
    return {
      ok: false,
      reason: "payload-too-large",
      detail: `the FCM message would be ${bytes} bytes, over FCM's ${FCM_MAX_PAYLOAD_BYTES}-byte limit: shorten Title, Desc or Ext`,
    };
  }
  const parsed = fcmMessageSchema.safeParse(message);
  if (!parsed.success) {
    return { ok: false, reason: "invalid-message", detail: `the FCM message is invalid: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}` };
  }
  return { ok: true, message, bytes };
}
