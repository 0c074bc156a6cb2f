// offline-push: the operator's command line for IM offline push, on the emulators or a real project.
import { Command, CommanderError, Option } from "commander";
import { registerAdminCommands } from "./commands/admin.ts";
import { registerCertCommands } from "./commands/cert.ts";
import { registerDiagCommands } from "./commands/diag.ts";
import { registerExplainCommand } from "./commands/explain.ts";
import { registerPublishCommand } from "./commands/publish.ts";
import { Context } from "./context.ts";
import { CliError } from "./errors.ts";
import { colorErr, printJson } from "./output.ts";
import { DEFAULT_REGION, DEMO_PROJECT } from "./target.ts";

// `offline-push ... | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(0);
  throw err;
});

const program = new Command("offline-push");
const ctx = new Context(program);

program
  .description(
    "Operate IM offline push: certificates, why a user got no push, traces, test pushes, statistics, events.\n\n" +
      `Targets: the emulators of \`npm start\` (the default, project ${DEMO_PROJECT}), or a real project with --project <id> ` +
      "and Application Default Credentials (gcloud auth application-default login).",
  )
  .option("--emulators", `use the local emulators (the default; hosts from FIREBASE_AUTH_EMULATOR_HOST, FUNCTIONS_EMULATOR_HOST, PUBSUB_EMULATOR_HOST, FAKE_FCM_CONTROL_ORIGIN, else firebase.json)`)
  .option("--project <id>", "a real Firebase project (Application Default Credentials)")
  .option("--region <region>", "where the functions run", DEFAULT_REGION)
  .addOption(new Option("--api-key <key>", "the project's web API key, to exchange the operator's custom token for an ID token").env("OFFLINE_PUSH_API_KEY"))
  .addOption(new Option("--signer <email>", "service account that signs custom tokens when ADC are user credentials").env("OFFLINE_PUSH_SIGNER"))
  .addOption(new Option("--topic <name>", "the IM events' Pub/Sub topic (default im-offline-push)").env("PUSH_TOPIC"))
  .option("--timeout <seconds>", "deadline of each request", "120")
  .option("--json", "machine-readable output on stdout (errors too: {\"error\": ...})")
  .showHelpAfterError("(add --help for usage)")
  .configureHelp({ sortSubcommands: false })
  .exitOverride();

registerCertCommands(program, ctx);
registerDiagCommands(program, ctx);
registerExplainCommand(program, ctx);
registerAdminCommands(program, ctx);
registerPublishCommand(program, ctx);

// The global options are listed once, by `offline-push --help`; each command's help points there
// instead of repeating them.
function pointToGlobalOptions(command: Command): void {
  for (const sub of command.commands) {
    sub.addHelpText("after", "\nGlobal options (--project, --region, --json, --timeout, ...) go before or after the command: see `offline-push --help`.");
    pointToGlobalOptions(sub);
  }
}
pointToGlobalOptions(program);

function report(err: CliError): never {
  if (ctx.json) printJson({ error: { code: err.code, message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) } });
  process.stderr.write(`${colorErr.red("error:")} ${err.message}\n`);
  process.exit(err.exitCode);
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Commander has printed the message or the help already.
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  if (err instanceof CliError) report(err);
  report(new CliError(err instanceof Error ? err.message : String(err)));
}
