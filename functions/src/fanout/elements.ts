// What a notification reads of a message body, in one place: the rules messageDecision applies
// (message.ts) and the elements a batch carries (contentOf) are the same predicates, so that what
// travels to every batch is exactly what the notification can use.
import type { MsgElem } from "./schemas";

export const nonEmpty = (s: string | undefined): string | undefined => (s !== undefined && s.trim() !== "" ? s : undefined);

/** A text element with text: the first one is the notification's body when there is no Desc. */
export const hasText = (e: MsgElem): boolean => e.MsgType === "TIMTextElem" && nonEmpty(e.MsgContent.Text) !== undefined;
/** A custom element with a Desc: the first one is the notification's body when OfflinePushInfo has none. */
export const hasCustomDesc = (e: MsgElem): boolean => e.MsgType === "TIMCustomElem" && nonEmpty(e.MsgContent.Desc) !== undefined;
/** A custom element with a Sound: the first one is noted (FCM plays no custom sound). */
export const hasCustomSound = (e: MsgElem): boolean => e.MsgType === "TIMCustomElem" && nonEmpty(e.MsgContent.Sound) !== undefined;

/** An element with only the fields a notification reads. */
function reduced(e: MsgElem): MsgElem {
  if (e.MsgType === "TIMTextElem") return { MsgType: e.MsgType, MsgContent: { Text: nonEmpty(e.MsgContent.Text) ?? "" } };
  if (e.MsgType === "TIMCustomElem") {
    const desc = nonEmpty(e.MsgContent.Desc);
    const sound = nonEmpty(e.MsgContent.Sound);
    return { MsgType: e.MsgType, MsgContent: { ...(desc !== undefined ? { Desc: desc } : {}), ...(sound !== undefined ? { Sound: sound } : {}) } };
  }
  return { MsgType: e.MsgType, MsgContent: {} };
}

/**
 * The elements of `body` that decide its notification, in their order, each with only the fields
 * read: the first element (its type names the placeholder), the first that is not custom (a body
 * of custom elements only needs a Desc), the first text, the first custom Desc and the first custom
 * Sound. At most 5 elements, whatever the body holds, and the same decision and text as the whole
 * body: every rule asks for a first element with some property, and each such first is kept.
 */
export function notificationElements(body: readonly MsgElem[]): MsgElem[] {
  const keep = new Set<number>();
  if (body.length > 0) keep.add(0);
  const firsts = [(e: MsgElem) => e.MsgType !== "TIMCustomElem", hasText, hasCustomDesc, hasCustomSound];
  const found = firsts.map(() => false);
  body.forEach((e, i) => {
    firsts.forEach((matches, k) => {
      if (!found[k] && matches(e)) {
        found[k] = true;
        keep.add(i);
      }
    });
  });
  return [...keep].sort((a, b) => a - b).map((i) => reduced(body[i] as MsgElem));
}
