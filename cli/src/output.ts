// How results reach a person or a script. With --json, stdout carries exactly one JSON document and
// nothing else; people get tables, colour only on a terminal (chalk checks the stream and
// FORCE_COLOR), and a spinner on stderr while something slow runs.
import { Chalk, chalkStderr } from "chalk";
import Table from "cli-table3";
import { stripVTControlCharacters } from "node:util";
import ora from "ora";
import { formatDuration } from "../../functions/src/sessions/eligibility.ts";

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

/** A paragraph on stdout, wrapped at spaces to the output width (see outputWidth). */
export function paragraph(text: string, indent = ""): void {
  const width = outputWidth();
  if (!Number.isFinite(width) || cellWidth(text) + indent.length <= width) return line(`${indent}${text}`);
  line(wrapLine(stripVTControlCharacters(text), width - indent.length).map((l) => `${indent}${l}`).join("\n"));
}

/** A note for people that must never mix into machine output. */
export function note(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** Printed width of a cell's longest line (colour codes take no room). */
const cellWidth = (cell: string): number => Math.max(0, ...cell.split("\n").map((l) => stripVTControlCharacters(l).length));

/**
 * Column widths (cli-table3's, padding included) that fit `width`: each column as wide as its
 * content, and while the whole is too wide the widest column gives up a character (never below
 * `MIN_COLUMN`); its cells then wrap.
 */
export function fitColumns(head: string[], cells: string[][], width: number): number[] | undefined {
  const widths = head.map((h, i) => Math.max(cellWidth(h), ...cells.map((row) => cellWidth(row[i] ?? ""))) + 2);
  const total = () => widths.reduce((a, b) => a + b, 0) + widths.length + 1;
  if (total() <= width) return undefined;
  const MIN_COLUMN = 8;
  while (total() > width) {
    const widest = widths.indexOf(Math.max(...widths));
    if ((widths[widest] ?? 0) <= MIN_COLUMN) break;
    widths[widest] = (widths[widest] ?? 0) - 1;
  }
  return widths;
}

/** One line wrapped at spaces to `width`; a word longer than that is cut (a uid must stay whole, not end in "…"). */
function wrapLine(text: string, width: number): string[] {
  const lines: string[] = [];
  let current = "";
  for (const word of text.split(/ +/)) {
    let rest = word;
    while (rest.length > width) {
      if (current) lines.push(current);
      current = "";
      lines.push(rest.slice(0, width));
      rest = rest.slice(width);
    }
    if (!current) current = rest;
    else if (current.length + 1 + rest.length <= width) current += ` ${rest}`;
    else {
      lines.push(current);
      current = rest;
    }
  }
  lines.push(current);
  return lines;
}

/** A cell that fits `width` columns; one that must wrap loses its colour (wrapping colour codes is not worth it). */
function wrapCell(cell: string, width: number): string {
  if (cellWidth(cell) <= width) return cell;
  return stripVTControlCharacters(cell)
    .split("\n")
    .flatMap((l) => wrapLine(l, width))
    .join("\n");
}

export function table(head: string[], rows: Array<Array<string | number>>, width = outputWidth()): string {
  let cells = rows.map((row) => row.map(String));
  const colWidths = fitColumns(head, cells, width);
  if (colWidths) cells = cells.map((row) => row.map((c, i) => wrapCell(c, (colWidths[i] ?? 3) - 2)));
  // Rules between rows only where a row spans several lines; otherwise they double the height.
  const multiline = cells.some((row) => row.some((c) => c.includes("\n")));
  const t = new Table({
    head: head.map((h, i) => color.bold(colWidths ? wrapCell(h, (colWidths[i] ?? 3) - 2) : h)),
    // cli-table3 colours with its own library otherwise, whatever the terminal.
    style: { head: [], border: [] },
    ...(colWidths ? { colWidths } : {}),
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

/** Narrower than this, a spinner's line wraps and redrawing it cannot work. */
const MIN_ANIMATION_COLUMNS = 20;

/**
 * Whether `stream` is a terminal that can show a redrawn line: a TTY that reports a usable width.
 * A pseudo-terminal may report 0 columns (`script`, CI runners, some automation): ora then counts
 * the spinner's line as infinitely many rows to clear, writes cursor codes without end and never
 * lets the command exit. So no spinner and no other progress output there, nor on a dumb terminal
 * or in CI.
 */
export function canAnimate(stream: NodeJS.WriteStream = process.stderr): boolean {
  return Boolean(stream.isTTY) && (stream.columns ?? 0) >= MIN_ANIMATION_COLUMNS && process.env.TERM !== "dumb" && !process.env.CI;
}

/**
 * How wide tables on stdout may be: the terminal's width; off a terminal, COLUMNS when set (the
 * shell's convention), else no limit (a file or a pipe to grep wants whole lines).
 */
export function outputWidth(stream: NodeJS.WriteStream = process.stdout): number {
  const columns = stream.isTTY ? (stream.columns ?? 0) : Number(process.env.COLUMNS ?? 0);
  return Number.isInteger(columns) && columns >= 40 ? columns : Infinity;
}

/** Runs `work` with a spinner on stderr, only where one can be shown (canAnimate); otherwise silently. */
export async function withProgress<T>(text: string, work: (update: (text: string) => void) => Promise<T>): Promise<T> {
  const animate = canAnimate();
  const spinner = ora({ text, stream: process.stderr, discardStdin: false, isEnabled: animate, isSilent: !animate });
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

/**
 * A horizontal bar of `value` out of `max`, `width` characters at most, drawn with `glyph`: bars
 * side by side differ by their glyph, not only by colour (no colour off a terminal, colour-blind
 * readers). At least one character for any value above 0.
 */
export function bar(value: number, max: number, width = 30, glyph = "█"): string {
  if (max <= 0 || value <= 0) return "";
  return glyph.repeat(Math.max(1, Math.round((value / max) * width)));
}

/** "119 s ago", "3 min ago", "5 h 10 min ago", "45 days ago": the functions' own wording (formatDuration), so a table and the sentence beside it agree. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "-";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  if (now < t) return iso;
  return `${formatDuration(now - t)} ago`;
}
