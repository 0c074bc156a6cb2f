// Property-based tests: whatever arrives, the fan-out's parse/validate/map path and every callable's
// request validation answer with a clear rejection naming the field, or with a well-formed result;
// never an uncaught exception, never `internal`, never message content in an error.
// Generated inputs are built from the schemas' shapes, then mutated (a field replaced by anything,
// removed, or an unknown one added), beside wholly random JSON and bytes that are not JSON.
// A failure prints its seed: replay it with FUZZ_SEED=<seed> npm test.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { parseRequest, zodIssues } from "../../functions/src/common/callable.ts";
import { MAX_FANOUT_BATCH_SIZE } from "../../functions/src/config.ts";
import { delivery } from "../../functions/src/fanout/functions.ts";
import { DEFAULT_PLACEHOLDERS, checkedFcmMessage, messageDecision } from "../../functions/src/fanout/message.ts";
import { checkedApnsMessage } from "../../functions/src/fanout/apnsMessage.ts";
import { FCM_MAX_PAYLOAD_BYTES } from "../../functions/src/fcm/message.ts";
import { recipientsOf, splitIntoBatches } from "../../functions/src/fanout/recipients.ts";
import { BatchMessageSchema, PushEventSchema, contentOf } from "../../functions/src/fanout/schemas.ts";
import { MARK, eventBytes, mutated, requests, seed } from "./arbitraries.ts";

function assertNamedRejection(issues: Array<{ field: string; message: string }>): void {
  assert.ok(issues.length > 0, "a rejection names at least one issue");
  for (const i of issues) {
    assert.equal(typeof i.field, "string");
    assert.ok(i.field.length > 0, "every issue names a field");
    assert.ok(!i.message.includes(MARK), `no message content in an error: ${i.message}`);
  }
}

describe("fuzz: the fan-out's event path", () => {
  it("10,000 generated and mutated events: parsed and mapped, or rejected naming the field; never a crash, never content in an error", (t) => {
    t.diagnostic(`seed ${seed} (replay: FUZZ_SEED=${seed})`);
    const stats = { accepted: 0, rejected: 0, notJson: 0, pushed: 0 };
    fc.assert(
      fc.property(eventBytes, (text) => {
        const d = delivery("im-offline-push", {
          data: { message: { data: Buffer.from(text).toString("base64"), messageId: "1", publishTime: new Date().toISOString() } },
          time: new Date().toISOString(),
        } as never);
        if (d.jsonError !== null) {
          stats.notJson++;
          assert.ok(!d.jsonError.includes(MARK), "the JSON error quotes no input");
          return;
        }
        const parsed = PushEventSchema.safeParse(d.json);
        if (!parsed.success) {
          stats.rejected++;
          assertNamedRejection(zodIssues(parsed.error));
          return;
        }
        stats.accepted++;
        const recipients = recipientsOf(parsed.data);
        const batches = splitIntoBatches(recipients, MAX_FANOUT_BATCH_SIZE);
        const content = contentOf(parsed.data);
        assert.ok(!Object.keys(content).some((k) => k.startsWith("unknown_") || k === "CloudCustomData"), "unknown fields stay behind");
        // What a batch carries survives the trip through Pub/Sub (JSON) and its own schema.
        const message = { v: 1, content, batchIndex: 0, batchCount: batches.length, uids: batches[0], publishTime: new Date().toISOString(), eventId: "1" };
        BatchMessageSchema.parse(JSON.parse(JSON.stringify(message)));
        const decision = messageDecision(content, DEFAULT_PLACEHOLDERS);
        if (decision.push) {
          const checked = checkedFcmMessage(content, { title: decision.title, body: decision.body }, "token:APA91b-fuzz");
          if (!checked.ok) assert.ok(!checked.detail.includes(MARK), "no message content in the reason");
          else stats.pushed++;
          // The iPhone's form of the same message: within FCM's limit and its schema, or refused without quoting it.
          const ios = checkedApnsMessage(content, { title: decision.title, body: decision.body }, "token:APA91b-fuzz", { badge: 1 });
          if (!ios.ok) assert.ok(!ios.detail.includes(MARK), "no message content in the reason");
          else assert.ok(ios.bytes <= FCM_MAX_PAYLOAD_BYTES);
        }
      }),
      { numRuns: 10_000, seed },
    );
    t.diagnostic(JSON.stringify(stats));
    assert.ok(stats.accepted > 1_000 && stats.rejected > 1_000, "both paths were exercised");
  });
});

describe("fuzz: every callable's request validation", () => {
  for (const { name, schema, valid } of requests) {
    it(`${name}: 2,000 malformed requests, each rejected as invalid-argument naming the field (never internal, never a crash)`, () => {
      let rejected = 0;
      fc.assert(
        fc.property(fc.oneof({ weight: 4, arbitrary: mutated(valid) }, { weight: 1, arbitrary: fc.anything() }), (data) => {
          const result = parseRequest(schema, data, name);
          if (result.ok) return;
          rejected++;
          assert.equal(result.error.code, "invalid-argument");
          const details = result.error.details as { field?: unknown; issues?: Array<{ field: string; message: string }> };
          assert.equal(typeof details.field, "string");
          assert.ok((details.field as string).length > 0);
          assert.ok(result.error.message.startsWith(`${details.field as string}: `), result.error.message);
          assertNamedRejection(details.issues ?? []);
          assert.ok(!result.error.message.includes("-----BEGIN"), "no key material echoed");
        }),
        { numRuns: 2_000, seed },
      );
      assert.ok(rejected > 1_000, `${rejected} of 2,000 were malformed`);
    });
  }
});
