// The events an IM backend publishes, as JSON Schema (draft 2020-12) for backends in any language:
// generated from the zod schemas the functions validate with (the single source), into schemas/.
//   npm run schemas            writes them (tsx scripts/event-schemas.ts --write)
//   test/events/schemas.test.ts fails when a file differs from what the zod schemas generate now
// A size guard (sizeGuard.ts: a bound checked before the schema walks the value) is a pipe from
// "anything" into the real schema: the file shows the real schema. What JSON Schema cannot say
// (a bound refined in code, such as "EventTime at most 5 minutes ahead") stays in the functions.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { PushEventSchema, ReadEventSchema, RecallEventSchema } from "../functions/src/fanout/schemas.ts";
import { PresenceBatchSchema, PresenceEventSchema } from "../functions/src/presence/schemas.ts";

/** schemas/ of the repository (npm scripts and the tests run from its root). */
export const SCHEMA_DIR = `${path.join(process.cwd(), "schemas")}${path.sep}`;

interface EventFile {
  file: string;
  title: string;
  description: string;
  schema: z.ZodType;
}

export const EVENT_FILES: EventFile[] = [
  {
    file: "message.schema.json",
    title: "Offline-push message",
    description: "One IM message on the offline-push topic (PUSH_TOPIC, default im-offline-push), in the original IM service's REST field names. No `Event` field.",
    schema: PushEventSchema,
  },
  {
    file: "read.schema.json",
    title: "Read",
    description:
      "On the offline-push topic: Account read Conversation (on DeviceId). The account's other devices that got a push in that conversation since their last clear get a data-only {type: \"clear\", conversation}. Exactly once per EventKey and device.",
    schema: ReadEventSchema,
  },
  {
    file: "recall.schema.json",
    title: "Recall",
    description:
      "On the offline-push topic: From_Account recalled message MsgKey. Every device that was pushed it gets a notification with the same tag (it replaces the original) saying the message was recalled, in the recipient's locale, and data {type: \"recall\", msgKey}. Refused unless From_Account sent the message.",
    schema: RecallEventSchema,
  },
  {
    file: "presence-event.schema.json",
    title: "Presence event",
    description: "One device's connection on the presence topic (PRESENCE_TOPIC, default im-presence), from the IM backend. Out-of-order and duplicate safe per device (EventTime).",
    schema: PresenceEventSchema,
  },
  {
    file: "presence-batch.schema.json",
    title: "Presence batch",
    description: "Several presence events in one message on the presence topic; each is validated on its own (presence-event.schema.json).",
    schema: PresenceBatchSchema,
  },
];

type Json = Record<string, unknown>;

/** A size guard: z.unknown() piped into the schema it guards. */
function guardedSchema(schema: z.ZodType): z.ZodType | null {
  const def = (schema as unknown as { _zod: { def: { type: string; in?: { _zod: { def: { type: string } } }; out?: z.ZodType } } })._zod.def;
  return def.type === "pipe" && def.in?._zod.def.type === "unknown" && def.out ? def.out : null;
}

function toJson(schema: z.ZodType): Json {
  return z.toJSONSchema(schema, {
    io: "input",
    unrepresentable: "any",
    override: (ctx) => {
      const inner = guardedSchema(ctx.zodSchema as unknown as z.ZodType);
      if (!inner) return;
      const shown = toJson(inner);
      delete shown.$schema;
      for (const key of Object.keys(ctx.jsonSchema)) delete (ctx.jsonSchema as Json)[key];
      Object.assign(ctx.jsonSchema, shown);
    },
  }) as Json;
}

/** Each file's name and its text, as `npm run schemas` writes it. */
export function eventJsonSchemas(): Array<{ file: string; text: string }> {
  return EVENT_FILES.map(({ file, title, description, schema }) => {
    const { $schema, ...rest } = toJson(schema);
    const doc = { $schema, title, description, ...rest };
    return { file, text: `${JSON.stringify(doc, null, 2)}\n` };
  });
}

if (process.argv.includes("--write")) {
  for (const { file, text } of eventJsonSchemas()) writeFileSync(`${SCHEMA_DIR}${file}`, text);
  process.stdout.write(`wrote ${EVENT_FILES.length} JSON Schema files to schemas/\n`);
}
