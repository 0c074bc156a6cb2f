// The presence figure of `npm run bench` (alone: `npm run bench -- presence`), on the emulators
// with the demo settings (PRESENCE_SOURCE=both, HEARTBEAT_LEASE_SECONDS=120):
//  1. from a Disconnect published for a foreground device the IM backend reported connected, to
//     the fake FCM's request for a message published once it was applied (before issue 20: up to
//     the 120 s heartbeat lease);
//  2. documents written per online user per hour: by heartbeats (an hour of beats at the interval
//     the heartbeat answer gives, each a real heartbeat call, the stored beat's age set as the
//     simulated clock has it), and by presence events (a Connect refresh of 100 users in one batch
//     message, the users documents it wrote counted by their update times).
// Figures, not assertions.
import { FieldPath, Timestamp } from "firebase-admin/firestore";
import { adminDb, callOk, createUser, createUsers, eventually, publish, type TestUser } from "../test/helpers/emulators.ts";
import { PUSH_TOPIC, foregroundDevice, msgKey, sendsTo } from "../test/helpers/fanout.ts";
import { registerCertificate } from "../test/helpers/certificates.ts";
import { closePresenceClient, presenceEvent, publishPresence, userUpdateTime, waitForPresence } from "../test/helpers/presence.ts";

const LATENCY_RUNS = 10;
const REFRESH_USERS = 100;
const HOUR_MS = 3_600_000;
const POLL = { intervalMs: 50, timeoutMs: 60_000 };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const fmt = (ms: number) => `${Math.round(ms)} ms`;

interface LatencyRun {
  applyMs: number;
  pushMs: number;
  totalMs: number;
}

async function latencyOnce(user: TestUser, certificateId: number): Promise<LatencyRun> {
  const token = await foregroundDevice(user, certificateId);
  const connectAt = Date.now();
  await publishPresence(presenceEvent(user.uid, "phone", "Connect", connectAt, "Login"));
  await waitForPresence(user.uid, "phone", "Connect", connectAt);

  const started = Date.now();
  await publishPresence(presenceEvent(user.uid, "phone", "Disconnect", started, "LinkClose"));
  await eventually(async () => {
    const d = (await adminDb().doc(`users/${user.uid}`).get()).get(new FieldPath("devices", "phone", "presence")) as { eventTime?: Timestamp } | undefined;
    return d?.eventTime?.toMillis() === started ? true : undefined;
  }, { ...POLL, what: "the Disconnect to be applied" });
  const applied = Date.now();
  await publish(PUSH_TOPIC, { MsgKey: msgKey("bench-presence"), From_Account: "bench-presence-sender", To_Account: [user.uid], MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: "after the Disconnect" } }] });
  const [request] = await eventually(async () => {
    const s = await sendsTo(token);
    return s.length ? s : undefined;
  }, { ...POLL, what: "the push at the fake FCM" });
  const at = Date.parse(request!.receivedAt);
  return { applyMs: applied - started, pushMs: at - applied, totalMs: at - started };
}

/** Beats every `intervalMs` for an hour of simulated time; each beat is a real call, the stored beat aged as the simulation has it. */
async function heartbeatHour(user: TestUser): Promise<{ beats: number; writes: number; intervalSeconds: number; leaseSeconds: number }> {
  await callOk("login", { deviceId: "phone", platform: "android" }, user);
  const ref = adminDb().doc(`users/${user.uid}`);
  const first = await callOk<{ intervalSeconds: number; leaseSeconds: number }>("heartbeat", { deviceId: "phone" }, user);
  const intervalMs = first.intervalSeconds * 1000;
  let storedSim = 0; // the simulated time of the stored beat (login stored one at 0)
  let beats = 0;
  let writes = 0;
  for (let t = intervalMs; t <= HOUR_MS; t += intervalMs) {
    await ref.update(new FieldPath("devices", "phone", "lastHeartbeatAt"), Timestamp.fromMillis(Date.now() - (t - storedSim)));
    const before = await userUpdateTime(user.uid);
    const res = await callOk<{ recorded: boolean }>("heartbeat", { deviceId: "phone" }, user);
    const written = (await userUpdateTime(user.uid)) !== before;
    beats++;
    if (written) {
      writes++;
      storedSim = t;
    }
    if (written !== res.recorded) throw new Error(`beat at ${t} ms: answered recorded=${res.recorded}, but the document was${written ? "" : " not"} written`);
  }
  return { beats, writes, intervalSeconds: first.intervalSeconds, leaseSeconds: first.leaseSeconds };
}

/** One batch message refreshing every user's device: the users documents it wrote. */
async function refresh(users: TestUser[], at: number): Promise<number> {
  const before = await Promise.all(users.map((u) => userUpdateTime(u.uid)));
  await publishPresence({ Events: users.map((u) => presenceEvent(u.uid, "phone", "Connect", at)) });
  await Promise.all(users.map((u) => waitForPresence(u.uid, "phone", "Connect", at)));
  const after = await Promise.all(users.map((u) => userUpdateTime(u.uid)));
  return after.filter((t, i) => t !== before[i]).length;
}

export async function benchPresence(): Promise<string> {
  const cert = await registerCertificate(await createUser({ admin: true }));
  const latencyUsers = await createUsers(LATENCY_RUNS);
  const runs: LatencyRun[] = [];
  for (const u of latencyUsers) runs.push(await latencyOnce(u, cert.certificateId));

  const hb = await heartbeatHour(await createUser());

  const refreshUsers = await createUsers(REFRESH_USERS);
  for (let i = 0; i < refreshUsers.length; i += 20) await Promise.all(refreshUsers.slice(i, i + 20).map((u) => callOk("login", { deviceId: "phone", platform: "android" }, u)));
  const t0 = Date.now();
  const firstRefresh = await refresh(refreshUsers, t0);
  const secondRefresh = await refresh(refreshUsers, t0 + 1);
  await closePresenceClient();

  const total = runs.map((r) => r.totalMs);
  const beatsPerHour = HOUR_MS / (hb.intervalSeconds * 1000);
  const refreshWritesPerUser = (firstRefresh + secondRefresh) / (2 * REFRESH_USERS);
  return [
    "Presence (PRESENCE_SOURCE=both, demo settings):",
    `  Disconnect published -> FCM request for a message published once it was applied, ${LATENCY_RUNS} runs:`,
    `    median ${fmt(median(total))}, max ${fmt(Math.max(...total))} (Disconnect applied: median ${fmt(median(runs.map((r) => r.applyMs)))}; message -> FCM: median ${fmt(median(runs.map((r) => r.pushMs)))}); before: up to the ${hb.leaseSeconds} s heartbeat lease`,
    `    each run, in order: ${total.map((t) => Math.round(t)).join(", ")} ms`,
    `  Documents written per online user per hour:`,
    `    heartbeats every ${hb.intervalSeconds} s (${beatsPerHour} beats): before issue 20 ${beatsPerHour} (one per beat); now ${hb.writes} (measured over ${hb.beats} real calls of a simulated hour)`,
    `    presence events: a Connect refresh of ${REFRESH_USERS} users in one message wrote ${refreshWritesPerUser.toFixed(2)} document per user; with a refresh every 30 min (half of PRESENCE_LEASE_SECONDS=3600): 2, plus 1 per Connect or Disconnect; no heartbeat`,
    "",
  ].join("\n");
}
