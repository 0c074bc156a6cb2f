// When this instance may next send for a Firebase project. FCM throttles and fails per project, not
// per message: a 429 means "this project, slow down", so every send of that project in the
// instance waits (not each device on its own schedule, which would keep hammering FCM with the
// requests already queued). Instance-wide on purpose: concurrent batches in one instance share it.
// Hand-written: retry libraries pace one call at a time, not a group of calls behind one gate.

export interface PacingSettings {
  /** Backoff base of a 5xx/timeout/reset storm (doubles per consecutive failure). */
  retryBaseDelayMs: number;
  /** Longest backoff of a storm; a Retry-After from FCM is always honoured, however long. */
  retryMaxDelayMs: number;
}

/** FCM's quota refills per minute: a 429 without Retry-After waits that long. */
export const DEFAULT_THROTTLE_MS = 60_000;

export class ProjectPacer {
  private until = 0;
  private failures = 0;

  /** Epoch ms before which nothing is sent for this project (0: now). */
  openAt(): number {
    return this.until;
  }

  /** A 429: pause for what FCM asks (or a minute), jittered upwards so instances do not return together. */
  throttled(retryAfterMs: number | undefined, now: number, random = Math.random): number {
    this.failures++;
    const base = retryAfterMs ?? DEFAULT_THROTTLE_MS;
    return this.pauseUntil(now + base + Math.floor(random() * Math.min(base * 0.1, 5_000)));
  }

  /** A 5xx, timeout, reset, or the token endpoint failing: exponential backoff (equal jitter), at least Retry-After. */
  failed(retryAfterMs: number | undefined, now: number, settings: PacingSettings, random = Math.random): number {
    this.failures++;
    const ceiling = Math.min(settings.retryMaxDelayMs, settings.retryBaseDelayMs * 2 ** (this.failures - 1));
    const backoff = ceiling / 2 + Math.floor(random() * (ceiling / 2));
    return this.pauseUntil(now + Math.max(backoff, retryAfterMs ?? 0));
  }

  /** Any answer from FCM that is not a throttle or an outage ends the storm. */
  succeeded(): void {
    this.failures = 0;
  }

  private pauseUntil(at: number): number {
    this.until = Math.max(this.until, at);
    return this.until;
  }
}

const pacers = new Map<string, ProjectPacer>();

/** The pacer of a Firebase project in this instance. */
export function pacerFor(projectId: string): ProjectPacer {
  let pacer = pacers.get(projectId);
  if (!pacer) {
    pacer = new ProjectPacer();
    pacers.set(projectId, pacer);
  }
  return pacer;
}
