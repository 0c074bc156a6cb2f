// The events that follow a conversation, Read and Recall, as small batches of the batch machinery:
// the same claim, lease, checkpoints and final record (progress.ts explains how they keep the
// sends exactly-once), so each device gets a Read's clear or a Recall's replacement once per
// EventKey / recall, whatever Pub/Sub redelivers. What differs from a message's batch is where
// the devices come from: not the eligibility predicate, but the push log (the devices that were
// pushed: readEvent.ts, recallEvent.ts). A device pushed then is sent to now whatever its app
// state (a clear must reach a phone in the foreground too), unless it has left since (logged out,
// kicked, its token gone): `left-since-push`.
//   claim   the batch (a duplicate of a done one sends nothing)
//   decide  each target device from a fresh read of its user and certificate
//   send    through deliver.ts, with its retries and pauses; before a retry the devices are read again
//   record  every outcome and close the batch; devices that must wait (FCM throttling) make the
//           delivery fail after releasing the lease, and Pub/Sub's redelivery takes over
import { randomUUID } from "node:crypto";
import { Timestamp, type DocumentSnapshot } from "firebase-admin/firestore";
import * as logger from "firebase-functions/logger";
import { certRef, credentialsFromSnapshots, type LoadedCredentials } from "../certificates/store";
import { db } from "../common/firestore";
import { counted } from "../common/format";
import type { FanoutSettings } from "../config";
import type { FcmMessage } from "../fcm/message";
import { USERS, parseUserDevices, type Device } from "../sessions/schemas";
import type { SendJob } from "./attempt";
import { BatchBusyError, type BatchIdentity, type LeaseOptions } from "./claim";
import { CostCounter } from "./cost";
import { jobKey, sendAll, type Recheck, type Rechecked } from "./deliver";
import { claimBatch, type BatchProgress } from "./progress";
import { rememberCertificates } from "./recipientReads";
import { MAX_MSG_LIFETIME_SECONDS, type PushLogEntry } from "./schemas";

/** A device the push log says was pushed. */
export interface FollowUpTarget {
  uid: string;
  deviceId: string;
}

/**
 * What the device's message may depend on besides its token: the user's locale
 * (`users/{uid}.prefs.locale`) and the device as stored now (its platform, its unread count).
 */
export interface Recipient {
  uid: string;
  deviceId: string;
  locale: string | null;
  device: Device;
}

export interface FollowUpBatch {
  logId: string;
  /** Its push-log identity; `event` says which kind it is. */
  identity: BatchIdentity & { event: NonNullable<BatchIdentity["event"]> };
  targets: FollowUpTarget[];
  /** The FCM message for one device: the one place a follow-up's per-device send is built. */
  messageFor: (recipient: Recipient, token: string) => FcmMessage;
  /**
   * Runs once the batch is claimed (never for a duplicate), before its devices' messages are
   * built: a Read lowers the iPhones' badges here, so their silent updates carry the new ones.
   */
  prepare?: () => Promise<void>;
  /** Firestore read calls made to find the targets in the push log (counted in the batch's cost). */
  priorReads: number;
  /** The Pub/Sub message being processed, and when its event was published. */
  deliveryId: string;
  publishTimeMs: number;
}

export type FollowUpResult = { status: "done" | "duplicate" | "in-progress-elsewhere"; logId: string; counts?: { sent: number; skipped: number; failed: number } };

/** Thrown after the lease is released, with devices that must wait: Pub/Sub redelivers the event, which takes over. */
export class FollowUpWaitError extends Error {
  override readonly name = "FollowUpWaitError";
}

export async function processFollowUp(b: FollowUpBatch, settings: FanoutSettings, kek: () => Buffer): Promise<FollowUpResult> {
  const cost = new CostCounter();
  cost.firestoreReads += b.priorReads;
  const options: LeaseOptions = { owner: randomUUID(), deliveryId: b.deliveryId, leaseMs: settings.leaseMs, ttlMs: settings.pushLogTtlMs, checkpointEvery: settings.checkpointEvery };
  const claim = await claimBatch(b.logId, b.identity, options, cost);
  if (claim.status === "done") return { status: "duplicate", logId: b.logId };
  if (claim.status === "busy") {
    // Our own message's earlier delivery holds it (a crash, or a double delivery): redelivered later.
    if (claim.sameDelivery) throw new BatchBusyError(`${b.identity.event} ${b.logId} is still held by another delivery of this event (lease until ${claim.until.toISOString()}); retried later`);
    return { status: "in-progress-elsewhere", logId: b.logId };
  }
  if (claim.status !== "claimed") return { status: "duplicate", logId: b.logId };
  const { progress } = claim;
  const open = b.targets.filter((t) => !progress.has(t));
  if (open.length > 0) {
    await b.prepare?.();
    const decided = await decideTargets(b, open, kek, cost);
    for (const entry of decided.entries) await progress.record(entry);
    const startedAt = Date.now();
    const outcome = await sendAll(decided.jobs, {
      credentials: decided.loaded.credentials,
      settings,
      cost,
      expiresAt: b.publishTimeMs + settings.maxEventAgeMs,
      continuation: false,
      budgetEndsAt: startedAt + settings.invocationBudgetMs,
      readAt: decided.readAt,
      mayProceed: () => progress.mayProceed(),
      record: (entry) => progress.record(entry),
      recheck: (stale) => recheckTargets(b, stale, kek, cost),
    });
    if (outcome.leaseLost || progress.lost) {
      logger.warn(`offline push ${b.identity.event} taken over by another delivery: stopping`, { logId: b.logId });
      return { status: "in-progress-elsewhere", logId: b.logId };
    }
    if (outcome.open.length > 0) {
      await progress.release();
      throw new FollowUpWaitError(`${b.identity.event} ${b.logId}: ${counted(outcome.open.length, "device")} must wait for FCM; the event is redelivered and continues`);
    }
  }
  return finish(b, progress, cost);
}

async function finish(b: FollowUpBatch, progress: BatchProgress, cost: CostCounter): Promise<FollowUpResult> {
  await progress.finish();
  const counts = progress.counts();
  const reasons = progress.stats.reasonsLine();
  logger.info(`offline push ${b.identity.event} done: sent ${counts.sent}, skipped ${counts.skipped}, failed ${counts.failed}${reasons ? ` (${reasons})` : ""}`, {
    logId: b.logId,
    ...counts,
    cost: cost.snapshot(),
  });
  return { status: "done", logId: b.logId, counts };
}

interface Read {
  devices: Map<string, Record<string, Device>>;
  locales: Map<string, string | null>;
  loaded: LoadedCredentials;
  readAt: number;
}

/** The target users' documents (one getAll), then the certificates their tokens name (one more). */
async function readTargets(uids: string[], kek: () => Buffer, cost: CostCounter): Promise<Read> {
  const readAt = Date.now();
  cost.firestoreReads++;
  const snaps = uids.length > 0 ? await db().getAll(...uids.map((uid) => db().collection(USERS).doc(uid))) : [];
  const devices = new Map<string, Record<string, Device>>();
  const locales = new Map<string, string | null>();
  for (const snap of snaps) {
    devices.set(snap.id, devicesOf(snap));
    const locale: unknown = snap.exists ? snap.get("prefs.locale") : undefined;
    locales.set(snap.id, typeof locale === "string" ? locale : null);
  }
  const certificateIds = [...new Set([...devices.values()].flatMap((m) => Object.values(m).flatMap((d) => (d.token ? [d.token.certificateId] : []))))];
  let loaded: LoadedCredentials = { credentials: new Map(), unreadable: new Map() };
  if (certificateIds.length > 0) {
    cost.firestoreReads++;
    loaded = credentialsFromSnapshots(await db().getAll(...certificateIds.map(certRef)), kek);
    rememberCertificates(certificateIds);
  }
  return { devices, locales, loaded, readAt };
}

function devicesOf(snap: DocumentSnapshot): Record<string, Device> {
  try {
    return parseUserDevices(snap.exists ? snap.data() : undefined);
  } catch {
    logger.error("unreadable users document: its devices get no follow-up", { uid: snap.id });
    return Object.create(null) as Record<string, Device>;
  }
}

type Judged = { ok: true; job: SendJob } | { ok: false; entry: PushLogEntry };

/** One target device as stored now: a send job, or why not. `sessionId`: a retry requires the session the job was made in. */
function judge(b: FollowUpBatch, t: FollowUpTarget, read: Read, sessionId?: string): Judged {
  const at = Timestamp.now();
  const device = read.devices.get(t.uid)?.[t.deviceId];
  const left = (what: string): Judged => ({ ok: false, entry: { outcome: "skipped", uid: t.uid, deviceId: t.deviceId, reason: "left-since-push", detail: `not sent: the device ${what} since it was pushed`, at } });
  if (!device) return left("was removed");
  if (sessionId !== undefined && device.sessionId !== sessionId) return left("logged in again");
  if (device.session !== "logged-in") return left(device.session === "kicked" ? "was kicked offline" : "logged out");
  const token = device.token;
  if (!token) return left("has no push token any more (it moved to another account or device, or FCM refused it)");
  const why = read.loaded.unreadable.get(token.certificateId);
  if (why !== undefined) {
    return { ok: false, entry: { outcome: "failed", uid: t.uid, deviceId: t.deviceId, reason: "certificate-unreadable", detail: `push certificate ${token.certificateId} cannot be used: ${why}`, certificateId: token.certificateId, error: null, attempts: 0, at } };
  }
  if (!read.loaded.credentials.has(token.certificateId)) {
    return { ok: false, entry: { outcome: "skipped", uid: t.uid, deviceId: t.deviceId, reason: "certificate-missing", detail: `the device's token is bound to push certificate ${token.certificateId}, which does not exist`, at } };
  }
  const message = b.messageFor({ uid: t.uid, deviceId: t.deviceId, locale: read.locales.get(t.uid) ?? null, device }, token.token);
  return {
    ok: true,
    job: { uid: t.uid, deviceId: t.deviceId, sessionId: device.sessionId, certificateId: token.certificateId, tokenHash: token.tokenHash, message, lifetimeEndsAt: b.publishTimeMs + MAX_MSG_LIFETIME_SECONDS * 1000 },
  };
}

async function decideTargets(b: FollowUpBatch, targets: FollowUpTarget[], kek: () => Buffer, cost: CostCounter) {
  const read = await readTargets([...new Set(targets.map((t) => t.uid))], kek, cost);
  const jobs: SendJob[] = [];
  const entries: PushLogEntry[] = [];
  for (const t of targets) {
    const judged = judge(b, t, read);
    if (judged.ok) jobs.push(judged.job);
    else entries.push(judged.entry);
  }
  return { jobs, entries, loaded: read.loaded, readAt: read.readAt };
}

/** Before a retry: the devices read again; a device that left meanwhile is not sent to, a refreshed token is. */
async function recheckTargets(b: FollowUpBatch, stale: SendJob[], kek: () => Buffer, cost: CostCounter): Promise<Rechecked> {
  const read = await readTargets([...new Set(stale.map((j) => j.uid))], kek, cost);
  const jobs = new Map<string, Recheck>();
  for (const job of stale) jobs.set(jobKey(job), judge(b, job, read, job.sessionId));
  return { jobs, credentials: read.loaded.credentials, readAt: read.readAt };
}
