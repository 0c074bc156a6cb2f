// The FCM messages of the events that follow a conversation (followUp.ts), one per device. Pure,
// so every rule is unit-tested; the one place that says what a Read's clear and a Recall's
// replacement look like on the device (a platform that needs more, such as an iOS badge lowered by
// a Read, is added here).
import type { FcmMessage } from "../fcm/message";
import { apnsCollapseId } from "./apnsMessage";
import { MAX_MSG_LIFETIME_SECONDS } from "./schemas";

/**
 * A Read's clear: data only (no notification: nothing is shown), normal priority (nothing is
 * urgent about removing notifications; a high-priority message that shows nothing is what Android
 * deprioritizes an app for). Its collapse key is the conversation's, the one the conversation's
 * notifications carry (message.ts): for a phone that is offline, FCM keeps the newest message per
 * key, so a clear replaces a notification of the read conversation still waiting at FCM (it is
 * read: it need not be shown) and a newer message replaces the clear (it must be shown).
 */
export function clearMessage(token: string, conversation: string): FcmMessage {
  return {
    token,
    data: { type: "clear", conversation },
    android: { priority: "NORMAL", ttl: `${MAX_MSG_LIFETIME_SECONDS}s`, collapse_key: conversation },
  };
}

export interface RecallText {
  msgKey: string;
  sender: string;
  conversation: string;
  title: string;
  /** The recipient locale's "message recalled" text (localeTexts.ts, key `recalled`). */
  body: string;
}

/**
 * A Recall's replacement: a notification with the original's tag (the MsgKey, message.ts), so
 * that Android replaces the original in the shade even when the app is killed, with the
 * recipient locale's "message recalled" text; `data.type: "recall"` lets a running app do the
 * same in its own UI. High priority: the sender took the text back, and it should leave a locked
 * screen now, not at the phone's next maintenance window.
 */
export function recallMessage(token: string, r: RecallText): FcmMessage {
  return {
    token,
    notification: { title: r.title, body: r.body },
    data: { type: "recall", msgKey: r.msgKey, sender: r.sender, conversation: r.conversation },
    android: { priority: "HIGH", ttl: `${MAX_MSG_LIFETIME_SECONDS}s`, collapse_key: r.conversation, notification: { tag: r.msgKey } },
  };
}

/**
 * A Recall's replacement on an iPhone: iOS replaces a shown notification by its `apns-collapse-id`
 * (there is no tag), and an iPhone's message collapses by conversation (apnsMessage.ts), so the
 * replacement carries the conversation's collapse ID and thread. No sound and no badge: taking a
 * message back must not ring, and leaves the count to the app's next report or a Read.
 */
export function recallApnsMessage(token: string, r: RecallText): FcmMessage {
  return {
    token,
    apns: {
      headers: { "apns-priority": "10", "apns-push-type": "alert", "apns-collapse-id": apnsCollapseId(r.conversation) },
      payload: { aps: { alert: { title: r.title, body: r.body }, "thread-id": r.conversation }, type: "recall", msgKey: r.msgKey, sender: r.sender, conversation: r.conversation },
    },
  };
}
