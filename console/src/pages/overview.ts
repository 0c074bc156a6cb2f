// Overview: the last 14 days (sent, skipped, failed, opened per day), why pushes were skipped or
// failed, and the certificates' health at a glance.
import type { Explanation, PublicCertificate, PushStatsResponse, StatsDay } from "../api";
import { ago, badge, card, errorBox, h, replace, spinner, svg, table, time } from "../dom";
import type { PageContext } from "../page";

const DAYS = 14;
const SERIES = [
  { key: "sent", label: "Sent", className: "s-sent" },
  { key: "skipped", label: "Skipped", className: "s-skipped" },
  { key: "failed", label: "Failed", className: "s-failed" },
] as const;

function isoDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

function niceMax(n: number): number {
  if (n <= 4) return 4;
  const pow = 10 ** Math.floor(Math.log10(n));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * pow).find((s) => s * 4 >= n) ?? pow * 10;
  return step * 4;
}

/** Stacked bars (sent / skipped / failed) with opened as dots; a table with the same figures follows for screen readers. */
function chart(days: StatsDay[]): HTMLElement {
  const W = 720;
  const H = 240;
  const pad = { l: 48, r: 8, t: 12, b: 32 };
  const innerW = W - pad.l - pad.r;
  const innerH = H - pad.t - pad.b;
  const total = (d: StatsDay) => d.sent + (d.skipped ?? 0) + d.failed;
  const max = niceMax(Math.max(0, ...days.map(total), ...days.map((d) => d.opened)));
  const y = (v: number) => pad.t + innerH - (v / max) * innerH;
  const slot = innerW / days.length;
  const barW = Math.min(32, slot * 0.62);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-labelledby": "chart-title chart-desc" });
  root.append(svg("title", { id: "chart-title" }, `Pushes per day, last ${days.length} days`));
  const sum = days.reduce((a, d) => ({ sent: a.sent + d.sent, skipped: a.skipped + (d.skipped ?? 0), failed: a.failed + d.failed, opened: a.opened + d.opened }), { sent: 0, skipped: 0, failed: 0, opened: 0 });
  root.append(svg("desc", { id: "chart-desc" }, `In all: ${sum.sent} sent, ${sum.skipped} skipped, ${sum.failed} failed, ${sum.opened} opened.`));
  for (let i = 0; i <= 4; i++) {
    const v = (max / 4) * i;
    root.append(svg("line", { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), class: "grid" }));
    root.append(svg("text", { x: pad.l - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, String(Math.round(v))));
  }
  days.forEach((d, i) => {
    const x = pad.l + slot * i + (slot - barW) / 2;
    let base = 0;
    for (const s of SERIES) {
      const v = s.key === "skipped" ? (d.skipped ?? 0) : d[s.key];
      if (v > 0) {
        const rect = svg("rect", { x, y: y(base + v), width: barW, height: Math.max(1, y(base) - y(base + v)), class: s.className, rx: 2 });
        rect.append(svg("title", {}, `${d.date}: ${v} ${s.label.toLowerCase()}`));
        root.append(rect);
      }
      base += v;
    }
    if (d.opened > 0) {
      const dot = svg("circle", { cx: x + barW / 2, cy: y(d.opened), r: 4, class: "s-opened" });
      dot.append(svg("title", {}, `${d.date}: ${d.opened} opened`));
      root.append(dot);
    }
    // Every other day is labelled, counted back from the last: today always has its date.
    if ((days.length - 1 - i) % 2 === 0 || days.length <= 7) {
      root.append(svg("text", { x: x + barW / 2, y: H - 8, class: "axis", "text-anchor": "middle", "data-date": d.date }, d.date.slice(5)));
    }
  });
  if (sum.sent + sum.skipped + sum.failed + sum.opened === 0) {
    root.append(svg("text", { x: pad.l + innerW / 2, y: pad.t + innerH / 2, class: "chart-empty", "text-anchor": "middle" }, `No offline push in these ${days.length} days`));
  }
  const legend = h(
    "ul",
    { class: "legend", "aria-hidden": "true" },
    ...SERIES.map((s) => h("li", {}, h("span", { class: `swatch ${s.className}` }), s.label)),
    h("li", {}, h("span", { class: "swatch round s-opened" }), "Opened"),
  );
  const figures = h(
    "details",
    { class: "figures" },
    h("summary", {}, "The figures as a table"),
    table(
      "Pushes per day",
      ["Day (UTC)", "Events", "Sent", "Skipped", "Failed", "Opened", "Open rate"],
      days.map((d) => [d.date, d.events ?? "—", d.sent, d.skipped ?? "—", d.failed, d.opened, d.openRate === null ? "—" : `${Math.round(d.openRate * 100)} %`]),
    ),
  );
  return h("figure", { class: "chart-figure" }, root, legend, figures);
}

function breakdown(title: string, counts: Record<string, number>, explanations: Map<string, Explanation>, tone: "warn" | "bad", empty: string): HTMLElement {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  const max = Math.max(1, ...entries.map(([, v]) => v));
  return h(
    "div",
    { class: "breakdown" },
    h("h3", {}, title),
    entries.length
      ? h(
          "ul",
          {},
          ...entries.map(([code, n]) => {
            const e = explanations.get(code);
            return h(
              "li",
              { title: e ? `${e.meaning} What to do: ${e.action}` : undefined },
              h("div", { class: "bar-label" }, h("code", {}, code), e ? h("span", { class: "muted small" }, ` ${e.title}`) : null, h("strong", { class: "bar-n" }, String(n))),
              h("div", { class: "bar-track", "aria-hidden": "true" }, h("div", { class: `bar-fill ${tone}`, style: `width:${(n / max) * 100}%` })),
            );
          }),
        )
      : h("p", { class: "empty" }, empty),
  );
}

function health(certs: PublicCertificate[]): HTMLElement {
  if (!certs.length) return h("p", { class: "empty" }, "No certificate yet. ", h("a", { href: "#/certificates" }, "Upload a key"), ".");
  return h(
    "ul",
    { class: "health-list" },
    ...certs.map((c) =>
      h(
        "li",
        {},
        h("a", { href: "#/certificates", class: "mono" }, String(c.certificateId)),
        h("span", { class: "health-name" }, c.label ?? c.projectId, h("span", { class: "muted small" }, ` · ${c.projectId}`)),
        c.health.state === "healthy" ? badge("Healthy", "ok") : badge("Refused by FCM", "bad"),
        c.health.state === "unhealthy" ? h("p", { class: "small" }, c.health.reason ?? "", c.health.since ? [" · since ", time(c.health.since, ago(c.health.since))] : null) : null,
      ),
    ),
  );
}

export async function renderOverview(root: HTMLElement, { api }: PageContext): Promise<void> {
  const to = new Date();
  const from = new Date(to.getTime() - (DAYS - 1) * 86_400_000);
  const statsSlot = h("div", { class: "results" }, spinner("Loading the last 14 days…"));
  const healthSlot = h("div", {}, spinner("Loading certificates…"));
  replace(
    root,
    h("div", { class: "page-head" }, h("h1", {}, "Overview"), h("p", { class: "muted" }, `Offline pushes from ${isoDay(from)} to ${isoDay(to)} (UTC days).`)),
    statsSlot,
    card("Certificates", healthSlot),
  );
  const stats = api("pushStats", { from: isoDay(from), to: isoDay(to) })
    .then((s: PushStatsResponse) => {
      const t = s.totals;
      const explanations = new Map(s.explanations.map((e) => [e.code, e]));
      const tile = (label: string, value: string | number, tone = "") => h("div", { class: `tile ${tone}` }, h("span", { class: "tile-value" }, String(value)), h("span", { class: "tile-label" }, label));
      replace(
        statsSlot,
        h(
          "div",
          { class: "tiles" },
          tile("events", t.events ?? "—"),
          tile("sent", t.sent, "ok"),
          tile("skipped", t.skipped ?? "—", t.skipped ? "warn" : ""),
          tile("failed", t.failed, t.failed ? "bad" : ""),
          tile("opened", t.opened, "info"),
          tile("open rate", t.openRate === null ? "—" : `${Math.round(t.openRate * 100)} %`),
        ),
        card("Per day", chart(s.days)),
        h(
          "div",
          { class: "grid-2" },
          card(null, breakdown("Why pushes were skipped", t.skippedByReason, explanations, "warn", "Nothing skipped.")),
          card(null, breakdown("FCM errors", t.failedByErrorCode, explanations, "bad", "No FCM error.")),
        ),
      );
    })
    .catch((err) => replace(statsSlot, errorBox(err, "The statistics could not be loaded")));
  const certs = api("listPushCertificates", {})
    .then(({ certificates }) => replace(healthSlot, health(certificates)))
    .catch((err) => replace(healthSlot, errorBox(err, "The certificates could not be loaded")));
  await Promise.all([stats, certs]);
}
