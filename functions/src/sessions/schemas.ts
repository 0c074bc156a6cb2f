// Schemas are the single source of the session types: requests, stored documents, eligibility.
//   users/{uid}                   { devices: { [deviceId]: Device }, updatedAt, prefs? (preferences/schemas.ts) }
//   pushTokens/{sha256hex(token)} { uid, deviceId, certificateId, boundAt, refreshedAt }: one owner per token
import { createHash } from "node:crypto";
import type { Timestamp } from "firebase-admin/firestore";
import { z } from "zod";
import { CertificateIdSchema } from "../certificates/schemas";

export const USERS = "users";
export const PUSH_TOKENS = "pushTokens";

/**
 * Duck-typed rather than `instanceof`: a process can hold two copies of firebase-admin (the tests'
 * and the functions'), and a Timestamp read by one is not an instance of the other's class.
 */
export const TimestampSchema = z.custom<Timestamp>(
  (v) =>
    typeof v === "object" &&
    v !== null &&
    typeof (v as { seconds?: unknown }).seconds === "number" &&
    typeof (v as { toMillis?: unknown }).toMillis === "function",
  { message: "must be a Firestore Timestamp" },
);

/**
 * The app's own installation ID, unique per user (two users may use the same ID: each has their
 * own map). The charset keeps IDs printable and safe in logs; Firestore reserves field names
 * of the form __x__, and a deviceId is a map key.
 */
const OBJECT_PROTOTYPE_NAMES = new Set(Object.getOwnPropertyNames(Object.prototype));

export const DeviceIdSchema = z
  .string({ error: "must be a string" })
  .min(1, "must not be empty")
  .max(128, "is longer than 128 characters")
  .regex(/^[A-Za-z0-9._:-]+$/, "may contain only letters, digits and . _ : -")
  .refine((id) => !/^__.*__$/.test(id), "must not have the form __name__ (reserved by Firestore)")
  // A device ID is a key of the users/{uid}.devices map, and the Firestore SDK builds nested
  // update paths in plain objects: "constructor" or "toString" collide with Object.prototype there
  // ("Can't merge current value into a nested object"). No real installation ID has these names.
  .refine((id) => !OBJECT_PROTOTYPE_NAMES.has(id), "must not be the name of a JavaScript object property (constructor, toString, ...)");

/**
 * FCM registration tokens are URL-safe base64 plus ':' (today about 160 characters). Google does
 * not document a maximum and asks not to rely on the format; the bound its engineers give is
 * 4 KB (the cookie limit the tokens were designed under), so 4096 accepts every real token
 * while keeping stored documents and hashes bounded.
 */
export const MAX_FCM_TOKEN_LENGTH = 4096;
export const FcmTokenSchema = z
  .string({ error: "must be a string" })
  .min(1, "must not be empty")
  .max(MAX_FCM_TOKEN_LENGTH, `is longer than ${MAX_FCM_TOKEN_LENGTH} characters`)
  .regex(/^[A-Za-z0-9_:.-]+$/, "is not an FCM registration token (letters, digits and _ : . - only)");

/**
 * The platforms a chat product has. android, ios and web hold FCM tokens (web through FCM's web
 * push); a desktop app has none: it is reached only over its IM connection, and counts for
 * active-elsewhere. Everything keyed on platform compares values, never assumes android.
 */
export const PLATFORMS = ["android", "ios", "web", "desktop"] as const;
export const PlatformSchema = z.enum(PLATFORMS, { error: `must be one of: ${PLATFORMS.map((p) => `"${p}"`).join(", ")}` });
export type Platform = z.output<typeof PlatformSchema>;
/** Platforms whose apps hold an FCM registration token. */
export const hasPushToken = (platform: Platform): boolean => platform !== "desktop";

export const SessionStateSchema = z.enum(["logged-in", "logged-out", "kicked"]);
export type SessionState = z.output<typeof SessionStateSchema>;

export const AppStateSchema = z.enum(["foreground", "background"]);
export type AppState = z.output<typeof AppStateSchema>;

/** A badge count the app reports when backgrounded (int32 like the original SDK). */
export const UnreadCountSchema = z
  .number({ error: "must be a non-negative integer" })
  .int("must be a non-negative integer")
  .min(0, "must be a non-negative integer")
  .max(2_147_483_647, "is too large");

export const TokenBindingSchema = z.object({
  certificateId: z.number().int().positive(),
  token: z.string(),
  tokenHash: z.string(),
  boundAt: TimestampSchema,
  refreshedAt: TimestampSchema,
});
export type TokenBinding = z.output<typeof TokenBindingSchema>;

/** What the IM backend publishes about a device's long connection (topic im-presence). */
export const PresenceActionSchema = z.enum(["Connect", "Disconnect", "Logout"]);
export type PresenceAction = z.output<typeof PresenceActionSchema>;

/**
 * The newest presence event applied to a device (users/{uid}.devices.{id}.presence): the IM
 * backend's word on its connection. `eventTime` is the backend's clock (EventTime), `at` ours (when
 * it was applied). Kept across sessions of the same device: a Connect usually arrives just before
 * the app's login.
 */
export const StoredPresenceSchema = z.object({
  state: z.enum(["connected", "disconnected"]),
  action: PresenceActionSchema,
  eventTime: TimestampSchema,
  reason: z.string().nullable(),
  at: TimestampSchema,
});
export type StoredPresence = z.output<typeof StoredPresenceSchema>;

export const DeviceSchema = z.object({
  deviceId: z.string(),
  platform: PlatformSchema,
  session: SessionStateSchema,
  sessionId: z.string(),
  loggedInAt: TimestampSchema,
  endedAt: TimestampSchema.nullable(),
  kickedByDeviceId: z.string().nullable(),
  appState: AppStateSchema,
  appStateAt: TimestampSchema,
  unreadCount: z.number().nullable(),
  lastHeartbeatAt: TimestampSchema,
  token: TokenBindingSchema.nullable(),
  /** Absent on devices the IM backend never reported (and on documents older than presence). */
  presence: StoredPresenceSchema.nullable().optional(),
});
export type Device = z.output<typeof DeviceSchema>;

export const UserDocSchema = z.object({
  // Absent in a document that holds only push preferences (setPushPreferences before any login);
  // the fan-out reads the document through a field mask that leaves out updatedAt.
  devices: z.record(z.string(), DeviceSchema).default({}),
  updatedAt: TimestampSchema.optional(),
});
export type UserDoc = z.output<typeof UserDocSchema>;

export const PushTokenDocSchema = z.object({
  uid: z.string(),
  deviceId: z.string(),
  certificateId: z.number().int().positive(),
  boundAt: TimestampSchema,
  refreshedAt: TimestampSchema,
});
export type PushTokenDoc = z.output<typeof PushTokenDocSchema>;

/** The devices of a stored user document (none when the user never logged in). */
/**
 * The user's devices by ID, in an object without a prototype: device IDs are the app's own strings,
 * and "constructor" or "toString" must find no device rather than Object.prototype's members.
 */
export function parseUserDevices(data: unknown): Record<string, Device> {
  const devices: Record<string, Device> = Object.create(null) as Record<string, Device>;
  if (data === undefined) return devices;
  return Object.assign(devices, UserDocSchema.parse(data).devices);
}

/** The pushTokens document ID of a token: hex SHA-256, so document IDs stay short and valid. */
export function tokenHash(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

export const IneligibleReasonSchema = z.enum([
  "no-device",
  "logged-out",
  "kicked",
  "no-token",
  "certificate-missing",
  "token-stale",
  "foreground",
  "connected", // the IM backend reports the device connected (Connect) and its app is in the foreground
  "active-elsewhere", // another device of the user is in front of the user, or was a moment ago (ACTIVE_ELSEWHERE_SECONDS)
  "platform-without-push", // a desktop device: no FCM token, reached only over its IM connection
  "muted", // the user muted the message's conversation (mode "none", or mutedUntil in the future)
  "not-mentioned", // the conversation is set to mentions only, and the message does not mention the user
  "quiet-hours", // inside the user's do-not-disturb window (and not a mention it lets through)
]);
export type IneligibleReason = z.output<typeof IneligibleReasonSchema>;

// --- requests -------------------------------------------------------------------------------------

export const LoginRequestSchema = z.strictObject({ deviceId: DeviceIdSchema, platform: PlatformSchema });
export const SetOfflinePushTokenRequestSchema = z.strictObject({
  deviceId: DeviceIdSchema,
  certificateId: CertificateIdSchema,
  token: FcmTokenSchema,
});
export const DoBackgroundRequestSchema = z.strictObject({ deviceId: DeviceIdSchema, unreadCount: UnreadCountSchema.optional() });
export const DeviceRequestSchema = z.strictObject({ deviceId: DeviceIdSchema });
