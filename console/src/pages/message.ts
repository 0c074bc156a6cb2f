// Message: follow one msgKey through every stage, per recipient and device: published → received
// → decided → accepted by FCM → opened, with counts and latency.
import type { TracedDevice, TraceFollowUp, TraceMessageResponse, TraceStage } from "../api";
import { badge, card, formatMs, h, replace, time } from "../dom";
import type { PageContext } from "../page";
import { renderSearchPage } from "./search";
import { explanation, outcomeCell } from "./explain";

const STAGES: Array<{ key: TraceStage["stage"]; label: string }> = [
  { key: "published", label: "Published" },
  { key: "received", label: "Received" },
  { key: "decided", label: "Decided" },
  { key: "accepted", label: "Accepted by FCM" },
  { key: "opened", label: "Opened" },
];

function offset(at: string, origin: string | null): string {
  if (!origin) return new Date(at).toLocaleTimeString();
  const ms = Date.parse(at) - Date.parse(origin);
  return ms === 0 ? new Date(at).toLocaleTimeString() : `${ms > 0 ? "+" : ""}${formatMs(ms)}`;
}

/** The five stages as an ordered list: reached ones filled, the rest hollow; times relative to the publish. */
function timeline(d: TracedDevice, publishedAt: string | null): HTMLElement {
  const byStage = new Map(d.stages.map((s) => [s.stage, s]));
  const failedAt = d.outcome !== "sent" ? "decided" : null;
  return h(
    "ol",
    { class: "timeline", "aria-label": `Stages of ${d.deviceId ?? d.uid}` },
    ...STAGES.map(({ key, label }) => {
      const s = byStage.get(key);
      const state = !s ? "missing" : key === failedAt ? (d.outcome === "failed" ? "bad" : "warn") : "done";
      return h(
        "li",
        { class: `stage ${state}`, "data-stage": key },
        h("span", { class: "dot", "aria-hidden": "true" }),
        h("span", { class: "stage-label" }, label, s && key === "decided" ? `: ${d.outcome === "sent" ? "sent" : `${d.outcome} (${d.reason})`}` : ""),
        s ? h("time", { datetime: s.at, title: `${new Date(s.at).toISOString()}${s.detail ? ` · ${s.detail}` : ""}` }, offset(s.at, publishedAt)) : h("span", { class: "muted small" }, "—"),
      );
    }),
  );
}

function counts(r: TraceMessageResponse): HTMLElement {
  const c = r.counts;
  const tile = (label: string, value: string | number, tone = "") => h("div", { class: `tile ${tone}` }, h("span", { class: "tile-value" }, String(value)), h("span", { class: "tile-label" }, label));
  return h(
    "div",
    { class: "tiles" },
    tile("recipients", c.recipients),
    tile("sent", c.sent, "ok"),
    tile("skipped", c.skipped, c.skipped ? "warn" : ""),
    tile("failed", c.failed, c.failed ? "bad" : ""),
    tile("opened", c.opened, "info"),
    r.latency ? tile("publish → FCM (p50)", formatMs(r.latency.p50Ms)) : null,
    r.latency && r.latency.samples > 1 ? tile("p95 · max", `${formatMs(r.latency.p95Ms)} · ${formatMs(r.latency.maxMs)}`) : null,
  );
}

/** A MsgKey published with several recipient lists: each list, and how many it added (the rest were left to the earlier lists). */
function publications(r: TraceMessageResponse): HTMLElement | null {
  if (r.publications.length < 2) return null;
  return card(
    "Publications",
    h("p", { class: "small muted" }, "The same MsgKey was published with different recipient lists. Each device gets the message once: a recipient listed again is left to the list that named it first."),
    h(
      "ul",
      { class: "publications" },
      ...r.publications.map((p) =>
        h("li", {}, `#${p.generation + 1}: ${p.recipients} listed`, p.generation > 0 ? `, ${p.owned} new` : "", " · ", time(p.at), h("span", { class: "small muted mono" }, ` event ${p.eventId}`)),
      ),
    ),
  );
}

function reasons(r: TraceMessageResponse): HTMLElement | null {
  const entries = [...Object.entries(r.counts.byReason), ...Object.entries(r.counts.byErrorCode).map(([k, v]) => [`FCM ${k}`, v] as const)];
  if (!entries.length) return null;
  return h("p", { class: "reasons" }, ...entries.map(([k, v]) => badge(`${k} × ${v}`, k === "sent" ? "ok" : k.startsWith("FCM") ? "bad" : "warn")));
}

/** The Reads that cleared the message and its Recall: who, when, and what each device got. */
function followUps(list: TraceFollowUp[]): HTMLElement | null {
  if (!list.length) return null;
  const tone = (outcome: string) => (outcome === "sent" ? "ok" : outcome === "failed" ? "bad" : "warn");
  return h(
    "section",
    { class: "card", "aria-labelledby": "followups-title" },
    h("h2", { id: "followups-title" }, "What followed"),
    h("p", { class: "small muted" }, "A Read clears the conversation's notifications on the reader's other devices that were pushed there; a Recall replaces this message's notification on the devices that were pushed it."),
    h(
      "ul",
      { class: "followups" },
      ...list.map((f) =>
        h(
          "li",
          { class: "followup", "data-kind": f.kind },
          h(
            "p",
            {},
            h("strong", {}, f.kind === "read" ? "Read" : "Recall"),
            f.kind === "read" ? h("span", { class: "mono small" }, ` ${f.key}`) : null,
            ` by ${f.account}`,
            f.conversation ? h("span", { class: "muted" }, ` in ${f.conversation}`) : null,
            " · ",
            time(f.createdAt),
            f.state === "running" ? badge("running", "info") : null,
          ),
          f.devices.length
            ? h(
                "ul",
                { class: "followup-devices" },
                ...f.devices.map((d) =>
                  h("li", {}, h("span", { class: "mono" }, d.uid), h("span", { class: "mono muted" }, ` · ${d.deviceId ?? "(recipient)"} `), badge(d.outcome === "sent" ? (f.kind === "read" ? "cleared" : "replaced") : `${d.outcome}: ${d.reason}`, tone(d.outcome), d.detail)),
                ),
              )
            : h("p", { class: "small muted" }, "No device had been pushed there: nothing was sent."),
        ),
      ),
    ),
  );
}

export async function renderMessage(root: HTMLElement, ctx: PageContext): Promise<void> {
  await renderSearchPage(root, ctx, {
    field: "msgkey",
    label: "Message key",
    placeholder: "MsgKey, e.g. msg-123",
    button: "Trace",
    verb: "Tracing",
    route: "#/message/",
    title: "Message",
    intro: "Follow one message from the IM backend's publish to the user's tap, on every recipient's devices.",
    failure: (msgKey) => `Could not trace ${msgKey}`,
    show: async (msgKey, out) => {
      const r = await ctx.api("traceMessage", { msgKey });
      // The summary already says why nothing may be recorded: said once.
      if (!r.found) {
        replace(out, card(null, h("p", { class: "summary-text", "data-testid": "summary" }, r.summary)));
        return;
      }
      replace(
        out,
        h(
          "section",
          { class: "card", "aria-labelledby": "trace-title" },
          h("h2", { id: "trace-title" }, "Trace"),
          h("p", { class: "summary-text", "data-testid": "summary" }, r.summary),
          h("p", { class: "small muted" }, r.from ? `From ${r.from} · ` : "", r.conversation ? `conversation ${r.conversation} · ` : "", "published ", time(r.publishedAt)),
          counts(r),
          reasons(r),
          ...r.batches.flatMap((b) => b.notes).map((n) => h("p", { class: "note" }, n)),
        ),
        publications(r),
        followUps(r.followUps),
        ...r.rejected.map((x) => card(`Rejected: ${x.reason}`, h("p", {}, x.detail), ...x.issues.map((i) => h("p", { class: "small" }, h("code", {}, i.field), ` ${i.message}`)), explanation(x.explanation, true))),
        r.devices.length
          ? card(
              "Devices",
              r.devicesTruncated ? h("p", { class: "muted" }, "Only the first devices are shown; the counts above cover all.") : null,
              h(
                "ul",
                { class: "traced" },
                ...r.devices.map((d) =>
                  h(
                    "li",
                    { class: "traced-device", "data-outcome": d.outcome },
                    h(
                      "div",
                      { class: "traced-head" },
                      h("a", { href: `#/user/${encodeURIComponent(d.uid)}`, class: "mono" }, d.uid),
                      h("span", { class: "mono muted" }, d.deviceId ? ` · ${d.deviceId}` : " · (recipient)"),
                      outcomeCell(d),
                      d.latencyMs !== null ? h("span", { class: "small muted" }, `${formatMs(d.latencyMs)} to FCM`) : null,
                      d.attempts && d.attempts > 1 ? h("span", { class: "small muted" }, `${d.attempts} attempts`) : null,
                    ),
                    timeline(d, r.publishedAt),
                    d.fcmName ? h("p", { class: "small muted" }, "FCM message ", h("code", { class: "break" }, d.fcmName)) : null,
                    explanation(d.fcmErrorExplanation ?? d.explanation),
                  ),
                ),
              ),
            )
          : null,
      );
    },
  });
}
