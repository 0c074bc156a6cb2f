// Deciding, for each device of the recipients read, whether it gets a send, is skipped (and why)
// or failed (and why): the sessions' pushEligibility (with the recipient's preferences for this
// message's conversation, read in the same users document), the certificates its token names, and
// the message, built once per batch and locale in use (never per device). And deciding again from a
// fresh read before a retry or a late first send (recheckDevices).
import { Timestamp, type DocumentSnapshot } from "firebase-admin/firestore";
import * as logger from "firebase-functions/logger";
import { certRef, credentialsFromSnapshots, type CertificateCredentials, type LoadedCredentials } from "../certificates/store";
import { db } from "../common/firestore";
import type { FcmMessage } from "../fcm/message";
import { messagePreferences } from "../preferences/read";
import { eligibilityConfig, pushEligibility, type EligibilityContext, type RecipientMessage } from "../sessions/eligibility";
import { USERS, parseUserDevices, type Device, type Platform } from "../sessions/schemas";
import type { FanoutSettings } from "../config";
import type { CostCounter } from "./cost";
import type { SendJob } from "./attempt";
import { jobKey, type Recheck, type Rechecked } from "./deliver";
import { BADGE_RESERVE, checkedApnsMessage, leavesBadge, withToken } from "./apnsMessage";
import { assignIosBadges } from "./iosBadges";
import { textsFor, type LocaleTexts } from "./localeTexts";
import { isMentioned, type Mentions } from "./mentions";
import { TOKEN_RESERVE, checkedFcmMessage, messageDecision, type CheckedMessage, type MessageDecision, type Placeholders } from "./message";
import type { BatchProgress } from "./progress";
import { loadCertificates, readMask, rememberCertificates, type RecipientRead } from "./recipientReads";
import { MAX_MSG_LIFETIME_SECONDS, type PushContent, type PushLogEntry, type SkipReason } from "./schemas";

/** What deciding needs of the batch. */
export interface DecideInput {
  content: PushContent;
  publishTimeMs: number;
  /** Decided from the message alone: it is pushed. Its text gives way to the one with the sender's name. */
  decision: Extract<MessageDecision, { push: true }>;
  /** The content with the sender's display name as its title, when it has none (looked up only for a batch with a device to send to). */
  titled: () => Promise<PushContent>;
  placeholders: Placeholders;
  /** The texts per locale (PUSH_PLACEHOLDER_TEXTS): a recipient's prefs.locale picks; without it, `placeholders`. */
  texts?: LocaleTexts;
  /** The message's conversation (message.ts, conversationOf): the preference it reads. */
  conversation: string;
  mentions: Mentions;
  kek: () => Buffer;
  cost: CostCounter;
  now: () => number;
  /** IOS_BADGES and the push log's TTL (the badge documents expire with it). */
  settings: Pick<FanoutSettings, "iosBadges" | "pushLogTtlMs">;
}

export interface Decided {
  jobs: SendJob[];
  /** Outcomes decided without a request: recorded after the sends (batch.ts says why). */
  entries: PushLogEntry[];
  credentials: Map<number, CertificateCredentials>;
  /** When the devices were read (epoch ms): a send that leaves much later reads them again. */
  readAt: number;
  /** The batch's message for a token: a refreshed token's message, before its retry. */
  messageFor: MessageFor;
}

/**
 * Which of the batch's messages a device gets: its platform's, in its locale's texts (the key
 * textsFor returns; absent: the default), with its badge (an iPhone counting badges).
 */
export interface MessageVariant {
  platform: Platform;
  locale?: string;
  badge?: number;
}
type MessageFor = (token: string, variant: MessageVariant) => DeviceMessage;

/** A device to decide, with the user's devices (active-elsewhere looks at the others) and the message as the user sees it. */
type Recipient = { uid: string; device: Device; userDevices: Device[]; message: RecipientMessage };
type DeviceMessage = { ok: true; message: FcmMessage } | Extract<CheckedMessage, { ok: false }>;

/** Every device of the recipients in `toRead` that has no outcome yet, decided. */
export async function decideDevices(input: DecideInput, recipients: RecipientRead, toRead: string[], progress: Pick<BatchProgress, "has">): Promise<Decided> {
  const entries: PushLogEntry[] = [];
  // The snapshots are taken out of the read (splice) and let go once the devices are parsed: a
  // batch holds only what it sends through its sends, less for the garbage collector to copy
  // while the other batches of the invocation work.
  const devices = devicesToDecide(recipients.users.splice(0), new Set(toRead), progress, entries, input);
  // The sender's display name (an Auth lookup, when the message has no Title) only for a batch that
  // may send: alongside the certificates' load, never for a batch of unknown or logged-out users.
  const titled = devices.some(({ device }) => device.session === "logged-in" && device.token) ? input.titled() : null;
  titled?.catch(() => undefined);
  const { credentials, unreadable } = await usableCertificates(input, recipients, devices);
  const eligibility = eligibilityConfig((id) => credentials.has(id) || unreadable.has(id));
  const nowDate = new Date(input.now());
  const judged = devices.map(({ uid, device, userDevices, message }) => ({
    uid,
    device,
    locale: localeOf(input, message),
    eligibility: pushEligibility(device, nowDate, eligibility, userDevices, message),
  }));
  const messageFor = titled && judged.some((d) => d.eligibility.eligible) ? await batchMessage(input, await titled) : noMessage;
  const lifetimeEndsAt = input.publishTimeMs + (input.content.MsgLifeTime ?? MAX_MSG_LIFETIME_SECONDS) * 1000;
  const jobs: SendJob[] = [];
  for (const { uid, device, locale, eligibility: judgement } of judged) {
    const decided = decideDevice(uid, device, judgement, unreadable, messageFor, locale);
    if (decided === null) continue;
    if ("outcome" in decided) entries.push(decided);
    else jobs.push({ ...decided, lifetimeEndsAt });
  }
  if (countsBadges(input)) await assignIosBadges(jobs, judged, input);
  return { jobs, entries, credentials, readAt: recipients.readAt, messageFor };
}

/** No device of the batch is eligible: no message is built (never called). */
const noMessage: MessageFor = () => ({ ok: false, reason: "invalid-message", detail: "no message was built for this batch" });

/** The key of the recipient's texts (textsFor): `default` without a table or a locale. */
const localeOf = (input: Pick<DecideInput, "texts">, message: RecipientMessage): string => (input.texts ? textsFor(input.texts, message.prefs.locale).locale : "default");

/** The message as recipient `uid` sees it, with the preferences its users document holds for it. */
function recipientMessage(snap: DocumentSnapshot, input: Pick<DecideInput, "conversation" | "mentions">): RecipientMessage {
  return { conversation: input.conversation, mentioned: isMentioned(input.mentions, snap.id), prefs: messagePreferences(snap, input.conversation) };
}

/** The devices of the recipients read (those without an outcome yet); a recipient with none is skipped. */
function devicesToDecide(
  users: DocumentSnapshot[],
  wanted: Set<string>,
  progress: Pick<BatchProgress, "has">,
  skipped: PushLogEntry[],
  input: Pick<DecideInput, "conversation" | "mentions">,
): Recipient[] {
  const skip = (uid: string, reason: SkipReason, detail: string) => skipped.push({ outcome: "skipped", uid, deviceId: null, reason, detail, at: ts() });
  const devices: Recipient[] = [];
  for (const snap of users) {
    if (!wanted.has(snap.id)) continue;
    const uid = snap.id;
    let map: Record<string, Device>;
    try {
      map = parseUserDevices(snap.exists ? snap.data() : undefined);
    } catch (err) {
      logger.error("unreadable users document: recipient skipped", { uid, error: String(err) });
      skip(uid, "invalid-device-record", "the user's stored device record does not match the expected format");
      continue;
    }
    const list = Object.values(map);
    if (list.length === 0) {
      skip(uid, "no-device", "the user has never logged in on any device");
      continue;
    }
    const message = recipientMessage(snap, input);
    for (const device of list) if (!progress.has({ uid, deviceId: device.deviceId })) devices.push({ uid, device, userDevices: list, message });
  }
  return devices;
}

/** The certificates the devices' tokens name, as read with the recipients, and any this instance had not seen yet. */
async function usableCertificates(input: DecideInput, recipients: RecipientRead, devices: Recipient[]): Promise<LoadedCredentials> {
  const certificateIds = [...new Set(devices.flatMap(({ device }) => (device.token ? [device.token.certificateId] : [])))];
  const loaded = recipients.certificates;
  // Certificates this instance had not seen yet: one more read (a cold instance, a new
  // certificate), shared by the batches that ask for them at the same time (recipientReads.ts).
  const unread = certificateIds.filter((id) => !recipients.certificatesRead.has(id));
  if (unread.length > 0) credentialsFromSnapshots(await loadCertificates(unread, input.cost), input.kek, loaded);
  rememberCertificates(certificateIds);
  for (const id of certificateIds) {
    const why = loaded.unreadable.get(id);
    if (why !== undefined) logger.error("push certificate cannot be used: its devices are recorded as failed, the others are sent", { certificateId: id, why });
  }
  return loaded;
}

/**
 * The batch's message for a token. Built, measured and validated once per batch and locale in use
 * (the locale picks the placeholder texts), with a stand-in token as long as any real one
 * (TOKEN_RESERVE_CHARS, ASCII by FcmTokenSchema): a device's message is that one with its token,
 * and cannot be larger. A longer token goes the whole way on its own.
 */
async function batchMessage(input: DecideInput, titled: PushContent): Promise<MessageFor> {
  const { content, decision } = input;
  const ageMs = input.now() - input.publishTimeMs;
  // One text and one template per locale in use, each platform's built only when a device of that
  // platform and locale is sent to; a device's message is its variant's template with its token.
  const byLocale = new Map<string, { text: { title: string; body: string }; android?: CheckedMessage; ios?: CheckedMessage }>();
  const forLocale = (locale: string) => {
    let built = byLocale.get(locale);
    if (!built) {
      const placeholders = input.texts && locale !== "default" ? textsFor(input.texts, locale).texts : (input.texts?.fallback ?? input.placeholders);
      const textDecision = messageDecision(titled, placeholders);
      const text = textDecision.push ? { title: textDecision.title, body: textDecision.body } : { title: decision.title, body: decision.body };
      built = { text };
      byLocale.set(locale, built);
    }
    return built;
  };
  const android = (token: string, locale: string): DeviceMessage => {
    const built = forLocale(locale);
    const template = (built.android ??= checkedFcmMessage(content, built.text, TOKEN_RESERVE, { ageMs }));
    return template.ok && token.length <= TOKEN_RESERVE.length ? { ok: true as const, message: { ...template.message, token } } : checkedFcmMessage(content, built.text, token, { ageMs });
  };
  // The iPhones' message (apnsMessage.ts): measured with the largest badge when badges are counted,
  // so every device's badge fits.
  const badge = countsBadges(input) ? BADGE_RESERVE : undefined;
  const iosOptions = { ageMs, nowMs: input.now(), ...(badge !== undefined ? { badge } : {}) };
  const iosMessage = (token: string, locale: string, deviceBadge: number | undefined): DeviceMessage => {
    const built = forLocale(locale);
    const template = (built.ios ??= checkedApnsMessage(content, built.text, TOKEN_RESERVE, iosOptions));
    const checked = template.ok && token.length <= TOKEN_RESERVE.length ? template : checkedApnsMessage(content, built.text, token, iosOptions);
    return checked.ok ? { ok: true as const, message: withToken(checked.message, token, deviceBadge) } : checked;
  };
  // web keeps the Android message: its top-level notification and data are what web push shows.
  return (token, { platform, locale = "default", badge: deviceBadge }) => (platform === "ios" ? iosMessage(token, locale, deviceBadge) : android(token, locale));
}

/** The batch's iPhones get a badge: IOS_BADGES is on and the message does not ask to leave it (BadgeMode 1). */
function countsBadges(input: Pick<DecideInput, "settings" | "content">): boolean {
  return input.settings.iosBadges !== false && !leavesBadge(input.content);
}

/** One device: a send job (without its lifetime), an outcome decided without a request, or nothing (no token). */
function decideDevice(
  uid: string,
  device: Device,
  eligibility: ReturnType<typeof pushEligibility>,
  unreadable: Map<number, string>,
  messageFor: MessageFor,
  locale: string,
): Omit<SendJob, "lifetimeEndsAt"> | PushLogEntry | null {
  const deviceId = device.deviceId;
  if (!eligibility.eligible) return { outcome: "skipped", uid, deviceId, reason: eligibility.reason, detail: eligibility.detail, at: ts() };
  const token = device.token;
  if (!token) return null; // eligibility guarantees a token; narrows the type
  const why = unreadable.get(token.certificateId);
  if (why !== undefined) return failedEntry(uid, deviceId, token.certificateId, "certificate-unreadable", `push certificate ${token.certificateId} cannot be used: ${why}`);
  const checked = messageFor(token.token, { platform: device.platform, locale });
  if (!checked.ok) {
    if (checked.reason === "payload-too-large") return { outcome: "skipped", uid, deviceId, reason: "payload-too-large", detail: checked.detail, at: ts() };
    return failedEntry(uid, deviceId, token.certificateId, "invalid-message", checked.detail);
  }
  return {
    uid,
    deviceId,
    sessionId: device.sessionId,
    certificateId: token.certificateId,
    tokenHash: token.tokenHash,
    message: checked.message,
    platform: device.platform,
    ...(locale !== "default" ? { locale } : {}),
  };
}

/** What re-deciding a job needs of its batch. */
export interface RecheckInput {
  messageFor: MessageFor;
  conversation: string;
  mentions: Mentions;
  kek: () => Buffer;
  cost: CostCounter;
  now: () => number;
}

/**
 * Before a retry, or a first send that left long after the batch's read: the devices as stored now,
 * with the certificates their tokens name (one getAll; one more only for a certificate a
 * refreshed token names that was not in it). A device still gets the send only in the same
 * session, still logged in with a token, and still eligible; otherwise the outcome says why
 * (binding-changed, or the eligibility reason: it came to the foreground, its certificate was
 * deleted). A token the same device refreshed meanwhile (FCM rotates tokens; the app reports the
 * new one) is not a move: the send goes to the new token, with its message and certificate.
 */
export async function recheckDevices(jobs: SendJob[], input: RecheckInput): Promise<Rechecked> {
  const { cost, kek, now } = input;
  const uids = [...new Set(jobs.map((j) => j.uid))];
  const certificateIds = [...new Set(jobs.map((j) => j.certificateId))];
  cost.firestoreReads++;
  const readAt = now();
  const snaps = await db().getAll(...uids.map((uid) => db().collection(USERS).doc(uid)), ...certificateIds.map(certRef), { fieldMask: readMask(input.conversation) });
  const loaded = credentialsFromSnapshots(snaps.slice(uids.length), kek);
  const byUid = new Map<string, Record<string, Device>>();
  const messages = new Map<string, RecipientMessage>();
  for (const snap of snaps.slice(0, uids.length)) {
    messages.set(snap.id, recipientMessage(snap, input));
    try {
      byUid.set(snap.id, parseUserDevices(snap.exists ? snap.data() : undefined));
    } catch {
      byUid.set(snap.id, Object.create(null) as Record<string, Device>);
    }
  }
  const deviceOf = (job: SendJob): Device | undefined => byUid.get(job.uid)?.[job.deviceId];
  // A refreshed token may name a certificate the batch has not read: loaded now.
  const named = new Set(certificateIds);
  const more = [...new Set(jobs.flatMap((j) => deviceOf(j)?.token?.certificateId ?? []))].filter((id) => !named.has(id));
  if (more.length > 0) {
    cost.firestoreReads++;
    credentialsFromSnapshots(await db().getAll(...more.map(certRef)), kek, loaded);
  }
  rememberCertificates([...named, ...more]);
  const eligibility = eligibilityConfig((id) => loaded.credentials.has(id) || loaded.unreadable.has(id));
  const nowDate = new Date(now());
  const result = new Map<string, Recheck>();
  for (const job of jobs) {
    const userDevices = Object.values(byUid.get(job.uid) ?? {});
    result.set(jobKey(job), recheckJob(job, deviceOf(job), userDevices, eligibility, nowDate, loaded, input.messageFor, messages.get(job.uid)));
  }
  return { jobs: result, credentials: loaded.credentials, readAt };
}

function recheckJob(
  job: SendJob,
  device: Device | undefined,
  userDevices: Device[],
  eligibility: EligibilityContext,
  now: Date,
  loaded: LoadedCredentials,
  messageFor: MessageFor,
  message: RecipientMessage | undefined,
): Recheck {
  const { uid, deviceId } = job;
  const skipped = (reason: SkipReason, detail: string): Recheck => ({ ok: false, entry: { outcome: "skipped", uid, deviceId, reason, detail, at: ts() } });
  const changed = (what: string) => skipped("binding-changed", `not sent: ${what} after the batch read it (read again before a retry or a late send)`);
  if (!device || device.sessionId !== job.sessionId) return changed(`device ${deviceId} logged in again or was removed`);
  if (device.session !== "logged-in") return changed(`device ${deviceId} ${device.session === "kicked" ? "was kicked offline" : "logged out"}`);
  const token = device.token;
  if (!token) return changed(`the push token of device ${deviceId} was unbound (it moved to another account or device, or FCM refused it)`);
  const judged = pushEligibility(device, now, eligibility, userDevices, message);
  if (!judged.eligible) return skipped(judged.reason, `not sent: ${judged.detail}`);
  const why = loaded.unreadable.get(token.certificateId);
  if (why !== undefined) return { ok: false, entry: failedEntry(uid, deviceId, token.certificateId, "certificate-unreadable", `push certificate ${token.certificateId} cannot be used: ${why}`) };
  if (token.tokenHash === job.tokenHash && token.certificateId === job.certificateId) return { ok: true, job };
  // The same device in the same session reported a new token (FCM rotated it): the send goes there.
  const checked = messageFor(token.token, {
    platform: device.platform,
    ...(job.locale !== undefined ? { locale: job.locale } : {}),
    ...(job.badge !== undefined ? { badge: job.badge } : {}),
  });
  if (!checked.ok) {
    if (checked.reason === "payload-too-large") return skipped("payload-too-large", checked.detail);
    return { ok: false, entry: failedEntry(uid, deviceId, token.certificateId, "invalid-message", checked.detail) };
  }
  return { ok: true, job: { ...job, certificateId: token.certificateId, tokenHash: token.tokenHash, message: checked.message } };
}

const ts = () => Timestamp.now();

function failedEntry(uid: string, deviceId: string, certificateId: number, reason: "certificate-unreadable" | "invalid-message", detail: string): PushLogEntry {
  return { outcome: "failed", uid, deviceId, reason, detail, certificateId, error: null, attempts: 0, at: ts() };
}
