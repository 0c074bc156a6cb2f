// The CLI always ends. Under a pseudo-terminal that reports 0 columns (what `script`, CI runners
// and some automation give), a spinner cannot redraw its line: ora counted it as infinitely many
// rows, wrote cursor codes without end (65 MB in 40 s) and never exited. The CLI runs here under
// `script` (util-linux, in every Debian) with its terminal set to 0 and to 80 columns. And a
// destructive command without --yes refuses when nobody can be asked.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { stripVTControlCharacters } from "node:util";
import { before, describe, it } from "node:test";
import { CLI_DEADLINE_MS, runCli, runJson } from "./run.ts";

const BIN = path.resolve(__dirname, "../../cli/bin/offline-push.mjs");
const shellQuote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
/** More than any command's real output; a spinner flooding a 0-column terminal passes it in well under a second. */
const OUTPUT_BOUND = 64 * 1024;

/** Runs the CLI on a pseudo-terminal of `columns` columns (script -q -e -c); resolves with what the terminal showed. */
function onTerminal(columns: number, args: string[]): Promise<{ code: number; output: string }> {
  const command = `stty cols ${columns} rows 24; exec ${[process.execPath, BIN, ...args].map(shellQuote).join(" ")}`;
  return new Promise((resolve, reject) => {
    // A terminal that wants colour and animation (TERM set, not CI): only its width may stop the spinner.
    const env: NodeJS.ProcessEnv = { ...process.env, TERM: "xterm-256color" };
    delete env.CI;
    delete env.FORCE_COLOR;
    const child = spawn("script", ["-q", "-e", "-c", command, "/dev/null"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    // Decoded by the streams (a character split between two chunks stays whole).
    const take = (d: string) => {
      output += d;
      if (output.length > OUTPUT_BOUND) {
        child.kill("SIGKILL");
        reject(new Error(`offline-push ${args.join(" ")} on a ${columns}-column terminal wrote more than ${OUTPUT_BOUND} bytes (a spinner flooding?): ${JSON.stringify(output.slice(0, 300))}`));
      }
    };
    child.stdout.setEncoding("utf8").on("data", take);
    child.stderr.setEncoding("utf8").on("data", take);
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`offline-push ${args.join(" ")} on a ${columns}-column terminal did not exit within ${CLI_DEADLINE_MS / 1000} s: ${JSON.stringify(output.slice(0, 300))}`));
    }, CLI_DEADLINE_MS);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, output });
    });
  });
}

describe("the CLI always ends", () => {
  let certificateId: number;

  before(async () => {
    certificateId = (await runJson<{ certificateId: number }>(["cert", "add", "--demo", "--label", "terminal test"])).certificateId;
  });

  it("cert list on a terminal of 0 columns: exits 0 with the list, no spinner, bounded output", async () => {
    const res = await onTerminal(0, ["cert", "list"]);
    assert.equal(res.code, 0, res.output.slice(0, 500));
    assert.match(res.output, /terminal test/);
    assert.doesNotMatch(res.output, /Listing certificates/, "no spinner where it cannot be drawn");
    assert.ok(res.output.length < 16 * 1024, `${res.output.length} bytes`);
  });

  it("trace and stats on a terminal of 0 columns end too", async () => {
    for (const args of [["trace", "never-published"], ["stats", "--days", "2"]]) {
      const res = await onTerminal(0, args);
      assert.equal(res.code, 0, `${args.join(" ")}: ${res.output.slice(0, 500)}`);
    }
  });

  it("on a terminal of 80 columns the spinner shows, the command ends, and its table fits the width", async () => {
    const res = await onTerminal(80, ["cert", "list"]);
    assert.equal(res.code, 0, res.output.slice(0, 500));
    assert.match(res.output, /Listing certificates/);
    const tableLines = stripVTControlCharacters(res.output)
      .split(/\r?\n/)
      .filter((l) => /^[┌│├└]/.test(l));
    assert.ok(tableLines.length > 3, "a table was printed");
    for (const l of tableLines) assert.ok(l.length <= 80, `${l.length} columns: ${l}`);
    assert.match(tableLines.join("\n"), /terminal/);
  });

  it("cert rm without --yes when stdin is not a terminal: refused (exit 2, --yes required), nothing deleted", async () => {
    const res = await runCli(["cert", "rm", String(certificateId)]);
    assert.equal(res.code, 2, res.stderr);
    assert.match(res.stderr, /pass --yes/);
    const json = await runCli(["cert", "rm", String(certificateId), "--json"]);
    assert.equal(json.code, 2);
    assert.equal((JSON.parse(json.stdout) as { error: { code: string } }).error.code, "usage");
    const list = await runJson<{ certificates: Array<{ certificateId: number }> }>(["cert", "list"]);
    assert.ok(list.certificates.some((c) => c.certificateId === certificateId), "still there");
    const deleted = await runJson<{ deleted: boolean }>(["cert", "rm", String(certificateId), "--yes"]);
    assert.equal(deleted.deleted, true);
  });
});
