// admin grant | revoke: the operator claim, set with the Admin SDK directly (granting it cannot go
// through a callable that already requires it).
import type { Command } from "commander";
import { z } from "zod";
import { AccountSchema } from "../../../functions/src/fanout/schemas.ts";
import { adminAuth } from "../admin.ts";
import { CliError } from "../errors.ts";
import { color, line, printJson, withProgress } from "../output.ts";
import type { Context } from "../context.ts";
import { parseArg } from "./cert.ts";

const UserRefSchema = z.union([z.email(), AccountSchema], { error: "must be an email address or a Firebase uid" });

async function setAdmin(ctx: Context, ref: string, admin: boolean) {
  const target = ctx.target();
  const who = parseArg(UserRefSchema, ref, "<email|uid>");
  const auth = await adminAuth(target);
  return withProgress(admin ? "Granting the admin claim" : "Revoking the admin claim", async () => {
    let user;
    try {
      user = who.includes("@") ? await auth.getUserByEmail(who) : await auth.getUser(who);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === "auth/user-not-found") throw new CliError(`no user ${who} in Firebase Auth of ${ctx.describe()}`, "not-found");
      throw new CliError(`looking up ${who} failed: ${err instanceof Error ? err.message : String(err)}`, "remote");
    }
    // Other claims the app may set are kept.
    const claims: Record<string, unknown> = { ...(user.customClaims ?? {}) };
    if (admin) claims.admin = true;
    else delete claims.admin;
    await auth.setCustomUserClaims(user.uid, claims);
    // An ID token issued before keeps the claim for up to an hour: revoking the account's refresh
    // tokens makes the operator callables refuse it at once (they check revocation).
    if (!admin) await auth.revokeRefreshTokens(user.uid);
    return { uid: user.uid, email: user.email ?? null, admin, customClaims: claims };
  });
}

export function registerAdminCommands(program: Command, ctx: Context): void {
  const admin = program.command("admin").description("operators: the admin custom claim");
  admin
    .command("grant")
    .description("give a user the admin claim (operator callables, the console)")
    .argument("<email|uid>", "the user's email address or uid")
    .action(async (ref: string) => {
      const res = await setAdmin(ctx, ref, true);
      if (ctx.json) return printJson(res);
      line(`${color.bold(res.email ?? res.uid)} (uid ${res.uid}) now has ${color.green("admin: true")} on ${ctx.describe()}.`);
      line("The claim reaches their ID token when they sign in again or refresh it (getIdToken(true)).");
    });
  admin
    .command("revoke")
    .description("take the admin claim away and sign the account out everywhere (its operator calls are refused at once)")
    .argument("<email|uid>", "the user's email address or uid")
    .action(async (ref: string) => {
      const res = await setAdmin(ctx, ref, false);
      if (ctx.json) return printJson(res);
      line(`${color.bold(res.email ?? res.uid)} (uid ${res.uid}) no longer has the admin claim on ${ctx.describe()}, and was signed out everywhere: operator calls with an ID token issued before are refused now.`);
    });
}
