// How results reach a person or a script. With --json, stdout carries exactly one JSON document and
// nothing else; people get tables, colour only on a terminal (chalk checks the stream and
// FORCE_COLOR), and a spinner on stderr while something slow runs.
import { Chalk, chalkStderr } from "chalk";
import Table from "cli-table3";
import ora from "ora";

// chalk follows FORCE_COLOR and --no-color but not NO_COLOR (no-color.org): that one is ours.
const noColor = Boolean(process.env.NO_COLOR);
export const color = noColor ? new Chalk({ level: 0 }) : new Chalk();
export const colorErr = noColor ? new Chalk({ level: 0 }) : chalkStderr;

export interface Output {
  json: boolean;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function line(text = ""): void {
  process.stdout.write(`${text}\n`);
}

/** A note for people that must never mix into machine output. */
export function note(text: string): void {
  process.stderr.write(`${text}\n`);
}

export function table(head: string[], rows: Array<Array<string | number>>): string {
  const cells = rows.map((row) => row.map(String));
  // Rules between rows only where a row spans several lines; otherwise they double the height.
  const multiline = cells.some((row) => row.some((c) => c.includes("\n")));
  const t = new Table({
    head: head.map((h) => color.bold(h)),
    // cli-table3 colours with its own library otherwise, whatever the terminal.
    style: { head: [], border: [] },
    ...(multiline ? {} : { chars: { mid: "", "left-mid": "", "mid-mid": "", "right-mid": "" } }),
  });
  for (const row of cells) t.push(row);
  return t.toString();
}

/** `key  value` lines, keys aligned. */
export function fields(pairs: Array<[string, string | number | null | undefined]>): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `  ${color.dim(k.padEnd(width))}  ${v ?? "-"}`).join("\n");
}

/** Runs `work` with a spinner on stderr (only on a terminal: ora checks the stream and CI). */
export async function withProgress<T>(text: string, work: (update: (text: string) => void) => Promise<T>): Promise<T> {
  const spinner = ora({ text, stream: process.stderr, discardStdin: false, isSilent: !process.stderr.isTTY });
  spinner.start();
  try {
    return await work((t) => {
      spinner.text = t;
    });
  } finally {
    spinner.stop();
  }
}

// Five-row digits, so that the certificate ID an app developer has to copy stands out.
const DIGITS: Record<string, string[]> = {
  "0": ["███", "█ █", "█ █", "█ █", "███"],
  "1": [" █ ", "██ ", " █ ", " █ ", "███"],
  "2": ["███", "  █", "███", "█  ", "███"],
  "3": ["███", "  █", "███", "  █", "███"],
  "4": ["█ █", "█ █", "███", "  █", "  █"],
  "5": ["███", "█  ", "███", "  █", "███"],
  "6": ["███", "█  ", "███", "█ █", "███"],
  "7": ["███", "  █", "  █", "  █", "  █"],
  "8": ["███", "█ █", "███", "█ █", "███"],
  "9": ["███", "█ █", "███", "  █", "███"],
};

export function bigNumber(n: number): string {
  const digits = String(n).split("");
  return [0, 1, 2, 3, 4].map((row) => `    ${digits.map((d) => DIGITS[d]?.[row] ?? "   ").join("  ")}`).join("\n");
}

/** A horizontal bar of `value` out of `max`, `width` characters at most. */
export function bar(value: number, max: number, width = 30): string {
  if (max <= 0 || value <= 0) return "";
  const eighths = Math.round((value / max) * width * 8);
  const full = Math.floor(eighths / 8);
  const partial = eighths % 8;
  return "█".repeat(full) + (partial ? (["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"][partial] ?? "") : "") || "▏";
}

export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "-";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.round((now - t) / 1000);
  if (s < 0) return iso;
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86_400)} d ago`;
}
