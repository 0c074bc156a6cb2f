// The per-sender rate limit of sendMessage: a fixed one-minute window per account, kept in
// sendLimits/{uid} (server-only; it expires a day after its window). One transaction per call:
// one read and one write, as the limiter may cost no more. A fixed window lets a burst of twice the limit straddle two minutes;
// for an abuse guard that is enough, and a sliding log would cost a write per recorded send.
import { Timestamp } from "firebase-admin/firestore";
import { z } from "zod";
import { DomainError } from "../common/errors";
import { db, runBoundedTransaction } from "../common/firestore";

export const SEND_LIMITS = "sendLimits";
const WINDOW_MS = 60_000;
/** A window's record is useless once it has passed; it is deleted a day later. */
const LIMIT_EXPIRES_AFTER_MS = 86_400_000;

const LimitDocSchema = z.object({ windowStart: z.instanceof(Timestamp), count: z.number().int().nonnegative() });

/** Counts one send for `uid`; throws `resource-exhausted` (saying when to retry) beyond `perMinute`. */
export async function takeSendAllowance(uid: string, perMinute: number, nowMs = Date.now()): Promise<void> {
  const ref = db().collection(SEND_LIMITS).doc(uid);
  await runBoundedTransaction(async (tx) => {
    const parsed = LimitDocSchema.safeParse((await tx.get(ref)).data());
    const current = parsed.success && nowMs - parsed.data.windowStart.toMillis() < WINDOW_MS ? parsed.data : null;
    if (current && current.count >= perMinute) {
      const retryInS = Math.ceil((current.windowStart.toMillis() + WINDOW_MS - nowMs) / 1000);
      throw new DomainError("resource-exhausted", `sendMessage is limited to ${perMinute} calls a minute per sender (SEND_MESSAGE_PER_MINUTE): retry in ${retryInS} s`, {
        limit: perMinute,
        retryAfterSeconds: retryInS,
      });
    }
    const windowStart = current ? current.windowStart : Timestamp.fromMillis(nowMs);
    // A sender who stops sending leaves nothing behind: the TTL policy on sendLimits.expireAt deletes it.
    tx.set(ref, { windowStart, count: (current?.count ?? 0) + 1, expireAt: Timestamp.fromMillis(windowStart.toMillis() + LIMIT_EXPIRES_AFTER_MS) });
  });
}
