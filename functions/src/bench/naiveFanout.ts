// The benchmark's baseline, for `npm run bench` only: the simplest fan-out one could write, run on
// the same emulators, Firestore data, fake FCM and FCM sender as the real one, so that the bench
// can print how much the real fan-out's promises cost. One function, one getAll of every
// recipient, pushEligibility, one read of the certificates, every eligible device sent at once
// over the instance's HTTP/2 connection, the same notification (title included) as the real one,
// built and validated once per message.
// No push log, no exactly-once, no retries, no batches.
//
// Never deployed: index.ts exports it only inside the Functions emulator, where it listens on a
// topic that only the bench publishes to.
import { onMessagePublished } from "firebase-functions/v2/pubsub";
import { loadCredentials } from "../certificates/store";
import { db } from "../common/firestore";
import { keyEncryptionKey, keyEncryptionKeySecret, pushPlaceholderTextsRaw } from "../config";
import { fcmEndpoints } from "../fcm/endpoints";
import { cachedAccessToken, fcmPool } from "../fcm/runtime";
import { sendFcmMessage } from "../fcm/send";
import { eligibilityConfig, pushEligibility } from "../sessions/eligibility";
import { USERS, parseUserDevices } from "../sessions/schemas";
import { TOKEN_RESERVE, checkedFcmMessage, messageDecision, placeholdersFrom } from "../fanout/message";
import { recipientsOf } from "../fanout/recipients";
import { withSenderTitle } from "../fanout/senderName";
import { PushEventSchema, contentOf } from "../fanout/schemas";

export const BENCH_NAIVE_TOPIC = "bench-naive-push";
export const BENCH_NAIVE_RESULTS = "benchNaive";

export const benchNaiveFanout = onMessagePublished({ topic: BENCH_NAIVE_TOPIC, secrets: [keyEncryptionKeySecret], memory: "512MiB", timeoutSeconds: 540 }, async (event) => {
  const startedAt = Date.now();
  const ev = PushEventSchema.parse(JSON.parse(Buffer.from(event.data.message.data ?? "", "base64").toString("utf8")));
  const content = contentOf(ev);
  const placeholders = placeholdersFrom(pushPlaceholderTextsRaw());
  const uids = recipientsOf(ev).filter((uid) => uid !== ev.From_Account);
  let sent = 0;
  let failed = 0;
  if (messageDecision(content, placeholders).push && uids.length > 0) {
    // The same notification as the real fan-out's: without a Title, the sender's display name,
    // looked up (with the same per-instance cache) while the recipients are read.
    const [snaps, titled] = await Promise.all([db().getAll(...uids.map((uid) => db().collection(USERS).doc(uid))), withSenderTitle(content)]);
    const named = messageDecision(titled, placeholders);
    const text = named.push ? { title: named.title, body: named.body } : null;
    const devices = snaps.flatMap((snap) => Object.values(parseUserDevices(snap.exists ? snap.data() : undefined)));
    const certificateIds = [...new Set(devices.flatMap((d) => (d.token ? [d.token.certificateId] : [])))];
    const { credentials } = await loadCredentials(certificateIds, keyEncryptionKey);
    const ctx = eligibilityConfig((id) => credentials.has(id));
    const now = new Date();
    const { apiOrigin } = fcmEndpoints();
    // Built, measured and validated once per message, as the real fan-out does once per batch:
    // each device's message is that one with its token (a longer token is checked on its own).
    const template = text ? checkedFcmMessage(content, text, TOKEN_RESERVE) : null;
    await Promise.all(
      devices.map(async (device) => {
        const token = device.token;
        const cred = token ? credentials.get(token.certificateId) : undefined;
        if (!text || !token || !cred || !pushEligibility(device, now, ctx).eligible) return;
        const checked = template?.ok && token.token.length <= TOKEN_RESERVE.length ? { ok: true as const, message: { ...template.message, token: token.token } } : checkedFcmMessage(content, text, token.token);
        if (!checked.ok) return;
        const { accessToken } = await cachedAccessToken(cred);
        const res = await sendFcmMessage({ apiOrigin, projectId: cred.projectId, accessToken, message: checked.message }, fcmPool);
        if (res.ok) sent++;
        else failed++;
      }),
    );
  }
  // The bench waits for this document (and reads the instance's peak memory from it).
  await db()
    .collection(BENCH_NAIVE_RESULTS)
    .doc(encodeURIComponent(ev.MsgKey))
    .set({ msgKey: ev.MsgKey, sent, failed, ms: Date.now() - startedAt, peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024), doneAt: new Date() });
});
