/** Typed helper for tests and scripts to drive the fake FCM's control API. */
import type {
  ApnsControlInput,
  ErrorRule,
  ErrorRuleInput,
  FakeFcmStats,
  RecordedRequest,
  RequestFilter,
  ServiceAccountJson,
  TokenErrorRule,
  TokenErrorRuleInput,
} from "./types.js";

export type { ApnsControlInput, ErrorRule, ErrorRuleInput, FakeFcmStats, RecordedRequest, RequestFilter, ServiceAccountJson, TokenErrorRule, TokenErrorRuleInput } from "./types.js";

export class FakeFcmControlError extends Error {
  override readonly name = "FakeFcmControlError";
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`fake FCM control API answered ${status}: ${body}`);
  }
}

export class FakeFcmClient {
  readonly controlOrigin: string;

  constructor(controlOrigin: string) {
    this.controlOrigin = controlOrigin.replace(/\/+$/, "");
  }

  /** The OAuth token endpoint of the fake (the `token_uri` of its service accounts). */
  get tokenUrl(): string {
    return `${this.controlOrigin}/token`;
  }

  /** Generates a key and returns a service-account JSON like the Firebase console download. */
  createServiceAccount(projectId?: string): Promise<ServiceAccountJson> {
    return this.call("POST", "/control/service-accounts", projectId !== undefined ? { projectId } : {});
  }

  /** Registers an externally generated public key for `clientEmail` (adds to its keys). */
  registerKey(key: { clientEmail: string; projectId: string; privateKeyId: string; publicKeyPem: string }): Promise<{
    clientEmail: string;
    projectId: string;
    privateKeyId: string;
  }> {
    return this.call("POST", "/control/keys", key);
  }

  /** Deletes a service account: new grants fail with invalid_grant, its access tokens get 401. */
  revoke(clientEmail: string): Promise<{ deleted: boolean; revokedTokens: number }> {
    return this.call("DELETE", `/control/service-accounts/${encodeURIComponent(clientEmail)}`, undefined, [200, 404]);
  }

  /** Deletes one key (grants signed with it fail); `revokeTokens` also invalidates tokens it obtained. */
  deleteKey(privateKeyId: string, revokeTokens = false): Promise<{ deleted: boolean; revokedTokens: number }> {
    return this.call(
      "DELETE",
      `/control/keys/${encodeURIComponent(privateKeyId)}${revokeTokens ? "?revokeTokens=true" : ""}`,
      undefined,
      [200, 404],
    );
  }

  /**
   * Registers tokens as iOS tokens (the fake cannot tell a token's platform as FCM does), and/or
   * whether a project holds an APNs auth key: without one, every iOS token of the project is
   * answered THIRD_PARTY_AUTH_ERROR. Cleared by reset.
   */
  apns(input: ApnsControlInput): Promise<{ iosTokens: number; projectsWithoutApnsKey: string[] }> {
    return this.call("POST", "/control/apns", input);
  }

  addErrorRule(rule: ErrorRuleInput): Promise<ErrorRule> {
    return this.call("POST", "/control/errors", rule);
  }

  /** The OAuth token endpoint fails (429/5xx, optionally slow) for matching grants. Cleared by clearErrors. */
  addTokenErrorRule(rule: TokenErrorRuleInput): Promise<TokenErrorRule> {
    return this.call("POST", "/control/token-errors", rule);
  }

  errorRules(): Promise<ErrorRule[]> {
    return this.call("GET", "/control/errors");
  }

  /** A rule by its id, also once spent (until clearErrors/reset): `hits` says how often it was applied. */
  errorRule(id: string): Promise<ErrorRule | TokenErrorRule> {
    return this.call("GET", `/control/errors/${encodeURIComponent(id)}`);
  }

  clearErrors(): Promise<{ cleared: number }> {
    return this.call("DELETE", "/control/errors");
  }

  removeErrorRule(id: string): Promise<{ cleared: number }> {
    return this.call("DELETE", `/control/errors/${encodeURIComponent(id)}`, undefined, [200, 404]);
  }

  /** Recorded sends (successful and failed), oldest first. */
  requests(filter: RequestFilter = {}): Promise<RecordedRequest[]> {
    return this.call("GET", `/control/requests${query(filter)}`);
  }

  clearRequests(filter: Pick<RequestFilter, "projectId"> = {}): Promise<{ cleared: number }> {
    return this.call("DELETE", `/control/requests${query(filter)}`);
  }

  stats(): Promise<FakeFcmStats> {
    return this.call("GET", "/control/stats");
  }

  /**
   * Closes every HTTP/2 session on the API port: GOAWAY (default) or abrupt destroy. Says when
   * (`at`, ISO) and how many requests were in flight at that moment.
   */
  closeSessions(mode: "goaway" | "destroy" = "goaway"): Promise<{ closed: number; at: string; activeStreams: number }> {
    return this.call("POST", "/control/sessions/close", { mode });
  }

  /** Clears rules, records and stats; also accounts and tokens unless keepAccounts. */
  reset(options: { keepAccounts?: boolean } = {}): Promise<{ reset: true }> {
    return this.call("POST", "/control/reset", options);
  }

  private async call<T>(method: string, path: string, body?: unknown, okStatuses: number[] = [200]): Promise<T> {
    const res = await fetch(`${this.controlOrigin}${path}`, {
      method,
      headers: body !== undefined ? { "content-type": "application/json" } : {},
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      // The control API is local and answers at once: a deadline turns a hung fake into a clear failure.
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    if (!okStatuses.includes(res.status)) throw new FakeFcmControlError(res.status, text);
    return JSON.parse(text) as T;
  }
}

function query(filter: RequestFilter): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filter) as Array<[string, string | undefined]>) {
    if (v !== undefined && v !== "") q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}
