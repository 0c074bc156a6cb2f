// Who a message mentions (GroupAtInfo, the original group message's field): looked up once per
// batch, asked per recipient.
import type { PushContent } from "./schemas";

export interface Mentions {
  /** An entry with GroupAtAllFlag 1: every recipient is mentioned. */
  all: boolean;
  accounts: ReadonlySet<string>;
}

export function mentionsOf(content: Pick<PushContent, "GroupAtInfo">): Mentions {
  const entries = content.GroupAtInfo ?? [];
  return {
    all: entries.some((e) => e.GroupAtAllFlag === 1),
    accounts: new Set(entries.flatMap((e) => (e.GroupAtAllFlag === 0 && e.GroupAt_Account !== undefined ? [e.GroupAt_Account] : []))),
  };
}

export const isMentioned = (mentions: Mentions, uid: string): boolean => mentions.all || mentions.accounts.has(uid);
