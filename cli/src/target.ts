// Where the CLI works: the emulators of `npm start` (the default) or a real Firebase project with
// Application Default Credentials. Every host comes from here, so no command can mix the two.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { DEFAULT_PUSH_TOPIC } from "../../functions/src/config.ts";
import { shiftedPort } from "../../scripts/ports.mjs";
import { CliError } from "./errors.ts";

export const DEMO_PROJECT = "demo-offline-push";
export const DEFAULT_REGION = "us-central1";

export interface GlobalOptions {
  emulators?: boolean;
  project?: string;
  region: string;
  apiKey?: string;
  signer?: string;
  topic?: string;
  timeout: string;
  json?: boolean;
}

export type Target =
  | {
      mode: "emulators";
      projectId: string;
      region: string;
      functionsOrigin: string;
      authHost: string;
      pubsubHost: string;
      fakeFcmControlOrigin: string;
      topic: string;
      timeoutMs: number;
    }
  | {
      mode: "project";
      projectId: string;
      region: string;
      functionsOrigin: string;
      apiKey: string | undefined;
      signer: string | undefined;
      topic: string;
      timeoutMs: number;
    };

const ProjectIdSchema = z.string().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, "is not a Google Cloud project ID (6-30 lowercase letters, digits, hyphens)");
const RegionSchema = z.string().regex(/^[a-z]+-[a-z]+\d+$/, "is not a Cloud Functions region (like us-central1)");
const TopicSchema = z.string().regex(/^[A-Za-z][\w.~+%-]{2,254}$/, "is not a Pub/Sub topic name");
const HostSchema = z.string().regex(/^[\w.-]+:\d{1,5}$/, "must be host:port");
const OriginSchema = z.url({ protocol: /^https?$/, error: "must be an http(s) origin" });
const TimeoutSchema = z.coerce.number({ error: "must be a number of seconds" }).int("must be whole seconds").min(1, "must be at least 1").max(3600, "must be at most 3600");

function check<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new CliError(`${what} ${parsed.error.issues[0]?.message ?? "is invalid"}`, "usage");
  return parsed.data;
}

/** firebase.json's emulator ports, shifted like scripts/emulators.mjs does for OFFLINE_PUSH_PORT_OFFSET. */
function emulatorPorts(): Record<"auth" | "functions" | "pubsub" | "fakeFcmControl", number> {
  const defaults = { auth: 9099, functions: 5001, pubsub: 8085 };
  const offset = check(z.coerce.number().int().min(0).max(50_000), process.env.OFFLINE_PUSH_PORT_OFFSET ?? 0, "OFFLINE_PUSH_PORT_OFFSET");
  let ports = defaults;
  try {
    const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../firebase.json");
    const config = z
      .object({ emulators: z.object({ auth: z.object({ port: z.number() }), functions: z.object({ port: z.number() }), pubsub: z.object({ port: z.number() }) }) })
      .parse(JSON.parse(fs.readFileSync(file, "utf8")));
    ports = { auth: config.emulators.auth.port, functions: config.emulators.functions.port, pubsub: config.emulators.pubsub.port };
  } catch {
    // Outside this repository (or an edited firebase.json): the Firebase defaults.
  }
  return { auth: shiftedPort(ports.auth, offset), functions: shiftedPort(ports.functions, offset), pubsub: shiftedPort(ports.pubsub, offset), fakeFcmControl: shiftedPort(9471, offset) };
}

export function resolveTarget(opts: GlobalOptions): Target {
  const timeoutMs = check(TimeoutSchema, opts.timeout, "--timeout") * 1000;
  const region = check(RegionSchema, opts.region, "--region");
  const topic = check(TopicSchema, opts.topic ?? (process.env.PUSH_TOPIC?.trim() || DEFAULT_PUSH_TOPIC), "--topic");
  const project = opts.project === undefined ? undefined : check(ProjectIdSchema, opts.project, "--project");
  // A demo- project exists only on the emulators (Firebase's own rule), so it can never mean production.
  if (opts.emulators || project === undefined || project.startsWith("demo-")) {
    const ports = emulatorPorts();
    const projectId = project ?? process.env.GCLOUD_PROJECT ?? DEMO_PROJECT;
    const functionsHost = check(HostSchema, process.env.FUNCTIONS_EMULATOR_HOST ?? `127.0.0.1:${ports.functions}`, "FUNCTIONS_EMULATOR_HOST");
    const authHost = check(HostSchema, process.env.FIREBASE_AUTH_EMULATOR_HOST ?? `127.0.0.1:${ports.auth}`, "FIREBASE_AUTH_EMULATOR_HOST");
    const pubsubHost = check(HostSchema, process.env.PUBSUB_EMULATOR_HOST ?? `127.0.0.1:${ports.pubsub}`, "PUBSUB_EMULATOR_HOST");
    const fakeFcmControlOrigin = check(OriginSchema, process.env.FAKE_FCM_CONTROL_ORIGIN ?? `http://127.0.0.1:${ports.fakeFcmControl}`, "FAKE_FCM_CONTROL_ORIGIN");
    // The Admin SDK and the Pub/Sub client find the emulators through these variables.
    process.env.FIREBASE_AUTH_EMULATOR_HOST = authHost;
    process.env.PUBSUB_EMULATOR_HOST = pubsubHost;
    // No metadata server to find on the emulators; its probe only prints a warning.
    process.env.METADATA_SERVER_DETECTION ??= "none";
    return {
      mode: "emulators",
      projectId,
      region,
      functionsOrigin: `http://${functionsHost}/${projectId}/${region}`,
      authHost,
      pubsubHost,
      fakeFcmControlOrigin: fakeFcmControlOrigin.replace(/\/+$/, ""),
      topic,
      timeoutMs,
    };
  }
  // A shell left with emulator variables must not send production calls to an emulator (or the
  // other way round): on a real project they are ignored.
  for (const name of ["FIREBASE_AUTH_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST"]) delete process.env[name];
  const apiKey = opts.apiKey ?? (process.env.OFFLINE_PUSH_API_KEY || undefined);
  const signer = opts.signer ?? (process.env.OFFLINE_PUSH_SIGNER || undefined);
  return {
    mode: "project",
    projectId: project,
    region,
    functionsOrigin: `https://${region}-${project}.cloudfunctions.net`,
    apiKey: apiKey === undefined ? undefined : check(z.string().regex(/^[\w-]{20,100}$/, "is not a Firebase web API key"), apiKey, "--api-key"),
    signer: signer === undefined ? undefined : check(z.email({ error: "must be a service-account email" }), signer, "--signer"),
    topic,
    timeoutMs,
  };
}

export function describeTarget(target: Target): string {
  return target.mode === "emulators" ? `emulators (project ${target.projectId})` : `project ${target.projectId}`;
}
