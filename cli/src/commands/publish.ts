// publish: one IM event onto the push topic, as the IM backend would publish it, to try a
// backend's payloads. The event is checked with the fan-out's own schema first, so a payload the
// functions would reject as invalid-event fails here, naming the field.
import fs from "node:fs/promises";
import { Option, type Command } from "commander";
import { z } from "zod";
import { DEFAULT_PRESENCE_TOPIC } from "../../../functions/src/config.ts";
import { FOLLOW_UP_EVENTS, PushEventSchema, ReadEventSchema, RecallEventSchema } from "../../../functions/src/fanout/schemas.ts";
import { PresenceBatchSchema, PresenceEventSchema, isBatchMessage } from "../../../functions/src/presence/schemas.ts";
import { CliError } from "../errors.ts";
import { color, fields, line, printJson, withProgress } from "../output.ts";
import type { Context } from "../context.ts";

/** Pub/Sub's limit for one message. */
const MAX_EVENT_BYTES = 10_000_000;

async function readInput(source: string): Promise<string> {
  if (source !== "-") {
    try {
      const stat = await fs.stat(source);
      if (stat.size > MAX_EVENT_BYTES) throw new CliError(`${source} is larger than Pub/Sub's 10 MB message limit`, "usage");
      return await fs.readFile(source, "utf8");
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw new CliError(`cannot read ${source}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, "usage");
    }
  }
  if (process.stdin.isTTY) throw new CliError("`publish -` reads the event from stdin: pipe a JSON document into it", "usage");
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > MAX_EVENT_BYTES) throw new CliError("stdin is larger than Pub/Sub's 10 MB message limit", "usage");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** The first issue of a failed parse, as "field message". */
function firstIssue(error: z.ZodError, prefix = ""): string {
  const issue = error.issues[0];
  const field = [prefix, ...(issue?.path ?? []).map(String)].filter(Boolean).join(".");
  return `${field || "(event)"} ${issue?.message ?? ""}`;
}

/**
 * A presence message checked as offlinePushPresence checks it: one event, or {"Events":[...]}
 * whose every event must be valid (the trigger would record a bad one and apply the others; here
 * the backend's payload is being tried, so any bad event fails it).
 */
function checkPresence(json: unknown): { events: number; actions: Record<string, number> } {
  const events: unknown[] = [];
  if (isBatchMessage(json)) {
    const batch = PresenceBatchSchema.safeParse(json);
    if (!batch.success) throw new CliError(`the presence message is invalid: ${firstIssue(batch.error)} (offlinePushPresence would record it as invalid-event)`, "usage");
    events.push(...batch.data.Events);
  } else events.push(json);
  const actions: Record<string, number> = {};
  events.forEach((e, i) => {
    const parsed = PresenceEventSchema.safeParse(e);
    if (!parsed.success) throw new CliError(`the presence event is invalid: ${firstIssue(parsed.error, isBatchMessage(json) ? `Events.${i}` : "")} (offlinePushPresence would record it as invalid-event)`, "usage");
    actions[parsed.data.Action] = (actions[parsed.data.Action] ?? 0) + 1;
  });
  return { events: events.length, actions };
}

/** The kind of an event on the push topic, by `Event` (absent: a message), as the fan-out tells them apart. */
function eventKindOf(json: unknown): "message" | "Read" | "Recall" {
  const name = typeof json === "object" && json !== null && !Array.isArray(json) ? (json as { Event?: unknown }).Event : undefined;
  if (name === undefined) return "message";
  if (name === "Read" || name === "Recall") return name;
  throw new CliError(`the event is invalid: Event must be one of ${FOLLOW_UP_EVENTS.join(", ")} (absent for a message) (the fan-out would reject it as invalid-event)`, "usage");
}

const invalid = (error: z.ZodError, what: string) => new CliError(`the ${what} is invalid: ${firstIssue(error)} (the fan-out would reject it as invalid-event)`, "usage");

/** A Read or a Recall: checked with the fan-out's schema, published, and said what to follow it with. */
async function publishFollowUp(kind: "Read" | "Recall", json: unknown, text: string, target: { projectId: string; topic: string; timeoutMs: number }, ctx: Context): Promise<void> {
  if (kind === "Read") {
    const parsed = ReadEventSchema.safeParse(json);
    if (!parsed.success) throw invalid(parsed.error, "Read event");
    const e = parsed.data;
    const messageId = await publishText(target, text, ctx);
    if (ctx.json) return printJson({ messageId, topic: target.topic, projectId: target.projectId, event: "Read", eventKey: e.EventKey, account: e.Account, conversation: e.Conversation });
    line(`Published Read ${color.bold(e.EventKey)} to ${target.topic} on ${ctx.describe()}.`);
    line(fields([
      ["message ID", messageId],
      ["account", e.Account],
      ["conversation", e.Conversation],
      ["read on", e.DeviceId ?? "-"],
    ]));
    line(`Follow it with: offline-push trace ${e.EventKey}`);
    return;
  }
  const parsed = RecallEventSchema.safeParse(json);
  if (!parsed.success) throw invalid(parsed.error, "Recall event");
  const e = parsed.data;
  const messageId = await publishText(target, text, ctx);
  if (ctx.json) return printJson({ messageId, topic: target.topic, projectId: target.projectId, event: "Recall", msgKey: e.MsgKey, from: e.From_Account });
  line(`Published the Recall of ${color.bold(e.MsgKey)} to ${target.topic} on ${ctx.describe()}.`);
  line(fields([
    ["message ID", messageId],
    ["from", e.From_Account],
  ]));
  line(`Follow it with: offline-push trace ${e.MsgKey}`);
}

/** Publishes the text as given, not a parsed copy: the backend's exact payload is what is tried. */
async function publishText(target: { projectId: string; topic: string; timeoutMs: number }, text: string, ctx: Context): Promise<string> {
  return withProgress(`Publishing to ${target.topic}`, async () => {
    const { PubSub } = await import("@google-cloud/pubsub");
    const pubsub = new PubSub({ projectId: target.projectId });
    try {
      // The client retries for up to 10 minutes on its own; the CLI's deadline is --timeout.
      return await pubsub.topic(target.topic, { gaxOpts: { timeout: target.timeoutMs } }).publishMessage({ data: Buffer.from(text) });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (/NOT_FOUND|not found/i.test(message)) throw new CliError(`topic ${target.topic} does not exist in ${ctx.describe()} (deploy the functions, or pass --topic)`, "not-found");
      throw new CliError(`publishing to ${target.topic} failed: ${message}`, "remote");
    } finally {
      await pubsub.close();
    }
  });
}

export function registerPublishCommand(program: Command, ctx: Context): void {
  program
    .command("publish")
    .description("publish an IM event (the IM backend's JSON: a message, a Read or a Recall) to the push topic, or with --presence a presence event to the presence topic")
    .argument("<event.json|->", "a file, or - for stdin")
    .option("--presence", "a presence event ({Account, DeviceId, Action, Reason?, EventTime} or {Events:[...]}) for offlinePushPresence")
    .addOption(new Option("--presence-topic <name>", `the presence topic, with --presence (default ${DEFAULT_PRESENCE_TOPIC})`).env("PRESENCE_TOPIC"))
    .addHelpText(
      "after",
      `\nExample:\n  $ echo '{"MsgKey":"msg-1","From_Account":"alice","To_Account":["bob"],"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]}' | offline-push publish -
  $ echo '{"Event":"Read","EventKey":"read-1","Account":"bob","Conversation":"c2c_alice","DeviceId":"bobs-laptop"}' | offline-push publish -
  $ echo '{"Event":"Recall","MsgKey":"msg-1","From_Account":"alice"}' | offline-push publish -
  $ echo '{"Account":"bob","DeviceId":"bobs-pixel-8","Action":"Disconnect","Reason":"LinkClose","EventTime":'"$(date +%s000)"'}' | offline-push publish --presence -`,
    )
    .action(async (source: string, opts: { presence?: boolean; presenceTopic?: string }) => {
      const target = ctx.target();
      const text = await readInput(source);
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new CliError(`${source === "-" ? "stdin" : source} is not valid JSON`, "usage");
      }
      if (opts.presence) {
        const topic = z.string().regex(/^[A-Za-z][\w.~+%-]{2,254}$/).safeParse(opts.presenceTopic?.trim() || DEFAULT_PRESENCE_TOPIC);
        if (!topic.success) throw new CliError("--presence-topic is not a Pub/Sub topic name", "usage");
        const checked = checkPresence(json);
        const messageId = await publishText({ ...target, topic: topic.data }, text, ctx);
        const result = { messageId, topic: topic.data, projectId: target.projectId, ...checked };
        if (ctx.json) return printJson(result);
        line(`Published ${checked.events} presence event(s) to ${topic.data} on ${ctx.describe()}.`);
        line(fields([
          ["message ID", messageId],
          ["actions", Object.entries(checked.actions).map(([a, n]) => `${a} ${n}`).join(", ")],
        ]));
        line("See each device's presence with: offline-push user <Account>");
        return;
      }
      const kind = eventKindOf(json);
      if (kind !== "message") return publishFollowUp(kind, json, text, target, ctx);
      const parsed = PushEventSchema.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new CliError(`the event is invalid: ${issue?.path.length ? issue.path.join(".") : "(event)"} ${issue?.message ?? ""} (the fan-out would reject it as invalid-event)`, "usage");
      }
      const event = parsed.data;
      const recipients = Array.isArray(event.To_Account) ? event.To_Account.length : 1;
      const messageId = await publishText(target, text, ctx);
      const result = { messageId, topic: target.topic, projectId: target.projectId, msgKey: event.MsgKey, recipients };
      if (ctx.json) return printJson(result);
      line(`Published ${color.bold(event.MsgKey)} to ${target.topic} on ${ctx.describe()}.`);
      line(fields([
        ["message ID", messageId],
        ["from", event.From_Account],
        ["recipients", recipients],
      ]));
      line(`Follow it with: offline-push trace ${event.MsgKey}`);
    });
}
