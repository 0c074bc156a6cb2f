// What a user's preferences say about one message: muted, not mentioned, or inside the quiet
// window. Pure (the clock is a parameter): the eligibility predicate calls it, so the fan-out and
// diagnosePush decide the same way, and tests pass a fixed time.
import type { MessagePreferences, StoredDoNotDisturb } from "./schemas";

/** The message as the recipient sees it. */
export interface MessageForRecipient {
  /** `c2c_<sender>` or `group_<GroupId>`. */
  conversation: string;
  /** The recipient is named in GroupAtInfo, or it has an @all entry. */
  mentioned: boolean;
}

export type PreferenceReason = "muted" | "not-mentioned" | "quiet-hours";
export type PreferenceVerdict = { reason: PreferenceReason; detail: string } | null;

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The wall-clock time in `timeZone` at `now`, minutes after local midnight. */
export function localMinutes(now: Date, timeZone: string): number {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", { timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    // A handful of zones in practice; bounded anyway.
    if (formatters.size >= 500) formatters.clear();
    formatters.set(timeZone, f);
  }
  let hour = 0;
  let minute = 0;
  for (const part of f.formatToParts(now)) {
    if (part.type === "hour") hour = Number(part.value);
    else if (part.type === "minute") minute = Number(part.value);
  }
  return (hour % 24) * 60 + minute;
}

const minutesOf = (hhmm: string): number => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/**
 * Whether `now` falls inside the daily window [start, end) of the user's local time. The window is
 * wall-clock time in the zone, so daylight-saving changes are the zone's business: on a
 * spring-forward night a 22:00-07:00 window is an hour shorter, on a fall-back night an hour longer,
 * and a start inside the skipped hour begins with the first local time after it. `start > end`
 * crosses midnight; `start == end` is the whole day.
 */
export function insideWindow(dnd: Pick<StoredDoNotDisturb, "start" | "end" | "timeZone">, now: Date): { inside: boolean; localTime: string } {
  const m = localMinutes(now, dnd.timeZone);
  const start = minutesOf(dnd.start);
  const end = minutesOf(dnd.end);
  const inside = start === end ? true : start < end ? m >= start && m < end : m >= start || m < end;
  const localTime = `${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
  return { inside, localTime };
}

/** The reason the preferences give for not pushing this message now, or null. Mutes come first: a mention does not pass a mute. */
export function preferenceVerdict(prefs: MessagePreferences, message: MessageForRecipient, now: Date): PreferenceVerdict {
  const conv = message.conversation;
  const setting = prefs.conversation;
  if (setting?.mode === "none") {
    return { reason: "muted", detail: `the user turned pushes from conversation ${conv} off (mode "none"); mentions do not pass a mute` };
  }
  const until = setting?.mutedUntil?.toMillis();
  if (until !== undefined && until > now.getTime()) {
    return {
      reason: "muted",
      detail: `the user muted conversation ${conv} until ${new Date(until).toISOString()} (then mode "${setting?.mode ?? "all"}"); mentions do not pass a mute`,
    };
  }
  if (setting?.mode === "mentions" && !message.mentioned) {
    return { reason: "not-mentioned", detail: `the user asked for mentions only in conversation ${conv} (mode "mentions") and this message does not mention them` };
  }
  const dnd = prefs.doNotDisturb;
  if (dnd) {
    const { inside, localTime } = insideWindow(dnd, now);
    if (inside && !(dnd.allowMentions && message.mentioned)) {
      const window = dnd.start === dnd.end ? "all day" : `${dnd.start}-${dnd.end}`;
      const mentions = dnd.allowMentions ? "; mentions would pass, and this message does not mention them" : "";
      return { reason: "quiet-hours", detail: `inside the user's do-not-disturb window (${window} ${dnd.timeZone}; it is ${localTime} there)${mentions}` };
    }
  }
  return null;
}
