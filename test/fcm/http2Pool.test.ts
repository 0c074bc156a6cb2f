import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as http2 from "node:http2";
import type { ServerHttp2Stream } from "node:http2";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { classifyTransportError, Http2ConnectionError, Http2Pool, Http2TimeoutError } from "../../functions/src/fcm/index.js";
import { assertFailure, repoRoot, startEnv, type TestEnv } from "./helpers.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, timeoutMs = 3_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error("condition not reached");
    await sleep(10);
  }
}

describe("Http2Pool against the fake FCM", () => {
  let env: TestEnv;
  before(async () => {
    env = await startEnv();
  });
  after(async () => {
    await env.close();
  });
  beforeEach(async () => {
    await env.ctl.reset({ keepAccounts: true });
  });

  test("many concurrent sends share ONE session and never exceed the concurrency bound", async () => {
    const pool = new Http2Pool({ maxConcurrentStreamsPerOrigin: 8 });
    try {
      await env.ctl.addErrorRule({ delayMs: 60 }); // every answer takes 60 ms, so requests overlap
      let peakInFlight = 0;
      let peakQueued = 0;
      const sampler = setInterval(() => {
        const o = pool.stats().origins[0];
        if (o) {
          peakInFlight = Math.max(peakInFlight, o.inFlight);
          peakQueued = Math.max(peakQueued, o.queued);
        }
      }, 1);
      const responses = await Promise.all(
        Array.from({ length: 120 }, (_, i) =>
          pool.request({
            origin: env.fake.apiOrigin,
            path: `/v1/projects/${env.sa.project_id}/messages:send`,
            headers: { authorization: `Bearer ${env.accessToken}`, "content-type": "application/json" },
            body: JSON.stringify({ message: { token: `bounded-${i}` } }),
          }),
        ),
      );
      clearInterval(sampler);
      assert.ok(responses.every((r) => r.status === 200));
      assert.equal(pool.stats().sessionsOpened, 1);
      assert.equal(peakInFlight, 8);
      assert.ok(peakQueued > 0, "requests beyond the bound waited in the queue");
      const stats = await env.ctl.stats();
      assert.equal(stats.sessions, 1, "the fake saw one HTTP/2 session");
      assert.equal(stats.streams, 120);
      assert.equal(stats.maxActiveStreams, 8, "the fake never saw more than 8 streams at once");
      assert.equal((await env.ctl.requests()).length, 120);
    } finally {
      await pool.close();
    }
  });

  test("the default bound is 100 in-flight streams on one session", async () => {
    const pool = new Http2Pool();
    try {
      await env.ctl.addErrorRule({ delayMs: 200 }); // long enough for all 100 to be open at once, even on a loaded machine
      const responses = await Promise.all(
        Array.from({ length: 250 }, (_, i) =>
          pool.request({
            origin: env.fake.apiOrigin,
            path: `/v1/projects/${env.sa.project_id}/messages:send`,
            headers: { authorization: `Bearer ${env.accessToken}` },
            body: JSON.stringify({ message: { token: `t-${i}` } }),
          }),
        ),
      );
      assert.ok(responses.every((r) => r.status === 200));
      const stats = await env.ctl.stats();
      assert.equal(stats.sessions, 1);
      assert.equal(stats.maxActiveStreams, 100);
      assert.equal(pool.stats().sessionsOpened, 1);
    } finally {
      await pool.close();
    }
  });

  test("reconnects after the fake closed the session (GOAWAY), transparently", async () => {
    assert.equal((await env.send({ token: "before" })).ok, true);
    await env.ctl.reset({ keepAccounts: true }); // session counters from here on
    const opened = env.pool.stats().sessionsOpened;
    assert.ok((await env.ctl.closeSessions("goaway")).closed >= 1);
    const r = await env.send({ token: "after-goaway" });
    assert.equal(r.ok, true);
    assert.equal(env.pool.stats().sessionsOpened, opened + 1);
    assert.equal((await env.ctl.stats()).sessions, 1, "one new session on the fake");
  });

  test("reconnects after the fake dropped the connection; an in-flight request fails as retryable", async () => {
    await env.ctl.addErrorRule({ token: "in-flight", delayMs: 2_000, times: 1 });
    const pending = env.send({ token: "in-flight" });
    // Dropped only once the fake holds the request (its delay keeps the stream open for 2 s).
    const streams = async () => (await env.ctl.stats()).activeStreams;
    const until = Date.now() + 5_000;
    while ((await streams()) < 1) {
      if (Date.now() > until) throw new Error("the request never reached the fake");
      await sleep(10);
    }
    await env.ctl.closeSessions("destroy");
    const r = await pending;
    assertFailure(r);
    assert.equal(r.kind, "retryable");
    assert.equal(r.httpStatus, 0);
    await waitFor(() => env.pool.stats().origins.every((o) => !o.connected));
    const opened = env.pool.stats().sessionsOpened;
    assert.equal((await env.send({ token: "after-destroy" })).ok, true);
    assert.equal(env.pool.stats().sessionsOpened, opened + 1);
  });

  test("an idle session is closed after idleSessionTimeoutMs, and reopened on demand", async () => {
    const pool = new Http2Pool({ idleSessionTimeoutMs: 100 });
    try {
      const req = () =>
        pool.request({
          origin: env.fake.apiOrigin,
          path: `/v1/projects/${env.sa.project_id}/messages:send`,
          headers: { authorization: `Bearer ${env.accessToken}` },
          body: JSON.stringify({ message: { token: "idle" } }),
        });
      assert.equal((await req()).status, 200);
      assert.equal(pool.stats().origins[0]?.connected, true);
      await waitFor(() => pool.stats().origins[0]?.connected === false);
      assert.equal((await req()).status, 200);
      assert.equal(pool.stats().sessionsOpened, 2);
    } finally {
      await pool.close();
    }
  });

  test("a closed pool refuses requests", async () => {
    const pool = new Http2Pool();
    await pool.close();
    await assert.rejects(pool.request({ origin: env.fake.apiOrigin, path: "/" }), /closed/);
  });

  test("an idle pool does not keep the process alive (session.unref)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fcm-pool-"));
    try {
      const child = join(dir, "child.ts");
      const index = resolve(repoRoot, "functions/src/fcm/index.ts");
      writeFileSync(
        child,
        `import { Http2Pool } from ${JSON.stringify(index)};
const pool = new Http2Pool();
pool
  .request({ origin: process.env.ORIGIN as string, path: "/v1/projects/p/messages:send", body: "{}" })
  .then((res) => console.log("status", res.status, "connected", pool.stats().origins[0]?.connected));
// no pool.close(): the process must still exit by itself
`,
      );
      const proc = spawn(process.execPath, ["--import", "tsx", child], {
        cwd: repoRoot,
        env: { ...process.env, ORIGIN: env.fake.apiOrigin },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      let err = "";
      proc.stdout.on("data", (d: Buffer) => (out += d.toString()));
      proc.stderr.on("data", (d: Buffer) => (err += d.toString()));
      const code = await new Promise<number | null>((resolveExit, reject) => {
        const timer = setTimeout(() => {
          proc.kill("SIGKILL");
          reject(new Error(`child did not exit by itself; stdout=${out} stderr=${err}`));
        }, 8_000);
        proc.on("exit", (c) => {
          clearTimeout(timer);
          resolveExit(c);
        });
      });
      assert.equal(code, 0, err);
      assert.match(out, /status 401 connected true/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("Http2Pool against broken servers", () => {
  test("a server that accepts TCP but never speaks HTTP/2: timeout, then the dead session is dropped", async () => {
    const sockets = new Set<Socket>();
    let connections = 0;
    const server = createServer((s) => {
      connections++;
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const pool = new Http2Pool({ requestTimeoutMs: 150, pingTimeoutMs: 100 });
    try {
      const err = await pool.request({ origin, path: "/" }).then(
        () => assert.fail("should time out"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof Http2TimeoutError);
      assert.equal(err.timeoutMs, 150);
      assert.equal(err.code, "ETIMEDOUT");
      await waitFor(() => pool.stats().origins[0]?.connected === false);
      await pool.request({ origin, path: "/" }).catch(() => undefined);
      assert.equal(connections, 2, "a new connection replaced the dead one");
    } finally {
      await pool.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test("connection refused -> Http2ConnectionError ECONNREFUSED", async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((r) => server.close(() => r()));
    const pool = new Http2Pool();
    try {
      const err = await pool.request({ origin: `http://127.0.0.1:${port}`, path: "/" }).then(
        () => assert.fail("should fail"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof Http2ConnectionError);
      assert.equal(err.code, "ECONNREFUSED");
    } finally {
      await pool.close();
    }
  });
});

/** An in-process h2c server whose streams wait until the test answers them (by path). */
async function heldServer() {
  const held = new Map<string, ServerHttp2Stream>();
  const seen: string[] = [];
  const seenHeaders: http2.IncomingHttpHeaders[] = [];
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  let onStream: ((stream: ServerHttp2Stream, path: string) => void) | undefined;
  server.on("stream", (stream, headers) => {
    const path = String(headers[":path"]);
    seen.push(path);
    seenHeaders.push(headers);
    stream.on("error", () => {});
    stream.resume(); // the request body
    if (onStream) onStream(stream, path);
    else held.set(path, stream);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    seenHeaders,
    held,
    /** Answer each new stream at once with this instead of holding it. */
    handle(fn: (stream: ServerHttp2Stream, path: string) => void) {
      onStream = fn;
    },
    answer(path: string, status = 200, body = '{"name":"projects/p/messages/1"}') {
      const stream = held.get(path);
      assert.ok(stream, `no held stream ${path}`);
      held.delete(path);
      stream.respond({ ":status": status, "content-type": "application/json" });
      stream.end(body);
    },
    async close() {
      for (const s of sessions) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe("Http2Pool: shared deadline sweep, queue, limits", () => {
  test("each request keeps its own deadline: a short one times out while a longer one on the same session waits, then completes", async () => {
    const server = await heldServer();
    const pool = new Http2Pool({ requestTimeoutMs: 60_000, pingTimeoutMs: 5_000 });
    try {
      let longSettled = false;
      const long = pool.request({ origin: server.origin, path: "/long" }).finally(() => (longSettled = true));
      await waitFor(() => server.held.has("/long"));
      // A shorter deadline started later, behind a longer one: it must not wait for the longer one.
      const err = await pool.request({ origin: server.origin, path: "/short", timeoutMs: 100 }).then(
        () => assert.fail("should time out"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof Http2TimeoutError);
      assert.equal(err.timeoutMs, 100);
      assert.equal(longSettled, false, "the long request is still waiting for its answer");
      server.answer("/long");
      assert.equal((await long).status, 200);
      assert.equal(pool.stats().sessionsOpened, 1, "the session answered the liveness PING and was kept");
    } finally {
      await pool.close();
      await server.close();
    }
  });

  test("requests sharing a timeout each time out, and a timed-out request hands its slot to a waiting one", async () => {
    const server = await heldServer();
    const pool = new Http2Pool({ maxConcurrentStreamsPerOrigin: 3, requestTimeoutMs: 60_000, pingTimeoutMs: 5_000 });
    try {
      const doomed = [0, 1, 2].map((i) => pool.request({ origin: server.origin, path: `/doomed-${i}`, timeoutMs: 150 }));
      const waiting = pool.request({ origin: server.origin, path: "/waiting" });
      assert.equal(pool.stats().origins[0]?.queued, 1);
      for (const p of doomed) {
        const err = await p.then(
          () => assert.fail("should time out"),
          (e: unknown) => e,
        );
        assert.ok(err instanceof Http2TimeoutError);
        assert.equal(err.timeoutMs, 150);
      }
      await waitFor(() => server.held.has("/waiting"));
      server.answer("/waiting");
      assert.equal((await waiting).status, 200);
      assert.deepEqual(server.seen, ["/doomed-0", "/doomed-1", "/doomed-2", "/waiting"]);
    } finally {
      await pool.close();
      await server.close();
    }
  });

  test("waiting requests start in FIFO order", async () => {
    const server = await heldServer();
    server.handle((stream) => {
      stream.respond({ ":status": 200 });
      stream.end('{"name":"projects/p/messages/1"}');
    });
    const pool = new Http2Pool({ maxConcurrentStreamsPerOrigin: 2 });
    try {
      const paths = Array.from({ length: 30 }, (_, i) => `/m-${i}`);
      const all = await Promise.all(paths.map((path) => pool.request({ origin: server.origin, path, body: "{}" })));
      assert.ok(all.every((r) => r.status === 200));
      assert.deepEqual(server.seen, paths);
    } finally {
      await pool.close();
      await server.close();
    }
  });

  test("response headers (built when first read): lower-case names, repeated ones joined, no pseudo-headers, in JSON too", async () => {
    const server = await heldServer();
    server.handle((stream) => {
      stream.respond({ ":status": 503, "retry-after": "7", "x-multi": ["a", "b"], "content-type": "application/json" });
      stream.end('{"error":{}}');
    });
    const pool = new Http2Pool();
    try {
      const res = await pool.request({ origin: server.origin, path: "/r", body: "{}" });
      assert.equal(res.status, 503);
      assert.equal(res.body, '{"error":{}}');
      assert.equal(res.headers["retry-after"], "7");
      assert.equal(res.headers["x-multi"], "a, b");
      assert.equal(res.headers[":status"], undefined);
      assert.equal(res.headers, res.headers, "built once");
      const json = JSON.parse(JSON.stringify(res)) as { status: number; headers: Record<string, string>; body: string };
      assert.equal(json.status, 503);
      assert.equal(json.headers["retry-after"], "7");
      assert.equal(json.body, '{"error":{}}');
    } finally {
      await pool.close();
      await server.close();
    }
  });

  test("a caller's header object is read afresh for every request unless it is frozen", async () => {
    const server = await heldServer();
    server.handle((stream) => {
      stream.respond({ ":status": 200 });
      stream.end("{}");
    });
    const pool = new Http2Pool();
    try {
      const headers = { authorization: "Bearer one" };
      await pool.request({ origin: server.origin, path: "/h", headers, body: "{}" });
      headers.authorization = "Bearer two";
      await pool.request({ origin: server.origin, path: "/h", headers, body: "{}" });
      const frozen = Object.freeze({ authorization: "Bearer three" });
      await pool.request({ origin: server.origin, path: "/h", headers: frozen, body: "{}" });
      await pool.request({ origin: server.origin, path: "/h", headers: frozen, body: "{}" });
      await pool.request({ origin: server.origin, path: "/other", headers: frozen });
      assert.deepEqual(
        server.seenHeaders.map((h) => [h[":method"], h[":path"], h.authorization]),
        [
          ["POST", "/h", "Bearer one"],
          ["POST", "/h", "Bearer two"],
          ["POST", "/h", "Bearer three"],
          ["POST", "/h", "Bearer three"],
          ["GET", "/other", "Bearer three"],
        ],
      );
    } finally {
      await pool.close();
      await server.close();
    }
  });

  test("close() settles every request, in flight or queued (thousands, without deep recursion)", async () => {
    const server = await heldServer();
    const pool = new Http2Pool({ maxConcurrentStreamsPerOrigin: 10, closeTimeoutMs: 50 });
    try {
      const all = Array.from({ length: 20_000 }, (_, i) =>
        pool.request({ origin: server.origin, path: `/c-${i}` }).then(
          () => "answered",
          (e: unknown) => (e instanceof Http2ConnectionError ? "connection" : e instanceof Error && /closed/.test(e.message) ? "closed" : String(e)),
        ),
      );
      await waitFor(() => server.held.size === 10);
      await pool.close();
      const outcomes = await Promise.all(all);
      assert.equal(outcomes.filter((o) => o === "connection").length, 10);
      assert.equal(outcomes.filter((o) => o === "closed").length, 20_000 - 10);
    } finally {
      await server.close();
    }
  });

  test("a response over maxResponseBytes is aborted: ERR_RESPONSE_TOO_LARGE, classified 'other'", async () => {
    const server = await heldServer();
    server.handle((stream) => {
      stream.respond({ ":status": 200 });
      stream.end("x".repeat(5_000));
    });
    const pool = new Http2Pool({ maxResponseBytes: 1_000 });
    try {
      const err = await pool.request({ origin: server.origin, path: "/big" }).then(
        () => assert.fail("should fail"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof Http2ConnectionError);
      assert.equal(err.code, "ERR_RESPONSE_TOO_LARGE");
      assert.equal(classifyTransportError(err).kind, "other");
      // The session survives for the next request.
      server.handle((stream) => {
        stream.respond({ ":status": 200 });
        stream.end("{}");
      });
      assert.equal((await pool.request({ origin: server.origin, path: "/small" })).status, 200);
      assert.equal(pool.stats().sessionsOpened, 1);
    } finally {
      await pool.close();
      await server.close();
    }
  });

  test("REFUSED_STREAM is retried once at once; refused twice, it fails unprocessed; another reset is not retried", async () => {
    const server = await heldServer();
    let refusals = 1;
    server.handle((stream, path) => {
      if (path.startsWith("/refused") && refusals-- > 0) {
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      if (path === "/reset") {
        stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
        return;
      }
      stream.respond({ ":status": 200 });
      stream.end('{"name":"projects/p/messages/1"}');
    });
    const pool = new Http2Pool();
    try {
      assert.equal((await pool.request({ origin: server.origin, path: "/refused-once" })).status, 200);
      assert.deepEqual(server.seen, ["/refused-once", "/refused-once"]);

      refusals = 2;
      const twice = await pool.request({ origin: server.origin, path: "/refused-twice" }).then(
        () => assert.fail("should fail"),
        (e: unknown) => e,
      );
      assert.ok(twice instanceof Http2ConnectionError);
      assert.equal(twice.unprocessed, true);
      assert.equal(server.seen.filter((p) => p === "/refused-twice").length, 2);

      const reset = await pool.request({ origin: server.origin, path: "/reset" }).then(
        () => assert.fail("should fail"),
        (e: unknown) => e,
      );
      assert.ok(reset instanceof Http2ConnectionError);
      assert.equal(reset.unprocessed, false);
      assert.equal(server.seen.filter((p) => p === "/reset").length, 1);
      assert.equal(pool.stats().origins[0]?.inFlight, 0);
    } finally {
      await pool.close();
      await server.close();
    }
  });
});
