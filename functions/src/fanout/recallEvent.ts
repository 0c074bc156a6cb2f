// A Recall: `From_Account` took message `MsgKey` back. Every device that was pushed it (the sent
// outcomes of the message record's current epoch: pushLogForMessage) gets a notification with the
// same tag, in its user's locale ("message recalled": localeTexts.ts), so that it replaces the
// original in the shade; devices not pushed get nothing. One recall batch per batch of the message
// (pushLog/{batchLogId}__recall, the same uids): exactly once per device, and a group of 10,000 is
// recalled in batches of the size it was pushed in. A Recall from anyone but the message's sender
// is refused (functions.ts records it as rejected).
import type { FanoutSettings } from "../config";
import { counted } from "../common/format";
import { recallApnsMessage, recallMessage } from "./followUpMessage";
import { processFollowUp, type FollowUpResult } from "./followUp";
import { textsFor, type LocaleTexts } from "./localeTexts";
import { conversationOf } from "./message";
import { batchRef, pushLogForMessage, readBatchEntries } from "./pushLog";
import type { BatchLog, RecallEvent } from "./schemas";
import { senderDisplayName } from "./senderName";

/** Recall batches processed at once (each one claim, one read, its sends). */
const RECALL_CONCURRENCY = 4;

export const recallLogId = (batchLogId: string) => `${batchLogId}__recall`;

/** Why a Recall is refused: the rejected reason, and the detail the push log keeps. */
export class RecallRefused extends Error {
  override readonly name = "RecallRefused";
  constructor(
    readonly reason: "recall-not-sender" | "recall-unknown-message",
    detail: string,
  ) {
    super(detail);
  }
}

/** Thrown while a batch of the message is still running: the Recall is redelivered once it is done. */
export class RecallTooEarlyError extends Error {
  override readonly name = "RecallTooEarlyError";
}

type MessageBatch = BatchLog & { id: string };

export async function processRecall(event: RecallEvent, d: { eventId: string; publishTimeMs: number }, settings: FanoutSettings, kek: () => Buffer, texts: LocaleTexts): Promise<FollowUpResult[]> {
  const { docs } = await pushLogForMessage(event.MsgKey);
  const batches = docs.filter((doc): doc is MessageBatch => doc.kind === "batch" && doc.event === undefined);
  if (batches.length === 0) {
    throw new RecallRefused("recall-unknown-message", `the push log has no batch of ${event.MsgKey} (never pushed, or older than PUSH_LOG_TTL_DAYS): nothing to recall`);
  }
  const sender = (batches[0] as MessageBatch).from;
  if (sender !== event.From_Account) {
    throw new RecallRefused("recall-not-sender", `${event.From_Account} may not recall ${event.MsgKey}: it was sent by ${sender}`);
  }
  const running = batches.filter((b) => b.state !== "done").length;
  // Sends still to come would not be recalled: the Recall waits for them (Pub/Sub redelivers it).
  if (running > 0) throw new RecallTooEarlyError(`${event.MsgKey} is still being pushed (${counted(running, "batch", "batches")} running): its Recall is retried once they are done`);
  const title = (await senderDisplayName(sender)) ?? sender;
  const results: FollowUpResult[] = [];
  for (let i = 0; i < batches.length; i += RECALL_CONCURRENCY) {
    const chunk = batches.slice(i, i + RECALL_CONCURRENCY);
    // The message's record and batches (2 read calls) are counted with its first recall batch.
    results.push(...(await Promise.all(chunk.map((b, k) => recallBatch(b, event, d, settings, kek, texts, title, i + k === 0 ? 2 : 0)))));
  }
  return results;
}

async function recallBatch(
  b: MessageBatch,
  event: RecallEvent,
  d: { eventId: string; publishTimeMs: number },
  settings: FanoutSettings,
  kek: () => Buffer,
  texts: LocaleTexts,
  title: string,
  priorReads: number,
): Promise<FollowUpResult> {
  const entries = await readBatchEntries(batchRef(b.id));
  const targets = entries.flatMap((e) => (e.outcome === "sent" ? [{ uid: e.uid, deviceId: e.deviceId }] : []));
  const conversation = b.conversation ?? conversationOf({ MsgKey: b.msgKey, From_Account: b.from, MsgBody: [] });
  return processFollowUp(
    {
      logId: recallLogId(b.id),
      identity: {
        msgKey: b.msgKey,
        from: b.from,
        ...(b.epoch !== undefined ? { epoch: b.epoch } : {}),
        ...(b.generation !== undefined ? { generation: b.generation } : {}),
        batchIndex: b.batchIndex,
        batchCount: b.batchCount,
        eventId: d.eventId,
        uids: b.uids,
        notes: [`recall of ${b.msgKey} by ${event.From_Account}: ${counted(targets.length, "device")} of batch ${b.batchIndex + 1} were pushed it`],
        conversation,
        event: "recall",
        publishTime: new Date(d.publishTimeMs).toISOString(),
      },
      targets,
      priorReads: priorReads + 1, // its batch's outcomes
      messageFor: (recipient, token) => {
        const recall = { msgKey: b.msgKey, sender: b.from, conversation, title, body: textsFor(texts, recipient.locale).texts.recalled };
        return recipient.device.platform === "ios" ? recallApnsMessage(token, recall) : recallMessage(token, recall);
      },
      deliveryId: d.eventId,
      publishTimeMs: d.publishTimeMs,
    },
    settings,
    kek,
  );
}
