// offlinePushPresence: Pub/Sub trigger on PRESENCE_TOPIC (default im-presence). The IM backend's
// presence events (one, or a batch under "Events"), validated and applied (apply.ts). retry: true,
// which is safe because applying an event twice changes nothing (order.ts); an invalid event or
// one for an unknown account or device is recorded (log.ts) and acknowledged, never retried;
// anything else that fails is retried until the message is older than MAX_EVENT_AGE_SECONDS.
import * as logger from "firebase-functions/logger";
import { onMessagePublished } from "firebase-functions/v2/pubsub";
import { zodIssues } from "../common/callable";
import { PRESENCE_TOPIC, fanoutSettings } from "../config";
import { clip } from "../fanout/message";
import { applyPresenceEvents, type ApplyOutcome } from "./apply";
import { recordInvalid, recordUnknown, type RecordMeta } from "./log";
import { PresenceBatchSchema, PresenceEventSchema, isBatchMessage, type PresenceEvent } from "./schemas";

export interface PresenceDelivery {
  topic: string;
  eventId: string;
  publishTimeMs: number;
  /** The message data as text (undefined: none). */
  text: string;
}

/** A readable Account of an invalid event, so the record is found under that user. */
function accountOf(raw: unknown): string[] {
  const a = (raw as { Account?: unknown } | null | undefined)?.Account;
  return typeof a === "string" && a.length > 0 && a.length <= 128 ? [a] : [];
}

/** The valid events of a message, and the invalid ones recorded. Undefined when nothing in it is valid. */
async function validEvents(d: PresenceDelivery, meta: RecordMeta): Promise<PresenceEvent[]> {
  let json: unknown;
  try {
    json = JSON.parse(d.text);
  } catch {
    // Not the parser's message: it quotes the input.
    await recordInvalid({ detail: `the message data is not JSON (${d.text.length} characters)`, issues: [], accounts: [] }, meta);
    return [];
  }
  const raws: Array<{ raw: unknown; path: string }> = [];
  if (isBatchMessage(json)) {
    const batch = PresenceBatchSchema.safeParse(json);
    if (!batch.success) {
      const issues = zodIssues(batch.error);
      await recordInvalid({ detail: `invalid presence batch: ${issues.map((i) => `${i.field}: ${i.message}`).join("; ")}`, issues, accounts: [] }, meta);
      return [];
    }
    batch.data.Events.forEach((raw, i) => raws.push({ raw, path: `Events.${i}.` }));
  } else raws.push({ raw: json, path: "" });

  const events: PresenceEvent[] = [];
  const issues: Array<{ field: string; message: string }> = [];
  const accounts: string[] = [];
  for (const { raw, path } of raws) {
    const parsed = PresenceEventSchema.safeParse(raw);
    if (parsed.success) {
      events.push(parsed.data);
      continue;
    }
    issues.push(...zodIssues(parsed.error).map((i) => ({ field: `${path}${i.field}`, message: i.message })));
    accounts.push(...accountOf(raw));
  }
  if (issues.length > 0) {
    const bad = raws.length - events.length;
    const detail = `${bad} of ${raws.length} presence event(s) invalid, not applied${events.length ? " (the others were)" : ""}: ${issues.slice(0, 5).map((i) => `${i.field}: ${i.message}`).join("; ")}`;
    await recordInvalid({ detail, issues, accounts, ...(raws.length === 1 ? { event: raws[0]?.raw as Partial<PresenceEvent> } : {}) }, meta);
    logger.warn("presence events rejected: invalid", { topic: d.topic, eventId: d.eventId, invalid: bad, of: raws.length, issues: issues.slice(0, 20) });
  }
  return events;
}

const brief = (e: PresenceEvent) => ({ account: e.Account, deviceId: e.DeviceId, action: e.Action, eventTime: new Date(e.EventTime).toISOString() });

function logOutcome(d: PresenceDelivery, out: ApplyOutcome): void {
  if (out.ignored.length > 0) {
    // Pub/Sub reorders and redelivers: an event not newer than the device's last is expected, and changes nothing.
    logger.info("presence events ignored: not newer than the device's last applied event (out of order or delivered again)", {
      eventId: d.eventId,
      count: out.ignored.length,
      events: out.ignored.slice(0, 50).map(brief),
    });
  }
  if (out.unknown.length > 0) {
    logger.warn("presence events for unknown accounts or devices: recorded in presenceLog and acknowledged", {
      eventId: d.eventId,
      count: out.unknown.length,
      events: out.unknown.slice(0, 50).map((u) => ({ ...brief(u.event), why: u.kind })),
    });
  }
  if (out.ended.length > 0) logger.info("sessions ended by the IM backend's Logout", { eventId: d.eventId, devices: out.ended.slice(0, 50).map(brief) });
  logger.info("presence events applied", { eventId: d.eventId, applied: out.applied.length, ignored: out.ignored.length, unknown: out.unknown.length, userWrites: out.userWrites });
}

export async function handlePresenceMessage(d: PresenceDelivery): Promise<ApplyOutcome | undefined> {
  const settings = fanoutSettings();
  const meta: RecordMeta = { topic: d.topic, eventId: d.eventId, ttlMs: settings.pushLogTtlMs };
  try {
    const events = await validEvents(d, meta);
    if (events.length === 0) return undefined;
    const out = await applyPresenceEvents(events);
    await recordUnknown(out.unknown, meta);
    logOutcome(d, out);
    return out;
  } catch (err) {
    // Retried by Pub/Sub (applying again changes nothing) until the message is too old to matter.
    const expired = Date.now() - d.publishTimeMs > settings.maxEventAgeMs;
    logger.error("presence message failed", { topic: d.topic, eventId: d.eventId, error: clip(err instanceof Error ? `${err.name}: ${err.message}` : String(err), 1_000), willRetry: !expired });
    if (!expired) throw err;
    return undefined;
  }
}

export const offlinePushPresence = onMessagePublished({ topic: PRESENCE_TOPIC, retry: true, timeoutSeconds: 120, memory: "512MiB", cpu: 1, concurrency: 16 }, (event) => {
  const message = event.data.message;
  const publishTimeMs = Date.parse(message.publishTime ?? event.time);
  return handlePresenceMessage({
    topic: PRESENCE_TOPIC,
    eventId: message.messageId,
    publishTimeMs: Number.isNaN(publishTimeMs) ? Date.now() : publishTimeMs,
    text: Buffer.from(message.data ?? "", "base64").toString("utf8"),
  }).then(() => undefined);
});
