/**
 * The request body of FCM HTTP v1 `messages:send`, validated as strictly as FCM does:
 * the full v1 `Message` (not only the subset this project sends), protobuf-JSON style
 * (snake_case or lowerCamelCase field names, unknown names rejected), and errors in the
 * wording FCM uses.
 */
import { z } from "zod";

export interface FieldViolation {
  field: string;
  description: string;
}

/** Everything needed to render a google.rpc.Status error body. */
export interface GoogleError {
  httpStatus: number;
  status: string;
  message: string;
  errorCode?: string;
  fieldViolations?: FieldViolation[];
  /** An ApnsError detail: what APNs answered FCM for an iOS token. */
  apnsError?: { statusCode: number; reason: string };
}

const toCamel = (s: string) => s.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());

/** A protobuf message: strict object whose fields may also be spelt in lowerCamelCase. */
function pb<S extends z.ZodRawShape>(shape: S) {
  const aliases = new Map<string, string>();
  for (const k of Object.keys(shape)) if (toCamel(k) !== k) aliases.set(toCamel(k), k);
  return z.preprocess((value) => {
    if (aliases.size === 0 || value === null || typeof value !== "object" || Array.isArray(value)) return value;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[aliases.get(k) ?? k] = v;
    return out;
  }, z.strictObject(shape));
}

const str = z.string().optional();
const bool = z.boolean().optional();
const stringMap = z.record(z.string(), z.string()).optional();
const struct = z.record(z.string(), z.unknown()).optional();
const duration = z.string().regex(/^-?\d+(\.\d{1,9})?s$/);

const notification = pb({ title: str, body: str, image: str });

const color = pb({
  red: z.number().optional(),
  green: z.number().optional(),
  blue: z.number().optional(),
  alpha: z.number().optional(),
});

const androidNotification = pb({
  title: str,
  body: str,
  icon: str,
  color: str,
  sound: str,
  tag: str,
  click_action: str,
  body_loc_key: str,
  body_loc_args: z.array(z.string()).optional(),
  title_loc_key: str,
  title_loc_args: z.array(z.string()).optional(),
  channel_id: str,
  ticker: str,
  sticky: bool,
  event_time: str,
  local_only: bool,
  notification_priority: z
    .enum(["PRIORITY_UNSPECIFIED", "PRIORITY_MIN", "PRIORITY_LOW", "PRIORITY_DEFAULT", "PRIORITY_HIGH", "PRIORITY_MAX"])
    .optional(),
  default_sound: bool,
  default_vibrate_timings: bool,
  default_light_settings: bool,
  vibrate_timings: z.array(duration).optional(),
  visibility: z.enum(["VISIBILITY_UNSPECIFIED", "PRIVATE", "PUBLIC", "SECRET"]).optional(),
  notification_count: z.number().int().optional(),
  light_settings: pb({ color: color.optional(), light_on_duration: duration.optional(), light_off_duration: duration.optional() }).optional(),
  image: str,
  bypass_proxy_notification: bool,
  proxy: z.enum(["PROXY_UNSPECIFIED", "ALLOW", "DENY", "IF_PRIORITY_LOWERED"]).optional(),
});

const android = pb({
  collapse_key: str,
  priority: z.enum(["NORMAL", "HIGH"]).optional(),
  ttl: duration.optional(),
  restricted_package_name: str,
  data: stringMap,
  notification: androidNotification.optional(),
  fcm_options: pb({ analytics_label: str }).optional(),
  direct_boot_ok: bool,
  bandwidth_constrained_ok: bool,
  restricted_satellite_ok: bool,
});

const apns = pb({
  headers: stringMap,
  payload: struct,
  fcm_options: pb({ analytics_label: str, image: str }).optional(),
  live_activity_token: str,
});

const webpush = pb({
  headers: stringMap,
  data: stringMap,
  notification: struct,
  fcm_options: pb({ link: str, analytics_label: str }).optional(),
});

export const fcmV1MessageSchema = pb({
  name: str,
  data: stringMap,
  notification: notification.optional(),
  android: android.optional(),
  webpush: webpush.optional(),
  apns: apns.optional(),
  fcm_options: pb({ analytics_label: str }).optional(),
  token: str,
  topic: str,
  condition: str,
});

export const sendRequestSchema = pb({
  validate_only: bool,
  message: fcmV1MessageSchema.optional(),
});

/** Same measure as the client's `fcmPayloadSize`: UTF-8 bytes of the message's JSON. */
export const MAX_MESSAGE_BYTES = 4096;

export type ValidatedSend =
  | { ok: true; message: Record<string, unknown>; validateOnly: boolean; token: string | undefined }
  | { ok: false; error: GoogleError };

const PROTO_TYPES: Record<string, string> = {
  string: "TYPE_STRING",
  boolean: "TYPE_BOOL",
  number: "TYPE_INT32",
  int: "TYPE_INT32",
  array: "TYPE_STRING",
  object: "TYPE_MESSAGE",
  record: "TYPE_MESSAGE",
};

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else out += out ? `.${String(seg)}` : String(seg);
  }
  return out;
}

function invalidArgument(message: string, fieldViolations?: FieldViolation[], errorCode?: string): GoogleError {
  return {
    httpStatus: 400,
    status: "INVALID_ARGUMENT",
    message,
    ...(errorCode ? { errorCode } : {}),
    ...(fieldViolations ? { fieldViolations } : {}),
  };
}

function issueToViolations(issue: z.core.$ZodIssue): FieldViolation[] {
  const path = formatPath(issue.path);
  const shown = (v: unknown) => (v === undefined ? "" : `, ${JSON.stringify(v)}`);
  switch (issue.code) {
    case "unrecognized_keys":
      return issue.keys.map((key) => ({
        field: path,
        description: `Invalid JSON payload received. Unknown name "${key}"${path ? ` at '${path}'` : ""}: Cannot find field.`,
      }));
    case "invalid_type":
      return [
        {
          field: path,
          description: `Invalid value at '${path}' (${PROTO_TYPES[issue.expected] ?? issue.expected})${shown(issue.input)}`,
        },
      ];
    case "invalid_value": {
      const last = issue.path[issue.path.length - 1];
      const enumName =
        last === "priority"
          ? "type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority"
          : `type.googleapis.com/google.firebase.fcm.v1.${String(last)}`;
      return [{ field: path, description: `Invalid value at '${path}' (${enumName})${shown(issue.input)}` }];
    }
    case "invalid_format":
      return [
        {
          field: path,
          description: `Invalid value at '${path}' (type.googleapis.com/google.protobuf.Duration)${shown(issue.input)}`,
        },
      ];
    default:
      return [{ field: path, description: `Invalid value at '${path}': ${issue.message}` }];
  }
}

/** Validates a parsed JSON body of messages:send like FCM does. */
export function validateSendBody(json: unknown): ValidatedSend {
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    return { ok: false, error: invalidArgument("Invalid JSON payload received. Expected an object.") };
  }
  const parsed = sendRequestSchema.safeParse(json, { reportInput: true });
  if (!parsed.success) {
    const violations = parsed.error.issues.flatMap(issueToViolations);
    return {
      ok: false,
      error: invalidArgument(violations.map((v) => v.description).join("\n"), violations),
    };
  }
  const message = parsed.data.message as Record<string, unknown> | undefined;
  if (!message) {
    return { ok: false, error: invalidArgument("Request contains an invalid argument.", undefined, "INVALID_ARGUMENT") };
  }
  const targets = (["token", "topic", "condition"] as const).filter(
    (k) => typeof message[k] === "string" && message[k] !== "",
  );
  if (targets.length === 0) {
    return {
      ok: false,
      error: invalidArgument(
        "Recipient of the message is not set.",
        [{ field: "message", description: "Recipient of the message is not set." }],
        "INVALID_ARGUMENT",
      ),
    };
  }
  if (targets.length > 1) {
    const description = `Invalid JSON payload received. Oneof field 'target' is already set. Cannot set '${targets[1]}'`;
    return { ok: false, error: invalidArgument(description, [{ field: "message", description }]) };
  }
  const apnsProblem = apnsViolation(message.apns);
  if (apnsProblem) return { ok: false, error: invalidArgument(apnsProblem.description, [apnsProblem], "INVALID_ARGUMENT") };
  // Size is measured on the message as sent (the original JSON), not the normalized one.
  const rawMessage = (json as Record<string, unknown>).message;
  if (Buffer.byteLength(JSON.stringify(rawMessage), "utf8") > MAX_MESSAGE_BYTES) {
    return { ok: false, error: invalidArgument("Message is too big", undefined, "INVALID_ARGUMENT") };
  }
  return {
    ok: true,
    message,
    validateOnly: parsed.data.validate_only === true,
    token: typeof message.token === "string" ? message.token : undefined,
  };
}

// --- The apns block. FCM passes `apns.payload` to APNs as it is, but refuses what APNs would: header
// values other than strings (the schema above), headers APNs does not know the values of, and a
// payload whose `aps` has keys of the wrong type (Apple's payload key reference).
const APNS_PUSH_TYPES = new Set(["alert", "background", "location", "voip", "complication", "fileprovider", "mdm", "liveactivity", "pushtotalk"]);
const apsAlertSchema = z.union([
  z.string(),
  z.looseObject({
    title: z.string().optional(),
    subtitle: z.string().optional(),
    body: z.string().optional(),
    "launch-image": z.string().optional(),
    "title-loc-key": z.string().optional(),
    "title-loc-args": z.array(z.string()).optional(),
    "subtitle-loc-key": z.string().optional(),
    "subtitle-loc-args": z.array(z.string()).optional(),
    "loc-key": z.string().optional(),
    "loc-args": z.array(z.string()).optional(),
  }),
]);
const apsSchema = z.looseObject({
  alert: apsAlertSchema.optional(),
  badge: z.number().int().min(0).optional(),
  sound: z.union([z.string(), z.looseObject({ critical: z.number().int().optional(), name: z.string(), volume: z.number().min(0).max(1).optional() })]).optional(),
  "thread-id": z.string().optional(),
  category: z.string().optional(),
  "content-available": z.literal(1).optional(),
  "mutable-content": z.literal(1).optional(),
  "target-content-id": z.string().optional(),
  "interruption-level": z.enum(["passive", "active", "time-sensitive", "critical"]).optional(),
  "relevance-score": z.number().min(0).max(1).optional(),
});

function apnsViolation(apns: unknown): FieldViolation | undefined {
  if (apns === undefined || apns === null || typeof apns !== "object") return undefined;
  const { headers, payload } = apns as { headers?: Record<string, string>; payload?: Record<string, unknown> };
  const bad = (field: string, why: string): FieldViolation => ({ field: `message.apns.${field}`, description: `Invalid value at 'message.apns.${field}': ${why}` });
  const h = headers ?? {};
  if (h["apns-priority"] !== undefined && !["1", "5", "10"].includes(h["apns-priority"])) return bad("headers.apns-priority", "must be \"10\", \"5\" or \"1\"");
  if (h["apns-push-type"] !== undefined && !APNS_PUSH_TYPES.has(h["apns-push-type"])) return bad("headers.apns-push-type", "not an APNs push type");
  if (h["apns-expiration"] !== undefined && !/^\d{1,12}$/.test(h["apns-expiration"])) return bad("headers.apns-expiration", "must be epoch seconds (or 0)");
  if (h["apns-collapse-id"] !== undefined && Buffer.byteLength(h["apns-collapse-id"], "utf8") > 64) return bad("headers.apns-collapse-id", "longer than 64 bytes");
  if (payload === undefined) return undefined;
  if (payload.aps === undefined) return undefined; // FCM adds aps from the message's notification
  const aps = apsSchema.safeParse(payload.aps);
  if (!aps.success) {
    const issue = aps.error.issues[0];
    const path = ["payload", "aps", ...(issue?.path ?? []).map(String)].join(".");
    return bad(path, issue?.message ?? "invalid");
  }
  return undefined;
}
