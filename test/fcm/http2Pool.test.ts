import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { Http2ConnectionError, Http2Pool, Http2TimeoutError } from "../../functions/src/fcm/index.js";
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
