// A few DOM helpers instead of a framework: the console is a handful of forms and tables, and
// every byte of it is read by operators on whatever network they are on.
import { CallError } from "./api";

export type Child = Node | string | number | null | undefined | false | Child[];
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

/** h("button", { class: "primary", onclick: fn }, "Save"): attributes, `on*` listeners, children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, ...child);
    else parent.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
}

export function replace(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, ...children);
}

const SVG_NS = "http://www.w3.org/2000/svg";
export function svg(tag: string, attrs: Record<string, string | number> = {}, ...children: (SVGElement | string)[]): SVGElement {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  for (const child of children) el.append(child);
  return el as SVGElement;
}

// --- formatting -----------------------------------------------------------------------------------

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
export function formatTime(iso: string | null | undefined): string {
  return iso ? dateTime.format(new Date(iso)) : "—";
}

/**
 * "119 s", "3 min", "5 h 10 min", "45 days": the same rule as the functions' sentences
 * (sessions/eligibility.ts formatDuration) and the CLI, so the facts agree with the text beside them.
 */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 120) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 120) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return min % 60 ? `${h} h ${min % 60} min` : `${h} h`;
  return `${Math.floor(h / 24)} days`;
}

export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "—";
  return `${formatDuration((now - Date.parse(iso)) / 1000)} ago`;
}

/** A latency as the functions' summaries and the CLI say it (formatLatency): "71 ms", "1.4 s", then minutes. */
export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : formatDuration(ms / 1000);
}

/** A <time> element: readable text, the exact instant for screen readers and hover. */
export function time(iso: string | null | undefined, text = formatTime(iso)): HTMLElement {
  if (!iso) return h("span", { class: "muted" }, "—");
  return h("time", { datetime: iso, title: new Date(iso).toISOString() }, text);
}

// --- building blocks ---------------------------------------------------------------------------

export type Tone = "ok" | "warn" | "bad" | "info" | "neutral";

export function badge(text: string, tone: Tone, title?: string): HTMLElement {
  return h("span", { class: `badge badge-${tone}`, title }, text);
}

export function spinner(label: string): HTMLElement {
  return h("div", { class: "loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), label);
}

/**
 * A callable's error as a readable box: the server's sentence, FCM's own words when it gave some,
 * and the field it named. `role=alert` so a screen reader says it where it appears.
 */
export function errorBox(err: unknown, context?: string): HTMLElement {
  const box = h("div", { class: "error", role: "alert" });
  const title = context ?? "That did not work";
  append(box, h("strong", {}, title));
  if (err instanceof CallError) {
    append(box, h("p", {}, err.message));
    if (err.fcm) {
      const fcm = err.fcm;
      const said = [fcm.httpStatus ? `HTTP ${fcm.httpStatus}` : null, fcm.status, fcm.errorCode, fcm.error, fcm.description ?? fcm.message].filter(Boolean).join(" · ");
      const stage = fcm.stage === "access-token" ? "Google's token endpoint said" : "FCM said";
      if (said) append(box, h("p", { class: "fcm-said" }, `${stage}: `, h("code", {}, said)));
    }
  } else {
    append(box, h("p", {}, err instanceof Error ? err.message : String(err)));
  }
  return box;
}

export function copyButton(text: string, label: string): HTMLButtonElement {
  const button = h("button", { type: "button", class: "secondary small copy", "aria-label": label }, "Copy");
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied ✓";
    } catch {
      // Clipboard access is refused on plain http other than localhost: select the text instead.
      const range = document.createRange();
      const target = button.previousElementSibling;
      if (target) {
        range.selectNodeContents(target);
        getSelection()?.removeAllRanges();
        getSelection()?.addRange(range);
      }
      button.textContent = "Selected: press Ctrl+C";
    }
    setTimeout(() => (button.textContent = "Copy"), 2500);
  });
  return button;
}

/** A section card with a heading. */
export function card(title: string | null, ...children: Child[]): HTMLElement {
  return h("section", { class: "card" }, title ? h("h2", {}, title) : null, ...children);
}

/** Runs `work` with the button busy (disabled, spinner, aria-busy) and restores it after. */
export async function busy<T>(button: HTMLButtonElement, busyText: string, work: () => Promise<T>): Promise<T> {
  const text = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.replaceChildren(h("span", { class: "spinner small", "aria-hidden": "true" }), busyText);
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.textContent = text;
  }
}

/** A table; `head` are column titles, rows are cells. Scrolls sideways on a phone rather than squeezing. */
export function table(caption: string, head: string[], rows: Child[][], options: { className?: string } = {}): HTMLElement {
  return h(
    "div",
    { class: "table-wrap", role: "region", "aria-label": caption, tabindex: 0 },
    h(
      "table",
      { class: ["stacking", options.className].filter(Boolean).join(" ") },
      h("caption", { class: "sr-only" }, caption),
      h("thead", {}, h("tr", {}, ...head.map((t) => h("th", { scope: "col" }, t)))),
      // data-label lets the phone layout show each cell under its column's name.
      h("tbody", {}, ...rows.map((cells) => h("tr", {}, ...cells.map((c, i) => h("td", { "data-label": head[i] }, c))))),
    ),
  );
}
