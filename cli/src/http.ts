// Every request has a deadline, and a refused connection says which service is missing.
import { CliError } from "./errors.ts";

export interface JsonResponse {
  status: number;
  json: unknown;
}

export async function postJson(url: string, body: unknown, options: { headers?: Record<string, string>; timeoutMs: number; what: string; hint?: string }): Promise<JsonResponse> {
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...options.headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    text = await res.text();
  } catch (err) {
    throw networkError(err, url, options);
  }
  let json: unknown;
  try {
    json = text === "" ? null : JSON.parse(text);
  } catch {
    json = { raw: text.slice(0, 300) };
  }
  return { status: res.status, json };
}

export function networkError(err: unknown, url: string, options: { timeoutMs: number; what: string; hint?: string }): CliError {
  const origin = new URL(url).origin;
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) {
    return new CliError(`${options.what}: no answer from ${origin} within ${options.timeoutMs / 1000} s (--timeout raises the limit)`, "timeout");
  }
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  const code = (cause as { code?: unknown } | null)?.code;
  if (code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "EAI_AGAIN") {
    return new CliError(`${options.what}: cannot reach ${origin} (${String(code)})${options.hint ? `. ${options.hint}` : ""}`, "unreachable");
  }
  return new CliError(`${options.what}: ${cause instanceof Error ? cause.message : String(cause)}`, "unreachable");
}
