// A real headless Chromium for the console's tests, driven by playwright-core.
//
// The browser is @sparticuz/chromium: an npm package that ships a Chromium binary (brotli-packed,
// unpacked to the temp folder on first use), so `npm install` alone provides it on a fresh machine
// whose only reachable registry is npm's. When no browser starts, the tests fail with the reason:
// they never skip.
import chromiumPackage from "@sparticuz/chromium";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";

export const CONSOLE_URL = process.env.CONSOLE_URL ?? "http://127.0.0.1:5000";
export const PASSWORD = "password-123";

/**
 * Every wait in a console test ends by this: a cold Functions-emulator worker plus a callable's
 * bounded transaction, on a 2-core machine that other suites load too (load averages of 15 seen).
 */
export const UI_DEADLINE_MS = 120_000;
const LAUNCH_DEADLINE_MS = 90_000;

// Tests run from the repository root (scripts/emulators.mjs).
export const SCREENSHOT_DIR = path.resolve(process.cwd(), "test-results/console");

// Flags of @sparticuz/chromium meant for AWS Lambda that a test must not inherit:
// --single-process is fragile with several pages; --disable-web-security would hide CORS mistakes.
const DROPPED_FLAGS = new Set(["--single-process", "--disable-web-security", "--allow-running-insecure-content"]);
// This machine's network reaches nothing but the registries: no background calls to Google.
const EXTRA_FLAGS = ["--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"];

/**
 * Chromium refuses some ports outright (ERR_UNSAFE_PORT), among them 6000. scripts/ports.mjs keeps
 * OFFLINE_PUSH_PORT_OFFSET from putting an emulator on one of fetch()'s bad ports (the same list);
 * should a CONSOLE_URL name such a port anyway, the console's own port is allowed explicitly.
 */
function allowedPorts(): string[] {
  const port = new URL(CONSOLE_URL).port;
  return port ? [`--explicitly-allowed-ports=${port}`] : [];
}

export async function launchBrowser(): Promise<Browser> {
  let executablePath: string;
  try {
    executablePath = process.env.CONSOLE_TEST_CHROMIUM ?? (await chromiumPackage.executablePath());
  } catch (err) {
    throw new Error(`no browser for the console tests: @sparticuz/chromium could not unpack its Chromium (${err instanceof Error ? err.message : String(err)}); run npm install`, { cause: err });
  }
  const args = [...chromiumPackage.args.filter((a) => !DROPPED_FLAGS.has(a) && !a.startsWith("--headless")), ...EXTRA_FLAGS, ...allowedPorts()];
  try {
    return await chromium.launch({ executablePath, args, headless: true, timeout: LAUNCH_DEADLINE_MS });
  } catch (err) {
    throw new Error(`no browser for the console tests: Chromium at ${executablePath} did not start (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
}

export interface ConsolePage {
  context: BrowserContext;
  page: Page;
  /** Browser console errors and failed requests, for the assertion message when a test fails. */
  problems: string[];
}

export async function openConsole(browser: Browser, viewport = { width: 1280, height: 860 }): Promise<ConsolePage> {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  context.setDefaultTimeout(UI_DEADLINE_MS);
  context.setDefaultNavigationTimeout(UI_DEADLINE_MS);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`console: ${msg.text()}`);
  });
  await page.goto(CONSOLE_URL);
  return { context, page, problems };
}

export async function signIn(page: Page, email: string, password = PASSWORD): Promise<void> {
  await page.getByLabel("E-mail").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/** Saves a full-page screenshot under test-results/console/ (git-ignored); returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** The widths every page is checked at: a phone (iPhone 12-15) and a laptop. */
export const WIDTHS = [390, 1280] as const;

// axe-core (npm), injected into the page under test: the accessibility engine browsers' own audits use.
const AXE_SOURCE = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: unknown[] }>;
}

/**
 * The page as it is now, at each width in WIDTHS with every disclosure (<details>) opened: no
 * sideways scrolling (scrollWidth <= innerWidth), no serious or critical axe-core violation, and a
 * screenshot `<name>-<width>.png`. Restores the viewport it found.
 */
export async function checkLayoutAndAccessibility(page: Page, name: string): Promise<void> {
  const original = page.viewportSize() ?? { width: 1280, height: 860 };
  try {
    for (const width of WIDTHS) {
      await page.setViewportSize({ width, height: width < 600 ? 844 : 860 });
      await page.evaluate(() => {
        Array.from(document.querySelectorAll("details")).forEach((d) => (d.open = true));
      });
      // Layout settles on the next frames (the chart, wrapped tables).
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      const { scrollWidth, innerWidth, widest } = await page.evaluate(() => {
        const limit = window.innerWidth;
        // The elements that reach past the viewport, for the failure message.
        const widest = Array.from(document.querySelectorAll("body *"))
          .filter((el) => el.getBoundingClientRect().right > limit + 0.5)
          .slice(0, 5)
          .map((el) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""}${el.className && typeof el.className === "string" ? `.${el.className.split(" ").join(".")}` : ""} right=${Math.round(el.getBoundingClientRect().right)}`);
        return { scrollWidth: document.documentElement.scrollWidth, innerWidth: limit, widest };
      });
      await screenshot(page, `${name}-${width}`);
      assert.ok(scrollWidth <= innerWidth, `${name} at ${width} px: the page is ${scrollWidth} px wide (sideways scrolling); wider: ${widest.join("; ")}`);
      if (!(await page.evaluate(() => "axe" in window))) await page.addScriptTag({ content: AXE_SOURCE });
      const violations = await page.evaluate(async () => {
        const axe = (window as unknown as { axe: { run: (ctx: Document, opts: unknown) => Promise<{ violations: AxeViolation[] }>; getRules: (tags: string[]) => Array<{ ruleId: string }> } }).axe;
        // The experimental rules too (off by default): label-content-name-mismatch is one of them.
        const experimental = Object.fromEntries(axe.getRules(["experimental"]).map((r) => [r.ruleId, { enabled: true }]));
        return (await axe.run(document, { resultTypes: ["violations"], rules: experimental })).violations;
      });
      const serious = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
      assert.deepEqual(
        serious.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => JSON.stringify(n.target)).slice(0, 3).join(", ")})`),
        [],
        `${name} at ${width} px: axe-core found serious or critical violations`,
      );
    }
  } finally {
    await page.setViewportSize(original);
  }
}
