// Runs the CLI the way an operator does: `offline-push` as a subprocess (the bin that npm links),
// against the emulators this suite runs on (their hosts come in the environment), with a deadline.
import { spawn } from "node:child_process";
import path from "node:path";

// The file npm links as node_modules/.bin/offline-push.
const BIN = path.resolve(__dirname, "../../cli/bin/offline-push.mjs");

/**
 * Generous: a subprocess start (tsx, the Admin SDK; 20 s seen on a loaded 2-core machine) plus the
 * CLI's own request deadline (--timeout, 120 s by default), so that a slow call fails with the
 * CLI's message rather than this one.
 */
export const CLI_DEADLINE_MS = 180_000;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], options: { input?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    // Pipes, not a terminal: what a script sees (and so no colour). A FORCE_COLOR of the parent
    // must not leak in (even empty, it forces colour).
    const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
    delete env.FORCE_COLOR;
    const child = spawn(process.execPath, [BIN, ...args], {
      env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`offline-push ${args.join(" ")}: no exit within ${CLI_DEADLINE_MS / 1000} s\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, CLI_DEADLINE_MS);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.end(options.input ?? "");
  });
}

/** Runs with --json, expects exit 0 and exactly one JSON document on stdout. */
export async function runJson<T = any>(args: string[], options: { input?: string } = {}): Promise<T> {
  const res = await runCli([...args, "--json"], options);
  if (res.code !== 0) throw new Error(`offline-push ${args.join(" ")} --json exited ${res.code}\nstdout: ${res.stdout}\nstderr: ${res.stderr}`);
  return JSON.parse(res.stdout) as T;
}

/** Runs the human form, expects exit 0; returns stdout. */
export async function runHuman(args: string[], options: { input?: string } = {}): Promise<string> {
  const res = await runCli(args, options);
  if (res.code !== 0) throw new Error(`offline-push ${args.join(" ")} exited ${res.code}\nstdout: ${res.stdout}\nstderr: ${res.stderr}`);
  return res.stdout;
}

// eslint-disable-next-line no-control-regex
export const ANSI = /\x1b\[/;
