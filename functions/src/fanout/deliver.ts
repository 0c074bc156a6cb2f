// FCM sends for one batch, grouped by certificate (each is its own Firebase project and OAuth
// token, cached until shortly before expiry), over the instance's one HTTP/2 connection with
// bounded concurrency, each FCM answer with its documented reaction:
//   UNREGISTERED / INVALID_ARGUMENT naming the token  -> that token is unbound
//   SENDER_ID_MISMATCH                                -> the token is unbound, the log names the certificate
//   THIRD_PARTY_AUTH_ERROR                            -> that token's failure (APNs / web push credentials)
//   401/403, or the token endpoint refusing the key   -> certificate flagged unhealthy, its other sends here stop
//   429                                               -> the project's sends pause for Retry-After (or a minute)
//   5xx / timeouts / resets / token endpoint down     -> the project's sends back off, then resume
// Nothing retryable is ever recorded as failed while the event is young: devices still open go on
// in waves. Before each retry, and before any first send whose device was read longer ago than
// FANOUT_MAX_READ_AGE_MS, the devices and their certificates are read again (one getAll): a device
// that logged out, was kicked or whose token moved in the meantime is dropped, so a retry never
// reaches the next owner of a phone; a token the same device refreshed gets the retry; a deleted
// certificate stops its devices, a replaced one is used with its new key. When the devices still
// open must wait longer than FANOUT_MAX_INLINE_WAIT_SECONDS (or the invocation's time is up), they
// are returned to the caller, which hands the batch to Cloud Tasks: no function waits that long.
import { Timestamp } from "firebase-admin/firestore";
import type { CertificateCredentials } from "../certificates/store";
import { fcmEndpoints } from "../fcm/endpoints";
import { CertificateSender, LeaseLostError, attemptOne, describe, errorRecord, recentlyAccepted, type AttemptContext, type OpenJob, type SendJob } from "./attempt";
import type { CostCounter } from "./cost";
import { pacerFor, type PacingSettings } from "./pacer";
import type { PushLogEntry } from "./schemas";

export interface SendSettings extends PacingSettings {
  sendConcurrency: number;
  /** A pause longer than this is not waited out here: the devices are handed back (see SendOutcome). */
  maxInlineWaitMs: number;
  /** A device read longer ago than this is read again before its send. */
  maxReadAgeMs: number;
}

/** What a fresh read of a device says about a job: send it (as it is now: its token may have been refreshed), or its outcome. */
export type Recheck = { ok: true; job: SendJob } | { ok: false; entry: PushLogEntry };

/** A fresh read of some jobs' devices, and of the certificates they name now. */
export interface Rechecked {
  /** Keyed by `jobKey`. */
  jobs: Map<string, Recheck>;
  /** The certificates the sendable jobs name, as stored now. */
  credentials: Map<number, CertificateCredentials>;
  /** When the read was made (epoch ms). */
  readAt: number;
}

export interface SendContext {
  credentials: Map<number, CertificateCredentials>;
  settings: SendSettings;
  cost: CostCounter;
  /** No attempt starts after this (epoch ms): the event's MsgLifeTime or MAX_EVENT_AGE_SECONDS. */
  expiresAt: number;
  /**
   * A continuation: its first wave is no first attempt, so an expired event sends nothing. (A first
   * attempt always goes: a MsgLifeTime of 0 means "now or never", and now is allowed.)
   */
  continuation: boolean;
  /** No wave starts after this (epoch ms): the invocation's time budget. */
  budgetEndsAt: number;
  /** When the jobs' devices were read (epoch ms). */
  readAt: number;
  /** Checked before every FCM request (the batch lease); false stops the sends. */
  mayProceed: () => Promise<boolean>;
  /** Receives each device's outcome as soon as it is known. */
  record: (entry: PushLogEntry) => Promise<void>;
  /** Reads the jobs' devices and certificates again (one read, more only for a certificate not seen yet). */
  recheck: (jobs: SendJob[]) => Promise<Rechecked>;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface SendOutcome {
  leaseLost: boolean;
  /** Devices without an outcome that must wait (or the invocation's time ran out): to continue later. */
  open: SendJob[];
  /** With `open`: the earliest time FCM may be asked again. */
  notBefore: number | null;
  /** With `open`: why they were handed back: a pause longer than FANOUT_MAX_INLINE_WAIT_SECONDS, or the time budget. */
  handBack?: "pause" | "budget";
}

export const jobKey = (j: { uid: string; deviceId: string }): string => `${j.uid}\u0000${j.deviceId}`;

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Sends every job in waves until each has an outcome, the lease is lost, or the invocation's time is up. */
export async function sendAll(jobs: SendJob[], context: SendContext): Promise<SendOutcome> {
  const waves = new Waves(jobs, context);
  while (waves.going) {
    const next = await waves.next();
    if (!Array.isArray(next)) return next;
    if (next.length > 0) await waves.send(await waves.recheck(next));
  }
  return waves.result();
}

/** One batch's sends, from wave to wave: the devices still open, and what stopped them. */
class Waves {
  private open: OpenJob[];
  private stop = false;
  private leaseLost = false;
  private firstError: unknown;
  private firstWave = true;
  private readonly ctx: SendContext & AttemptContext;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly senders = new Map<number, CertificateSender>();

  constructor(jobs: SendJob[], context: SendContext) {
    // Resolved once per batch, not per request (in the emulator it validates two URLs).
    this.ctx = { ...context, apiOrigin: fcmEndpoints().apiOrigin };
    this.now = context.now ?? Date.now;
    this.sleep = context.sleep ?? defaultSleep;
    for (const [id, cred] of context.credentials) this.senders.set(id, new CertificateSender(cred, context.cost));
    this.open = jobs.map((job) => ({ job, readAt: context.readAt, attempts: 0, tried: false, last: null, lastTokenEndpointError: null }));
  }

  get going(): boolean {
    return this.open.length > 0 && !this.stop;
  }

  private pacerOf(job: SendJob) {
    return pacerFor(this.ctx.credentials.get(job.certificateId)?.projectId ?? `certificate-${job.certificateId}`);
  }

  /**
   * The devices that may be sent now (none after waiting out a pause); or the end of the sends: the
   * invocation's time is up (the devices still open are returned for a continuation), or the lease
   * was lost. Devices the event's end leaves unsent are recorded as expired.
   */
  async next(): Promise<OpenJob[] | SendOutcome> {
    const t = this.now();
    // The first wave of a new batch always goes (see `continuation`); retries only while the event lives.
    if ((!this.firstWave || this.ctx.continuation) && t >= this.ctx.expiresAt) return this.expireAll();
    const ready = this.open.filter((o) => this.pacerOf(o.job).openAt() <= t);
    if (ready.length === 0) return this.waitOutPause();
    if (t > this.ctx.budgetEndsAt) return this.handBack(t, "budget");
    return ready;
  }

  private async expireAll(): Promise<OpenJob[]> {
    for (const o of this.open) await this.ctx.record(expiredEntry(o, this.ctx.expiresAt));
    this.open = [];
    return [];
  }

  /**
   * Every project with open devices is paused: wait for the first to reopen, if that is soon
   * (FANOUT_MAX_INLINE_WAIT_SECONDS); a longer pause is not waited out in a function: the devices
   * are handed back, and Cloud Tasks brings the batch back when FCM may be asked again.
   */
  private async waitOutPause(): Promise<OpenJob[] | SendOutcome> {
    const wake = Math.min(...this.open.map((o) => this.pacerOf(o.job).openAt()));
    // FCM asked to wait past the event's end: recorded now rather than after a pointless wait.
    if (wake >= this.ctx.expiresAt) return this.expireAll();
    if (wake - this.now() > this.ctx.settings.maxInlineWaitMs) return this.handBack(wake, "pause");
    if (wake > this.ctx.budgetEndsAt) return this.handBack(wake, "budget");
    // In slices, renewing the lease, so that a long pause never lets it lapse.
    while (this.now() < wake) {
      await this.sleep(Math.min(wake - this.now(), 15_000));
      if (!(await this.ctx.mayProceed())) return { leaseLost: true, open: [], notBefore: null };
    }
    return [];
  }

  private handBack(notBefore: number, why: "pause" | "budget"): SendOutcome {
    return { leaseLost: false, open: this.open.map((o) => o.job), notBefore, handBack: why };
  }

  /**
   * The devices of a wave whose read is too old to send on: a retry (seconds or minutes after the
   * read), or a first send that waited (a slow sender-name lookup, a checkpoint, a slow probe, the
   * instance's connection busy) longer than FANOUT_MAX_READ_AGE_MS. They are read again first, with
   * their certificates: a device that logged out, was kicked or whose token moved is dropped with
   * its outcome, one whose token was refreshed is sent to its new token, and a replaced
   * certificate's new key is used.
   */
  async recheck(ready: OpenJob[]): Promise<OpenJob[]> {
    const t = this.now();
    const stale = ready.filter((o) => o.tried || t - o.readAt > this.ctx.settings.maxReadAgeMs);
    if (stale.length === 0) return ready;
    const fresh = await this.ctx.recheck(stale.map((o) => o.job));
    this.useCredentials(fresh.credentials);
    const dropped = new Set<OpenJob>();
    for (const o of stale) {
      const r = fresh.jobs.get(jobKey(o.job));
      if (!r) continue;
      if (r.ok) {
        o.job = r.job;
        o.readAt = fresh.readAt;
      } else {
        await this.ctx.record(r.entry);
        dropped.add(o);
      }
    }
    if (dropped.size === 0) return ready;
    this.open = this.open.filter((o) => !dropped.has(o));
    return ready.filter((o) => !dropped.has(o));
  }

  /** Certificates as read again: a new or replaced one (another key version) gets a sender of its own (a fresh access token). */
  private useCredentials(fresh: Map<number, CertificateCredentials>): void {
    for (const [id, cred] of fresh) {
      const known = this.ctx.credentials.get(id);
      if (known && known.version === cred.version && known.privateKeyId === cred.privateKeyId) continue;
      this.ctx.credentials.set(id, cred);
      this.senders.set(id, new CertificateSender(cred, this.ctx.cost));
    }
  }

  /** One wave: each certificate's probe first, then the others with bounded concurrency (read again first if the probes took long). */
  async send(wave: OpenJob[]): Promise<void> {
    const inWave = new Set(wave);
    const next: OpenJob[] = this.open.filter((o) => !inWave.has(o));
    const probes = this.probesOf(wave);
    this.firstWave = false;
    await Promise.all([...probes].map((o) => this.attempt(o, next)));
    const waiting = wave.filter((o) => !probes.has(o));
    // Those dropped by the read are recorded and never attempted: they do not reach `next`.
    const rest = this.stop || waiting.length === 0 ? waiting : await this.recheck(waiting);
    let i = 0;
    const worker = async () => {
      while (i < rest.length) await this.attempt(rest[i++] as OpenJob, next);
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(this.ctx.settings.sendConcurrency, rest.length)) }, worker));
    this.open = next;
  }

  /**
   * Each certificate's first send of a wave goes alone (all certificates in parallel): it fetches
   * the access token and proves FCM accepts the certificate and is not throttling it, so a refused
   * or throttled certificate costs one request per wave, not one per device in flight.
   * A certificate FCM accepted in this instance moments ago needs no probe: its first wave goes
   * out at once (the chat-speed case: a warm instance, a healthy key).
   */
  private probesOf(wave: OpenJob[]): Set<OpenJob> {
    const probes = new Set<OpenJob>();
    const seen = new Set<number>();
    for (const o of wave) {
      if (seen.has(o.job.certificateId)) continue;
      seen.add(o.job.certificateId);
      const cred = this.ctx.credentials.get(o.job.certificateId);
      if (this.firstWave && cred && recentlyAccepted(cred, this.now())) continue;
      probes.add(o);
    }
    return probes;
  }

  /** One device's attempt; without an outcome it goes into `next`, the next wave's. */
  private async attempt(o: OpenJob, next: OpenJob[]): Promise<void> {
    // Stopped, or paused by an answer earlier in this wave: left for later, unsent.
    if (this.stop || this.pacerOf(o.job).openAt() > this.now()) {
      next.push(o);
      return;
    }
    try {
      const a = await attemptOne(o, this.senders.get(o.job.certificateId), this.ctx, this.now);
      if ("done" in a) await this.ctx.record(a.done);
      else if ("stale" in a) next.push(o); // its read got too old before it could be sent: read again in the next wave
      else {
        next.push({
          job: o.job,
          readAt: o.readAt,
          attempts: o.attempts + (a.requested ? 1 : 0),
          tried: true,
          last: a.retry ?? o.last,
          lastTokenEndpointError: a.tokenEndpoint ?? o.lastTokenEndpointError,
        });
      }
    } catch (err) {
      this.stop = true;
      next.push(o);
      if (err instanceof LeaseLostError) this.leaseLost = true;
      else this.firstError ??= err;
    }
  }

  result(): SendOutcome {
    if (this.firstError !== undefined) throw this.firstError;
    return { leaseLost: this.leaseLost, open: this.leaseLost ? [] : this.open.map((o) => o.job), notBefore: null };
  }
}

function expiredEntry(o: OpenJob, expiresAt: number): PushLogEntry {
  const last = o.last ? `; FCM's last answer: ${describe(o.last)}` : o.lastTokenEndpointError ? `; Google's token endpoint: ${o.lastTokenEndpointError}` : "";
  return {
    outcome: "failed",
    uid: o.job.uid,
    deviceId: o.job.deviceId,
    reason: "expired",
    detail: `not accepted by FCM before the event's end (${new Date(expiresAt).toISOString()}, MsgLifeTime or MAX_EVENT_AGE_SECONDS) after ${o.attempts} attempt(s)${last}`,
    certificateId: o.job.certificateId,
    error: o.last ? errorRecord(o.last) : null,
    attempts: o.attempts,
    at: Timestamp.now(),
  };
}
