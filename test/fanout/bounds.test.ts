// Bounds on inputs, checked before a schema walks them (functions/src/fanout/sizeGuard.ts), and
// what a batch keeps of a message body (elements.ts). Pure: the end-to-end cases (a 500,000-entry
// sendMessage, a 100,000-recipient event, a 200-element body) are in inputs.test.ts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { fieldOf, toHttpsError } from "../../functions/src/common/callable.ts";
import { sendAsApp } from "../../functions/src/fanout/functions.ts";
import { DEFAULT_PLACEHOLDERS, messageDecision } from "../../functions/src/fanout/message.ts";
import {
  MAX_MSG_BODY_BYTES,
  MAX_MSG_BODY_ELEMENTS,
  MAX_OFFLINE_PUSH_INFO_BYTES,
  MAX_RECIPIENTS_PER_EVENT,
  PushEventSchema,
  SendMessageRequestSchema,
  contentOf,
  type PushContent,
} from "../../functions/src/fanout/schemas.ts";
import { PUBLISH_CONCURRENCY, publishEach } from "../../functions/src/fanout/publish.ts";
import { jsonBytesUpTo } from "../../functions/src/fanout/sizeGuard.ts";
import { seed } from "../fuzz/arbitraries.ts";

const text = (t: string) => ({ MsgType: "TIMTextElem" as const, MsgContent: { Text: t } });
const base = { MsgKey: "k", From_Account: "alice", To_Account: "bob" };

/** An array whose elements cannot be read: a schema that walks it fails the test. */
function untouchable(length: number): unknown[] {
  return new Proxy(new Array<unknown>(length), {
    get(target, key, receiver) {
      if (typeof key === "string" && /^\d+$/.test(key)) throw new Error(`element ${key} was read`);
      return Reflect.get(target, key, receiver) as unknown;
    },
  });
}

function issues(schema: { safeParse(v: unknown): { success: boolean; error?: { issues: Parameters<typeof fieldOf>[0][] } } }, input: unknown) {
  const res = schema.safeParse(input);
  return res.success ? [] : (res.error?.issues ?? []).map((i) => `${fieldOf(i)}: ${i.message}`);
}

describe("jsonBytesUpTo: a size measured only up to its bound", () => {
  it("is the size of the compact JSON (UTF-8) for values without escapes", () => {
    const values: unknown[] = [
      [],
      {},
      "",
      [text("hi"), { MsgType: "TIMCustomElem", MsgContent: { Desc: "礼物 🎁", Data: "x", n: 12.5, ok: true, no: false, none: null } }],
      { a: [1, [2, [3, {}]]], "キー": "値" },
    ];
    for (const v of values) assert.equal(jsonBytesUpTo(v, 1_000_000), Buffer.byteLength(JSON.stringify(v)), JSON.stringify(v));
  });

  it("stops at the bound: a long string or array is over without being read", () => {
    assert.equal(jsonBytesUpTo("x".repeat(10_000_000), 1_000), 1_001);
    assert.equal(jsonBytesUpTo(untouchable(5_000_000), 65_536), 65_537);
  });

  it("any nesting depth, without overflowing the stack", () => {
    let deep: unknown = [];
    for (let i = 0; i < 200_000; i++) deep = [deep];
    assert.equal(jsonBytesUpTo(deep, 1_000_000), 400_002);
  });
});

describe("oversized arrays are refused before the schema walks them, naming the field", () => {
  it("an event's To_Account of more than 100,000 accounts: no account is read", () => {
    assert.deepEqual(issues(PushEventSchema, { ...base, To_Account: untouchable(500_000) }), [`To_Account: has more than ${MAX_RECIPIENTS_PER_EVENT} accounts`]);
  });

  it("sendMessage's to of 500,000 entries: no entry is read", () => {
    assert.deepEqual(issues(SendMessageRequestSchema, { to: untouchable(500_000), body: "hi" }), ["to: has more than 500 accounts"]);
  });

  it("a MsgBody of more elements than can fit its bound: no element is read", () => {
    assert.equal(MAX_MSG_BODY_ELEMENTS, 1_560);
    assert.deepEqual(issues(PushEventSchema, { ...base, MsgBody: untouchable(MAX_MSG_BODY_ELEMENTS + 1) }), [`MsgBody: has more than ${MAX_MSG_BODY_ELEMENTS} elements`]);
    assert.deepEqual(issues(SendMessageRequestSchema, { to: "bob", body: untouchable(1_000_000) }), [`body: has more than ${MAX_MSG_BODY_ELEMENTS} elements`]);
  });

  it("a MsgBody over 64 KiB of JSON: refused, measured only up to the bound", () => {
    const big = Array.from({ length: 6 }, () => text("字".repeat(4_000))); // 6 x 12 KB of UTF-8
    assert.deepEqual(issues(PushEventSchema, { ...base, MsgBody: big }), ["MsgBody: is larger than 64 KiB of JSON (the original service allows a 12 KB message)"]);
    assert.deepEqual(issues(SendMessageRequestSchema, { to: "bob", body: big }), ["body: is larger than 64 KiB of JSON (the original service allows a 12 KB message)"]);
  });

  it("sendMessage's offlinePushInfo over 64 KiB (it is published as it is): refused", () => {
    const junk = { Desc: "hi", Vendor: "v".repeat(MAX_OFFLINE_PUSH_INFO_BYTES) };
    assert.deepEqual(issues(SendMessageRequestSchema, { to: "bob", offlinePushInfo: junk }), ["offlinePushInfo: is larger than 64 KiB of JSON"]);
  });

  it("a sendMessage request of 100,000 unknown fields: the first few are named, the rest never listed", () => {
    const request: Record<string, unknown> = { to: "bob" };
    for (let i = 0; i < 100_000; i++) request[`k${i}`] = i;
    const res = SendMessageRequestSchema.safeParse(request);
    assert.equal(res.success, false);
    const issue = res.error!.issues[0]!;
    assert.equal(fieldOf(issue), "k0");
    assert.ok(issue.message.length < 200, issue.message);
  });
});

describe("bounds do not drop legitimate messages", () => {
  it("a 12 KB body in 200 short text elements, and in 1,000: accepted", () => {
    for (const n of [200, 1_000]) {
      const body = Array.from({ length: n }, (_, i) => text(`${String(i).padStart(4, "0")}${"x".repeat(12_000 / n - 4)}`));
      assert.ok(jsonBytesUpTo(body, MAX_MSG_BODY_BYTES) <= MAX_MSG_BODY_BYTES);
      assert.deepEqual(issues(PushEventSchema, { ...base, MsgBody: body }), []);
    }
  });

  it("a single text element at its 12,000-character bound, in any script: accepted", () => {
    for (const ch of ["x", "é", "字", "😀"]) {
      const t = ch.repeat(12_000 / ch.length);
      assert.deepEqual(issues(PushEventSchema, { ...base, MsgBody: [text(t)] }), []);
    }
  });

  it("100,000 recipients (the event's bound): accepted", () => {
    const to = Array.from({ length: MAX_RECIPIENTS_PER_EVENT }, (_, i) => `user-${i}`);
    assert.deepEqual(issues(PushEventSchema, { ...base, To_Account: to }), []);
  });
});

describe("sendMessage when it is off", () => {
  it("answers PERMISSION_DENIED without looking at the request", async () => {
    const request = new Proxy(
      {},
      {
        get() {
          throw new Error("the request was read");
        },
        ownKeys() {
          throw new Error("the request was read");
        },
      },
    );
    const err = await sendAsApp(request, { uid: "alice", admin: false }, { policy: "off", perMinute: 30, maxRecipients: 20 }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.equal(toHttpsError(err, "sendMessage").code, "permission-denied");
  });
});

describe("a batch keeps only the elements its notification uses", () => {
  const s = fc.constantFrom("", "  ", "hi", "礼物");
  const elem = fc.oneof(
    s.map((t) => ({ MsgType: "TIMTextElem", MsgContent: { Text: t, Extra: "dropped" } })),
    fc
      .record({ Data: s, Desc: s, Ext: s, Sound: s }, { requiredKeys: [] })
      .map((c) => ({ MsgType: "TIMCustomElem", MsgContent: c })),
    fc.constantFrom("TIMImageElem", "TIMSoundElem", "TIMLocationElem", "TIMFaceElem", "TIMRelayElem").map((t) => ({ MsgType: t, MsgContent: { Url: "u", Desc: "d" } })),
  );
  const info = fc.record({ Desc: s, Title: s, PushFlag: fc.constantFrom(0, 1), AndroidInfo: fc.record({ Sound: s }, { requiredKeys: [] }) }, { requiredKeys: [] });

  it("the same decision, title, body and notes as the whole body (3,000 generated bodies), from at most 5 elements", () => {
    fc.assert(
      fc.property(fc.array(elem, { maxLength: 30 }), info, (body, offlinePushInfo) => {
        const event = PushEventSchema.parse({ ...base, MsgBody: body, OfflinePushInfo: offlinePushInfo });
        const kept = contentOf(event);
        assert.ok(kept.MsgBody.length <= 5);
        assert.deepEqual(messageDecision(kept, DEFAULT_PLACEHOLDERS), messageDecision(event as PushContent, DEFAULT_PLACEHOLDERS));
      }),
      { numRuns: 3_000, seed },
    );
  });

  it("of 1,000 elements, a text's words and a custom element's Data and Ext stay behind", () => {
    const body = [
      { MsgType: "TIMImageElem", MsgContent: { UUID: "img" } },
      ...Array.from({ length: 998 }, (_, i) => text(i === 500 ? "the text" : "")),
      { MsgType: "TIMCustomElem", MsgContent: { Data: "payload", Ext: "e", Desc: "a gift", Sound: "s.mp3" } },
    ];
    const kept = contentOf(PushEventSchema.parse({ ...base, MsgBody: body }));
    assert.deepEqual(kept.MsgBody, [
      { MsgType: "TIMImageElem", MsgContent: {} },
      text("the text"),
      { MsgType: "TIMCustomElem", MsgContent: { Desc: "a gift", Sound: "s.mp3" } },
    ]);
  });
});

describe("publishing an event's further batches", () => {
  it("at most 50 at a time, each message built when its turn comes; nothing new after a failure", async () => {
    let inFlight = 0;
    let most = 0;
    let built = 0;
    let published = 0;
    const publish = async (): Promise<string> => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setImmediate(r));
      inFlight--;
      published++;
      return "id";
    };
    const messageAt = (i: number) => {
      built++;
      assert.ok(built - published <= PUBLISH_CONCURRENCY, "a message is built only when a slot is free");
      return { i };
    };
    await publishEach("t", 450, messageAt, { publish });
    assert.equal(most, PUBLISH_CONCURRENCY);
    assert.equal(published, 450);

    let attempts = 0;
    const failing = async (): Promise<string> => {
      attempts++;
      await new Promise((r) => setImmediate(r));
      throw new Error("publish failed");
    };
    await assert.rejects(publishEach("t", 450, (i) => ({ i }), { publish: failing }), /publish failed/);
    assert.equal(attempts, PUBLISH_CONCURRENCY, "the first wave failed: no message was started after it");
  });
});
