// Shared renderings of the diagnostics' building blocks: outcomes and their explanations.
import type { DeviceOutcome, Explanation, FcmErrorView } from "../api";
import { badge, h, type Tone } from "../dom";

export function outcomeTone(outcome: string): Tone {
  return outcome === "sent" || outcome === "validated" ? "ok" : outcome === "skipped" ? "warn" : outcome === "failed" ? "bad" : "neutral";
}

/** "What it means / what to do" from the explanation table, folded so a list stays short. */
export function explanation(e: Explanation | null | undefined, open = false): HTMLElement | null {
  if (!e) return null;
  return h(
    "details",
    { class: "explain", open },
    h("summary", {}, e.title),
    h("p", {}, e.meaning),
    h("p", {}, h("strong", {}, "What to do: "), e.action),
  );
}

export function fcmError(error: FcmErrorView | null | undefined): HTMLElement | null {
  if (!error) return null;
  const said = [error.httpStatus ? `HTTP ${error.httpStatus}` : null, error.status, error.errorCode].filter(Boolean).join(" · ");
  return h("p", { class: "small" }, "FCM: ", h("code", {}, said || "no answer"), error.message ? ` ${error.message}` : "");
}

/** One device's outcome: badge, reason, and FCM's word when it failed. */
export function outcomeCell(o: DeviceOutcome): HTMLElement {
  const label = o.outcome === "sent" ? "sent" : `${o.outcome}: ${o.reason}`;
  return h(
    "div",
    { class: "outcome" },
    badge(label, outcomeTone(o.outcome), o.detail || undefined),
    o.openedAt ? badge("opened", "info") : null,
    o.detail && o.outcome !== "sent" ? h("p", { class: "small muted" }, o.detail) : null,
    fcmError(o.error),
  );
}
