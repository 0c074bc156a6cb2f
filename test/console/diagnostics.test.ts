// The questions an operator brings to the console: why does this user get no push (User page),
// what happened to this message (Message page), how are things going (Overview).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { registerCertificate } from "../helpers/certificates.ts";
import { adminDb, callOk, createUser, eventually, publish, type TestUser } from "../helpers/emulators.ts";
import { readLogId } from "../../functions/src/fanout/readEvent.ts";
import { recallLogId } from "../../functions/src/fanout/recallEvent.ts";
import { closePresenceClient, presenceEvent, presenceRecords, publishPresence, waitForPresence } from "../helpers/presence.ts";
import { PUSH_TOPIC, waitForMessage } from "../helpers/fanout.ts";
import { fakeFcmToken } from "../helpers/sessions.ts";
import { checkLayoutAndAccessibility, launchBrowser, openConsole, screenshot, signIn } from "./browser.ts";

/** A page of the top navigation (exact name: a uid in a link could contain "user"). */
const nav = (page: Page, name: string) => page.getByRole("navigation", { name: "Console pages" }).getByRole("link", { name, exact: true }).click();

describe("console: user, message, overview", () => {
  let browser: Browser;
  let operator: TestUser;
  let alice: TestUser;
  let bob: TestUser;
  let page: Page;
  const deviceId = "bobs-pixel-8";
  let certificateId: number;

  before(async () => {
    [browser, operator, alice, bob] = await Promise.all([launchBrowser(), createUser({ admin: true }), createUser({ displayName: "Alice Console" }), createUser({ displayName: "Bob Console" })]);
    ({ certificateId } = await registerCertificate(operator, "console diagnostics"));
    // Bob's phone, as the demo seeds it: logged in, token reported, app in the background.
    await callOk("login", { deviceId, platform: "android" }, bob);
    await callOk("setOfflinePushToken", { deviceId, certificateId, token: fakeFcmToken() }, bob);
    await callOk("doBackground", { deviceId }, bob);
    page = (await openConsole(browser)).page;
    await signIn(page, operator.email);
    await page.getByRole("heading", { name: "Certificates", level: 1 }).waitFor();
  });
  after(async () => {
    await closePresenceClient();
    await browser?.close();
  });

  it("a message sent with sendMessage is traced to FCM's acceptance (sent)", async () => {
    const { msgKey } = await callOk<{ msgKey: string }>("sendMessage", { to: bob.uid, body: [{ MsgType: "TIMTextElem", MsgContent: { Text: "see you at 8" } }] }, alice);
    // The fan-out runs in the background: its push log is complete before the trace is read.
    await waitForMessage(msgKey, 120_000);

    await nav(page, "Message");
    await page.getByLabel("Message key").fill(msgKey);
    await page.getByRole("button", { name: "Trace" }).click();
    const device = page.locator(".traced-device").filter({ hasText: deviceId });
    await device.waitFor();
    assert.equal(await device.getAttribute("data-outcome"), "sent");
    assert.equal(await device.locator('[data-stage="accepted"]').getAttribute("class"), "stage done", "the accepted stage is reached");
    assert.match(await page.getByTestId("summary").innerText(), /\S/);
    assert.ok(page.url().endsWith(`#/message/${encodeURIComponent(msgKey)}`), "the trace has its own address");
    await checkLayoutAndAccessibility(page, "message-trace-sent");
  });

  it("the Message page shows the conversation and the Read and Recall that followed", async () => {
    // Carol (not Bob: his last pushes stay the message above) gets a message from Alice, reads it on her laptop, and Alice recalls it.
    const carol = await createUser();
    await callOk("login", { deviceId: "carols-phone", platform: "android" }, carol);
    await callOk("setOfflinePushToken", { deviceId: "carols-phone", certificateId, token: fakeFcmToken() }, carol);
    await callOk("doBackground", { deviceId: "carols-phone" }, carol);
    const { msgKey } = await callOk<{ msgKey: string }>("sendMessage", { to: carol.uid, body: "lunch?" }, alice);
    const [batch] = await waitForMessage(msgKey, 120_000);
    const eventKey = `console-read-${msgKey}`;
    await publish(PUSH_TOPIC, { Event: "Read", EventKey: eventKey, Account: carol.uid, Conversation: `c2c_${alice.uid}`, DeviceId: "carols-laptop" });
    await publish(PUSH_TOPIC, { Event: "Recall", MsgKey: msgKey, From_Account: alice.uid });
    const done = (id: string) => eventually(async () => ((await adminDb().collection("pushLog").doc(id).get()).get("state") === "done" ? true : undefined), { what: `${id} to be done` });
    await Promise.all([done(readLogId(eventKey)), done(recallLogId(batch!.id))]);

    await page.getByLabel("Message key").fill(msgKey);
    await page.getByRole("button", { name: "Trace" }).click();
    const followed = page.getByRole("region", { name: "What followed" });
    await followed.waitFor();
    assert.match(await page.locator(".results").innerText(), new RegExp(`conversation c2c_${alice.uid}`));
    const read = followed.locator('.followup[data-kind="read"]');
    assert.match(await read.innerText(), new RegExp(`Read ${eventKey} by ${carol.uid}`));
    assert.match(await read.innerText(), /carols-phone\s+cleared/);
    assert.match(await followed.locator('.followup[data-kind="recall"]').innerText(), /carols-phone\s+replaced/);
    await checkLayoutAndAccessibility(page, "message-followups");
  });

  it("a message nobody published: the reason said once", async () => {
    await page.getByLabel("Message key").fill("never-published-here");
    await page.getByRole("button", { name: "Trace" }).click();
    const summary = page.getByTestId("summary");
    await summary.filter({ hasText: "never-published-here" }).waitFor();
    const text = await page.locator(".results").innerText();
    assert.equal(text.split("never published").length - 1, 1, text);
    await checkLayoutAndAccessibility(page, "message-unknown");
  });

  it("a seeded user whose app is in the foreground, found by e-mail: the User page names the account and says why the device gets no push", async () => {
    await callOk("doForeground", { deviceId }, bob);
    await nav(page, "User");
    await page.getByLabel("Account", { exact: true }).fill(bob.email);
    await page.getByRole("button", { name: "Diagnose" }).click();
    const card = page.getByRole("article", { name: `Device ${deviceId}` });
    await card.waitFor();
    await page.getByRole("heading", { name: "Bob Console", level: 2 }).waitFor();
    const account = await page.getByRole("definition").filter({ hasText: bob.uid }).count();
    assert.equal(account, 1, "the uid is shown");
    assert.ok(await page.getByText(bob.email, { exact: true }).isVisible(), "the e-mail is shown");
    const verdict = await card.locator(".verdict").innerText();
    assert.match(verdict, /No push now: foreground/);
    assert.match(verdict, /came to the foreground/);
    assert.doesNotMatch(verdict, /since .* ago \(.*\)\)/);
    assert.match(await page.getByTestId("summary").innerText(), /\S/);
    // The last pushes include the message sent above, as sent.
    await page.getByRole("region", { name: "Last pushes" }).getByText("sent", { exact: true }).first().waitFor();
    await checkLayoutAndAccessibility(page, "user-foreground");
  });

  it("an account nobody has: no such account, said next to the form", async () => {
    await page.getByLabel("Account", { exact: true }).fill("nobody-at-all@example.com");
    await page.getByRole("button", { name: "Diagnose" }).click();
    const alert = page.getByRole("alert").filter({ hasText: "no such account" });
    await alert.waitFor();
    assert.doesNotMatch(await alert.innerText(), /\[\d{3}\]/);
    await checkLayoutAndAccessibility(page, "user-no-such-account");
    // Back to Bob for the next test.
    await page.getByLabel("Account", { exact: true }).fill(bob.uid);
    await page.getByRole("button", { name: "Diagnose" }).click();
    await page.getByRole("article", { name: `Device ${deviceId}` }).waitFor();
  });

  it("the IM backend's Connect, then its Disconnect: the User page shows the presence, who decided the connection, and the verdict", async () => {
    const connectAt = Date.now();
    await publishPresence(presenceEvent(bob.uid, deviceId, "Connect", connectAt));
    await waitForPresence(bob.uid, deviceId, "Connect", connectAt);
    await page.getByRole("button", { name: "Diagnose" }).click();
    const card = page.getByRole("article", { name: `Device ${deviceId}` });
    await card.locator(".verdict", { hasText: "No push now: connected" }).waitFor();
    assert.match(await card.getByTestId("connection").innerText(), /connected · decided by the IM backend's presence event/);
    assert.match(await card.getByTestId("presence").innerText(), /Connect/);
    assert.match(await page.getByTestId("summary").locator("xpath=..").innerText(), /presence source both/);

    await publishPresence({ Events: [presenceEvent(bob.uid, deviceId, "Disconnect", connectAt + 1, "LinkClose"), presenceEvent(bob.uid, "bobs-old-tablet", "Connect", connectAt)] });
    await waitForPresence(bob.uid, deviceId, "Disconnect", connectAt + 1);
    await eventually(async () => ((await presenceRecords(bob.uid)).length ? true : undefined), { what: "the unknown device's record" });
    await page.getByRole("button", { name: "Diagnose" }).click();
    await card.locator(".verdict", { hasText: "Would get a push now" }).waitFor();
    assert.match(await card.getByTestId("presence").innerText(), /Disconnect LinkClose/);
    assert.match(await card.getByTestId("connection").innerText(), /not connected/);
    await page.getByRole("region", { name: "Presence events not applied" }).getByText("bobs-old-tablet").first().waitFor();
    await screenshot(page, "user-presence");
  });

  it("a test push from the User page shows FCM's answer", async () => {
    const card = page.getByRole("article", { name: `Device ${deviceId}` });
    await card.getByLabel("Dry run (FCM validates, delivers nothing)").check();
    await card.getByRole("button", { name: "Send test push" }).click();
    const result = card.locator(".test-result");
    await result.waitFor();
    assert.match(await result.innerText(), /validated/);
    await screenshot(page, "user-test-push");
  });

  it("the User page shows the push preferences, the new reasons, and answers for one conversation, mentioned or not", async () => {
    // Quiet all day in Berlin, mentions let through; one group mentions only, one chat muted.
    await callOk(
      "setPushPreferences",
      { doNotDisturb: { start: "08:00", end: "08:00", timeZone: "Europe/Berlin", allowMentions: true }, conversations: { "group_team-42": { mode: "mentions" }, c2c_spam: { mode: "none" } }, locale: "de-DE" },
      bob,
    );
    await page.getByLabel("Account", { exact: true }).fill(bob.uid);
    await page.getByRole("button", { name: "Diagnose" }).click();
    const card = page.getByRole("article", { name: `Device ${deviceId}` });
    await card.locator(".verdict", { hasText: "No push now: quiet-hours" }).waitFor();
    assert.match(await card.locator(".verdict").innerText(), /do-not-disturb window \(all day Europe\/Berlin/);
    const prefs = page.getByRole("region", { name: "Conversation settings" });
    await prefs.getByText("group_team-42").waitFor();
    assert.match(await prefs.innerText(), /c2c_spam\s+none/);
    assert.match(await page.getByTestId("pref-dnd").innerText(), /all day Europe\/Berlin · mentions allowed/);
    assert.ok(await page.getByText("de-DE", { exact: true }).isVisible(), "the locale is shown");

    await page.getByLabel("Conversation", { exact: true }).fill("group_team-42");
    await page.getByRole("button", { name: "Check" }).click();
    const check = page.getByTestId("conversation-check");
    await check.filter({ hasText: "A message in group_team-42:" }).waitFor();
    assert.match(await check.innerText(), /no push/);
    assert.match(await check.innerText(), /mentions only/);
    await page.getByLabel("mentions the user").check();
    await page.getByRole("button", { name: "Check" }).click();
    await check.filter({ hasText: "that mentions the user" }).waitFor();
    assert.match(await check.innerText(), /would be pushed/);
    await page.getByLabel("Conversation", { exact: true }).fill("c2c_spam");
    await page.getByRole("button", { name: "Check" }).click();
    await check.filter({ hasText: "c2c_spam" }).waitFor();
    assert.match(await check.innerText(), /no push/);
    assert.match(await check.innerText(), /turned pushes from conversation c2c_spam off/);
    await checkLayoutAndAccessibility(page, "user-preferences");
    // The following tests see Bob's device as before.
    await callOk("setPushPreferences", { doNotDisturb: null, conversations: { "group_team-42": null, c2c_spam: null }, locale: null }, bob);
    await page.getByRole("button", { name: "Diagnose" }).click();
    await card.locator(".verdict", { hasText: "Would get a push now" }).waitFor();
  });

  it("the overview shows the last 14 days and the certificates' health", async () => {
    await nav(page, "Overview");
    await page.getByRole("img", { name: /Pushes per day, last 14 days/ }).waitFor();
    await page.getByRole("heading", { name: "Why pushes were skipped" }).waitFor();
    await page.locator(".health-list").getByText("console diagnostics").waitFor();
    const sent = Number(await page.locator(".tile.ok .tile-value").first().innerText());
    assert.ok(sent >= 1, `the sent total counts the message above (${sent})`);
    // Today's bar has its date under it.
    const today = new Date().toISOString().slice(0, 10);
    assert.equal(await page.locator(`.chart text[data-date="${today}"]`).count(), 1, "today is labelled");
    await checkLayoutAndAccessibility(page, "overview");
  });

  it("User and Message pages reached at phone width, from a link", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${page.url().split("#")[0]}#/user/${encodeURIComponent(bob.uid)}`);
    await page.getByRole("article", { name: `Device ${deviceId}` }).waitFor();
    await checkLayoutAndAccessibility(page, "user-from-link");

    // The trace of the message in the User page's last pushes.
    await page.getByRole("region", { name: "Last pushes" }).getByRole("link").first().click();
    await page.locator(".traced-device").first().waitFor();
    await checkLayoutAndAccessibility(page, "message-from-user");
  });
});
