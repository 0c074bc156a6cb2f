// cert add | list | update | rm: the certificate callables. A key file is checked here with the
// functions' own schema first (its messages never echo the file), so a wrong file fails before
// any network call, and nothing the CLI prints ever contains key material.
import fs from "node:fs/promises";
import readline from "node:readline/promises";
import type { Command } from "commander";
import { z } from "zod";
import { CertificateIdSchema, PublicCertificateSchema, ServiceAccountSchema } from "../../../functions/src/certificates/schemas.ts";
import { MAX_SERVICE_ACCOUNT_BYTES } from "../../../functions/src/config.ts";
import { callOperator } from "../callables.ts";
import { CliError } from "../errors.ts";
import { postJson } from "../http.ts";
import { ago, bigNumber, color, fields, line, printJson, table, withProgress } from "../output.ts";
import type { Context } from "../context.ts";

const RegisteredSchema = PublicCertificateSchema.pick({ certificateId: true, projectId: true, clientEmail: true, privateKeyId: true, label: true, createdAt: true });
const ListSchema = z.object({ certificates: z.array(PublicCertificateSchema) });
const DeletedSchema = z.object({ deleted: z.literal(true), certificateId: z.number(), boundTokens: z.number() });

export const CertificateIdArgSchema = z
  .string()
  .regex(/^\d+$/, "must be a certificate ID (a positive integer, as `cert list` shows)")
  .transform(Number)
  .pipe(CertificateIdSchema);

const LabelOptionSchema = z.string().trim().min(1, "must not be empty").max(100, "is longer than 100 characters");

export function parseArg<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new CliError(`${what} ${parsed.error.issues[0]?.message ?? "is invalid"}`, "usage");
  return parsed.data;
}

/** Reads and checks a service-account file; returns its text (sent as is: the functions parse it again). */
async function readServiceAccount(file: string): Promise<string> {
  let text: string;
  try {
    const stat = await fs.stat(file);
    if (!stat.isFile()) throw new CliError(`${file} is not a file`, "usage");
    if (stat.size > MAX_SERVICE_ACCOUNT_BYTES) throw new CliError(`${file} is larger than ${MAX_SERVICE_ACCOUNT_BYTES} bytes: not a service-account key file`, "usage");
    text = await fs.readFile(file, "utf8");
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, "usage");
  }
  const parsed = ServiceAccountSchema.safeParse(text);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.length ? issue.path.join(".") : "the file";
    throw new CliError(`${file}: ${field} ${issue?.message ?? "is invalid"} (expected the JSON of Firebase console > Project settings > Service accounts > Generate new private key)`, "usage");
  }
  return text;
}

/**
 * A callable's refusal that a request field would override (its details name it in `override`),
 * said with this CLI's flag for that field instead of the field's name.
 */
function withFlagFor(err: unknown, override: string, message: (details: Record<string, unknown>) => string): unknown {
  if (!(err instanceof CliError)) return err;
  const details = err.details;
  if (typeof details !== "object" || details === null || (details as { override?: unknown }).override !== override) return err;
  return new CliError(message(details as Record<string, unknown>), err.code, details);
}

function healthText(h: z.output<typeof PublicCertificateSchema>["health"]): string {
  return h.state === "healthy" ? color.green("healthy") : color.red(`unhealthy${h.reason ? `: ${h.reason}` : ""}`);
}

/**
 * A service-account key the emulators' fake FCM trusts, from its HTTP control API: the CLI ships to
 * operators of real projects, so it knows the fake only as any client would, by its origin.
 */
async function demoServiceAccount(origin: string, timeoutMs: number): Promise<unknown> {
  const what = `the fake FCM at ${origin} did not make a key`;
  const res = await postJson(`${origin}/control/service-accounts`, { projectId: "demo-chat-app" }, { timeoutMs, what, hint: "Is `npm start` running?" });
  if (res.status !== 200 || typeof res.json !== "object" || res.json === null) {
    throw new CliError(`${what}: its control API answered HTTP ${res.status} (is that origin the fake FCM of \`npm start\`?)`, "remote");
  }
  return res.json;
}

export function registerCertCommands(program: Command, ctx: Context): void {
  const cert = program.command("cert").description("push certificates (FCM service-account keys)");

  cert
    .command("add")
    .description("register a service-account key; prints the certificate ID apps report with setOfflinePushToken")
    .argument("[service-account.json]", "the key file from Firebase console > Project settings > Service accounts")
    .option("--label <text>", "a name operators recognise (app, flavour)")
    .option("--demo", "emulators only: make a key the fake FCM trusts and register it")
    .option("--allow-duplicate-key", "register the key even if a certificate already holds it (a second certificate ID for the same key)")
    .addHelpText("after", "\nExamples:\n  $ offline-push cert add ./my-chat-app-firebase-adminsdk.json --label 'Android app'\n  $ offline-push cert add --demo")
    .action(async (file: string | undefined, opts: { label?: string; demo?: boolean; allowDuplicateKey?: boolean }) => {
      const target = ctx.target();
      const label = opts.label === undefined || opts.label.trim() === "" ? undefined : parseArg(LabelOptionSchema, opts.label, "--label");
      let serviceAccount: unknown;
      if (opts.demo) {
        if (file) throw new CliError("give a key file or --demo, not both", "usage");
        if (target.mode !== "emulators") throw new CliError("--demo makes a key only the fake FCM of the emulators trusts: it is for the emulators, not a real project", "usage");
        const origin = target.fakeFcmControlOrigin;
        serviceAccount = await withProgress("Making a key the fake FCM trusts", () => demoServiceAccount(origin, target.timeoutMs));
      } else {
        if (!file) throw new CliError("give the service-account key file (or --demo on the emulators)", "usage");
        serviceAccount = await readServiceAccount(file);
      }
      const cert = await withProgress("Registering the certificate (the functions check the key with FCM first)", () =>
        callOperator(
          target,
          "registerPushCertificate",
          { serviceAccount, label: label ?? (opts.demo ? "demo (fake FCM)" : undefined), ...(opts.allowDuplicateKey ? { allowDuplicateKey: true } : {}) },
          RegisteredSchema,
        ).catch((err: unknown) => Promise.reject(withFlagFor(err, "allowDuplicateKey", (d) =>
          `this key is already registered as certificate ${String(d.certificateId)}${typeof d.label === "string" ? ` ("${d.label}")` : ""}: apps can report that certificate ID. ` +
          "To register the same key again as a new certificate, pass --allow-duplicate-key",
        ))),
      );
      if (ctx.json) return printJson(cert);
      line(`Registered a push certificate for Firebase project ${color.bold(cert.projectId)} on ${ctx.describe()}.`);
      line();
      line(color.bold(bigNumber(cert.certificateId)));
      line();
      line(`  Certificate ID ${color.bold.green(String(cert.certificateId))}: apps report it with setOfflinePushToken {deviceId, certificateId: ${cert.certificateId}, token}.`);
      line(fields([
        ["label", cert.label],
        ["client email", cert.clientEmail],
        ["key ID", cert.privateKeyId],
      ]));
    });

  cert
    .command("list")
    .description("list the certificates with their health")
    .action(async () => {
      const target = ctx.target();
      const { certificates } = await withProgress("Listing certificates", () => callOperator(target, "listPushCertificates", {}, ListSchema));
      if (ctx.json) return printJson({ certificates });
      if (certificates.length === 0) return line(`No certificates on ${ctx.describe()}. Add one with \`offline-push cert add <service-account.json>\`.`);
      line(
        table(
          ["ID", "Label", "Project", "Client email", "Key ID", "Ver.", "Health", "Updated"],
          certificates.map((c) => [c.certificateId, c.label ?? "-", c.projectId, c.clientEmail, c.privateKeyId.slice(0, 12), c.version, healthText(c.health), ago(c.updatedAt)]),
        ),
      );
    });

  cert
    .command("update")
    .description("replace a certificate's key (rotation) and/or its label; apps keep the same certificate ID")
    .argument("<id>", "certificate ID")
    .option("--key <file>", "the new service-account key file")
    .option("--label <text>", 'a new label; --label "" removes it')
    .option("--allow-project-change", "accept a key of another Firebase project (every token bound to this certificate stops working)")
    .addHelpText("after", '\nExamples:\n  $ offline-push cert update 3 --key ./rotated-key.json\n  $ offline-push cert update 3 --label ""   # no label')
    .action(async (id: string, opts: { key?: string; label?: string; allowProjectChange?: boolean }) => {
      const target = ctx.target();
      const certificateId = parseArg(CertificateIdArgSchema, id, "<id>");
      if (opts.key === undefined && opts.label === undefined) throw new CliError("nothing to change: give --key <file> and/or --label <text>", "usage");
      // An empty (or blank) label means "no label": the callable's null.
      const label = opts.label === undefined ? undefined : opts.label.trim() === "" ? null : parseArg(LabelOptionSchema, opts.label, "--label");
      const serviceAccount = opts.key === undefined ? undefined : await readServiceAccount(opts.key);
      const cert = await withProgress(serviceAccount ? "Replacing the key (checked with FCM first)" : label === null ? "Removing the label" : "Relabelling", () =>
        callOperator(
          target,
          "updatePushCertificate",
          { certificateId, ...(serviceAccount ? { serviceAccount } : {}), ...(label !== undefined ? { label } : {}), ...(opts.allowProjectChange ? { allowProjectChange: true } : {}) },
          PublicCertificateSchema,
        ).catch((err: unknown) => Promise.reject(withFlagFor(err, "allowProjectChange", (d) =>
          `certificate ${certificateId} sends for Firebase project ${String(d.currentProjectId)}, and this key is for ${String(d.keyProjectId)}: the devices' tokens belong to the old project and would all be refused and unbound. ` +
          "Register the key as a new certificate (`offline-push cert add`), or pass --allow-project-change if that is really meant",
        ))),
      );
      if (ctx.json) return printJson(cert);
      line(`Updated certificate ${color.bold(String(cert.certificateId))}${serviceAccount ? ": new key in use" : ""}.`);
      line(fields([
        ["label", cert.label],
        ["project", cert.projectId],
        ["client email", cert.clientEmail],
        ["key ID", cert.privateKeyId],
        ["version", cert.version],
        ["health", healthText(cert.health)],
      ]));
    });

  cert
    .command("rm")
    .description("delete a certificate; devices bound to it get no pushes until their app reports a token again")
    .argument("<id>", "certificate ID")
    .option("-y, --yes", "delete without asking (required when not on a terminal: scripts, --json)")
    .action(async (id: string, opts: { yes?: boolean }) => {
      const target = ctx.target();
      const certificateId = parseArg(CertificateIdArgSchema, id, "<id>");
      if (!opts.yes) {
        // Nobody can answer a question here: a script must say --yes, not delete by default.
        if (ctx.json || !process.stdin.isTTY || !process.stderr.isTTY) {
          throw new CliError(`not deleted: cert rm asks for confirmation, and there is no terminal to ask on; pass --yes to delete certificate ${certificateId} from a script`, "usage");
        }
        const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
        const answer = await rl.question(`Delete certificate ${certificateId} on ${ctx.describe()}? [y/N] `);
        rl.close();
        if (!/^y(es)?$/i.test(answer.trim())) throw new CliError("not deleted", "cancelled");
      }
      const res = await withProgress("Deleting", () => callOperator(target, "deletePushCertificate", { certificateId }, DeletedSchema));
      if (ctx.json) return printJson(res);
      line(`Deleted certificate ${color.bold(String(res.certificateId))}. ${res.boundTokens} device token(s) were bound to it: those devices get no pushes until their app reports a token for another certificate.`);
    });
}
