// The Certificates page as an operator uses it: upload the downloaded key file, read the ID, see
// it in the list; a key that Google refuses and a file that is no key, each with its reason;
// rename; delete with the count of bound device tokens.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { callOk, createUser, type TestUser } from "../helpers/emulators.ts";
import { fakeFcm } from "../helpers/fakeFcm.ts";
import { fakeFcmToken } from "../helpers/sessions.ts";
import { checkLayoutAndAccessibility, launchBrowser, openConsole, screenshot, signIn } from "./browser.ts";

describe("console: certificates", () => {
  let browser: Browser;
  let operator: TestUser;
  let page: Page;
  let dir: string;
  let registeredId = 0;

  before(async () => {
    [browser, operator] = await Promise.all([launchBrowser(), createUser({ admin: true })]);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "console-keys-"));
    page = (await openConsole(browser)).page;
    await signIn(page, operator.email);
    await page.getByRole("heading", { name: "Certificates", level: 1 }).waitFor();
  });
  after(async () => {
    await browser?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function keyFile(name: string, content: unknown): Promise<string> {
    const file = path.join(dir, name);
    fs.writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content, null, 2));
    return file;
  }

  const listRow = (certificateId: number | string) => page.getByRole("region", { name: "Push certificates" }).getByRole("row").filter({ has: page.getByText(String(certificateId), { exact: true }) });

  it("uploads a key file: the ID is shown large, with the line of app code, and appears in the list", async () => {
    const sa = await fakeFcm.createServiceAccount("console-test-app");
    await page.getByLabel("Choose the service-account JSON").setInputFiles(await keyFile("console-test-app-firebase-adminsdk.json", sa));
    await page.getByText(`${sa.client_email} · project console-test-app`).waitFor();
    await page.getByLabel("Label").fill("Console test app");
    await page.getByRole("button", { name: "Register certificate" }).click();

    const idText = await page.getByTestId("certificate-id").textContent();
    const certificateId = Number(idText);
    registeredId = certificateId;
    assert.ok(Number.isInteger(certificateId) && certificateId > 0, `a certificate ID is shown, got ${idText}`);
    // The same call shape as README and the CLI.
    await page.getByText(`setOfflinePushToken {deviceId, certificateId: ${certificateId}, token}`).waitFor();
    const row = listRow(certificateId);
    await row.waitFor();
    const text = await row.innerText();
    for (const expected of ["Console test app", "console-test-app", sa.client_email, "Healthy"]) assert.ok(text.includes(expected), `the list row shows ${expected}: ${text}`);
    assert.ok(!(await page.content()).includes("PRIVATE KEY"), "no key material on the page");
    // The Kotlin snippet opened too: nothing widens the page at either width.
    await checkLayoutAndAccessibility(page, "certificates-registered");
  });

  it("replaces the key of a certificate: same ID, the new key's ID in the list", async () => {
    const certificateId = registeredId;
    const before = await listRow(certificateId).innerText();
    const sa = await fakeFcm.createServiceAccount("console-test-app");
    await page.getByRole("button", { name: `Replace key of certificate ${certificateId}` }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("Choose the service-account JSON").setInputFiles(await keyFile("rotated.json", sa));
    await dialog.getByText(sa.client_email).waitFor();
    await dialog.getByRole("button", { name: "Replace key" }).click();
    await dialog.waitFor({ state: "detached" });
    await listRow(certificateId).filter({ hasText: sa.client_email }).waitFor();
    assert.notEqual(await listRow(certificateId).innerText(), before, "the key ID and client e-mail changed");
    await screenshot(page, "certificates-key-replaced");
  });

  it("a key Google refuses: the reason in plain words and what FCM's side said; nothing registered", async () => {
    const sa = await fakeFcm.createServiceAccount("console-revoked-app");
    await fakeFcm.revoke(sa.client_email);
    await page.getByLabel("Choose the service-account JSON").setInputFiles(await keyFile("revoked.json", sa));
    await page.getByRole("button", { name: "Register certificate" }).click();
    const alert = page.getByRole("alert").filter({ hasText: "revoked.json was not registered" });
    await alert.waitFor();
    const text = await alert.innerText();
    assert.match(text, /Google refused to issue an access token for this key/);
    assert.match(text, /invalid_grant/);
    assert.doesNotMatch(text, /\[\d{3}\]/, "no HTTP status tacked on the message");
    assert.equal(await listRow("console-revoked-app").count(), 0);
    assert.equal(await page.getByRole("heading", { name: "Certificate registered" }).count(), 0, "the earlier registration's panel is gone");
    await checkLayoutAndAccessibility(page, "certificates-refused-key");
  });

  it("a file that is no service-account key: says so, naming what is wrong", async () => {
    await page.getByLabel("Choose the service-account JSON").setInputFiles(await keyFile("google-services.json", { project_info: { project_number: "123" }, client: [] }));
    await page.getByRole("button", { name: "Register certificate" }).click();
    const alert = page.getByRole("alert").filter({ hasText: "google-services.json was not registered" });
    await alert.waitFor();
    const text = await alert.innerText();
    assert.match(text, /This file is not a Firebase service-account key/);
    assert.match(text, /serviceAccount\.type/);
    assert.doesNotMatch(text, /\[\d{3}\]/);
    await screenshot(page, "certificates-not-a-key");
  });

  it("a key a certificate already holds: says which one; registering it again takes a deliberate click", async () => {
    const sa = await fakeFcm.createServiceAccount("console-twice-app");
    const held = await callOk<{ certificateId: number }>("registerPushCertificate", { serviceAccount: sa, label: "held already" }, operator);
    await page.reload();
    await page.getByLabel("Choose the service-account JSON").setInputFiles(await keyFile("twice.json", sa));
    await page.getByRole("button", { name: "Register certificate" }).click();
    const alert = page.getByRole("alert").filter({ hasText: "twice.json was not registered" });
    await alert.waitFor();
    assert.match(await alert.innerText(), new RegExp(`already registered as certificate ${held.certificateId} \\(“held already”\\)`));
    await checkLayoutAndAccessibility(page, "certificates-duplicate-key");
    await alert.getByRole("button", { name: "Register again as a new certificate" }).click();
    const idText = await page.getByTestId("certificate-id").textContent();
    assert.ok(Number(idText) > held.certificateId, `a new ID: ${idText}`);
    await alert.waitFor({ state: "detached" });
  });

  it("renames, and the delete confirmation says how many device tokens are bound", async () => {
    const { certificateId } = await callOk<{ certificateId: number }>("registerPushCertificate", { serviceAccount: await fakeFcm.createServiceAccount(), label: "to delete" }, operator);
    // Two app users bind tokens to it, as their apps would.
    for (const deviceId of ["phone-a", "phone-b"]) {
      const user = await createUser();
      await callOk("login", { deviceId, platform: "android" }, user);
      await callOk("setOfflinePushToken", { deviceId, certificateId, token: fakeFcmToken() }, user);
    }
    await page.reload();
    await listRow(certificateId).waitFor();

    await page.getByRole("button", { name: `Rename certificate ${certificateId}` }).click();
    await page.getByLabel(`New label for certificate ${certificateId}`).fill("renamed in the console");
    await page.getByRole("button", { name: "Save" }).click();
    await listRow(certificateId).filter({ hasText: "renamed in the console" }).waitFor();

    await page.getByRole("button", { name: `Delete certificate ${certificateId}` }).click();
    const dialog = page.getByRole("dialog");
    assert.equal(await dialog.getByTestId("bound-tokens").textContent(), "2 device tokens are");
    await checkLayoutAndAccessibility(page, "certificates-delete-confirmation");
    await dialog.getByRole("button", { name: `Delete certificate ${certificateId}` }).click();
    await dialog.waitFor({ state: "detached" });
    await listRow(certificateId).waitFor({ state: "detached" });
  });

  it("the list at phone and desktop width: no sideways scrolling, no serious accessibility violation", async () => {
    await page.getByRole("heading", { name: "All certificates" }).waitFor();
    await checkLayoutAndAccessibility(page, "certificates-list");
  });
});
