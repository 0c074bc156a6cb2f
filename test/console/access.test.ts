// The console's door: the operator gets in; a signed-in account without the admin claim sees the
// refusal page with the command that grants it; a wrong password is said next to the form.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Browser } from "playwright-core";
import { createUser, type TestUser } from "../helpers/emulators.ts";
import { checkLayoutAndAccessibility, launchBrowser, openConsole, screenshot, signIn } from "./browser.ts";

describe("console: sign-in and the admin gate", () => {
  let browser: Browser;
  let operator: TestUser;
  let member: TestUser;

  before(async () => {
    [browser, operator, member] = await Promise.all([launchBrowser(), createUser({ admin: true }), createUser()]);
  });
  after(async () => {
    await browser?.close();
  });

  it("the operator signs in and lands on the console", async () => {
    const { page, context, problems } = await openConsole(browser);
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    await checkLayoutAndAccessibility(page, "access-sign-in");
    await signIn(page, operator.email);
    await page.getByRole("heading", { name: "Certificates", level: 1 }).waitFor();
    await page.getByRole("navigation", { name: "Console pages" }).waitFor();
    assert.ok(await page.getByText(operator.email).isVisible(), "the signed-in account is shown");
    await screenshot(page, "access-operator-signed-in");
    assert.deepEqual(problems, []);
    await context.close();
  });

  it("a wrong password is refused in words, next to the form", async () => {
    const { page, context } = await openConsole(browser);
    await signIn(page, operator.email, "not-the-password");
    await page.getByRole("alert").filter({ hasText: "The e-mail or the password is wrong." }).waitFor();
    await checkLayoutAndAccessibility(page, "access-wrong-password");
    await context.close();
  });

  it("an account without the admin claim sees the refusal and how to get the claim", async () => {
    const { page, context } = await openConsole(browser);
    await signIn(page, member.email);
    await page.getByRole("heading", { name: "This account is not an operator" }).waitFor();
    assert.ok(await page.getByText(`npx offline-push admin grant ${member.email}`).isVisible());
    assert.equal(await page.getByRole("navigation", { name: "Console pages" }).count(), 0, "no console page is shown");
    await checkLayoutAndAccessibility(page, "access-refusal");
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    await context.close();
  });
});
