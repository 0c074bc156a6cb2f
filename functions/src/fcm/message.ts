import { z } from "zod";

/**
 * The subset of the FCM HTTP v1 `Message`
 * (https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages) that this
 * backend sends: always to one registration token. Objects are strict, so a misspelt
 * field fails here instead of at FCM ("Invalid JSON payload received. Unknown name").
 */

/** google.protobuf.Duration in JSON: seconds with up to 9 fractional digits, suffix "s". */
export const fcmDurationSchema = z.string().regex(/^\d{1,11}(\.\d{1,9})?s$/, 'duration like "3600s"');

/** map<string, string>: FCM rejects non-string values. */
export const fcmStringMapSchema = z.record(z.string(), z.string());

export const fcmNotificationSchema = z.strictObject({
  title: z.string().optional(),
  body: z.string().optional(),
  image: z.string().optional(),
});

export const fcmAndroidNotificationSchema = z.strictObject({
  title: z.string().optional(),
  body: z.string().optional(),
  icon: z.string().optional(),
  color: z.string().regex(/^#[0-9a-fA-F]{6}$/, "#rrggbb").optional(),
  /** Only "default" or a resource bundled in the app; FCM cannot deliver custom sound files. */
  sound: z.string().optional(),
  tag: z.string().optional(),
  click_action: z.string().optional(),
  body_loc_key: z.string().optional(),
  body_loc_args: z.array(z.string()).optional(),
  title_loc_key: z.string().optional(),
  title_loc_args: z.array(z.string()).optional(),
  channel_id: z.string().optional(),
  ticker: z.string().optional(),
  sticky: z.boolean().optional(),
  /** RFC 3339 timestamp. */
  event_time: z.string().optional(),
  local_only: z.boolean().optional(),
  notification_priority: z
    .enum([
      "PRIORITY_UNSPECIFIED",
      "PRIORITY_MIN",
      "PRIORITY_LOW",
      "PRIORITY_DEFAULT",
      "PRIORITY_HIGH",
      "PRIORITY_MAX",
    ])
    .optional(),
  default_sound: z.boolean().optional(),
  default_vibrate_timings: z.boolean().optional(),
  default_light_settings: z.boolean().optional(),
  visibility: z.enum(["VISIBILITY_UNSPECIFIED", "PRIVATE", "PUBLIC", "SECRET"]).optional(),
  /** Badge count shown by the launcher. */
  notification_count: z.number().int().min(0).optional(),
  image: z.string().optional(),
});

export const fcmAndroidConfigSchema = z.strictObject({
  collapse_key: z.string().optional(),
  priority: z.enum(["NORMAL", "HIGH"]).optional(),
  ttl: fcmDurationSchema.optional(),
  restricted_package_name: z.string().optional(),
  data: fcmStringMapSchema.optional(),
  notification: fcmAndroidNotificationSchema.optional(),
  fcm_options: z.strictObject({ analytics_label: z.string().optional() }).optional(),
  direct_boot_ok: z.boolean().optional(),
});

export const fcmApnsConfigSchema = z.strictObject({
  headers: fcmStringMapSchema.optional(),
  /** The raw APNs payload (`aps` + custom keys). */
  payload: z.record(z.string(), z.unknown()).optional(),
  fcm_options: z
    .strictObject({ analytics_label: z.string().optional(), image: z.string().optional() })
    .optional(),
});

export const fcmWebpushConfigSchema = z.strictObject({
  headers: fcmStringMapSchema.optional(),
  data: fcmStringMapSchema.optional(),
  /** Web Notification options, free-form JSON. */
  notification: z.record(z.string(), z.unknown()).optional(),
  fcm_options: z
    .strictObject({ link: z.string().optional(), analytics_label: z.string().optional() })
    .optional(),
});

// Exactly one target. `topic` is used only by the certificate check's validate_only send
// (it needs no device token); device pushes always use `token`.
export const fcmMessageSchema = z.strictObject({
  token: z.string().min(1).optional(),
  topic: z.string().regex(/^[a-zA-Z0-9-_.~%]{1,900}$/).optional(),
  notification: fcmNotificationSchema.optional(),
  data: fcmStringMapSchema.optional(),
  android: fcmAndroidConfigSchema.optional(),
  apns: fcmApnsConfigSchema.optional(),
  webpush: fcmWebpushConfigSchema.optional(),
  fcm_options: z.strictObject({ analytics_label: z.string().optional() }).optional(),
}).refine((m) => (m.token === undefined) !== (m.topic === undefined), "exactly one of token or topic");

export type FcmMessage = z.infer<typeof fcmMessageSchema>;
export type FcmNotification = z.infer<typeof fcmNotificationSchema>;
export type FcmAndroidConfig = z.infer<typeof fcmAndroidConfigSchema>;
export type FcmAndroidNotification = z.infer<typeof fcmAndroidNotificationSchema>;
export type FcmApnsConfig = z.infer<typeof fcmApnsConfigSchema>;
export type FcmWebpushConfig = z.infer<typeof fcmWebpushConfigSchema>;

/** FCM's limit for a message payload, in bytes. */
export const FCM_MAX_PAYLOAD_BYTES = 4096;

/**
 * Size used to enforce FCM's 4096-byte payload limit: the UTF-8 byte length of the
 * JSON of the whole message.
 *
 * An approximation, on the safe side: FCM counts roughly the keys and values of the
 * notification and data payload, while this also counts the JSON punctuation, the
 * field names, the token (~150-200 bytes) and the android/apns options. So a message
 * that passes here is never "too big" for FCM, and it loses at most a few hundred bytes
 * that FCM would have accepted. The fake FCM applies the same measure.
 */
export function fcmPayloadSize(message: FcmMessage): number {
  return Buffer.byteLength(JSON.stringify(message), "utf8");
}
