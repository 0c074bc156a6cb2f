// No request, whatever its shape, puts a private key, an FCM token or message text into any log
// line, whoever writes it (our code, firebase-functions' callable handler, the emulators).
//
// Every callable the functions export gets hostile requests of every shape, each carrying a real
// service-account key (a fresh RSA key the fake FCM made), an FCM token and a message text that
// appear nowhere else: no {"data"} wrapper, extra fields beside it, a wrong content type, GET and
// PUT, a body that is not JSON, an array, a "@type" the framework cannot decode, nesting 200 levels
// deep, a body of 2 MB, without and with a valid ID token, directly and through the Hosting
// rewrites the console uses. Then everything the run has logged so far is searched for them: the
// emulators' terminal output (scripts/emulators.mjs keeps a copy of it, OFFLINE_PUSH_TERMINAL_COPY)
// and the Firebase CLI's firebase-debug.log with the emulators' other *-debug.log files. The search
// starts once the refusals of these very requests are in both logs: it reads live logs, not stale
// or empty ones.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { before, describe, it } from "node:test";
import { PROJECT, REGION, REQUEST_DEADLINE_MS, createUser, eventually, mapLimit, type TestUser } from "../helpers/emulators.ts";
import { fakeFcm, type ServiceAccountJson } from "../helpers/fakeFcm.ts";
import { fakeFcmToken } from "../helpers/sessions.ts";

const FUNCTIONS = process.env.FUNCTIONS_EMULATOR_HOST ?? "127.0.0.1:5001";
const HOSTING = (process.env.CONSOLE_URL ?? "http://127.0.0.1:5000").replace(/^http:\/\//, "");
const ROOT = process.cwd();

/** Every callable the functions export (their endpoint metadata says so): a new one is covered by itself. */
function exportedCallables(): string[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const functions = require(path.join(ROOT, "functions/lib/index.js")) as Record<string, { __endpoint?: { callableTrigger?: unknown } } | undefined>;
  return Object.entries(functions)
    .filter(([, fn]) => fn?.__endpoint?.callableTrigger !== undefined)
    .map(([name]) => name)
    .sort();
}

const ADMIN_CALLABLES = new Set(["registerPushCertificate", "updatePushCertificate", "listPushCertificates", "deletePushCertificate", "diagnosePush", "traceMessage", "sendTestPush", "pushStats"]);

/** The Hosting rewrites to functions (firebase.json), as the console calls them: /api/<name>. */
function hostingRewrites(): string[] {
  const config = JSON.parse(fs.readFileSync(path.join(ROOT, "firebase.json"), "utf8")) as { hosting: { rewrites: Array<{ source: string; function?: { functionId: string } }> } };
  return config.hosting.rewrites.flatMap((r) => (r.function ? [r.function.functionId] : []));
}

interface Sent {
  status: number;
  body: string;
}

/** One raw HTTP request (node:http: any method with any body, which fetch does not allow), with a deadline. */
function send(host: string, urlPath: string, method: string, headers: Record<string, string>, body: string | null): Promise<Sent> {
  const [hostname, port] = host.split(":");
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port: Number(port), path: urlPath, method, headers: { ...headers, ...(body !== null ? { "content-length": String(Buffer.byteLength(body)) } : {}) }, timeout: REQUEST_DEADLINE_MS }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d.length < 4096 ? d : d.slice(0, 4096)));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${urlPath}: no answer within ${REQUEST_DEADLINE_MS / 1000} s`)));
    req.on("error", reject);
    if (body !== null) req.write(body);
    req.end();
  });
}

/** The files this run's emulators and functions log to. */
function logFiles(): string[] {
  const terminal = process.env.OFFLINE_PUSH_TERMINAL_COPY;
  assert.ok(terminal, "OFFLINE_PUSH_TERMINAL_COPY names the copy of the emulators' terminal output (run the tests with npm test)");
  const debugLogs = fs.readdirSync(ROOT).filter((f) => /^firebase-debug(\.\d+)?\.log$|-debug\.log$/.test(f));
  return [terminal, ...debugLogs.map((f) => path.join(ROOT, f))];
}

describe("nothing a request carries reaches a log", () => {
  let operator: TestUser;
  let member: TestUser;
  let serviceAccount: ServiceAccountJson;
  let token: string;
  let text: string;
  let keyLines: string[];
  const callables = exportedCallables();
  /** name -> how many requests our envelope check refused (each logs one line naming only the rule). */
  const refusals = new Map<string, number>();

  before(async () => {
    [operator, member, serviceAccount] = await Promise.all([createUser({ admin: true }), createUser(), fakeFcm.createServiceAccount("log-search-app")]);
    token = `${fakeFcmToken()}-${randomUUID()}`;
    text = `the secret rendezvous is at ${randomUUID()}`;
    // The key's body as it could appear in a log: each line of the PEM's base64 (a log may escape
    // the newlines between them, so whole-key matches would miss it).
    keyLines = serviceAccount.private_key.split("\n").filter((l) => l.length >= 40 && !l.startsWith("-----"));
    assert.ok(keyLines.length >= 10, "the key has a body to search for");
  });

  it("covers every exported callable", () => {
    assert.ok(callables.length >= 16, `callables found: ${callables.join(", ")}`);
    for (const name of ["registerPushCertificate", "setOfflinePushToken", "sendMessage", "diagnosePush", "reportPushOpened"]) assert.ok(callables.includes(name), name);
  });

  it("hostile requests of every shape to every callable are refused without an INTERNAL answer", async () => {
    const keyText = JSON.stringify(serviceAccount);
    // Every field a callable might take, each holding something secret.
    const payload = {
      serviceAccount: keyText,
      serviceAccountObject: serviceAccount,
      token,
      deviceId: token,
      certificateId: 1,
      msgKey: text,
      uid: token,
      to: [token],
      body: [{ MsgType: "TIMTextElem", MsgContent: { Text: text } }],
      offlinePushInfo: { Title: text, Desc: text, Ext: token },
      title: text,
    };
    const json = "application/json";
    let nested: unknown = payload;
    for (let i = 0; i < 200; i++) nested = { inner: nested };
    const shapes: Array<{ shape: string; method: string; contentType: string | null; body: string | null; refusedByUs: boolean }> = [
      { shape: "no data wrapper", method: "POST", contentType: json, body: JSON.stringify(payload), refusedByUs: true },
      { shape: "the key alone as the body", method: "POST", contentType: json, body: keyText, refusedByUs: true },
      { shape: "extra fields beside data", method: "POST", contentType: json, body: JSON.stringify({ data: payload, [token]: payload, serviceAccount: keyText }), refusedByUs: true },
      { shape: "an array", method: "POST", contentType: json, body: JSON.stringify([{ data: payload }]), refusedByUs: true },
      { shape: "text/plain", method: "POST", contentType: "text/plain", body: JSON.stringify({ data: payload }), refusedByUs: true },
      { shape: `a content type carrying the token`, method: "POST", contentType: `application/${token}`, body: JSON.stringify({ data: payload }), refusedByUs: true },
      { shape: "form-encoded", method: "POST", contentType: "application/x-www-form-urlencoded", body: `data=${encodeURIComponent(JSON.stringify(payload))}`, refusedByUs: true },
      { shape: "GET with a JSON body", method: "GET", contentType: json, body: JSON.stringify({ data: payload }), refusedByUs: true },
      { shape: "PUT", method: "PUT", contentType: json, body: JSON.stringify({ data: payload }), refusedByUs: true },
      { shape: "an undecodable @type", method: "POST", contentType: json, body: JSON.stringify({ data: { "@type": "type.googleapis.com/x", ...payload } }), refusedByUs: true },
      { shape: "a @type integer that is none", method: "POST", contentType: json, body: JSON.stringify({ data: { certificateId: { "@type": "type.googleapis.com/google.protobuf.Int64Value", value: `not-a-number-${token}` }, token } }), refusedByUs: true },
      { shape: "nested 200 levels", method: "POST", contentType: json, body: JSON.stringify({ data: nested }), refusedByUs: true },
      { shape: "not JSON", method: "POST", contentType: json, body: `{"data": ${JSON.stringify(payload)}, oops ${text} ${token}`, refusedByUs: false },
      { shape: "valid envelope, hostile data", method: "POST", contentType: json, body: JSON.stringify({ data: payload }), refusedByUs: false },
      { shape: "the key as data", method: "POST", contentType: json, body: JSON.stringify({ data: keyText }), refusedByUs: false },
      { shape: "2 MB", method: "POST", contentType: json, body: JSON.stringify({ data: { ...payload, pad: `${text} `.repeat(40_000) } }), refusedByUs: false },
    ];
    const cases = callables.flatMap((name) =>
      shapes.flatMap((s) => [
        { name, ...s, host: FUNCTIONS, urlPath: `/${PROJECT}/${REGION}/${name}`, idToken: ADMIN_CALLABLES.has(name) ? operator.idToken : member.idToken },
        // Without a token too: the framework answers those before our handler, our check before it.
        ...(s.shape === "no data wrapper" || s.shape === "valid envelope, hostile data" ? [{ name, ...s, host: FUNCTIONS, urlPath: `/${PROJECT}/${REGION}/${name}`, idToken: null }] : []),
        // And through the console's Hosting rewrites.
        ...(hostingRewrites().includes(name) && (s.shape === "no data wrapper" || s.shape === "valid envelope, hostile data") ? [{ name, ...s, host: HOSTING, urlPath: `/api/${name}`, idToken: operator.idToken }] : []),
      ]),
    );
    // Four callables at a time, each callable's requests one after the other: the Functions
    // emulator starts a worker process per concurrent execution of a function (seconds each on a
    // small machine), so one worker per callable serves them all.
    const answers = (
      await mapLimit(callables, 4, async (name) => {
        const done = [];
        for (const c of cases.filter((x) => x.name === name)) {
          const headers: Record<string, string> = { ...(c.contentType ? { "content-type": c.contentType } : {}), ...(c.idToken ? { authorization: `Bearer ${c.idToken}` } : {}) };
          done.push({ c, res: await send(c.host, c.urlPath, c.method, headers, c.body) });
          if (c.refusedByUs) refusals.set(c.name, (refusals.get(c.name) ?? 0) + 1);
        }
        return done;
      })
    ).flat();
    for (const { c, res } of answers) {
      const what = `${c.name}, ${c.shape}${c.idToken ? "" : ", no token"}${c.host === HOSTING ? ", via Hosting" : ""}`;
      assert.ok(res.status >= 400 && res.status < 500, `${what}: refused with a 4xx, got ${res.status} ${res.body.slice(0, 200)}`);
      assert.doesNotMatch(res.body, /INTERNAL/, `${what}: never INTERNAL`);
      for (const secret of [token, text, ...keyLines]) assert.ok(!res.body.includes(secret), `${what}: the answer does not echo what was sent`);
      if (c.refusedByUs && c.host === FUNCTIONS) {
        const error = (JSON.parse(res.body) as { error: { status: string; message: string } }).error;
        assert.equal(error.status, "INVALID_ARGUMENT", what);
        assert.match(error.message, /^Bad Request: /, what);
      }
    }
  });

  it("no log line of the run holds the key's body, the token or the message text", async () => {
    // Every refusal of ours is logged (naming only the rule): once each callable's are in both the
    // terminal output and firebase-debug.log, the lines its requests caused are in them too.
    const files = logFiles();
    const terminal = files[0] as string;
    const debugLog = files.find((f) => /firebase-debug(\.\d+)?\.log$/.test(f));
    assert.ok(debugLog, `firebase-debug.log is in ${ROOT}: ${files.join(", ")}`);
    const count = (content: string, name: string) => content.split(`${name}: refused a request that is not a callable request`).length - 1;
    const allLogged = await eventually(
      async () => {
        const [t, d] = [fs.readFileSync(terminal, "utf8"), fs.readFileSync(debugLog, "utf8")];
        return [...refusals].every(([name, n]) => count(t, name) >= n && count(d, name) >= n) ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: `every refusal logged in ${terminal} and ${debugLog}` },
    ).catch((err: unknown) => err);
    // A leak is reported as one even when the refusal lines are missing (no envelope check at all).
    let searched = 0;
    for (const file of logFiles()) {
      const content = fs.readFileSync(file, "utf8");
      searched += content.length;
      assert.ok(!content.includes(token), `${file}: holds the FCM token`);
      assert.ok(!content.includes(text), `${file}: holds the message text`);
      const leaked = keyLines.filter((l) => content.includes(l)).length;
      assert.equal(leaked, 0, `${file}: holds ${leaked} of the private key's ${keyLines.length} lines`);
    }
    if (allLogged !== true) throw allLogged;
    assert.ok(searched > 10_000, `searched ${searched} characters of logs`);
  });
});
