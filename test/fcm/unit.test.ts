/** Pure unit tests: endpoints, response classification, retry policy, message schema. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  classifyFcmResponse,
  FCM_PRODUCTION_API_ORIGIN,
  FcmEndpointConfigError,
  fcmEndpoints,
  fcmMessageSchema,
  fcmPayloadSize,
  GOOGLE_OAUTH_TOKEN_URL,
  parseRetryAfter,
  sendWithRetry,
  type FcmSendResult,
  type Http2Response,
} from "../../functions/src/fcm/index.js";

describe("fcmEndpoints", () => {
  test("production is fixed, whatever the environment says", () => {
    const prod = { apiOrigin: FCM_PRODUCTION_API_ORIGIN, tokenUrl: GOOGLE_OAUTH_TOKEN_URL };
    assert.deepEqual(fcmEndpoints({}), prod);
    assert.deepEqual(
      fcmEndpoints({ FCM_API_ORIGIN: "http://evil.example", FCM_TOKEN_URL: "http://evil.example/token" }),
      prod,
    );
    assert.deepEqual(fcmEndpoints({ FUNCTIONS_EMULATOR: "1", FCM_API_ORIGIN: "http://evil.example" }), prod);
    assert.equal(prod.apiOrigin, "https://fcm.googleapis.com");
    assert.equal(prod.tokenUrl, "https://oauth2.googleapis.com/token");
  });

  test("the emulator reads FCM_API_ORIGIN and FCM_TOKEN_URL", () => {
    assert.deepEqual(
      fcmEndpoints({
        FUNCTIONS_EMULATOR: "true",
        FCM_API_ORIGIN: "http://127.0.0.1:9470",
        FCM_TOKEN_URL: "http://127.0.0.1:9471/token",
      }),
      { apiOrigin: "http://127.0.0.1:9470", tokenUrl: "http://127.0.0.1:9471/token" },
    );
  });

  test("the emulator without (valid) variables fails clearly", () => {
    assert.throws(() => fcmEndpoints({ FUNCTIONS_EMULATOR: "true" }), (err: unknown) => {
      assert.ok(err instanceof FcmEndpointConfigError);
      assert.match(err.message, /FCM_API_ORIGIN/);
      assert.match(err.message, /FCM_TOKEN_URL/);
      return true;
    });
    for (const bad of [
      { FCM_API_ORIGIN: "not a url", FCM_TOKEN_URL: "http://127.0.0.1:9471/token" },
      { FCM_API_ORIGIN: "http://127.0.0.1:9470/v1", FCM_TOKEN_URL: "http://127.0.0.1:9471/token" },
      { FCM_API_ORIGIN: "ftp://127.0.0.1", FCM_TOKEN_URL: "http://127.0.0.1:9471/token" },
      { FCM_API_ORIGIN: "http://127.0.0.1:9470", FCM_TOKEN_URL: "" },
    ]) {
      assert.throws(() => fcmEndpoints({ FUNCTIONS_EMULATOR: "true", ...bad }), FcmEndpointConfigError, JSON.stringify(bad));
    }
  });
});

const res = (status: number, body: unknown, headers: Record<string, string> = {}): Http2Response => ({
  status,
  headers,
  body: typeof body === "string" ? body : JSON.stringify(body),
});
const rpc = (code: number, status: string, message: string, details: unknown[] = []) => ({
  error: { code, message, status, details },
});
const fcmError = (errorCode: string) => ({ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode });
const kindOf = (r: FcmSendResult) => (r.ok ? "ok" : r.kind);

describe("classifyFcmResponse", () => {
  test("success", () => {
    assert.deepEqual(classifyFcmResponse(res(200, { name: "projects/p/messages/1" })), {
      ok: true,
      name: "projects/p/messages/1",
    });
    assert.equal(kindOf(classifyFcmResponse(res(200, "<html>"))), "other");
  });

  test("the success fast path still checks the shape: a malformed success body is 'other', never a send", () => {
    // Unknown fields beside a good name are accepted, as zod's object did.
    assert.deepEqual(classifyFcmResponse(res(200, { name: "projects/p/messages/2", extra: 1 })), { ok: true, name: "projects/p/messages/2" });
    const malformed: unknown[] = [
      { name: 5 },
      { name: "" },
      { name: null },
      { name: ["projects/p/messages/3"] },
      { name: { id: "x" } },
      {},
      { message: { name: "projects/p/messages/4" } },
      [],
      ["projects/p/messages/5"],
      "projects/p/messages/6",
      null,
      42,
      true,
    ];
    for (const body of malformed) {
      const r = classifyFcmResponse(res(200, body));
      assert.ok(!r.ok, JSON.stringify(body));
      assert.equal(r.kind, "other");
      assert.equal(r.httpStatus, 200);
      assert.match(r.message, /^unexpected success body: /);
    }
    for (const text of ["", "{", '{"name": "x"', "not json"]) {
      const r = classifyFcmResponse(res(200, text));
      assert.ok(!r.ok && r.kind === "other", text);
    }
    // Any 2xx goes the same way.
    assert.deepEqual(classifyFcmResponse(res(204, { name: "projects/p/messages/7" })), { ok: true, name: "projects/p/messages/7" });
    assert.equal(kindOf(classifyFcmResponse(res(201, { name: 7 }))), "other");
  });

  test("error kinds", () => {
    const cases: Array<[Http2Response, string]> = [
      [res(404, rpc(404, "NOT_FOUND", "Requested entity was not found.", [fcmError("UNREGISTERED")])), "token-unregistered"],
      [res(404, rpc(404, "NOT_FOUND", "Requested entity was not found.")), "token-unregistered"],
      [res(400, rpc(400, "INVALID_ARGUMENT", "x", [fcmError("UNREGISTERED")])), "token-unregistered"],
      [res(404, "<html>Not Found</html>"), "other"],
      [res(400, rpc(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token", [fcmError("INVALID_ARGUMENT")])), "token-invalid"],
      [res(400, rpc(400, "INVALID_ARGUMENT", "Request contains an invalid argument.", [fcmError("INVALID_ARGUMENT")])), "invalid-message"],
      [res(403, rpc(403, "PERMISSION_DENIED", "SenderId mismatch", [fcmError("SENDER_ID_MISMATCH")])), "sender-mismatch"],
      [res(403, rpc(403, "PERMISSION_DENIED", "Permission denied", [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "IAM_PERMISSION_DENIED" }])), "auth"],
      [res(401, rpc(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")), "auth"],
      [res(401, rpc(401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service", [fcmError("THIRD_PARTY_AUTH_ERROR")])), "third-party-auth"],
      [res(429, rpc(429, "RESOURCE_EXHAUSTED", "quota", [fcmError("QUOTA_EXCEEDED")])), "retryable"],
      [res(500, rpc(500, "INTERNAL", "internal", [fcmError("INTERNAL")])), "retryable"],
      [res(503, rpc(503, "UNAVAILABLE", "unavailable", [fcmError("UNAVAILABLE")])), "retryable"],
      [res(502, "<html>Bad Gateway</html>"), "retryable"],
      [res(503, ""), "retryable"],
      [res(409, rpc(409, "ABORTED", "aborted")), "other"],
      [res(418, "teapot"), "other"],
    ];
    for (const [r, kind] of cases) assert.equal(kindOf(classifyFcmResponse(r)), kind, r.body);
  });

  test("lenient parsing: unknown detail types, malformed details, non-JSON bodies", () => {
    const r = classifyFcmResponse(
      res(400, {
        error: {
          code: 400,
          message: "Invalid registration",
          status: "INVALID_ARGUMENT",
          details: [
            "garbage",
            null,
            { "@type": "type.googleapis.com/google.rpc.Help", links: [] },
            { "@type": "type.googleapis.com/google.rpc.BadRequest", fieldViolations: [{ field: "message.token", description: "bad" }] },
            fcmError("INVALID_ARGUMENT"),
          ],
        },
      }),
    );
    assert.ok(!r.ok);
    assert.equal(r.kind, "token-invalid");
    assert.equal(r.errorCode, "INVALID_ARGUMENT");
    assert.equal(r.message, "Invalid registration");

    const text = classifyFcmResponse(res(500, "upstream connect error"));
    assert.ok(!text.ok);
    assert.equal(text.message, "HTTP 500: upstream connect error");
    assert.equal(text.status, undefined);
  });

  test("Retry-After (seconds, HTTP date) and google.rpc.RetryInfo", () => {
    const now = Date.parse("2030-01-01T00:00:00Z");
    const a = classifyFcmResponse(res(429, rpc(429, "RESOURCE_EXHAUSTED", "q"), { "retry-after": "12" }), now);
    assert.ok(!a.ok && a.retryAfterMs === 12_000);
    const b = classifyFcmResponse(res(503, "", { "retry-after": "Tue, 01 Jan 2030 00:00:30 GMT" }), now);
    assert.ok(!b.ok && b.retryAfterMs === 30_000);
    const c = classifyFcmResponse(
      res(503, rpc(503, "UNAVAILABLE", "u", [{ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "2.5s" }])),
      now,
    );
    assert.ok(!c.ok && c.retryAfterMs === 2_500);
    assert.equal(parseRetryAfter("Mon, 31 Dec 2029 00:00:00 GMT", now), 0);
    assert.equal(parseRetryAfter("soon", now), undefined);
    assert.equal(parseRetryAfter(undefined, now), undefined);
  });
});

describe("sendWithRetry", () => {
  const retryable = (retryAfterMs?: number): FcmSendResult => ({
    ok: false,
    kind: "retryable",
    httpStatus: 503,
    message: "u",
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });

  test("full jitter within an exponentially growing, capped window", async () => {
    const sleeps: number[] = [];
    const { result, attempts } = await sendWithRetry(async () => retryable(), {
      maxAttempts: 6,
      baseDelayMs: 500,
      maxDelayMs: 3_000,
      random: () => 0.999,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    assert.equal(attempts, 6);
    assert.equal(kindOf(result), "retryable");
    assert.deepEqual(sleeps, [499, 999, 1998, 2997, 2997]);
  });

  test("Retry-After is a floor; one longer than maxDelayMs ends the retries", async () => {
    const sleeps: number[] = [];
    const sleep = async (ms: number) => {
      sleeps.push(ms);
    };
    let n = 0;
    const out = await sendWithRetry(async () => (++n === 1 ? retryable(4_000) : { ok: true, name: "n" }), {
      random: () => 0,
      sleep,
    });
    assert.equal(out.attempts, 2);
    assert.deepEqual(sleeps, [4_000]);

    const long = await sendWithRetry(async () => retryable(120_000), { sleep, maxDelayMs: 30_000 });
    assert.equal(long.attempts, 1);
    assert.ok(!long.result.ok && long.result.retryAfterMs === 120_000);
    assert.deepEqual(sleeps, [4_000]);
  });

  test("passes the attempt number and propagates exceptions", async () => {
    const seen: number[] = [];
    await sendWithRetry(
      async (attempt) => {
        seen.push(attempt);
        return retryable();
      },
      { maxAttempts: 3, sleep: async () => {} },
    );
    assert.deepEqual(seen, [1, 2, 3]);
    await assert.rejects(
      sendWithRetry(async () => {
        throw new Error("boom");
      }),
      /boom/,
    );
  });
});

describe("message schema and payload size", () => {
  test("accepts the messages we send, rejects unknown fields and bad values", () => {
    const ok = fcmMessageSchema.parse({
      token: "t",
      notification: { title: "Alice", body: "hi" },
      data: { ext: "{}" },
      android: { priority: "HIGH", ttl: "86400s", notification: { channel_id: "chat", notification_count: 2 } },
      apns: { payload: { aps: { badge: 1 } } },
      webpush: { fcm_options: { link: "https://example.com" } },
      fcm_options: { analytics_label: "im" },
    });
    assert.equal(ok.android?.ttl, "86400s");
    for (const bad of [
      { token: "" },
      { token: "t", data: { n: 1 } },
      { token: "t", android: { priority: "URGENT" } },
      { token: "t", android: { ttl: "3600" } },
      { token: "t", android: { notification: { channelId: "camelCase is not our spelling" } } },
      { token: "t", topic: "news" },
    ]) {
      assert.equal(fcmMessageSchema.safeParse(bad).success, false, JSON.stringify(bad));
    }
  });

  test("fcmPayloadSize counts UTF-8 bytes of the JSON", () => {
    assert.equal(fcmPayloadSize({ token: "t" }), '{"token":"t"}'.length);
    assert.equal(fcmPayloadSize({ token: "t", data: { k: "é" } }), Buffer.byteLength('{"token":"t","data":{"k":"é"}}'));
    assert.equal(fcmPayloadSize({ token: "t", data: { k: "😀" } }) - fcmPayloadSize({ token: "t", data: { k: "" } }), 4);
  });
});
