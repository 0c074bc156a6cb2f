// The per-sender rate limit of sendMessage: a fixed one-minute window per account, kept in
// sendLimits/{uid} (server-only). One transaction per call: one read and one write, as the
// limiter may cost no more. A fixed window lets a burst of twice the limit straddle two minutes;
// for an abuse guard that is enough, and a sliding log would cost a write per recorded send.
import { Timestamp } from "firebase-admin/firestore";
import { z } from "zod";
import { DomainError } from "../common/errors";
import { db, runBoundedTransaction } from "../common/firestore";

export const SEND_LIMITS = "sendLimits";
const WINDOW_MS = 60_000;

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
    tx.set(ref, current ? { windowStart: current.windowStart, count: current.count + 1 } : { windowStart: Timestamp.fromMillis(nowMs), count: 1 });
  });
}
