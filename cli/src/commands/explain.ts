// explain [code]: the functions' explanation table, offline (no target needed): what a skip reason,
// fail reason, FCM error code or rejected-event reason means and what to do about it.
import type { Command } from "commander";
import { z } from "zod";
import { EXPLANATIONS } from "../../../functions/src/diagnostics/explain.ts";
import { CliError } from "../errors.ts";
import { color, line, printJson, table } from "../output.ts";
import type { Context } from "../context.ts";
import { parseArg } from "./cert.ts";

export function registerExplainCommand(program: Command, ctx: Context): void {
  program
    .command("explain")
    .description("what a reason or FCM error code means and what to do (all of them without a code); works offline")
    .argument("[code]", "e.g. kicked, foreground, connected, active-elsewhere, UNREGISTERED, event-too-old")
    .action((code: string | undefined) => {
      const wanted = code === undefined ? undefined : parseArg(z.string().trim().min(1, "must not be empty").max(100, "is too long"), code, "[code]");
      const rows = wanted === undefined ? EXPLANATIONS : EXPLANATIONS.filter((e) => e.code.toLowerCase() === wanted.toLowerCase());
      if (rows.length === 0) throw new CliError(`no explanation for "${wanted}"; \`offline-push explain\` lists every code`, "not-found");
      if (ctx.json) return printJson({ explanations: rows });
      if (wanted === undefined) {
        line(table(["Code", "Kind", "Meaning", "What to do"], rows.map((e) => [e.code, e.category, wrap(`${e.title}. ${e.meaning}`), wrap(e.action)])));
        return;
      }
      for (const e of rows) {
        line(`${color.bold(e.code)} (${e.category}): ${e.title}`);
        line(`  ${e.meaning}`);
        line(`  ${color.cyan("what to do:")} ${e.action}`);
      }
    });
}

/** Keeps table cells readable on an 80-160 column terminal. */
function wrap(text: string, width = 50): string {
  const out: string[] = [];
  let current = "";
  for (const word of text.split(/\s+/)) {
    if (current && current.length + word.length + 1 > width) {
      out.push(current);
      current = word;
    } else current = current ? `${current} ${word}` : word;
  }
  if (current) out.push(current);
  return out.join("\n");
}
