// Generators shared by the fuzz tests: inputs built from the schemas' shapes, then mutated (a
// field replaced by anything, removed, or an unknown one added), beside wholly random JSON and
// bytes that are not JSON. One seed per run, printed; FUZZ_SEED replays it.
import { generateKeyPairSync } from "node:crypto";
import fc from "fast-check";
import type { z } from "zod";
import { SendMessageRequestSchema } from "../../functions/src/fanout/schemas.ts";
import { DeleteRequestSchema, ListRequestSchema, RegisterRequestSchema, UpdateRequestSchema } from "../../functions/src/certificates/schemas.ts";
import { SetPushPreferencesRequestSchema } from "../../functions/src/preferences/schemas.ts";
import {
  DeviceRequestSchema,
  DoBackgroundRequestSchema,
  LoginRequestSchema,
  PLATFORMS,
  SetOfflinePushTokenRequestSchema,
} from "../../functions/src/sessions/schemas.ts";

export const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Date.now() % 2 ** 31;
/** Every generated text carries this marker: no error message may ever contain it. */
export const MARK = "SECRET";

// --- generators -------------------------------------------------------------------------------
export const account = fc.stringMatching(/^[A-Za-z0-9_.@-]{1,24}$/);
export const secretText = (max: number) => fc.string({ maxLength: max, unit: "grapheme" }).map((s) => `${MARK}${s}`);
const elem = fc.oneof(
  secretText(300).map((t) => ({ MsgType: "TIMTextElem", MsgContent: { Text: t } })),
  fc
    .record({ Data: secretText(100), Desc: secretText(100), Ext: fc.string({ maxLength: 100 }), Sound: fc.string({ maxLength: 20 }) }, { requiredKeys: [] })
    .map((c) => ({ MsgType: "TIMCustomElem", MsgContent: c })),
  fc.record({ Desc: secretText(50), Latitude: fc.double({ noNaN: true, noDefaultInfinity: true }) }, { requiredKeys: [] }).map((c) => ({ MsgType: "TIMLocationElem", MsgContent: c })),
  fc.constantFrom("TIMImageElem", "TIMSoundElem", "TIMFileElem", "TIMVideoFileElem", "TIMRelayElem", "TIMFaceElem").map((t) => ({ MsgType: t, MsgContent: { Url: `${MARK}-url` } })),
);
export const offlinePushInfo = fc.record(
  {
    PushFlag: fc.constantFrom(0, 1),
    Title: secretText(80),
    Desc: secretText(200),
    Ext: fc.string({ maxLength: 300 }),
    AndroidInfo: fc.record({ GoogleChannelID: fc.string({ maxLength: 30 }), Sound: fc.string({ maxLength: 30 }) }, { requiredKeys: [] }),
    ApnsInfo: fc.record(
      {
        Title: secretText(80),
        SubTitle: secretText(300),
        Sound: fc.string({ maxLength: 30 }),
        BadgeMode: fc.constantFrom(0, 1),
        Image: fc.webUrl(),
        MutableContent: fc.constantFrom(0, 1),
      },
      { requiredKeys: [] },
    ),
    TitleLocKey: fc.string({ minLength: 1, maxLength: 30 }),
    TitleLocArgs: fc.array(secretText(40), { maxLength: 4 }),
    DescLocKey: fc.string({ minLength: 1, maxLength: 30 }),
    DescLocArgs: fc.array(secretText(40), { maxLength: 4 }),
  },
  { requiredKeys: [] },
);
export const validEvent = fc.record(
  {
    MsgKey: fc.string({ minLength: 1, maxLength: 60 }),
    From_Account: account,
    To_Account: fc.oneof(account, fc.array(account, { minLength: 1, maxLength: 40 })),
    MsgBody: fc.array(elem, { maxLength: 5 }),
    MsgLifeTime: fc.integer({ min: 0, max: 604_800 }),
    OfflinePushInfo: offlinePushInfo,
    CloudCustomData: fc.string({ maxLength: 50 }),
  },
  { requiredKeys: ["MsgKey", "From_Account", "To_Account"] },
);

export type Json = unknown;

/** Every path (keys and indexes) in a JSON value. */
function paths(value: Json, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...prefix, i])));
  else if (value !== null && typeof value === "object") for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...prefix, k]));
  return out;
}

/** The value with one path replaced, removed, or given an unknown sibling. */
function mutate(value: Json, pick: number, op: "set" | "delete" | "add", replacement: Json): Json {
  const copy = structuredClone(value);
  const all = paths(copy);
  const path = all[pick % all.length] as Array<string | number>;
  if (path.length === 0) return op === "set" ? replacement : copy;
  let parent = copy as Record<string | number, Json>;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, Json>;
  const last = path[path.length - 1] as string | number;
  if (op === "set") parent[last] = replacement;
  else if (op === "delete") delete parent[last];
  else if (parent !== null && typeof parent === "object" && !Array.isArray(parent)) parent.unknown_key = replacement;
  return copy;
}

const mutation = fc.tuple(fc.nat(), fc.constantFrom("set" as const, "delete" as const, "add" as const), fc.jsonValue({ maxDepth: 3 }));
export const mutated = <T>(valid: fc.Arbitrary<T>) =>
  fc.tuple(valid, fc.array(mutation, { minLength: 1, maxLength: 3 })).map(([v, ms]) => ms.reduce<Json>((acc, [pick, op, r]) => mutate(acc, pick, op, r), v));

/** What may arrive on the topic: a valid event, a mutated one, any JSON, or bytes that are not JSON. */
export const eventBytes = fc.oneof(
  { weight: 3, arbitrary: validEvent.map((e) => JSON.stringify(e)) },
  { weight: 5, arbitrary: mutated(validEvent).map((e) => JSON.stringify(e) ?? "") },
  { weight: 1, arbitrary: fc.jsonValue().map((e) => JSON.stringify(e) ?? "") },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }).map((s) => `${MARK}{${s}`) },
);

// --- callables: a valid request of each, to mutate ----------------------------------------------
const deviceId = fc.stringMatching(/^[A-Za-z0-9._:-]{1,40}$/);
/** A key generated at run time: no key is ever committed, and mutations start from a well-formed one. */
const testKeyPem = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();

export const requests: Array<{ name: string; schema: z.ZodType; valid: fc.Arbitrary<Json> }> = [
  { name: "login", schema: LoginRequestSchema, valid: fc.record({ deviceId, platform: fc.constantFrom(...PLATFORMS) }) },
  {
    name: "setOfflinePushToken",
    schema: SetOfflinePushTokenRequestSchema,
    valid: fc.record({ deviceId, certificateId: fc.integer({ min: 1, max: 10_000 }), token: fc.stringMatching(/^[A-Za-z0-9_:-]{20,200}$/) }),
  },
  { name: "doBackground", schema: DoBackgroundRequestSchema, valid: fc.record({ deviceId, unreadCount: fc.nat(1000) }, { requiredKeys: ["deviceId"] }) },
  { name: "doForeground", schema: DeviceRequestSchema, valid: fc.record({ deviceId }) },
  { name: "heartbeat", schema: DeviceRequestSchema, valid: fc.record({ deviceId }) },
  { name: "logout", schema: DeviceRequestSchema, valid: fc.record({ deviceId }) },
  {
    name: "sendMessage",
    schema: SendMessageRequestSchema,
    valid: fc.record({ to: fc.oneof(account, fc.array(account, { minLength: 1, maxLength: 5 })), body: secretText(100), offlinePushInfo }, { requiredKeys: ["to"] }),
  },
  {
    name: "registerPushCertificate",
    schema: RegisterRequestSchema,
    valid: fc.record({ serviceAccount: fc.record({ type: fc.constant("service_account"), project_id: fc.constant("p"), private_key: fc.constant(testKeyPem), client_email: fc.constant("a@p.iam.gserviceaccount.com") }), label: fc.string({ maxLength: 20 }) }, { requiredKeys: ["serviceAccount"] }),
  },
  { name: "updatePushCertificate", schema: UpdateRequestSchema, valid: fc.record({ certificateId: fc.integer({ min: 1 }), label: fc.string({ minLength: 1, maxLength: 20 }) }) },
  { name: "deletePushCertificate", schema: DeleteRequestSchema, valid: fc.record({ certificateId: fc.integer({ min: 1 }) }) },
  { name: "listPushCertificates", schema: ListRequestSchema, valid: fc.constant({}) },
  {
    name: "setPushPreferences",
    schema: SetPushPreferencesRequestSchema,
    valid: fc.record(
      {
        doNotDisturb: fc.option(
          fc.record({ start: fc.constantFrom("22:00", "00:00", "23:59"), end: fc.constantFrom("07:00", "22:00"), timeZone: fc.constantFrom("Europe/Berlin", "UTC", "America/New_York"), allowMentions: fc.boolean() }, { requiredKeys: ["start", "end", "timeZone"] }),
        ),
        conversations: fc.dictionary(
          fc.oneof(account.map((a) => `c2c_${a}`), fc.stringMatching(/^group_[A-Za-z0-9@#_-]{1,40}$/)),
          fc.option(fc.record({ mode: fc.constantFrom("all", "mentions", "none"), mutedUntil: fc.option(fc.constant("2030-01-01T00:00:00Z")) }, { requiredKeys: [] })),
          { maxKeys: 5 },
        ),
        locale: fc.option(fc.constantFrom("de-DE", "fr", "zh-Hant-TW", "en")),
      },
      { requiredKeys: [] },
    ),
  },
];

