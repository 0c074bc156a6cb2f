// The notification title of a message without OfflinePushInfo.Title: the sender's Firebase Auth
// displayName when the account has one, else the account itself (a raw 28-character uid is what
// users saw before). Looked up once per sender per instance and kept for a while: a fan-out must
// not cost an Auth call per batch, and a lookup that fails or is slow never holds a push back.
import { getApps, initializeApp } from "firebase-admin/app";
import { getAuth } from "firebase-admin/auth";
import * as logger from "firebase-functions/logger";
import { defaultTitle } from "./message";
import type { PushContent } from "./schemas";

const TTL_MS = 10 * 60_000;
/** After a failed lookup (Auth unreachable), the account is used for a short while only. */
const FAILURE_TTL_MS = 30_000;
const LOOKUP_TIMEOUT_MS = 2_000;
const MAX_ENTRIES = 5_000;

const cache = new Map<string, { name: string | null; until: number }>();

function remember(uid: string, name: string | null, ttlMs: number): void {
  // A Map iterates in insertion order: dropping the first entry drops the oldest.
  if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value as string);
  cache.set(uid, { name, until: Date.now() + ttlMs });
}

async function lookup(uid: string): Promise<string | null> {
  if (getApps().length === 0) initializeApp();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from Firebase Auth within ${LOOKUP_TIMEOUT_MS} ms`)), LOOKUP_TIMEOUT_MS);
  });
  try {
    const user = await Promise.race([getAuth().getUser(uid), timeout]);
    const name = user.displayName?.trim();
    return name ? name : null;
  } finally {
    clearTimeout(timer);
  }
}

/** Lookups in flight: the batches of one large message start together and share one Auth call. */
const pending = new Map<string, Promise<string | null>>();

/** The sender's display name, or null (no such Auth user, no displayName, or Auth unavailable). */
export function senderDisplayName(uid: string): Promise<string | null> {
  const hit = cache.get(uid);
  if (hit && hit.until > Date.now()) return Promise.resolve(hit.name);
  let p = pending.get(uid);
  if (!p) {
    p = fetchDisplayName(uid).finally(() => pending.delete(uid));
    pending.set(uid, p);
  }
  return p;
}

async function fetchDisplayName(uid: string): Promise<string | null> {
  try {
    const name = await lookup(uid);
    remember(uid, name, TTL_MS);
    return name;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === "auth/user-not-found" || code === "auth/invalid-uid") {
      remember(uid, null, TTL_MS);
      return null;
    }
    logger.warn("sender display name unavailable: the account is used as the title", { error: err instanceof Error ? err.message : String(err) });
    remember(uid, null, FAILURE_TTL_MS);
    return null;
  }
}

/** The content with Title set to the sender's display name (and the group: message.ts, defaultTitle) when it has no Title of its own (and will be pushed). */
export async function withSenderTitle(content: PushContent): Promise<PushContent> {
  const info = content.OfflinePushInfo;
  if (info?.PushFlag === 1 || (info?.Title !== undefined && info.Title.trim() !== "")) return content;
  const name = await senderDisplayName(content.From_Account);
  if (name === null) return content;
  return { ...content, OfflinePushInfo: { ...info, Title: defaultTitle(content, name) } };
}
