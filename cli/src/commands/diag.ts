// user | trace | test-push | stats: the diagnostics callables, shown for a support person. The
// request and answer shapes are the functions' own (diagnostics/schemas.ts); the explanations
// (what a reason means, what to do) come from the functions' table inside each answer.
import type { Command } from "commander";
import { z } from "zod";
import { CertificateIdSchema } from "../../../functions/src/certificates/schemas.ts";
import {
  DiagnosePushRequestSchema,
  DiagnosePushResponseSchema,
  MAX_STATS_DAYS,
  PushStatsRequestSchema,
  PushStatsResponseSchema,
  SendTestPushRequestSchema,
  SendTestPushResponseSchema,
  TraceMessageRequestSchema,
  TraceMessageResponseSchema,
  type DiagnosePushResponse,
  type DiagnosedDevice,
  type Explanation,
  type StatsFigures,
  type TraceMessageResponse,
  type TracePublication,
} from "../../../functions/src/diagnostics/schemas.ts";
import { callOperator } from "../callables.ts";
import { CliError } from "../errors.ts";
import { counted, formatLatency } from "../../../functions/src/common/format.ts";
import { ago, bar, color, fields, line, paragraph, printJson, table, withProgress } from "../output.ts";
import type { Context } from "../context.ts";
import { CertificateIdArgSchema, parseArg } from "./cert.ts";

/** A request checked with the callable's own schema before it is sent; a bad argument names its flag. */
function request<S extends z.ZodType>(schema: S, data: unknown, flags: Record<string, string>): z.output<S> {
  const parsed = schema.safeParse(data);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue?.path[0] === undefined ? "" : String(issue.path[0]);
  throw new CliError(`${flags[field] ?? field} ${issue?.message ?? "is invalid"}`, "usage");
}

function outcomeText(outcome: string, reason: string): string {
  if (outcome === "sent") return color.green("sent");
  if (outcome === "failed") return color.red(`failed: ${reason}`);
  return color.yellow(`skipped: ${reason}`);
}

function explanationLines(explanations: Explanation[]): void {
  if (explanations.length === 0) return;
  line();
  line(color.bold("What the codes mean"));
  for (const e of explanations) {
    line(`  ${color.bold(e.code)} (${e.title}): ${e.meaning}`);
    line(`    ${color.cyan("what to do:")} ${e.action}`);
  }
}

function uniqueExplanations(list: Array<Explanation | null | undefined>): Explanation[] {
  const seen = new Map<string, Explanation>();
  for (const e of list) if (e && !seen.has(`${e.category}:${e.code}`)) seen.set(`${e.category}:${e.code}`, e);
  return [...seen.values()];
}

/** Connected or not as the fan-out judges it under PRESENCE_SOURCE, whose signal decided, and the backend's last presence event. */
function connectionText(d: DiagnosedDevice): string {
  const c = d.connection;
  const verdict = c.connected ? color.green(c.until ? `connected until ${c.until.slice(11, 19)} UTC` : "connected") : "not connected";
  const presence = d.presence ? `\n${color.dim(`IM: ${d.presence.action}${d.presence.reason ? ` (${d.presence.reason})` : ""} ${ago(d.presence.eventTime)}`)}` : "";
  return `${verdict}\n${color.dim(`by ${c.decidedBy} ${ago(c.at)}`)}${presence}`;
}

function countsText(counts: Record<string, number>): string {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  return entries.length ? entries.map(([k, v]) => `${k} ${v}`).join(", ") : "-";
}

/** "#1 3 listed; #2 2 listed, 0 new (2 left to the earlier)": the MsgKey's recipient lists, in the order they came. */
function publicationsText(publications: TracePublication[]): string {
  return publications
    .map((p) => `#${p.generation + 1} ${p.recipients} listed${p.generation > 0 ? `, ${p.owned} new${p.recipients > p.owned ? ` (${p.recipients - p.owned} left to the earlier)` : ""}` : ""}`)
    .join("; ");
}

/** UTC days from `days - 1` days ago to today, as the statistics count them. */
export function statsRange(days: number, now = new Date()): { from: string; to: string } {
  const to = now.toISOString().slice(0, 10);
  const from = new Date(now.getTime() - (days - 1) * 86_400_000).toISOString().slice(0, 10);
  return { from, to };
}

/** The user's push preferences (setPushPreferences), and which message the answer is for. */
function preferenceLines(res: DiagnosePushResponse): void {
  const p = res.preferences;
  const asked = res.message.conversation ? `a message in ${res.message.conversation}${res.message.mentioned ? " that mentions the user" : ""}` : `any message${res.message.mentioned ? " that mentions the user" : ""} (no --conversation)`;
  line();
  line(`${color.bold("Push preferences")} ${color.dim(`(answer above for ${asked})`)}`);
  const dnd = p.doNotDisturb;
  const conversations = Object.entries(p.conversations);
  line(
    fields([
      ["do not disturb", dnd ? `${dnd.start === dnd.end ? "all day" : `${dnd.start}-${dnd.end}`} ${dnd.timeZone}${dnd.allowMentions ? ", mentions allowed" : ""}` : "-"],
      ["locale", p.locale ?? "- (default texts)"],
      ["conversations", conversations.length === 0 ? "- (every message)" : `${conversations.length} with a setting`],
    ]),
  );
  const shown = conversations.slice(0, MAX_CONVERSATIONS_SHOWN);
  if (shown.length) {
    line(table(["Conversation", "Mode", "Muted until"], shown.map(([id, c]) => [id, c.mode === "all" ? c.mode : color.yellow(c.mode), c.mutedUntil ?? "-"])));
    if (conversations.length > shown.length) line(color.dim(`... and ${conversations.length - shown.length} more (--json lists them all)`));
  }
}

/** Conversation settings listed in the human output; --json has all of them (up to 2,000). */
const MAX_CONVERSATIONS_SHOWN = 20;

export function registerDiagCommands(program: Command, ctx: Context): void {
  program
    .command("user")
    .description("why would (or wouldn't) this user get a push now: devices, sessions, tokens, recent outcomes (diagnosePush)")
    .argument("<uid|email|phone>", "the account: its Firebase uid, e-mail address or phone number (+15555550100)")
    .option("--conversation <id>", "for a message in this conversation (c2c_<account> or group_<GroupId>): its mute / mentions-only setting applies")
    .option("--mentioned", "for a message that mentions the user (passes mentions-only, and quiet hours with allowMentions)")
    .addHelpText(
      "after",
      "\nExamples:\n  $ offline-push user bob@example.com\n  $ offline-push user +15555550100\n  $ offline-push user bob --conversation group_team-42 --mentioned\n  $ offline-push user bob --json | jq .summary",
    )
    .action(async (account: string, options: { conversation?: string; mentioned?: boolean }) => {
      const target = ctx.target();
      const asked = { account, ...(options.conversation !== undefined ? { conversation: options.conversation } : {}), ...(options.mentioned ? { mentioned: true } : {}) };
      const data = request(DiagnosePushRequestSchema, asked, { account: "<uid|email|phone>", uid: "<uid|email|phone>", conversation: "--conversation", mentioned: "--mentioned" });
      const res = await withProgress(`Looking up ${account}`, () =>
        callOperator(target, "diagnosePush", data, DiagnosePushResponseSchema).catch((err: unknown) => {
          // "no such account" said as itself, not as the callable's field-prefixed error.
          if (err instanceof CliError && err.code === "not-found") throw new CliError(err.message.replace(/^diagnosePush: NOT_FOUND: account: /, ""), "not-found", err.details);
          throw err;
        }),
      );
      if (ctx.json) return printJson(res);
      const contact = [res.email, res.phoneNumber].filter(Boolean).join(", ");
      line(color.bold(`${res.displayName ?? res.email ?? res.phoneNumber ?? res.uid} on ${ctx.describe()}`));
      line(fields([
        ["uid", res.uid],
        ...(res.displayName ? ([["name", res.displayName]] as Array<[string, string]>) : []),
        ["contact", contact || (res.authAccount ? "-" : "not a Firebase Auth account (an IM account the push records know)")],
      ]));
      line();
      paragraph(`${res.wouldPushNow ? color.green("✔") : color.red("✘")} ${res.summary}`);
      line();
      if (res.devices.length === 0) line("No devices: the app never called login for this account.");
      else
        line(
          table(
            ["Device", "Session", "App", "Heartbeat", "Connection", "Token", "Certificate", "Push now?"],
            res.devices.map((d) => [
              `${d.deviceId}\n${color.dim(d.platform)}${d.badge ? color.dim(` · badge ${d.badge.count}`) : ""}`,
              d.session === "kicked" ? `kicked ${ago(d.endedAt)}${d.kickedByDeviceId ? ` by ${d.kickedByDeviceId}` : ""}` : d.session === "logged-out" ? `logged out ${ago(d.endedAt)}` : "logged in",
              d.appState,
              `${ago(d.lastHeartbeatAt)}${d.heartbeatWithinLease ? "" : color.dim(" (lease over)")}`,
              connectionText(d),
              d.token ? `${d.token.hashPrefix}… ${ago(d.token.refreshedAt)}${d.token.stale ? color.red(" stale") : ""}` : d.platform === "desktop" ? color.dim("none (desktop)") : color.red("none"),
              d.token
                ? `${d.token.certificateId}${d.token.certificate.exists ? (d.token.certificate.health?.state === "unhealthy" ? color.red(" unhealthy") : "") : color.red(" deleted")}`
                : "-",
              d.eligibility.eligible ? color.green("yes") : color.yellow(`no: ${d.eligibility.reason ?? "?"}`),
            ]),
          ),
        );
      for (const d of res.devices) paragraph(`${color.dim("•")} ${d.summary}`, "  ");
      preferenceLines(res);
      if (res.recent.length) {
        line();
        line(color.bold(res.recent.length === 1 ? "The last message" : `The last ${res.recent.length} messages`));
        line(
          table(
            ["When", "MsgKey", "From", "Outcome per device"],
            res.recent.map((m) => [
              ago(m.at),
              m.msgKey ?? "-",
              m.from ?? "-",
              m.rejected
                ? color.red(`event rejected: ${m.rejected.reason}`)
                : m.devices.map((o) => `${o.deviceId ?? "(user)"}: ${outcomeText(o.outcome, o.reason)}${o.error?.errorCode ? ` ${o.error.errorCode}` : ""}${o.openedAt ? color.green(" opened") : ""}`).join("\n") || "-",
            ]),
          ),
        );
      }
      if (res.presenceRecords.length) {
        line();
        line(color.bold(`Presence events not applied (${res.presenceRecords.length})`));
        line(
          table(
            ["Last", "Kind", "Device", "Event", "Count", "Detail"],
            res.presenceRecords.map((r) => [
              ago(r.lastAt),
              color.yellow(r.kind),
              r.deviceId ?? "-",
              r.action ? `${r.action}${r.reason ? ` (${r.reason})` : ""}${r.eventTime ? ` at ${r.eventTime}` : ""}` : "-",
              r.count,
              r.detail,
            ]),
          ),
        );
      }
      explanationLines(
        uniqueExplanations([
          ...res.devices.map((d) => d.eligibility.explanation),
          ...res.presenceRecords.map((r) => r.explanation),
          ...res.recent.flatMap((m) => [m.rejected?.explanation, ...m.devices.flatMap((o) => [o.explanation, o.fcmErrorExplanation])]),
        ]),
      );
      line();
      const st = res.settings;
      line(
        color.dim(
          `Session policy ${st.sessionPolicy}, heartbeat lease ${st.heartbeatLeaseSeconds} s, tokens stale after ${st.tokenStaleDays} d; ` +
            `presence source ${st.presenceSource} (lease ${st.presenceLeaseSeconds} s), active-elsewhere ${st.activeElsewhereSeconds ? `${st.activeElsewhereSeconds} s` : "off"}.`,
        ),
      );
    });

  program
    .command("trace")
    .description("follow one message from publish to FCM and the tap, per recipient and device (traceMessage)")
    .argument("<msgKey>", "the MsgKey of the event")
    .action(async (msgKey: string) => {
      const target = ctx.target();
      const data = request(TraceMessageRequestSchema, { msgKey }, { msgKey: "<msgKey>" });
      const res = await withProgress(`Tracing ${msgKey}`, () => callOperator(target, "traceMessage", data, TraceMessageResponseSchema));
      if (ctx.json) return printJson(res);
      // The summary says the counts and the latency once; what follows adds only what it does not.
      paragraph(color.bold(res.summary));
      if (!res.found) return;
      const running = res.batches.filter((b) => b.state === "running").length;
      line(color.dim(`published ${res.publishedAt ? `${ago(res.publishedAt)} (${res.publishedAt})` : "at an unknown time"}, ${counted(res.batches.length, "batch", "batches")}${running ? `, ${running} still running` : ""}`));
      if (res.conversation) line(color.dim(`conversation ${res.conversation}`));
      if (res.publications.length > 1) paragraph(color.dim(`publications: ${publicationsText(res.publications)}`), "  ");
      for (const r of res.rejected) paragraph(color.red(`event rejected: ${r.reason}: ${r.detail}`), "  ");
      for (const note of new Set(res.batches.flatMap((b) => b.notes))) paragraph(color.dim(`note: ${note}`), "  ");
      if (res.devices.length) {
        line();
        line(
          table(
            ["Recipient", "Device", "Outcome", "Stages", "Latency"],
            res.devices.map((d) => [
              d.uid,
              d.deviceId ?? "-",
              `${outcomeText(d.outcome, d.reason)}${d.error?.errorCode ? `\n${d.error.errorCode}` : ""}${d.attempts && d.attempts > 1 ? `\n${counted(d.attempts, "attempt")}` : ""}`,
              // Times of day only; each stage's sentence is in --json (the table stays as wide as the terminal).
              d.stages.map((st) => `${st.stage} ${st.at.slice(11, 23)}`).join("\n"),
              d.latencyMs === null ? "-" : formatLatency(d.latencyMs),
            ]),
          ),
        );
        if (res.devicesTruncated) line(color.yellow("  (more devices than shown: --json has the same list; the counts above cover all)"));
      }
      followUpLines(res.followUps);
      explanationLines(res.explanations);
    });

  program
    .command("test-push")
    .description("send a test notification now to the user's logged-in devices with a token (sendTestPush)")
    .argument("<uid>", "the IM account (Firebase uid)")
    .option("--device <deviceId>", "only this device")
    .option("--title <text>", "notification title")
    .option("--body <text>", "notification text")
    .option("--dry-run", "FCM validate_only: FCM checks message, token and certificate but shows nothing")
    .action(async (uid: string, opts: { device?: string; title?: string; body?: string; dryRun?: boolean }) => {
      const target = ctx.target();
      const data = request(
        SendTestPushRequestSchema,
        { uid, ...(opts.device !== undefined ? { deviceId: opts.device } : {}), ...(opts.title !== undefined ? { title: opts.title } : {}), ...(opts.body !== undefined ? { body: opts.body } : {}), ...(opts.dryRun ? { dryRun: true } : {}) },
        { uid: "<uid>", deviceId: "--device", title: "--title", body: "--body" },
      );
      const res = await withProgress(opts.dryRun ? `Validating a test push to ${uid} with FCM` : `Sending a test push to ${uid}`, () =>
        callOperator(target, "sendTestPush", data, SendTestPushResponseSchema),
      );
      if (ctx.json) return printJson(res);
      line(color.bold(`${res.dryRun ? "Dry run (FCM validate_only)" : "Test push"} to ${res.uid} on ${ctx.describe()}, msgKey ${res.msgKey}`));
      line(res.summary);
      if (res.devices.length) {
        line();
        line(
          table(
            ["Device", "Result", "Certificate", "Token", "FCM answer"],
            res.devices.map((d) => [
              d.deviceId,
              d.result === "sent" || d.result === "validated" ? color.green(d.result) : d.result === "failed" ? color.red(`failed: ${d.reason ?? "?"}`) : color.yellow(`skipped: ${d.reason ?? "?"}`),
              d.certificateId ?? "-",
              d.tokenHashPrefix ? `${d.tokenHashPrefix}…` : "-",
              d.fcm ? (d.fcm.name ?? (d.fcm.error ? `${d.fcm.error.httpStatus} ${d.fcm.error.errorCode ?? d.fcm.error.status ?? ""}: ${d.fcm.error.message}` : "-")) : color.dim(d.detail || "no request"),
            ]),
          ),
        );
      }
      explanationLines(uniqueExplanations(res.devices.flatMap((d) => [d.explanation, d.fcmErrorExplanation])));
    });

  program
    .command("stats")
    .description("pushes per UTC day: events, sent, skipped and failed by reason, opened (pushStats)")
    .option("--days <n>", `the last n days, today included (1-${MAX_STATS_DAYS})`, "7")
    .option("--certificate <id>", "only what one certificate sent")
    .action(async (opts: { days: string; certificate?: string }) => {
      const target = ctx.target();
      const days = parseArg(z.string().regex(/^\d+$/, "must be a whole number of days").transform(Number).pipe(z.number().min(1, "must be at least 1").max(MAX_STATS_DAYS, `must be at most ${MAX_STATS_DAYS}`)), opts.days, "--days");
      const certificateId = opts.certificate === undefined ? undefined : parseArg(CertificateIdArgSchema.pipe(CertificateIdSchema), opts.certificate, "--certificate");
      const data = request(PushStatsRequestSchema, { ...statsRange(days), ...(certificateId !== undefined ? { certificateId } : {}) }, { from: "--days", to: "--days", certificateId: "--certificate" });
      const res = await withProgress(`Reading ${counted(days, "day")} of statistics`, () => callOperator(target, "pushStats", data, PushStatsResponseSchema));
      if (ctx.json) return printJson(res);
      line(color.bold(`Pushes ${res.from} to ${res.to} (UTC)${res.certificateId !== null ? `, certificate ${res.certificateId}` : ""} on ${ctx.describe()}`));
      line();
      const max = Math.max(1, ...res.days.map((d) => d.sent + (d.skipped ?? 0) + d.failed));
      const width = 24;
      // Each series its own glyph (and colour on a terminal): the bars read without colour too.
      const glyphs = { sent: "█", skipped: "▒", failed: "░" };
      line(
        table(
          ["Day", "Events", "Sent", "Skipped", "Failed", "Opened", "Open rate", `${color.green(glyphs.sent)} sent ${color.yellow(glyphs.skipped)} skipped ${color.red(glyphs.failed)} failed`],
          res.days.map((d) => [
            d.date,
            d.events ?? "-",
            d.sent,
            d.skipped ?? "-",
            d.failed,
            d.opened,
            rate(d),
            color.green(bar(d.sent, max, width, glyphs.sent)) + color.yellow(bar(d.skipped ?? 0, max, width, glyphs.skipped)) + color.red(bar(d.failed, max, width, glyphs.failed)),
          ]),
        ),
      );
      const t = res.totals;
      line(fields([
        ["total", `events ${t.events ?? "-"}, recipients ${t.recipients ?? "-"}, sent ${t.sent}, skipped ${t.skipped ?? "-"}, failed ${t.failed}, opened ${t.opened} (open rate ${rate(t)})`],
        ["skipped by reason", countsText(t.skippedByReason)],
        ["failed by reason", countsText(t.failedByReason)],
        ["FCM errors", countsText(t.failedByErrorCode)],
        ...Object.entries(t.byEvent).map(([kind, c]): [string, string] => [`${kind}s`, `events ${c.events}, ${kind === "read" ? "clears" : "replacements"} sent ${c.sent}, skipped ${c.skipped}, failed ${c.failed}`]),
      ]));
      explanationLines(res.explanations);
    });
}

/** The Reads and the Recall that followed a message: one table, a row per device. */
function followUpLines(followUps: TraceMessageResponse["followUps"]): void {
  if (followUps.length === 0) return;
  line();
  line(color.bold(`What followed (${followUps.length})`));
  line(
    table(
      ["Event", "By", "When", "Recipient", "Device", "Outcome"],
      followUps.flatMap((f) => {
        const head = [f.kind === "read" ? `Read ${f.key}\n${f.conversation ?? ""}` : "Recall", f.account, `${ago(f.createdAt)}${f.state === "running" ? "\nrunning" : ""}`];
        if (f.devices.length === 0) return [[...head, "-", "-", color.dim("no device was pushed there")]];
        return f.devices.map((d, i) => [...(i === 0 ? head : ["", "", ""]), d.uid, d.deviceId ?? "-", outcomeText(d.outcome, d.reason)]);
      }),
    ),
  );
}

function rate(f: StatsFigures): string {
  return f.openRate === null ? "-" : `${(f.openRate * 100).toFixed(1)} %`;
}
