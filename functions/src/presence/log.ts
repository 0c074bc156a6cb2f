// presenceLog: the presence events acknowledged without being applied, where an operator finds
// them (diagnosePush lists a user's; the CLI `user` and the console's User page show them). One
// document per unknown (account, device) and one per invalid message: bounded, expiring.
import { createHash } from "node:crypto";
import { FieldValue, Timestamp } from "firebase-admin/firestore";
import { db } from "../common/firestore";
import { clip } from "../fanout/message";
import { MAX_RECORD_ACCOUNTS, PRESENCE_LOG, PresenceRecordSchema, type PresenceEvent, type PresenceRecord, type PresenceRecordKind } from "./schemas";
import { deviceKey } from "./order";

export interface RecordMeta {
  topic: string;
  eventId: string;
  ttlMs: number;
}

export type UnknownKind = Exclude<PresenceRecordKind, "invalid-event">;

function unknownDetail(kind: UnknownKind, e: PresenceEvent): string {
  return kind === "unknown-account"
    ? `no user ${e.Account}: the app never called login with this account; the event was acknowledged, not applied`
    : `${e.Account} has no device ${e.DeviceId}: the app never called login on it, or it was forgotten among old ended devices; the event was acknowledged, not applied (a Connect that comes before a device's first login is covered by the login itself)`;
}

const unknownId = (kind: UnknownKind, e: PresenceEvent) => `${kind}__${createHash("sha256").update(deviceKey(e)).digest("hex").slice(0, 40)}`;

/** One write (a batch) for every unknown (account, device) of one message: its newest event, the count of events. */
export async function recordUnknown(unknown: Array<{ kind: UnknownKind; event: PresenceEvent }>, meta: RecordMeta, nowMs = Date.now()): Promise<void> {
  if (unknown.length === 0) return;
  const byId = new Map<string, { kind: UnknownKind; event: PresenceEvent; count: number }>();
  for (const { kind, event } of unknown) {
    const id = unknownId(kind, event);
    const seen = byId.get(id);
    if (!seen) byId.set(id, { kind, event, count: 1 });
    else byId.set(id, { kind, event: event.EventTime >= seen.event.EventTime ? event : seen.event, count: seen.count + 1 });
  }
  const batch = db().batch();
  const now = Timestamp.fromMillis(nowMs);
  for (const [id, { kind, event, count }] of byId) {
    batch.set(
      db().collection(PRESENCE_LOG).doc(id),
      {
        kind,
        accounts: [event.Account],
        deviceId: event.DeviceId,
        action: event.Action,
        eventTime: Timestamp.fromMillis(event.EventTime),
        reason: event.Reason,
        count: FieldValue.increment(count),
        detail: unknownDetail(kind, event),
        issues: [],
        topic: meta.topic,
        eventId: meta.eventId,
        lastAt: now,
        expireAt: Timestamp.fromMillis(nowMs + meta.ttlMs),
      },
      { merge: true },
    );
  }
  await batch.commit();
}

/** An invalid message (or the invalid events of a batch): one document per Pub/Sub message, so a redelivery overwrites it. */
export async function recordInvalid(
  input: { detail: string; issues: Array<{ field: string; message: string }>; accounts: string[]; event?: Partial<PresenceEvent> },
  meta: RecordMeta,
  nowMs = Date.now(),
): Promise<string> {
  const id = `invalid-event__${meta.eventId}`;
  const now = Timestamp.fromMillis(nowMs);
  const doc: PresenceRecord = {
    kind: "invalid-event",
    accounts: [...new Set(input.accounts)].slice(0, MAX_RECORD_ACCOUNTS),
    deviceId: input.event?.DeviceId ?? null,
    action: input.event?.Action ?? null,
    eventTime: null,
    reason: null,
    count: 1,
    detail: clip(input.detail, 2_000),
    issues: input.issues.slice(0, 20).map((i) => ({ field: clip(i.field, 200), message: clip(i.message, 300) })),
    topic: meta.topic,
    eventId: meta.eventId,
    lastAt: now,
    expireAt: Timestamp.fromMillis(nowMs + meta.ttlMs),
  };
  await db().collection(PRESENCE_LOG).doc(id).set(doc);
  return id;
}

/** A user's records, newest first (index: accounts CONTAINS, lastAt DESC). */
export async function presenceRecordsFor(uid: string, limit = 10): Promise<Array<PresenceRecord & { id: string }>> {
  const snaps = await db().collection(PRESENCE_LOG).where("accounts", "array-contains", uid).orderBy("lastAt", "desc").limit(limit).get();
  return snaps.docs.flatMap((d) => {
    const parsed = PresenceRecordSchema.safeParse(d.data());
    return parsed.success ? [{ id: d.id, ...parsed.data }] : [];
  });
}
