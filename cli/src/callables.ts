// Calls an operator callable over HTTP exactly as the Firebase client SDKs do, and checks its
// answer against the functions' own zod schema: a CLI older or newer than the deployed functions
// says so instead of printing garbage.
import { z } from "zod";
import { operatorIdToken } from "./auth.ts";
import { CliError } from "./errors.ts";
import { postJson } from "./http.ts";
import type { Target } from "./target.ts";

const CallableErrorSchema = z.object({
  error: z.object({ status: z.string(), message: z.string(), details: z.unknown().optional() }),
});
const CallableResultSchema = z.object({ result: z.unknown() });

export async function callOperator<S extends z.ZodType>(target: Target, name: string, data: unknown, schema: S): Promise<z.output<S>> {
  const token = await operatorIdToken(target);
  const url = `${target.functionsOrigin}/${name}`;
  const res = await postJson(url, { data }, {
    headers: { authorization: `Bearer ${token}` },
    timeoutMs: target.timeoutMs,
    what: name,
    hint: target.mode === "emulators" ? "Are the emulators running? Start them with `npm start` (or pass --project for a real project)" : undefined,
  });
  const error = CallableErrorSchema.safeParse(res.json);
  if (error.success) {
    const { status, message, details } = error.data.error;
    throw new CliError(`${name}: ${status}: ${message}`, status.toLowerCase().replaceAll("_", "-"), details);
  }
  if (res.status === 404) {
    throw new CliError(`${name}: no such function at ${target.functionsOrigin} (not deployed in this project or region?)`, "not-found");
  }
  const result = CallableResultSchema.safeParse(res.json);
  if (res.status !== 200 || !result.success) throw new CliError(`${name}: unexpected answer (HTTP ${res.status})`, "remote");
  const parsed = schema.safeParse(result.data.result);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CliError(`${name}: the answer does not match this CLI's schema (${issue ? `${issue.path.join(".") || "(answer)"}: ${issue.message}` : "invalid"}); are the CLI and the deployed functions the same version?`, "remote");
  }
  return parsed.data;
}
