/**
 * A wire-compatible fake of FCM HTTP v1 and of Google's OAuth token endpoint, for the
 * emulator, the demo and the tests (FCM has no emulator).
 *
 * - API listener: cleartext HTTP/2 (h2c, prior knowledge), `POST /v1/projects/{p}/messages:send`.
 * - Control listener: HTTP/1.1 JSON: `/token` (the OAuth JWT-bearer grant) and `/control/...`
 *   to create service accounts, inject errors and read the recorded sends; `GET /` shows
 *   the recent pushes as a web page.
 */
import { generateKeyPair, randomBytes, randomInt, createPublicKey, type KeyObject } from "node:crypto";
import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import { promisify } from "node:util";
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify } from "jose";
import { z } from "zod";
import { validateSendBody, type FieldViolation, type GoogleError } from "./fcmSchema.js";
import {
  ERROR_PRESETS,
  type ErrorPreset,
  type ErrorRule,
  type FakeFcmStats,
  type TokenErrorRule,
  type RecordedRequest,
  type ServiceAccountJson,
} from "./types.js";

export type { ErrorRule, ErrorRuleInput, FakeFcmStats, RecordedRequest, ServiceAccountJson } from "./types.js";

export interface FakeFcmOptions {
  host?: string;
  /** 0 = ephemeral. */
  apiPort?: number;
  /** 0 = ephemeral. */
  controlPort?: number;
  /** Called for every recorded send (after it was answered). */
  onRequest?: (request: RecordedRequest) => void;
  /** Oldest records are dropped beyond this (default 20000). */
  maxRecordedRequests?: number;
  /** Lifetime of issued access tokens in seconds (default 3599, like Google). */
  accessTokenTtlSeconds?: number;
}

export interface FakeFcm {
  /** `http://host:apiPort`: set as FCM_API_ORIGIN. */
  apiOrigin: string;
  /** `${controlOrigin}/token`: set as FCM_TOKEN_URL. */
  tokenUrl: string;
  controlOrigin: string;
  close(): Promise<void>;
}

const FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError";
const APNS_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.ApnsError";
const BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest";
const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ACCEPTED_SCOPES = [
  "https://www.googleapis.com/auth/firebase.messaging",
  "https://www.googleapis.com/auth/cloud-platform",
];

const STATUS_BY_HTTP: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  409: "ABORTED",
  429: "RESOURCE_EXHAUSTED",
  499: "CANCELLED",
  500: "INTERNAL",
  501: "UNIMPLEMENTED",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

const PRESETS: Record<ErrorPreset, GoogleError> = {
  unregistered: { httpStatus: 404, status: "NOT_FOUND", errorCode: "UNREGISTERED", message: "Requested entity was not found." },
  "invalid-token": {
    httpStatus: 400,
    status: "INVALID_ARGUMENT",
    errorCode: "INVALID_ARGUMENT",
    message: "The registration token is not a valid FCM registration token",
    fieldViolations: [{ field: "message.token", description: "The registration token is not a valid FCM registration token" }],
  },
  "invalid-argument": {
    httpStatus: 400,
    status: "INVALID_ARGUMENT",
    errorCode: "INVALID_ARGUMENT",
    message: "Request contains an invalid argument.",
  },
  "sender-id-mismatch": { httpStatus: 403, status: "PERMISSION_DENIED", errorCode: "SENDER_ID_MISMATCH", message: "SenderId mismatch" },
  "third-party-auth": {
    httpStatus: 401,
    status: "UNAUTHENTICATED",
    errorCode: "THIRD_PARTY_AUTH_ERROR",
    message: "Auth error from APNS or Web Push Service",
  },
  "quota-exceeded": {
    httpStatus: 429,
    status: "RESOURCE_EXHAUSTED",
    errorCode: "QUOTA_EXCEEDED",
    message: "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute'.",
  },
  unavailable: { httpStatus: 503, status: "UNAVAILABLE", errorCode: "UNAVAILABLE", message: "The service is currently unavailable." },
  internal: { httpStatus: 500, status: "INTERNAL", errorCode: "INTERNAL", message: "Internal error encountered." },
  "apns-bad-device-token": {
    httpStatus: 400,
    status: "INVALID_ARGUMENT",
    errorCode: "INVALID_ARGUMENT",
    message: "Request contains an invalid argument.",
    apnsError: { statusCode: 400, reason: "BadDeviceToken" },
  },
  "apns-unregistered": {
    httpStatus: 404,
    status: "NOT_FOUND",
    errorCode: "UNREGISTERED",
    message: "Requested entity was not found.",
    apnsError: { statusCode: 410, reason: "Unregistered" },
  },
};

/** What FCM answers for an iOS token of a project without an APNs auth key. */
const NO_APNS_KEY: GoogleError = {
  httpStatus: 401,
  status: "UNAUTHENTICATED",
  errorCode: "THIRD_PARTY_AUTH_ERROR",
  message: "Auth error from APNS or Web Push Service",
};

const projectIdSchema = z.string().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, "a Google Cloud project id");

const errorRuleSchema = z
  .strictObject({
    token: z.string().min(1).optional(),
    projectId: z.string().min(1).optional(),
    times: z.number().int().positive().optional(),
    forMs: z.number().int().positive().max(3_600_000).optional(),
    preset: z.enum(ERROR_PRESETS).optional(),
    httpStatus: z.number().int().min(400).max(599).optional(),
    status: z.string().min(1).optional(),
    errorCode: z.string().min(1).optional(),
    message: z.string().optional(),
    fieldViolations: z.array(z.strictObject({ field: z.string(), description: z.string() })).optional(),
    apnsError: z.strictObject({ statusCode: z.number().int(), reason: z.string().min(1) }).optional(),
    retryAfterSeconds: z.number().int().min(0).optional(),
    retryAfter: z.string().min(1).optional(),
    delayMs: z.number().int().min(0).max(600_000).optional(),
    resetStream: z.boolean().optional(),
  })
  .refine(
    (r) => r.preset !== undefined || r.httpStatus !== undefined || r.resetStream === true || r.delayMs !== undefined,
    "give preset, httpStatus, resetStream or delayMs",
  );

const tokenErrorRuleSchema = z.strictObject({
  clientEmail: z.string().min(1).optional(),
  httpStatus: z.number().int().min(400).max(599),
  times: z.number().int().positive().optional(),
  forMs: z.number().int().positive().max(3_600_000).optional(),
  delayMs: z.number().int().min(0).max(600_000).optional(),
});

const keySchema = z.strictObject({
  clientEmail: z.email(),
  projectId: projectIdSchema,
  privateKeyId: z.string().min(1),
  publicKeyPem: z.string().min(1),
});

const apnsControlSchema = z
  .strictObject({
    iosTokens: z.array(z.string().min(1)).max(10_000).optional(),
    projectId: projectIdSchema.optional(),
    apnsAuthKey: z.boolean().optional(),
  })
  .refine((b) => (b.projectId === undefined) === (b.apnsAuthKey === undefined), "projectId and apnsAuthKey go together");

const createAccountSchema = z.strictObject({ projectId: projectIdSchema.optional() });
const resetSchema = z.strictObject({ keepAccounts: z.boolean().optional() });
const closeSessionsSchema = z.strictObject({ mode: z.enum(["goaway", "destroy"]).optional() });

interface Account {
  clientEmail: string;
  projectId: string;
  keys: Map<string, KeyObject>;
}

interface IssuedToken {
  clientEmail: string;
  projectId: string;
  privateKeyId: string;
  expiresAt: number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(typeof body === "string" ? body : JSON.stringify(body));
  }
}

const generateKeyPairAsync = promisify(generateKeyPair);

function randomAlnum(n: number): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  let s = "";
  for (let i = 0; i < n; i++) s += alphabet[randomInt(alphabet.length)];
  return s;
}

function googleErrorBody(e: GoogleError): string {
  const details: unknown[] = [];
  if (e.errorCode) details.push({ "@type": FCM_ERROR_TYPE, errorCode: e.errorCode });
  if (e.fieldViolations?.length) details.push({ "@type": BAD_REQUEST_TYPE, fieldViolations: e.fieldViolations });
  if (e.apnsError) details.push({ "@type": APNS_ERROR_TYPE, ...e.apnsError });
  return JSON.stringify(
    { error: { code: e.httpStatus, message: e.message, status: e.status, ...(details.length ? { details } : {}) } },
    null,
    2,
  );
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);
}

export async function startFakeFcm(options: FakeFcmOptions = {}): Promise<FakeFcm> {
  const host = options.host ?? "127.0.0.1";
  const maxRecorded = options.maxRecordedRequests ?? 20_000;
  const tokenTtl = options.accessTokenTtlSeconds ?? 3599;

  const accounts = new Map<string, Account>();
  const tokens = new Map<string, IssuedToken>();
  let rules: ErrorRule[] = [];
  let tokenRules: TokenErrorRule[] = [];
  /** Tokens registered as iOS (POST /control/apns), and the projects without an APNs auth key. */
  const iosTokens = new Set<string>();
  const projectsWithoutApnsKey = new Set<string>();
  /** Every rule since the last clear, spent or not, by id: how often each was applied (`hits`). */
  let ruleHistory = new Map<string, ErrorRule | TokenErrorRule>();
  let requests: RecordedRequest[] = [];
  let requestSeq = 0;
  let ruleSeq = 0;
  let messageSeq = 0;
  const stats: FakeFcmStats = {
    sessions: 0,
    openSessions: 0,
    streams: 0,
    activeStreams: 0,
    maxActiveStreams: 0,
    tokensIssued: 0,
    grantsRejected: 0,
  };
  const sessions = new Set<http2.ServerHttp2Session>();
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let closing = false;

  // ---------------------------------------------------------------- API (HTTP/2 h2c)
  const api = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
  api.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  api.on("session", (session) => {
    sessions.add(session);
    stats.sessions++;
    stats.openSessions++;
    session.on("error", () => {});
    session.on("close", () => {
      sessions.delete(session);
      stats.openSessions--;
    });
  });
  api.on("stream", (stream, headers) => {
    stats.streams++;
    stats.activeStreams++;
    stats.maxActiveStreams = Math.max(stats.maxActiveStreams, stats.activeStreams);
    stream.on("error", () => {});
    stream.on("close", () => {
      stats.activeStreams--;
    });
    handleApiStream(stream, headers).catch((err: unknown) => {
      respond(stream, 500, googleErrorBody({ httpStatus: 500, status: "INTERNAL", message: String(err) }));
    });
  });

  /** Returns false if the client had already gone (cancelled or reset the stream). */
  function respond(stream: http2.ServerHttp2Stream, status: number, body: string, extra: Record<string, string> = {}): boolean {
    if (stream.destroyed || stream.closed || stream.headersSent) return false;
    try {
      const html = body.startsWith("<");
      stream.respond({
        ":status": status,
        "content-type": html ? "text/html; charset=UTF-8" : "application/json; charset=UTF-8",
        ...extra,
      });
      stream.end(body);
      return true;
    } catch {
      return false; // the client went away
    }
  }

  function delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });
  }

  function readStream(stream: http2.ServerHttp2Stream | http.IncomingMessage, limit = 1024 * 1024): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      stream.on("data", (c: Buffer) => {
        size += c.length;
        if (size > limit) {
          reject(new HttpError(413, "payload too large"));
          return;
        }
        chunks.push(c);
      });
      stream.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
      stream.on("error", reject);
      stream.on("aborted", () => reject(new Error("aborted")));
    });
  }

  function record(r: Omit<RecordedRequest, "id" | "receivedAt" | "answeredAt"> & { receivedAt: Date }): void {
    const rec: RecordedRequest = { ...r, id: ++requestSeq, receivedAt: r.receivedAt.toISOString(), answeredAt: new Date().toISOString() };
    requests.push(rec);
    if (requests.length > maxRecorded) requests.splice(0, requests.length - maxRecorded);
    try {
      options.onRequest?.(rec);
    } catch {
      // a logging callback must not break the fake
    }
  }

  async function handleApiStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): Promise<void> {
    const receivedAt = new Date();
    const path = String(headers[":path"] ?? "");
    const method = String(headers[":method"] ?? "");
    const match = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(path.split("?")[0] ?? "");
    let text: string;
    try {
      text = await readStream(stream);
    } catch {
      respond(stream, 413, googleErrorBody({ httpStatus: 413, status: "INVALID_ARGUMENT", message: "Request payload too large." }));
      return;
    }
    if (!match || method !== "POST") {
      respond(
        stream,
        404,
        `<!DOCTYPE html><html lang=en><title>Error 404 (Not Found)!!1</title><p><b>404.</b> <ins>That’s an error.</ins><p>The requested URL <code>${escapeHtml(path)}</code> was not found on this server.  <ins>That’s all we know.</ins>`,
      );
      return;
    }
    const projectId = decodeURIComponent(match[1] ?? "");
    let json: unknown;
    let jsonOk = true;
    try {
      json = JSON.parse(text);
    } catch {
      jsonOk = false;
    }
    const rawMessage =
      jsonOk && json !== null && typeof json === "object" ? ((json as Record<string, unknown>).message ?? null) : null;
    const rawValidateOnly =
      jsonOk && json !== null && typeof json === "object" && (json as Record<string, unknown>).validate_only === true;
    const messageToken =
      rawMessage !== null && typeof rawMessage === "object" && typeof (rawMessage as Record<string, unknown>).token === "string"
        ? ((rawMessage as Record<string, unknown>).token as string)
        : undefined;

    const auth = String(headers.authorization ?? "");
    const bearer = /^Bearer\s+(\S+)$/i.exec(auth)?.[1];
    const issued = bearer !== undefined ? tokens.get(bearer) : undefined;
    const base = {
      projectId,
      clientEmail: issued?.clientEmail ?? null,
      accessToken: bearer ?? null,
      validateOnly: rawValidateOnly,
      message: rawMessage,
      receivedAt,
    };
    const fail = (e: GoogleError, extra: Record<string, string> = {}) => {
      const sent = respond(stream, e.httpStatus, googleErrorBody(e), extra);
      record({
        ...base,
        answeredStatus: sent ? e.httpStatus : null,
        errorStatus: e.status,
        errorMessage: sent ? e.message : `${e.message} (not delivered: the client cancelled the stream)`,
        ...(e.errorCode ? { errorCode: e.errorCode } : {}),
      });
    };

    // 1. Authentication
    if (!issued || issued.expiresAt <= Date.now()) {
      if (bearer && issued) tokens.delete(bearer);
      fail(
        {
          httpStatus: 401,
          status: "UNAUTHENTICATED",
          message: bearer
            ? "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
            : "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        },
        { "www-authenticate": 'Bearer realm="https://accounts.google.com/"' },
      );
      return;
    }
    // 2. Authorization: a service account can only send for its own project.
    if (issued.projectId !== projectId) {
      fail({
        httpStatus: 403,
        status: "PERMISSION_DENIED",
        message: `Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/${projectId}' (or it may not exist).`,
      });
      return;
    }
    if (!jsonOk) {
      fail({
        httpStatus: 400,
        status: "INVALID_ARGUMENT",
        message: "Invalid JSON payload received. Unexpected token.",
        fieldViolations: [{ field: "", description: "Invalid JSON payload received. Unexpected token." }],
      });
      return;
    }
    // 3. Injected errors
    const rule = takeRule(projectId, messageToken);
    if (rule) {
      if (rule.delayMs) await delay(rule.delayMs);
      if (closing) return;
      if (rule.resetStream) {
        if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
        record({ ...base, answeredStatus: null, errorMessage: "stream reset" });
        return;
      }
      const e = ruleError(rule);
      if (e) {
        const extra: Record<string, string> = {};
        if (rule.retryAfter !== undefined) extra["retry-after"] = rule.retryAfter;
        else if (rule.retryAfterSeconds !== undefined) extra["retry-after"] = String(rule.retryAfterSeconds);
        fail(e, extra);
        return;
      }
      // delay only: continue normally
    }
    if (stream.destroyed || stream.closed) {
      record({ ...base, answeredStatus: null, errorMessage: "the stream was closed before the answer (the client cancelled it, or the session was closed)" });
      return;
    }
    // 4. Validation
    const v = validateSendBody(json);
    if (!v.ok) {
      fail(v.error);
      return;
    }
    // 5. iOS: a project without an APNs auth key cannot reach an iPhone (FCM's THIRD_PARTY_AUTH_ERROR).
    if (v.token !== undefined && iosTokens.has(v.token) && projectsWithoutApnsKey.has(projectId)) {
      fail(NO_APNS_KEY);
      return;
    }
    const name = v.validateOnly
      ? `projects/${projectId}/messages/fake_message_id`
      : `projects/${projectId}/messages/0:${Date.now()}${String(++messageSeq).padStart(6, "0")}%${randomBytes(8).toString("hex")}`;
    const sent = respond(stream, 200, JSON.stringify({ name }, null, 2));
    record({
      ...base,
      validateOnly: v.validateOnly,
      answeredStatus: sent ? 200 : null,
      ...(sent ? { name } : { errorMessage: "the stream was closed before the answer (the client cancelled it, or the session was closed)" }),
    });
  }

  /**
   * The first live rule that matches, with one use counted off it. A rule whose `times` are used
   * up or whose `forMs` window is over no longer matches (and is dropped).
   */
  function take<R extends { remaining?: number; expiresAt?: number; hits: number }>(list: R[], matches: (rule: R) => boolean): { rule: R | undefined; list: R[] } {
    const now = Date.now();
    const live = list.filter((r) => (r.expiresAt === undefined || r.expiresAt > now) && (r.remaining === undefined || r.remaining > 0));
    const rule = live.find(matches);
    if (rule) rule.hits++;
    if (rule?.remaining !== undefined) rule.remaining--;
    return { rule, list: live.filter((r) => r.remaining === undefined || r.remaining > 0) };
  }

  function takeTokenRule(clientEmail: string | undefined): TokenErrorRule | undefined {
    const taken = take(tokenRules, (r) => r.clientEmail === undefined || r.clientEmail === clientEmail);
    tokenRules = taken.list;
    return taken.rule;
  }

  function takeRule(projectId: string, token: string | undefined): ErrorRule | undefined {
    const taken = take(rules, (r) => (r.projectId === undefined || r.projectId === projectId) && (r.token === undefined || r.token === token));
    rules = taken.list;
    return taken.rule;
  }

  function ruleError(rule: ErrorRule): GoogleError | undefined {
    const preset = rule.preset ? PRESETS[rule.preset] : undefined;
    const httpStatus = rule.httpStatus ?? preset?.httpStatus;
    if (httpStatus === undefined) return undefined;
    const fieldViolations: FieldViolation[] | undefined = rule.fieldViolations ?? preset?.fieldViolations;
    const errorCode = rule.errorCode ?? preset?.errorCode;
    const apnsError = rule.apnsError ?? preset?.apnsError;
    return {
      ...(apnsError ? { apnsError } : {}),
      httpStatus,
      status: rule.status ?? preset?.status ?? STATUS_BY_HTTP[httpStatus] ?? "UNKNOWN",
      message: rule.message ?? preset?.message ?? `Injected error ${httpStatus}`,
      ...(errorCode ? { errorCode } : {}),
      ...(fieldViolations ? { fieldViolations } : {}),
    };
  }

  // ---------------------------------------------------------- control (HTTP/1.1)
  const control = http.createServer((req, res) => {
    handleControl(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      const body = err instanceof HttpError ? err.body : { error: String(err) };
      if (!res.headersSent) {
        res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
        res.end(JSON.stringify(body));
      }
    });
  });
  control.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  let controlOrigin = "";
  let tokenUrl = "";

  function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
    res.end(JSON.stringify(body));
  }

  async function readJson<T>(req: http.IncomingMessage, schema: z.ZodType<T>): Promise<T> {
    const text = await readStream(req);
    let json: unknown = {};
    if (text.trim() !== "") {
      try {
        json = JSON.parse(text);
      } catch {
        throw new HttpError(400, { error: "body is not JSON" });
      }
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) throw new HttpError(400, { error: z.prettifyError(parsed.error) });
    return parsed.data;
  }

  async function handleControl(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://fake");
    const method = req.method ?? "GET";
    const path = url.pathname;

    if (path === "/token" && method === "POST") return handleToken(req, res);
    if (path === "/" && method === "GET") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
      res.end(renderPage());
      return;
    }
    if (path === "/control/service-accounts" && method === "POST") {
      const body = await readJson(req, createAccountSchema);
      sendJson(res, 200, await createServiceAccount(body.projectId));
      return;
    }
    if (path.startsWith("/control/service-accounts/") && method === "DELETE") {
      const email = decodeURIComponent(path.slice("/control/service-accounts/".length));
      const existed = accounts.delete(email);
      let revokedTokens = 0;
      for (const [t, info] of tokens) {
        if (info.clientEmail === email) {
          tokens.delete(t);
          revokedTokens++;
        }
      }
      sendJson(res, existed ? 200 : 404, { deleted: existed, revokedTokens });
      return;
    }
    if (path === "/control/keys" && method === "POST") {
      const body = await readJson(req, keySchema);
      let publicKey: KeyObject;
      try {
        publicKey = createPublicKey(body.publicKeyPem);
      } catch {
        throw new HttpError(400, { error: "publicKeyPem is not a PEM public key" });
      }
      if (publicKey.asymmetricKeyType !== "rsa") throw new HttpError(400, { error: "publicKeyPem must be an RSA key" });
      registerKey(body.clientEmail, body.projectId, body.privateKeyId, publicKey);
      sendJson(res, 200, { clientEmail: body.clientEmail, projectId: body.projectId, privateKeyId: body.privateKeyId });
      return;
    }
    if (path.startsWith("/control/keys/") && method === "DELETE") {
      const kid = decodeURIComponent(path.slice("/control/keys/".length));
      let deleted = false;
      for (const account of accounts.values()) deleted = account.keys.delete(kid) || deleted;
      let revokedTokens = 0;
      if (url.searchParams.get("revokeTokens") === "true") {
        for (const [t, info] of tokens) {
          if (info.privateKeyId === kid) {
            tokens.delete(t);
            revokedTokens++;
          }
        }
      }
      sendJson(res, deleted ? 200 : 404, { deleted, revokedTokens });
      return;
    }
    if (path === "/control/errors" && method === "POST") {
      const body = await readJson(req, errorRuleSchema);
      const rule: ErrorRule = {
        ...body,
        id: `rule-${++ruleSeq}`,
        hits: 0,
        ...(body.times !== undefined ? { remaining: body.times } : {}),
        ...(body.forMs !== undefined ? { expiresAt: Date.now() + body.forMs } : {}),
      };
      rules.push(rule);
      ruleHistory.set(rule.id, rule);
      sendJson(res, 200, rule);
      return;
    }
    if (path === "/control/token-errors" && method === "POST") {
      const body = await readJson(req, tokenErrorRuleSchema);
      const rule: TokenErrorRule = {
        ...body,
        id: `token-rule-${++ruleSeq}`,
        hits: 0,
        ...(body.times !== undefined ? { remaining: body.times } : {}),
        ...(body.forMs !== undefined ? { expiresAt: Date.now() + body.forMs } : {}),
      };
      tokenRules.push(rule);
      ruleHistory.set(rule.id, rule);
      sendJson(res, 200, rule);
      return;
    }
    if (path === "/control/errors" && method === "GET") {
      sendJson(res, 200, rules);
      return;
    }
    if (path === "/control/errors" && method === "DELETE") {
      const cleared = rules.length + tokenRules.length;
      rules = [];
      tokenRules = [];
      iosTokens.clear();
      projectsWithoutApnsKey.clear();
      ruleHistory = new Map();
      sendJson(res, 200, { cleared });
      return;
    }
    if (path.startsWith("/control/errors/") && method === "GET") {
      // Any rule since the last clear, also one that is spent: how often it was applied.
      const rule = ruleHistory.get(decodeURIComponent(path.slice("/control/errors/".length)));
      if (rule) sendJson(res, 200, rule);
      else sendJson(res, 404, { error: "no such rule" });
      return;
    }
    if (path.startsWith("/control/errors/") && method === "DELETE") {
      const id = decodeURIComponent(path.slice("/control/errors/".length));
      const before = rules.length;
      rules = rules.filter((r) => r.id !== id);
      sendJson(res, before === rules.length ? 404 : 200, { cleared: before - rules.length });
      return;
    }
    if (path === "/control/apns" && method === "POST") {
      const body = await readJson(req, apnsControlSchema);
      for (const token of body.iosTokens ?? []) iosTokens.add(token);
      if (body.projectId !== undefined) {
        if (body.apnsAuthKey === false) projectsWithoutApnsKey.add(body.projectId);
        else projectsWithoutApnsKey.delete(body.projectId);
      }
      sendJson(res, 200, { iosTokens: iosTokens.size, projectsWithoutApnsKey: [...projectsWithoutApnsKey] });
      return;
    }
    if (path === "/control/requests" && method === "GET") {
      sendJson(res, 200, filterRequests(url.searchParams));
      return;
    }
    if (path === "/control/requests" && method === "DELETE") {
      const keep = requests.filter((r) => !matchesFilter(r, url.searchParams));
      const cleared = requests.length - keep.length;
      requests = keep;
      sendJson(res, 200, { cleared });
      return;
    }
    if (path === "/control/stats" && method === "GET") {
      sendJson(res, 200, stats);
      return;
    }
    if (path === "/control/sessions/close" && method === "POST") {
      const body = await readJson(req, closeSessionsSchema);
      const n = sessions.size;
      // When, and how many requests were in flight then: a test can tell the requests the close caught.
      const at = new Date().toISOString();
      const activeStreams = stats.activeStreams;
      for (const s of sessions) {
        if (body.mode === "destroy") s.destroy();
        else s.close();
      }
      sendJson(res, 200, { closed: n, at, activeStreams });
      return;
    }
    if (path === "/control/reset" && method === "POST") {
      const body = await readJson(req, resetSchema);
      rules = [];
      tokenRules = [];
      ruleHistory = new Map();
      requests = [];
      if (!body.keepAccounts) {
        accounts.clear();
        tokens.clear();
      }
      Object.assign(stats, {
        sessions: 0,
        streams: 0,
        maxActiveStreams: stats.activeStreams,
        tokensIssued: 0,
        grantsRejected: 0,
      });
      sendJson(res, 200, { reset: true });
      return;
    }
    throw new HttpError(404, { error: `no route ${method} ${path}` });
  }

  function matchesFilter(r: RecordedRequest, q: URLSearchParams): boolean {
    const projectId = q.get("projectId");
    const token = q.get("token");
    if (projectId && r.projectId !== projectId) return false;
    if (token) {
      const m = r.message;
      const t = m !== null && typeof m === "object" ? (m as Record<string, unknown>).token : undefined;
      if (t !== token) return false;
    }
    return true;
  }

  function filterRequests(q: URLSearchParams): RecordedRequest[] {
    return requests.filter((r) => matchesFilter(r, q));
  }

  function registerKey(clientEmail: string, projectId: string, privateKeyId: string, publicKey: KeyObject): void {
    let account = accounts.get(clientEmail);
    if (!account || account.projectId !== projectId) {
      account = { clientEmail, projectId, keys: account?.projectId === projectId ? account.keys : new Map() };
      accounts.set(clientEmail, account);
    }
    account.keys.set(privateKeyId, publicKey);
  }

  async function createServiceAccount(requestedProjectId: string | undefined): Promise<ServiceAccountJson> {
    const projectId = requestedProjectId ?? `demo-fcm-${randomAlnum(6)}`;
    const { privateKey, publicKey } = await generateKeyPairAsync("rsa", { modulusLength: 2048 });
    const privateKeyId = randomBytes(20).toString("hex");
    const clientEmail = `firebase-adminsdk-${randomAlnum(5)}@${projectId}.iam.gserviceaccount.com`;
    registerKey(clientEmail, projectId, privateKeyId, publicKey);
    let clientId = String(randomInt(1, 10));
    for (let i = 0; i < 20; i++) clientId += String(randomInt(10));
    return {
      type: "service_account",
      project_id: projectId,
      private_key_id: privateKeyId,
      private_key: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      client_email: clientEmail,
      client_id: clientId,
      auth_uri: "https://accounts.google.com/o/oauth2/auth",
      token_uri: tokenUrl,
      auth_provider_x509_cert_url: "https://www.googleapis.com/oauth2/v1/certs",
      client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(clientEmail)}`,
      universe_domain: "googleapis.com",
    };
  }

  async function handleToken(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const reject = (status: number, error: string, description: string) => {
      stats.grantsRejected++;
      sendJson(res, status, { error, error_description: description });
    };
    const form = new URLSearchParams(await readStream(req));
    const grantType = form.get("grant_type");
    if (grantType !== JWT_BEARER) {
      reject(400, "unsupported_grant_type", `Invalid grant_type: ${grantType ?? ""}`);
      return;
    }
    const assertion = form.get("assertion");
    if (!assertion) {
      reject(400, "invalid_request", "Missing required parameter: assertion");
      return;
    }
    let iss: string | undefined;
    let kid: string | undefined;
    let alg: string | undefined;
    try {
      const header = decodeProtectedHeader(assertion);
      kid = header.kid;
      alg = header.alg;
      iss = decodeJwt(assertion).iss;
    } catch {
      reject(400, "invalid_grant", "Invalid JWT: could not be decoded.");
      return;
    }
    if (alg !== "RS256") {
      reject(400, "invalid_grant", "Invalid JWT Signature.");
      return;
    }
    const outage = takeTokenRule(iss);
    if (outage) {
      if (outage.delayMs) await delay(outage.delayMs);
      if (closing) return;
      stats.grantsRejected++;
      sendJson(res, outage.httpStatus, { error: outage.httpStatus === 429 ? "rate_limit_exceeded" : "backend_error", error_description: `injected HTTP ${outage.httpStatus}` });
      return;
    }
    const account = iss ? accounts.get(iss) : undefined;
    if (!account) {
      reject(400, "invalid_grant", "Invalid grant: account not found");
      return;
    }
    const candidates: Array<[string, KeyObject]> =
      kid !== undefined
        ? account.keys.has(kid)
          ? [[kid, account.keys.get(kid) as KeyObject]]
          : []
        : [...account.keys.entries()];
    let verifiedKid: string | undefined;
    let payload: Record<string, unknown> | undefined;
    let failure: { error: string; description: string } = { error: "invalid_grant", description: "Invalid JWT Signature." };
    for (const [candidateKid, key] of candidates) {
      try {
        const result = await jwtVerify(assertion, key, {
          algorithms: ["RS256"],
          issuer: account.clientEmail,
          audience: tokenUrl,
          requiredClaims: ["iat", "exp"],
          clockTolerance: 60,
        });
        verifiedKid = candidateKid;
        payload = result.payload as Record<string, unknown>;
        break;
      } catch (err) {
        if (err instanceof joseErrors.JWTExpired || (err instanceof joseErrors.JWTClaimValidationFailed && (err.claim === "iat" || err.claim === "nbf"))) {
          failure = {
            error: "invalid_grant",
            description:
              "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
          };
          break;
        }
        if (err instanceof joseErrors.JWTClaimValidationFailed) {
          failure = { error: "invalid_grant", description: `Invalid JWT: ${err.claim} claim is invalid.` };
          break;
        }
        // signature failure: try the next key
      }
    }
    if (!payload || verifiedKid === undefined) {
      reject(400, failure.error, failure.description);
      return;
    }
    const iat = Number(payload.iat);
    const exp = Number(payload.exp);
    if (!(exp > iat) || exp - iat > 3600) {
      reject(
        400,
        "invalid_grant",
        "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
      );
      return;
    }
    const scopes = typeof payload.scope === "string" ? payload.scope.split(/\s+/) : [];
    if (!scopes.some((s) => ACCEPTED_SCOPES.includes(s))) {
      reject(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.");
      return;
    }
    const accessToken = `ya29.fake-${randomBytes(32).toString("base64url")}`;
    tokens.set(accessToken, {
      clientEmail: account.clientEmail,
      projectId: account.projectId,
      privateKeyId: verifiedKid,
      expiresAt: Date.now() + tokenTtl * 1000,
    });
    stats.tokensIssued++;
    sendJson(res, 200, { access_token: accessToken, expires_in: tokenTtl, token_type: "Bearer" });
  }

  function renderPage(): string {
    const recent = requests.slice(-200).reverse();
    const rows = recent
      .map((r) => {
        const m = (r.message ?? {}) as Record<string, unknown>;
        const n = (m.notification ?? {}) as Record<string, unknown>;
        const an = (((m.android ?? {}) as Record<string, unknown>).notification ?? {}) as Record<string, unknown>;
        const payload = (((m.apns ?? {}) as Record<string, unknown>).payload ?? {}) as Record<string, unknown>;
        const { aps, ...custom } = payload;
        const alert = (((aps ?? {}) as Record<string, unknown>).alert ?? {}) as Record<string, unknown>;
        const token = typeof m.token === "string" ? `…${m.token.slice(-10)}` : "";
        const title = String(n.title ?? an.title ?? alert.title ?? "");
        const body = String(n.body ?? an.body ?? alert.body ?? "");
        // An iPhone's message carries its data in the APNs payload, beside aps.
        const data = m.data ? JSON.stringify(m.data) : Object.keys(custom).length ? `apns: ${JSON.stringify(custom)}` : "";
        const status = r.answeredStatus === null ? "reset" : String(r.answeredStatus);
        const ok = r.answeredStatus === 200;
        return `<tr class="${ok ? "ok" : "err"}"><td>${escapeHtml(r.receivedAt)}</td><td>${escapeHtml(r.projectId)}</td><td><code>${escapeHtml(token)}</code></td><td>${escapeHtml(title)}</td><td>${escapeHtml(body)}</td><td><code>${escapeHtml(data)}</code></td><td>${escapeHtml(status)}${r.validateOnly ? " (validate only)" : ""}${r.errorCode ? ` ${escapeHtml(r.errorCode)}` : ""}</td></tr>`;
      })
      .join("\n");
    return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<title>Fake FCM: recent pushes</title>
<style>body{font-family:system-ui,sans-serif;margin:1.5rem}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}tr.err{color:#a00}code{font-size:.85em;word-break:break-all}</style>
</head><body>
<h1>Fake FCM</h1>
<p>API (HTTP/2 h2c): <code>${escapeHtml(apiOrigin)}</code> · token URL: <code>${escapeHtml(tokenUrl)}</code> · ${requests.length} recorded request(s), newest first. Refreshes every 2 s.</p>
<table><thead><tr><th>Time</th><th>Project</th><th>Token</th><th>Title</th><th>Body</th><th>Data</th><th>Status</th></tr></thead>
<tbody>
${rows || '<tr><td colspan="7">No pushes yet.</td></tr>'}
</tbody></table>
</body></html>`;
  }

  // ------------------------------------------------------------------- listen
  const listen = (server: http.Server | http2.Http2Server, port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const urlHost = host.includes(":") ? `[${host}]` : host;
  let apiOrigin = "";
  const apiPort = await listen(api, options.apiPort ?? 0);
  apiOrigin = `http://${urlHost}:${apiPort}`;
  let controlPort: number;
  try {
    controlPort = await listen(control, options.controlPort ?? 0);
  } catch (err) {
    await new Promise<void>((resolve) => api.close(() => resolve()));
    throw err;
  }
  controlOrigin = `http://${urlHost}:${controlPort}`;
  tokenUrl = `${controlOrigin}/token`;

  let closed: Promise<void> | undefined;
  return {
    apiOrigin,
    tokenUrl,
    controlOrigin,
    close() {
      closed ??= (async () => {
        closing = true;
        for (const t of timers) clearTimeout(t);
        timers.clear();
        const done = Promise.all([
          new Promise<void>((resolve) => api.close(() => resolve())),
          new Promise<void>((resolve) => control.close(() => resolve())),
        ]);
        for (const s of sessions) s.destroy();
        for (const s of sockets) s.destroy();
        await done;
      })();
      return closed;
    },
  };
}
