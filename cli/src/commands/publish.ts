// publish: one IM event onto the push topic, as the IM backend would publish it, to try a
// backend's payloads. The event is checked with the fan-out's own schema first, so a payload the
// functions would reject as invalid-event fails here, naming the field.
import fs from "node:fs/promises";
import type { Command } from "commander";
import { PushEventSchema } from "../../../functions/src/fanout/schemas.ts";
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

export function registerPublishCommand(program: Command, ctx: Context): void {
  program
    .command("publish")
    .description("publish an IM event (the IM backend's JSON) to the push topic")
    .argument("<event.json|->", "a file, or - for stdin")
    .addHelpText(
      "after",
      `\nExample:\n  $ echo '{"MsgKey":"msg-1","From_Account":"alice","To_Account":["bob"],"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]}' | offline-push publish -`,
    )
    .action(async (source: string) => {
      const target = ctx.target();
      const text = await readInput(source);
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new CliError(`${source === "-" ? "stdin" : source} is not valid JSON`, "usage");
      }
      const parsed = PushEventSchema.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new CliError(`the event is invalid: ${issue?.path.length ? issue.path.join(".") : "(event)"} ${issue?.message ?? ""} (the fan-out would reject it as invalid-event)`, "usage");
      }
      const event = parsed.data;
      const recipients = Array.isArray(event.To_Account) ? event.To_Account.length : 1;
      const messageId = await withProgress(`Publishing to ${target.topic}`, async () => {
        const { PubSub } = await import("@google-cloud/pubsub");
        const pubsub = new PubSub({ projectId: target.projectId });
        try {
          // The text as given, not the parsed copy: the backend's exact payload is what is tested.
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
