// The JSON Schema files in schemas/ are what the zod schemas generate now (npm run schemas), and
// README's example of each event kind is valid by the schema the functions validate with.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { PushEventSchema, ReadEventSchema, RecallEventSchema } from "../../functions/src/fanout/schemas.ts";
import { PresenceEventSchema } from "../../functions/src/presence/schemas.ts";
import { EVENT_FILES, SCHEMA_DIR, eventJsonSchemas } from "../../scripts/event-schemas.ts";

describe("event JSON Schemas", () => {
  it("match the zod schemas (run npm run schemas after changing an event schema)", () => {
    for (const { file, text } of eventJsonSchemas()) {
      const stored = readFileSync(`${SCHEMA_DIR}${file}`, "utf8");
      assert.equal(stored, text, `schemas/${file} is out of date: run npm run schemas`);
    }
    assert.deepEqual(EVENT_FILES.map((f) => f.file).sort(), ["message.schema.json", "presence-batch.schema.json", "presence-event.schema.json", "read.schema.json", "recall.schema.json"]);
  });

  it("README's example of each kind is valid", () => {
    const readme = readFileSync("README.md", "utf8");
    // The examples under "Events for IM backends" in README: one ```json block per kind, in this order.
    const section = readme.slice(readme.indexOf("### Events for IM backends"));
    const blocks = [...section.matchAll(/```json\n([\s\S]*?)```/g)].slice(0, 4).map((m) => JSON.parse(m[1] as string) as unknown);
    const [message, read, recall, presence] = blocks;
    PushEventSchema.parse(message);
    ReadEventSchema.parse(read);
    RecallEventSchema.parse(recall);
    PresenceEventSchema.parse(presence);
  });
});
