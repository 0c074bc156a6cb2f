import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import {
  FCM_MAX_PAYLOAD_BYTES,
  fcmMessageSchema,
  fcmPayloadSize,
  sendWithRetry,
  type FcmMessage,
} from "../../functions/src/fcm/index.js";
import { assertFailure, rawSend, startEnv, type TestEnv } from "./helpers.js";

describe("sendFcmMessage against the fake FCM over HTTP/2", () => {
  let env: TestEnv;
  before(async () => {
    env = await startEnv({ requestTimeoutMs: 2_000 });
  });
  after(async () => {
    await env.close();
  });
  beforeEach(async () => {
    await env.ctl.reset({ keepAccounts: true });
  });

  const message: FcmMessage = {
    token: "fcm-token-bob-phone-0001",
    notification: { title: "Alice", body: "hi" },
    data: { ext: '{"conv":"c2c_alice"}', msgKey: "msg-123" },
    android: {
      priority: "HIGH",
      ttl: "3600s",
      collapse_key: "c2c_alice",
      notification: { channel_id: "chat", tag: "msg-123", click_action: "OPEN_CHAT", notification_count: 3 },
    },
  };

  test("a send arrives at the fake with the exact body", async () => {
    const result = await env.send(message);
    assert.equal(result.ok, true);
    assert.match(result.ok ? result.name : "", new RegExp(`^projects/${env.sa.project_id}/messages/0:\\d+`));
    const recs = await env.ctl.requests({ token: message.token });
    assert.equal(recs.length, 1);
    const rec = recs[0];
    assert.ok(rec);
    assert.deepEqual(rec.message, message);
    assert.equal(rec.projectId, env.sa.project_id);
    assert.equal(rec.clientEmail, env.sa.client_email);
    assert.equal(rec.accessToken, env.accessToken);
    assert.equal(rec.validateOnly, false);
    assert.equal(rec.answeredStatus, 200);
    assert.equal(rec.name, result.ok ? result.name : "");
    assert.ok(Date.parse(rec.receivedAt) > Date.now() - 60_000);
  });

  test("validate_only is sent, answered with fake_message_id and recorded", async () => {
    const result = await env.send(message, { validateOnly: true });
    assert.deepEqual(result, { ok: true, name: `projects/${env.sa.project_id}/messages/fake_message_id` });
    const [rec] = await env.ctl.requests();
    assert.equal(rec?.validateOnly, true);
    assert.equal(rec?.answeredStatus, 200);
  });

  test("UNREGISTERED -> token-unregistered", async () => {
    await env.ctl.addErrorRule({ token: "gone", preset: "unregistered" });
    const r = await env.send({ token: "gone" });
    assertFailure(r);
    assert.deepEqual(r, {
      ok: false,
      kind: "token-unregistered",
      httpStatus: 404,
      status: "NOT_FOUND",
      errorCode: "UNREGISTERED",
      message: "Requested entity was not found.",
    });
    // The rule matched only that token.
    assert.equal((await env.send({ token: "other" })).ok, true);
  });

  test("INVALID_ARGUMENT naming message.token -> token-invalid; other INVALID_ARGUMENT -> invalid-message", async () => {
    await env.ctl.addErrorRule({ token: "bad", preset: "invalid-token" });
    const r = await env.send({ token: "bad" });
    assertFailure(r);
    assert.equal(r.kind, "token-invalid");
    assert.equal(r.httpStatus, 400);
    assert.equal(r.errorCode, "INVALID_ARGUMENT");

    // The field violation alone (with an unrelated message) is enough.
    await env.ctl.addErrorRule({
      token: "bad2",
      httpStatus: 400,
      errorCode: "INVALID_ARGUMENT",
      message: "Request contains an invalid argument.",
      fieldViolations: [{ field: "message.token", description: "Invalid registration token" }],
    });
    const r2 = await env.send({ token: "bad2" });
    assertFailure(r2);
    assert.equal(r2.kind, "token-invalid");

    await env.ctl.addErrorRule({ token: "weird", preset: "invalid-argument" });
    const r3 = await env.send({ token: "weird" });
    assertFailure(r3);
    assert.equal(r3.kind, "invalid-message");
    assert.equal(r3.message, "Request contains an invalid argument.");
  });

  test("SENDER_ID_MISMATCH -> sender-mismatch; other 403 -> auth", async () => {
    await env.ctl.addErrorRule({ token: "foreign", preset: "sender-id-mismatch" });
    const r = await env.send({ token: "foreign" });
    assertFailure(r);
    assert.equal(r.kind, "sender-mismatch");
    assert.equal(r.httpStatus, 403);

    // Sending for a project the service account does not belong to.
    const other = await env.send({ token: "t" }, { projectId: "demo-someone-else" });
    assertFailure(other);
    assert.equal(other.kind, "auth");
    assert.equal(other.httpStatus, 403);
    assert.equal(other.status, "PERMISSION_DENIED");
  });

  test("401 (unknown access token) -> auth; THIRD_PARTY_AUTH_ERROR -> third-party-auth (the token's, not the certificate's)", async () => {
    const r = await env.send({ token: "t" }, { accessToken: "ya29.not-issued" });
    assertFailure(r);
    assert.equal(r.kind, "auth");
    assert.equal(r.httpStatus, 401);
    assert.equal(r.status, "UNAUTHENTICATED");
    const [rec] = await env.ctl.requests();
    assert.equal(rec?.answeredStatus, 401);
    assert.equal(rec?.clientEmail, null);

    await env.ctl.addErrorRule({ token: "apns", preset: "third-party-auth" });
    const r2 = await env.send({ token: "apns" });
    assertFailure(r2);
    assert.equal(r2.kind, "third-party-auth");
    assert.equal(r2.errorCode, "THIRD_PARTY_AUTH_ERROR");
  });

  test("429 QUOTA_EXCEEDED with Retry-After: retryable, and sendWithRetry waits at least that long", async () => {
    await env.ctl.addErrorRule({ projectId: env.sa.project_id, preset: "quota-exceeded", retryAfterSeconds: 7, times: 1 });
    const sleeps: number[] = [];
    const { result, attempts } = await sendWithRetry(() => env.send({ token: "t" }), {
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      random: () => 0.99,
    });
    assert.equal(result.ok, true);
    assert.equal(attempts, 2);
    assert.deepEqual(sleeps, [7000]);
    const recs = await env.ctl.requests();
    assert.deepEqual(
      recs.map((r) => [r.answeredStatus, r.errorCode ?? null]),
      [
        [429, "QUOTA_EXCEEDED"],
        [200, null],
      ],
    );
  });

  test("Retry-After as an HTTP date", async () => {
    const at = new Date(Date.now() + 20_000).toUTCString();
    await env.ctl.addErrorRule({ token: "t", preset: "unavailable", retryAfter: at, times: 1 });
    const r = await env.send({ token: "t" });
    assertFailure(r);
    assert.equal(r.kind, "retryable");
    assert.ok(r.retryAfterMs !== undefined && r.retryAfterMs > 15_000 && r.retryAfterMs <= 20_000, String(r.retryAfterMs));
  });

  test("503 twice, then success: retried with exponential backoff", async () => {
    await env.ctl.addErrorRule({ token: "t", preset: "unavailable", times: 2 });
    const sleeps: number[] = [];
    const { result, attempts } = await sendWithRetry(() => env.send({ token: "t" }), {
      baseDelayMs: 100,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      random: () => 0.5,
    });
    assert.equal(result.ok, true);
    assert.equal(attempts, 3);
    assert.deepEqual(sleeps, [50, 100]);
    assert.equal((await env.ctl.requests()).length, 3);
  });

  test("500 INTERNAL every time: gives up after maxAttempts with the last failure", async () => {
    await env.ctl.addErrorRule({ token: "t", preset: "internal" });
    const { result, attempts } = await sendWithRetry(() => env.send({ token: "t" }), {
      maxAttempts: 3,
      baseDelayMs: 1,
    });
    assertFailure(result);
    assert.equal(attempts, 3);
    assert.equal(result.kind, "retryable");
    assert.equal(result.httpStatus, 500);
    assert.equal(result.errorCode, "INTERNAL");
    assert.equal((await env.ctl.requests()).length, 3);
  });

  test("non-retryable failures are not retried", async () => {
    await env.ctl.addErrorRule({ token: "gone", preset: "unregistered" });
    const { result, attempts } = await sendWithRetry(() => env.send({ token: "gone" }), { baseDelayMs: 1 });
    assertFailure(result);
    assert.equal(result.kind, "token-unregistered");
    assert.equal(attempts, 1);
    assert.equal((await env.ctl.requests()).length, 1);
  });

  test("a slow FCM: the request times out (retryable), the stream is reset, the session stays usable", async () => {
    await env.ctl.addErrorRule({ token: "slow", delayMs: 1_500, times: 1 });
    const t0 = Date.now();
    const r = await env.send({ token: "slow" }, { timeoutMs: 200 });
    const elapsed = Date.now() - t0;
    assertFailure(r);
    assert.equal(r.kind, "retryable");
    assert.equal(r.httpStatus, 0);
    assert.equal(r.errorCode, "ETIMEDOUT");
    assert.ok(elapsed >= 190 && elapsed < 1_200, `elapsed ${elapsed}`);
    assert.equal((await env.send({ token: "fast" })).ok, true);
    const stats = await env.ctl.stats();
    assert.equal(stats.sessions, 0, "no new session was needed");
    // The fake saw the cancellation: the answer to the slow request was never delivered. It records
    // the request when its 1.5 s delay ends and it tries to answer: poll for that record.
    const until = Date.now() + 15_000;
    let slow = await env.ctl.requests({ token: "slow" });
    while (slow.length === 0) {
      if (Date.now() > until) throw new Error("the fake never recorded the slow request");
      await new Promise((r) => setTimeout(r, 50));
      slow = await env.ctl.requests({ token: "slow" });
    }
    assert.equal(slow.length, 1);
    assert.equal(slow[0]?.answeredStatus, null);
  });

  test("a reset stream -> retryable; sendWithRetry then succeeds", async () => {
    await env.ctl.addErrorRule({ token: "t", resetStream: true, times: 1 });
    const first = await env.send({ token: "t" });
    assertFailure(first);
    assert.equal(first.kind, "retryable");
    assert.equal(first.httpStatus, 0);
    assert.equal(first.errorCode, "ERR_HTTP2_STREAM_ERROR");
    assert.match(first.message, /NGHTTP2_INTERNAL_ERROR/);

    await env.ctl.addErrorRule({ token: "t", resetStream: true, times: 1 });
    const { result, attempts } = await sendWithRetry(() => env.send({ token: "t" }), { baseDelayMs: 1 });
    assert.equal(result.ok, true);
    assert.equal(attempts, 2);
  });

  test("connection refused -> retryable ECONNREFUSED", async () => {
    const r = await env.pool
      .request({ origin: "http://127.0.0.1:9", path: "/", timeoutMs: 2_000 })
      .then(() => "resolved", (err: Error & { code?: string }) => err.code);
    assert.equal(r, "ECONNREFUSED");
  });

  test("a message over 4096 bytes is rejected by the fake: invalid-message 'Message is too big'", async () => {
    const big: FcmMessage = { token: "t", data: { blob: "x".repeat(FCM_MAX_PAYLOAD_BYTES) } };
    assert.ok(fcmPayloadSize(big) > FCM_MAX_PAYLOAD_BYTES);
    const r = await env.send(big);
    assertFailure(r);
    assert.equal(r.kind, "invalid-message");
    assert.equal(r.message, "Message is too big");

    // Exactly at the limit by our measure: accepted (the fake uses the same measure).
    const base: FcmMessage = { token: "t", data: { blob: "" } };
    const fill = FCM_MAX_PAYLOAD_BYTES - fcmPayloadSize(base);
    const edge: FcmMessage = { token: "t", data: { blob: "é".repeat(Math.floor(fill / 2)) + "x".repeat(fill % 2) } };
    assert.equal(fcmPayloadSize(edge), FCM_MAX_PAYLOAD_BYTES);
    assert.equal((await env.send(edge)).ok, true);
  });

  test("an unknown field is rejected like Google does, classified invalid-message", async () => {
    const r = await env.send({ token: "t", android: { priority: "HIGH", sound: "a.mp3" } } as unknown as FcmMessage);
    assertFailure(r);
    assert.equal(r.kind, "invalid-message");
    assert.equal(r.message, `Invalid JSON payload received. Unknown name "sound" at 'message.android': Cannot find field.`);
    // Our own schema catches it before sending.
    assert.equal(fcmMessageSchema.safeParse({ token: "t", android: { sound: "a.mp3" } }).success, false);

    const raw = await rawSend(env, { message: { token: "t", notification: { title: "x", subtitle: "y" } } });
    assert.equal(raw.status, 400);
    assert.deepEqual(raw.json, {
      error: {
        code: 400,
        message: `Invalid JSON payload received. Unknown name "subtitle" at 'message.notification': Cannot find field.`,
        status: "INVALID_ARGUMENT",
        details: [
          {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            fieldViolations: [
              {
                field: "message.notification",
                description: `Invalid JSON payload received. Unknown name "subtitle" at 'message.notification': Cannot find field.`,
              },
            ],
          },
        ],
      },
    });
  });

  test("the fake validates like FCM: data values, priority enum, ttl, targets, camelCase names", async () => {
    const bad = [
      { message: { token: "t", data: { n: 1 } }, expect: /'message\.data\.n' \(TYPE_STRING\), 1/ },
      { message: { token: "t", android: { priority: "URGENT" } }, expect: /AndroidMessagePriority\), "URGENT"/ },
      { message: { token: "t", android: { ttl: "1h" } }, expect: /google\.protobuf\.Duration\), "1h"/ },
      { message: { notification: { title: "x" } }, expect: /^Recipient of the message is not set\.$/ },
      { message: { token: "t", topic: "news" }, expect: /Oneof field 'target' is already set/ },
    ];
    for (const b of bad) {
      const res = await rawSend(env, { message: b.message });
      assert.equal(res.status, 400, JSON.stringify(b));
      const err = (res.json as { error: { message: string; status: string } }).error;
      assert.equal(err.status, "INVALID_ARGUMENT");
      assert.match(err.message, b.expect);
    }
    const notJson = await rawSend(env, "{not json");
    assert.equal(notJson.status, 400);

    // protobuf JSON also accepts lowerCamelCase field names
    const camel = await rawSend(env, {
      validateOnly: true,
      message: { token: "t", android: { collapseKey: "c", notification: { channelId: "chat", notificationCount: 2 } } },
    });
    assert.equal(camel.status, 200);
    assert.deepEqual(camel.json, { name: `projects/${env.sa.project_id}/messages/fake_message_id` });
  });

  test("a non-Google 404 (wrong path) is 'other', never token-unregistered", async () => {
    const res = await env.pool.request({ origin: env.fake.apiOrigin, path: "/v1/nothing-here", method: "POST", body: "{}" });
    assert.equal(res.status, 404);
    assert.match(res.headers["content-type"] ?? "", /text\/html/);
    const { classifyFcmResponse } = await import("../../functions/src/fcm/index.js");
    const c = classifyFcmResponse(res);
    assertFailure(c);
    assert.equal(c.kind, "other");
  });

  test("error rules: times, project matching, failed requests recorded with status", async () => {
    await env.ctl.addErrorRule({ projectId: "demo-not-this-one", preset: "internal" });
    await env.ctl.addErrorRule({ preset: "unavailable", times: 2 });
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await env.send({ token: `t${i}` }));
    assert.deepEqual(
      results.map((r) => (r.ok ? "ok" : r.kind)),
      ["retryable", "retryable", "ok"],
    );
    const recs = await env.ctl.requests();
    assert.deepEqual(
      recs.map((r) => r.answeredStatus),
      [503, 503, 200],
    );
    assert.equal((await env.ctl.errorRules()).length, 1, "the exhausted rule is gone");
    assert.deepEqual(await env.ctl.clearErrors(), { cleared: 1 });
    assert.deepEqual(await env.ctl.clearRequests({ projectId: env.sa.project_id }), { cleared: 3 });
  });
});

describe("sendFcmMessage request building (stub requester)", () => {
  const msg: FcmMessage = { token: "t-1", data: { a: "\"quoted\" \u2028 é" }, android: { priority: "HIGH" } };

  test("the body is exactly JSON.stringify({ message, validate_only }), and a synchronous throw is a rejection", async () => {
    const { sendFcmMessage } = await import("../../functions/src/fcm/index.js");
    const bodies: unknown[] = [];
    const pool = {
      request: (req: { body?: unknown }) => {
        bodies.push(req.body);
        return Promise.resolve({ status: 200, headers: {}, body: '{"name":"projects/p/messages/1"}' });
      },
    };
    const base = { apiOrigin: "http://127.0.0.1:1", projectId: "p", accessToken: "tok" };
    assert.deepEqual(await sendFcmMessage({ ...base, message: msg }, pool), { ok: true, name: "projects/p/messages/1" });
    await sendFcmMessage({ ...base, message: msg, validateOnly: true }, pool);
    await sendFcmMessage({ ...base, message: msg, validateOnly: false }, pool);
    assert.deepEqual(bodies, [
      JSON.stringify({ message: msg }),
      JSON.stringify({ message: msg, validate_only: true }),
      JSON.stringify({ message: msg }),
    ]);

    const boom = new Error("boom");
    const throwing = { request: (): Promise<never> => { throw boom; } };
    const p = sendFcmMessage({ ...base, message: msg }, throwing);
    assert.ok(p instanceof Promise);
    await assert.rejects(p, boom);
    const rejecting = { request: () => Promise.reject(boom) };
    await assert.rejects(sendFcmMessage({ ...base, message: msg }, rejecting), boom);
  });
});
