// The IM backend's presence feed as the tests drive it: events published to the presence topic
// with @google-cloud/pubsub (the client a backend uses; it talks to the Pub/Sub emulator through
// PUBSUB_EMULATOR_HOST), and their effect read back from the devices and from presenceLog.
import { PubSub } from "@google-cloud/pubsub";
import { PresenceRecordSchema, type PresenceRecord } from "../../functions/src/presence/schemas.ts";
import type { Device, PresenceAction } from "../../functions/src/sessions/schemas.ts";
import { PROJECT, REQUEST_DEADLINE_MS, adminDb, eventually } from "./emulators.ts";
import { readDevice } from "./sessions.ts";

export const PRESENCE_TOPIC = "im-presence";

export interface PresenceEventJson {
  Account: string;
  DeviceId: string;
  Action: PresenceAction;
  Reason?: string;
  EventTime: number;
}

export const presenceEvent = (Account: string, DeviceId: string, Action: PresenceAction, EventTime = Date.now(), Reason?: string): PresenceEventJson => ({
  Account,
  DeviceId,
  Action,
  EventTime,
  ...(Reason !== undefined ? { Reason } : {}),
});

let client: PubSub | undefined;
const pubsub = () => (client ??= new PubSub({ projectId: PROJECT }));

/** Publishes one presence message (an event, a batch {Events}, or any JSON or text) as the IM backend would; returns its message ID. */
export async function publishPresence(message: unknown): Promise<string> {
  const data = Buffer.from(typeof message === "string" ? message : JSON.stringify(message));
  return pubsub()
    .topic(PRESENCE_TOPIC, { gaxOpts: { timeout: REQUEST_DEADLINE_MS } })
    .publishMessage({ data });
}

export async function closePresenceClient(): Promise<void> {
  await client?.close();
  client = undefined;
}

/** Waits until the device's stored presence is the event at `eventTime` (the trigger applied it). */
export async function waitForPresence(uid: string, deviceId: string, action: PresenceAction, eventTime: number): Promise<Device> {
  return eventually(
    async () => {
      const d = await readDevice(uid, deviceId);
      return d?.presence?.action === action && d.presence.eventTime.toMillis() === eventTime ? d : undefined;
    },
    { what: `${uid}/${deviceId}'s presence to be ${action} at ${eventTime}` },
  );
}

/** The update time of a users document (a write that changed nothing leaves it as it is). */
export async function userUpdateTime(uid: string): Promise<string | undefined> {
  return (await adminDb().doc(`users/${uid}`).get()).updateTime?.toDate().toISOString();
}

export async function presenceRecords(uid: string): Promise<Array<PresenceRecord & { id: string }>> {
  const snaps = await adminDb().collection("presenceLog").where("accounts", "array-contains", uid).get();
  return snaps.docs.map((d) => ({ id: d.id, ...PresenceRecordSchema.parse(d.data()) }));
}
