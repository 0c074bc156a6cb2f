// The callable protocol's envelope (POST, application/json, {"data": ...} and nothing else),
// checked before firebase-functions' own callable handler sees the request.
//
// Why: that handler logs what it refuses. A body without the {"data": ...} wrapper is written
// whole at warn level ("Request body is missing data."): for registerPushCertificate that is the
// service-account key, for setOfflinePushToken the FCM token, for sendMessage the message text.
// It also logs the Content-Type header and the names of extra fields as sent, and
// "Data cannot be decoded from JSON." with the whole value when an object carries a "@type" it
// cannot decode (then answers INTERNAL). None of it can be configured away, and a redacting
// logger would have to guess what in an arbitrary body is secret. So every callable answers those
// requests itself, the way the framework would (HTTP 400, INVALID_ARGUMENT "Bad Request", plus
// what is wrong), and logs only which rule the request broke: never a value that came with it.
// A request that passes is handed to the framework's handler unchanged, which then has nothing
// left to refuse on these grounds.
import type { onCall } from "firebase-functions/v2/https";
import * as logger from "firebase-functions/logger";

type CallableFunction = ReturnType<typeof onCall>;
type HttpRequest = Parameters<CallableFunction>[0];
type HttpResponse = Parameters<CallableFunction>[1];

/** The framework's encoding of 64-bit integers, the only "@type" values it decodes. */
const DECODABLE_TYPES = new Set(["type.googleapis.com/google.protobuf.Int64Value", "type.googleapis.com/google.protobuf.UInt64Value"]);

/** Deeper than any request of this API nests; the framework's decoder recurses once per level. */
export const MAX_DATA_DEPTH = 32;

/** What a request that is not a callable request got wrong, in words (never its content). */
export type ShapeProblem = string;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** An iterative walk (no recursion: the depth is what is being checked) mirroring the framework's decode(). */
function dataProblem(data: unknown): ShapeProblem | null {
  const stack: Array<{ value: unknown; depth: number }> = [{ value: data, depth: 0 }];
  while (stack.length > 0) {
    const { value, depth } = stack.pop() as { value: unknown; depth: number };
    if (typeof value !== "object" || value === null) continue;
    if (depth >= MAX_DATA_DEPTH) return `data is nested more than ${MAX_DATA_DEPTH} levels deep`;
    if (!Array.isArray(value) && (value as Record<string, unknown>)["@type"]) {
      const typed = value as Record<string, unknown>;
      if (!DECODABLE_TYPES.has(String(typed["@type"])) || Number.isNaN(parseFloat(String(typed.value)))) return 'data holds a "@type" value that is not an encoded integer';
      continue; // decoded as a number: nothing below it is looked at
    }
    for (const child of Object.values(value)) if (typeof child === "object" && child !== null) stack.push({ value: child, depth: depth + 1 });
  }
  return null;
}

/** The first rule of the callable protocol that `req` breaks, in the framework's order; null when it is a callable request. */
export function shapeProblem(req: Pick<HttpRequest, "body" | "method" | "header">): ShapeProblem | null {
  const body: unknown = req.body;
  if (!body) return "it has no body";
  if (req.method !== "POST") return "the method must be POST";
  const contentType = (req.header("Content-Type") ?? "").split(";")[0]?.trim().toLowerCase();
  if (contentType !== "application/json") return "the content type must be application/json";
  if (!isPlainObject(body) || body.data === undefined) return 'the body must be a JSON object {"data": ...}';
  if (Object.keys(body).length !== 1) return 'the body must have only the field "data"';
  return dataProblem(body.data);
}

/**
 * `fn` (what onCall returned) behind the envelope check. The result keeps every property of `fn`
 * (`__endpoint`, `__trigger`, `run`, ...): the Firebase CLI discovers and deploys it as the same
 * callable, and tests that call `run` directly still reach the handler.
 */
export function withRequestShapeCheck<F extends CallableFunction>(name: string, fn: F): F {
  const guarded = (req: HttpRequest, res: HttpResponse): void | Promise<void> => {
    const problem = shapeProblem(req);
    if (problem === null) return fn(req, res);
    logger.warn(`${name}: refused a request that is not a callable request: ${problem} (its content is not logged)`);
    res.status(400).json({ error: { status: "INVALID_ARGUMENT", message: `Bad Request: ${problem}`, details: { field: "(request)" } } });
  };
  // A function's own length, name and prototype stay the wrapper's (some are not redefinable).
  const kept = new Set(["length", "name", "prototype"]);
  const descriptors = Object.entries(Object.getOwnPropertyDescriptors(fn)).filter(([key]) => !kept.has(key));
  Object.defineProperties(guarded, Object.fromEntries(descriptors));
  return guarded as unknown as F;
}
