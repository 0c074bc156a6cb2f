// A batch's iPhones get their badges (badges/store.ts) between deciding and the first send: one
// transaction for all of them, so each message carries the count it committed. Android and web
// devices pay nothing: a batch without an iPhone to send to makes no call.
import * as logger from "firebase-functions/logger";
import { assignBadges, badgeKey, giveBadgesBack } from "../badges/store";
import type { Device } from "../sessions/schemas";
import type { SendJob } from "./attempt";
import { withToken } from "./apnsMessage";
import type { CostCounter } from "./cost";
import { conversationOf } from "./message";
import type { PushContent, PushLogEntry } from "./schemas";

interface BadgeInput {
  content: PushContent;
  cost: CostCounter;
  settings: { pushLogTtlMs: number };
}

/**
 * Sets each iPhone job's badge (in its message and on the job, for a retry to a refreshed token).
 * Should the transaction fail, the iPhones are sent without a badge: a push without its count is
 * better than no push (the app's next unreadCount sets the count right).
 */
export async function assignIosBadges(jobs: SendJob[], judged: Array<{ uid: string; device: Device }>, input: BadgeInput): Promise<void> {
  const ios = jobs.filter((j) => j.platform === "ios");
  if (ios.length === 0) return;
  const devices = new Map(judged.map(({ uid, device }) => [badgeKey(uid, device.deviceId), device]));
  const conversation = conversationOf(input.content);
  const requests = ios.flatMap((job) => {
    const device = devices.get(badgeKey(job.uid, job.deviceId));
    return device ? [{ uid: job.uid, device, conversation, msgKey: input.content.MsgKey }] : [];
  });
  let badges = new Map<string, number>();
  input.cost.firestoreReads++;
  input.cost.firestoreWrites++;
  try {
    badges = await assignBadges(requests, input.settings.pushLogTtlMs);
  } catch (err) {
    logger.error("iOS badges could not be counted: the iPhones of this batch are sent without a badge", { msgKey: input.content.MsgKey, devices: ios.length, error: String(err) });
  }
  for (const job of ios) {
    const badge = badges.get(badgeKey(job.uid, job.deviceId));
    const token = job.message.token ?? "";
    job.message = withToken(job.message, token, badge);
    if (badge !== undefined) job.badge = badge;
    else delete job.badge;
  }
}

/**
 * A badge-carrying push that was not sent after all (failed for good, or not sent after a re-read:
 * logged out, refreshed away) never showed: its count is given back at the end of the sends, best effort.
 */
export class BadgeReturns {
  private readonly withBadge = new Map<string, SendJob>();
  private readonly failed: Array<{ uid: string; deviceId: string; conversation: string; msgKey: string }> = [];

  constructor(
    jobs: SendJob[],
    private readonly content: PushContent,
  ) {
    for (const job of jobs) if (job.badge !== undefined) this.withBadge.set(badgeKey(job.uid, job.deviceId), job);
  }

  note(entry: PushLogEntry): void {
    if (this.withBadge.size === 0 || entry.outcome === "sent" || entry.deviceId === null) return;
    if (!this.withBadge.has(badgeKey(entry.uid, entry.deviceId))) return;
    this.failed.push({ uid: entry.uid, deviceId: entry.deviceId, conversation: conversationOf(this.content), msgKey: this.content.MsgKey });
  }

  async giveBack(cost: CostCounter): Promise<void> {
    if (this.failed.length === 0) return;
    cost.firestoreReads++;
    cost.firestoreWrites++;
    await giveBadgesBack(this.failed.splice(0));
  }
}
