// What an IM message becomes on an iPhone: the FCM HTTP v1 message with an `apns` block, which FCM
// hands to APNs as it is. Beside the Android builder (message.ts), never changing it: each
// platform's message has its own form and its own size fitting (FCM's 4 KB counts the whole message).
// Pure, so every rule is unit-tested; the fake FCM validates the block as FCM does.
import { createHash } from "node:crypto";
import { FCM_MAX_PAYLOAD_BYTES, fcmMessageSchema, fcmPayloadSize, type FcmMessage } from "../fcm/message";
import { hasCustomSound, nonEmpty } from "./elements";
import { conversationOf, fitTextTo, remainingTtlSeconds, truncateToJsonBytes, type CheckedMessage, type NotificationText } from "./message";
import type { PushContent } from "./schemas";

/** APNs' limit for apns-collapse-id, in bytes. */
export const APNS_COLLAPSE_ID_MAX_BYTES = 64;
/**
 * The badge a template is measured with: the largest a device can be sent (int32), so that any
 * device's message, the template with its own badge, fits when the template does.
 */
export const BADGE_RESERVE = 2_147_483_647;
/** A subtitle is one line under the title: longer ones are cut to this much JSON before the title and body are fitted. */
export const MAX_SUBTITLE_BYTES = 256;

export interface ApnsBuildOptions {
  /** Time since the event was published (ms): counted off MsgLifeTime. */
  ageMs?: number;
  /** The time the message is built (epoch ms): apns-expiration is an absolute time. */
  nowMs?: number;
  /** The badge to show; undefined: no `badge` key (BadgeMode 1, badges switched off). */
  badge?: number;
}

/**
 * apns-collapse-id: the conversation, or its hash when longer than APNs allows (a group ID of 128
 * characters makes a conversation of 134). A newer notification of the conversation replaces the
 * older one in the shade (and a repeated send replaces itself: the iOS side of Android's `tag`).
 */
export function apnsCollapseId(conversation: string): string {
  if (Buffer.byteLength(conversation, "utf8") <= APNS_COLLAPSE_ID_MAX_BYTES) return conversation;
  return `h_${createHash("sha256").update(conversation, "utf8").digest("base64url")}`;
}

/**
 * apns-expiration: epoch seconds when APNs stops trying (what is left of MsgLifeTime from now), or
 * "0" when nothing is left: APNs then tries once and does not store it (Android's "0s").
 */
export function apnsExpiration(lifetimeSeconds: number | undefined, ageMs = 0, nowMs = Date.now()): string {
  const remaining = remainingTtlSeconds(lifetimeSeconds, ageMs);
  return remaining === 0 ? "0" : String(Math.floor(nowMs / 1000) + remaining);
}

/** The sound the iPhone plays: ApnsInfo.Sound, else a custom element's Sound (the original service's iOS sound), else "default". */
export function apnsSound(content: PushContent): string {
  const custom = content.MsgBody.find(hasCustomSound);
  return nonEmpty(content.OfflinePushInfo?.ApnsInfo?.Sound) ?? (custom?.MsgType === "TIMCustomElem" ? nonEmpty(custom.MsgContent.Sound) : undefined) ?? "default";
}

/** Whether the message asks for `mutable-content` (the app's Notification Service Extension may change it, e.g. attach ApnsInfo.Image). */
export function apnsMutable(content: PushContent): boolean {
  const apns = content.OfflinePushInfo?.ApnsInfo;
  return apns?.MutableContent === 1 || nonEmpty(apns?.Image) !== undefined;
}

/** BadgeMode 1: the badge is left as it is (no `badge` key, no count). */
export const leavesBadge = (content: PushContent): boolean => content.OfflinePushInfo?.ApnsInfo?.BadgeMode === 1;

/**
 * The FCM v1 message for one iPhone. No top-level `notification` or `data`: the `apns` block says
 * everything, so nothing (above all `Ext`, up to 4 KB) is carried twice.
 * - headers (strings, as FCM requires): priority 10 and push type `alert` (a visible notification),
 *   `apns-expiration` from what is left of MsgLifeTime, `apns-collapse-id` the conversation.
 * - `aps.alert`: title (ApnsInfo.Title, else the Android title), subtitle (ApnsInfo.SubTitle), body,
 *   and the loc keys; `sound`; `badge` (given per device); `thread-id` the conversation (the shade
 *   groups by it); `mutable-content: 1` with ApnsInfo.MutableContent 1 or an Image.
 * - The custom data at the payload's top level, where the app reads `userInfo["ext"]`.
 */
export function buildApnsFcmMessage(content: PushContent, text: NotificationText, token: string, options: ApnsBuildOptions = {}): FcmMessage {
  const info = content.OfflinePushInfo;
  const apnsInfo = info?.ApnsInfo;
  const conversation = conversationOf(content);
  const subtitle = nonEmpty(apnsInfo?.SubTitle);
  const image = nonEmpty(apnsInfo?.Image);
  const alert: Record<string, unknown> = { title: text.title };
  if (subtitle !== undefined) alert.subtitle = truncateToJsonBytes(subtitle, MAX_SUBTITLE_BYTES);
  alert.body = text.body;
  if (info?.TitleLocKey !== undefined) {
    alert["title-loc-key"] = info.TitleLocKey;
    if (info.TitleLocArgs !== undefined) alert["title-loc-args"] = info.TitleLocArgs;
  }
  if (info?.DescLocKey !== undefined) {
    alert["loc-key"] = info.DescLocKey;
    if (info.DescLocArgs !== undefined) alert["loc-args"] = info.DescLocArgs;
  }
  const aps: Record<string, unknown> = { alert, sound: apnsSound(content) };
  if (options.badge !== undefined) aps.badge = options.badge;
  aps["thread-id"] = conversation;
  if (apnsMutable(content)) aps["mutable-content"] = 1;
  const payload: Record<string, unknown> = { aps };
  if (info?.Ext !== undefined) payload.ext = info.Ext;
  payload.msgKey = content.MsgKey;
  payload.sender = content.From_Account;
  payload.conversation = conversation;
  return {
    token,
    apns: {
      headers: {
        "apns-priority": "10",
        "apns-push-type": "alert",
        "apns-expiration": apnsExpiration(content.MsgLifeTime, options.ageMs, options.nowMs),
        "apns-collapse-id": apnsCollapseId(conversation),
      },
      payload,
      ...(image !== undefined ? { fcm_options: { image } } : {}),
    },
  };
}

/** The iOS title: ApnsInfo.Title overrides the one every platform shows. */
export function apnsText(content: PushContent, text: NotificationText): NotificationText {
  return { title: nonEmpty(content.OfflinePushInfo?.ApnsInfo?.Title) ?? text.title, body: text.body };
}

/**
 * Builds and checks the iOS message, as checkedFcmMessage does the Android one: shortened title and
 * body when it would exceed FCM's limit (measured with the largest badge when it carries one), not
 * sent when it still does not fit, validated against the strict v1 schema.
 */
export function checkedApnsMessage(content: PushContent, text: NotificationText, token: string, options: ApnsBuildOptions = {}): CheckedMessage {
  const measured = options.badge !== undefined ? { ...options, badge: BADGE_RESERVE } : options;
  const wanted = apnsText(content, text);
  const fitted = fitTextTo((t) => buildApnsFcmMessage(content, t, token, measured), wanted);
  if (!fitted.ok) {
    return {
      ok: false,
      reason: "payload-too-large",
      detail: `the iOS FCM message would be ${fitted.bytes} bytes, over FCM's ${FCM_MAX_PAYLOAD_BYTES}-byte limit even with a shortened title and body: shorten Ext`,
    };
  }
  const message = buildApnsFcmMessage(content, fitted.text, token, options);
  const parsed = fcmMessageSchema.safeParse(message);
  if (!parsed.success) {
    return { ok: false, reason: "invalid-message", detail: `the iOS FCM message is invalid: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}` };
  }
  return { ok: true, message, bytes: fcmPayloadSize(message) };
}

/**
 * A device's message: its variant's template with its token and, for an iPhone, its badge (the
 * template's stand-in badge replaced, or left out when the device has none).
 */
export function withToken(template: FcmMessage, token: string, badge?: number): FcmMessage {
  const payload = template.apns?.payload;
  const aps = payload?.aps as Record<string, unknown> | undefined;
  if (!template.apns || !payload || !aps || (badge === undefined && !("badge" in aps))) return { ...template, token };
  const next = Object.fromEntries(Object.entries(aps).filter(([k]) => k !== "badge"));
  if (badge !== undefined) next.badge = badge;
  return { ...template, token, apns: { ...template.apns, payload: { ...payload, aps: next } } };
}

/** The badge a message sets (iOS), or undefined. */
export function badgeOf(message: FcmMessage): number | undefined {
  const aps = message.apns?.payload?.aps as Record<string, unknown> | undefined;
  return typeof aps?.badge === "number" ? aps.badge : undefined;
}

/**
 * The silent update an iPhone gets when a Read lowers its badge (or clears a conversation): no
 * alert, no sound, `content-available: 1` so the app may wake and clear the conversation's
 * notifications, and `badge` when the app counts badges. With a badge, the push type is `alert`:
 * Apple names the badge among the user-visible effects that push type is for, and a `background`
 * push may not change it; without one it is `background`. Priority 5 either way (a silent
 * update, delivered when the phone's power allows).
 */
export function buildApnsClearMessage(token: string, conversation: string, badge?: number): FcmMessage {
  const aps: Record<string, unknown> = { "content-available": 1 };
  if (badge !== undefined) aps.badge = badge;
  return {
    token,
    apns: {
      headers: { "apns-priority": "5", "apns-push-type": badge !== undefined ? "alert" : "background" },
      payload: { aps, type: "clear", conversation },
    },
  };
}
