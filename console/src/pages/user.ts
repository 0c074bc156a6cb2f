// User: "why did this user get no push?" Every device with its session, app state, heartbeat,
// token and eligibility now; the user's push preferences (and a check for one conversation); the
// last pushes; a test push per device with FCM's answer.
import type { DiagnosedDevice, DiagnosePushResponse, PresenceRecordView, TestPushDevice } from "../api";
import { ago, badge, busy, card, errorBox, formatDuration, h, replace, table, time } from "../dom";
import type { PageContext } from "../page";
import { renderSearchPage } from "./search";
import { explanation, fcmError, outcomeCell, outcomeTone } from "./explain";

function sessionBadge(d: DiagnosedDevice): HTMLElement {
  if (d.session === "logged-in") return badge("logged in", "ok");
  if (d.session === "kicked") return badge(d.kickedByDeviceId ? `kicked by ${d.kickedByDeviceId}` : "kicked", "bad");
  return badge("logged out", "neutral");
}

function testPushResult(r: TestPushDevice): HTMLElement {
  const name = r.fcm?.name;
  return h(
    "div",
    { class: "test-result", role: "status" },
    h("p", {}, badge(r.result, outcomeTone(r.result)), " ", r.detail),
    name ? h("p", { class: "small" }, "FCM message: ", h("code", { class: "break" }, name)) : null,
    fcmError(r.fcm?.error),
    explanation(r.fcmErrorExplanation ?? r.explanation, r.result === "failed"),
  );
}

function deviceCard(uid: string, d: DiagnosedDevice, ctx: PageContext): HTMLElement {
  const e = d.eligibility;
  const out = h("div", { class: "test-slot" });
  const dry = h("input", { type: "checkbox", id: `dry-${d.deviceId}` });
  const send = h("button", { type: "button", class: "secondary" }, "Send test push");
  send.addEventListener("click", () =>
    busy(send, dry.checked ? "Validating…" : "Sending…", async () => {
      try {
        const res = await ctx.api("sendTestPush", { uid, deviceId: d.deviceId, dryRun: dry.checked });
        const mine = res.devices.find((x) => x.deviceId === d.deviceId) ?? res.devices[0];
        replace(out, mine ? testPushResult(mine) : h("p", { role: "status" }, res.summary));
      } catch (err) {
        replace(out, errorBox(err, "The test push was not sent"));
      }
    }),
  );
  const token = d.token;
  return h(
    "article",
    { class: `device ${e.eligible ? "eligible" : "ineligible"}`, "aria-label": `Device ${d.deviceId}` },
    h("header", {}, h("h3", {}, d.deviceId), h("span", { class: "muted" }, d.platform), sessionBadge(d)),
    h(
      "div",
      { class: `verdict ${e.eligible ? "yes" : "no"}` },
      h("strong", {}, e.eligible ? "Would get a push now" : `No push now: ${e.reason ?? "not eligible"}`),
      e.detail ? h("p", { "data-testid": "eligibility-detail" }, e.detail) : null,
      explanation(e.explanation),
    ),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Session"),
      h("dd", {}, d.session, d.endedAt ? h("span", { class: "muted" }, " · ended ", time(d.endedAt, ago(d.endedAt))) : h("span", { class: "muted" }, " · since ", time(d.loggedInAt, ago(d.loggedInAt)))),
      h("dt", {}, "App state"),
      h("dd", {}, d.appState, h("span", { class: "muted" }, " · ", time(d.appStateAt, ago(d.appStateAt))), d.unreadCount !== null ? h("span", { class: "muted" }, ` · ${d.unreadCount} unread`) : null),
      d.badge ? h("dt", {}, "Badge") : null,
      d.badge
        ? h(
            "dd",
            { "data-testid": "badge" },
            `${d.badge.count}`,
            h(
              "span",
              { class: "muted" },
              d.badge.reportedAt ? [" · from the app's unreadCount of ", time(d.badge.reportedAt, ago(d.badge.reportedAt))] : " · counted since login",
              Object.keys(d.badge.conversations).length ? ` · ${Object.entries(d.badge.conversations).map(([c, n]) => `${c} ${n}`).join(", ")}` : "",
            ),
          )
        : null,
      h("dt", {}, "Last heartbeat"),
      h("dd", {}, time(d.lastHeartbeatAt, ago(d.lastHeartbeatAt)), " ", d.heartbeatWithinLease
        ? badge("within lease", "info", "the app's last heartbeat is within the lease; the Connection row says whether it is the newest word")
        : badge("lease expired", "neutral", "the app's heartbeat no longer says connected: offline pushes go through FCM unless the IM backend says otherwise")),
      h("dt", {}, "Connection"),
      h("dd", { "data-testid": "connection" }, ...connectionFacts(d)),
      h("dt", {}, "IM presence"),
      h(
        "dd",
        { "data-testid": "presence" },
        d.presence
          ? h(
              "span",
              {},
              badge(d.presence.action, d.presence.state === "connected" ? "info" : "neutral"),
              d.presence.reason ? ` ${d.presence.reason}` : "",
              h("span", { class: "muted" }, " · event ", time(d.presence.eventTime, ago(d.presence.eventTime)), " · applied ", time(d.presence.appliedAt, ago(d.presence.appliedAt))),
            )
          : h("span", { class: "muted" }, "no event from the IM backend"),
      ),
      h("dt", {}, "Token"),
      h(
        "dd",
        {},
        token
          ? h(
              "span",
              {},
              h("code", {}, `sha256:${token.hashPrefix}…`),
              ` · reported ${formatDuration(token.ageSeconds)} ago`,
              token.stale ? [" ", badge("stale", "warn")] : null,
            )
          : d.platform === "desktop"
            ? h("span", { class: "muted" }, "none: a desktop app has no FCM token")
            : h("span", { class: "warning-text" }, "none reported since login"),
      ),
      h("dt", {}, "Certificate"),
      h(
        "dd",
        {},
        token
          ? h(
              "span",
              {},
              h("a", { href: "#/certificates" }, String(token.certificate.certificateId)),
              token.certificate.label ? ` “${token.certificate.label}”` : "",
              " ",
              !token.certificate.exists ? badge("deleted", "bad") : token.certificate.health?.state === "unhealthy" ? badge("refused by FCM", "bad", token.certificate.health.reason ?? undefined) : badge("healthy", "ok"),
            )
          : "—",
      ),
    ),
    h("div", { class: "row test-row" }, send, h("label", { class: "check", for: `dry-${d.deviceId}` }, dry, "Dry run (FCM validates, delivers nothing)")),
    out,
  );
}

/** Connected or not as the fan-out judges it under PRESENCE_SOURCE, and whose signal decided. */
function connectionFacts(d: DiagnosedDevice): HTMLElement[] {
  const c = d.connection;
  const source = c.decidedBy === "im-backend" ? "the IM backend's presence event" : "the app's own calls";
  return [
    c.connected ? badge("connected", "info") : badge("not connected", "neutral"),
    h("span", { class: "muted" }, ` · decided by ${source}, `, time(c.at, ago(c.at)), c.until ? [" · until ", time(c.until)] : null, ` · lease ${formatDuration(c.leaseSeconds)}`),
  ];
}

function presenceRecordsTable(records: PresenceRecordView[]): HTMLElement {
  return table(
    "Presence events not applied",
    ["Last", "Kind", "Device", "Event", "Count", "Detail"],
    records.map((r) => [
      time(r.lastAt, ago(r.lastAt)),
      badge(r.kind, "warn"),
      r.deviceId ?? "—",
      r.action ? `${r.action}${r.reason ? ` (${r.reason})` : ""}` : "—",
      String(r.count),
      h("div", {}, h("p", { class: "small" }, r.detail), explanation(r.explanation)),
    ]),
  );
}

function recentTable(r: DiagnosePushResponse): HTMLElement {
  if (!r.recent.length) return h("p", { class: "empty" }, "No message for this user in the push log (it keeps recent days only).");
  return table(
    "Last pushes",
    ["When", "Message", "From", "Outcome per device"],
    r.recent.map((m) => [
      time(m.at, ago(m.at)),
      m.msgKey ? h("a", { href: `#/message/${encodeURIComponent(m.msgKey)}` }, m.msgKey) : h("span", { class: "muted" }, m.logId),
      m.from ?? "—",
      m.rejected
        ? h("div", {}, badge(`rejected: ${m.rejected.reason}`, "bad"), h("p", { class: "small muted" }, m.rejected.detail))
        : h("div", { class: "outcomes" }, ...m.devices.map((o) => h("div", { class: "outcome-line" }, h("span", { class: "mono small" }, o.deviceId ?? "(recipient)"), outcomeCell(o)))),
    ]),
  );
}

/** The user's push preferences (setPushPreferences), and a check for a message in one conversation, mentioned or not. */
function preferencesCard(r: DiagnosePushResponse, ctx: PageContext): HTMLElement {
  const p = r.preferences;
  const dnd = p.doNotDisturb;
  const conversations = Object.entries(p.conversations);
  const input = h("input", { type: "text", id: "pref-conversation", placeholder: "c2c_<account> or group_<GroupId>", autocomplete: "off" });
  const mentioned = h("input", { type: "checkbox", id: "pref-mentioned" });
  const check = h("button", { type: "submit", class: "secondary" }, "Check");
  const out = h("div", { class: "test-slot", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "inline-form", "aria-label": "Check a conversation" },
    h("label", { for: "pref-conversation" }, "Conversation"),
    input,
    h("label", { for: "pref-mentioned", class: "checkbox" }, mentioned, " mentions the user"),
    check,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(check, "Checking…", async () => {
      try {
        const conversation = input.value.trim();
        const res = await ctx.api("diagnosePush", { uid: r.uid, ...(conversation ? { conversation } : {}), ...(mentioned.checked ? { mentioned: true } : {}) });
        const asked = `${conversation ? `A message in ${conversation}` : "Any message"}${mentioned.checked ? " that mentions the user" : ""}`;
        replace(
          out,
          h("p", { role: "status", "data-testid": "conversation-check" }, badge(res.wouldPushNow ? "would be pushed" : "no push", res.wouldPushNow ? "ok" : "warn"), ` ${asked}: ${res.summary}`),
          ...res.devices.filter((d) => !d.eligibility.eligible).map((d) => explanation(d.eligibility.explanation)),
        );
      } catch (err) {
        replace(out, errorBox(err, "Could not check the conversation"));
      }
    });
  });
  return card(
    "Push preferences",
    h(
      "dl",
      { class: "facts", "aria-label": "Push preferences" },
      h("dt", {}, "Do not disturb"),
      h("dd", { "data-testid": "pref-dnd" }, dnd ? `${dnd.start === dnd.end ? "all day" : `${dnd.start}–${dnd.end}`} ${dnd.timeZone}${dnd.allowMentions ? " · mentions allowed" : ""}` : "—"),
      h("dt", {}, "Locale"),
      h("dd", {}, p.locale ?? h("span", { class: "muted" }, "— (default texts)")),
      h("dt", {}, "Updated"),
      h("dd", {}, p.updatedAt ? time(p.updatedAt, ago(p.updatedAt)) : "—"),
    ),
    conversations.length
      ? table(
          "Conversation settings",
          ["Conversation", "Mode", "Muted until"],
          conversations.slice(0, MAX_CONVERSATIONS_SHOWN).map(([id, c]) => [h("code", {}, id), c.mode === "all" ? c.mode : badge(c.mode, "warn"), c.mutedUntil ? time(c.mutedUntil) : "—"]),
        )
      : h("p", { class: "empty" }, "No conversation settings: every conversation pushes."),
    conversations.length > MAX_CONVERSATIONS_SHOWN ? h("p", { class: "small muted" }, `${MAX_CONVERSATIONS_SHOWN} of ${conversations.length} shown.`) : null,
    form,
    out,
  );
}

/** Conversation settings listed; a user may have up to 2,000. */
const MAX_CONVERSATIONS_SHOWN = 50;

/** Who the account is: its name, e-mail and phone from Firebase Auth, and its uid. */
function accountFacts(r: DiagnosePushResponse): HTMLElement {
  return h(
    "dl",
    { class: "facts account", "aria-label": "Account details" },
    h("dt", {}, "uid"),
    h("dd", {}, h("code", {}, r.uid)),
    r.email ? [h("dt", {}, "E-mail"), h("dd", {}, r.email)] : null,
    r.phoneNumber ? [h("dt", {}, "Phone"), h("dd", {}, r.phoneNumber)] : null,
    r.authAccount ? null : [h("dt", {}, "Firebase Auth"), h("dd", {}, "no such user: an IM account the push records know (a recipient of messages)")],
  );
}

export async function renderUser(root: HTMLElement, ctx: PageContext): Promise<void> {
  await renderSearchPage(root, ctx, {
    field: "account",
    label: "Account",
    placeholder: "uid, e-mail or phone number (+15555550100)",
    button: "Diagnose",
    verb: "Looking up",
    route: "#/user/",
    title: "User",
    intro: "Why does this user get (or not get) offline pushes? Every device, its state, and what happened to the last messages. Find the user by Firebase uid, e-mail address or phone number.",
    failure: (account) => `Could not diagnose ${account}`,
    show: async (account, out) => {
      // The callable looks the account up (uid, e-mail or phone): one place decides what it is.
      const r = await ctx.api("diagnosePush", { account });
      const uid = r.uid;
      replace(
        out,
        h(
          "section",
          { class: `card summary ${r.wouldPushNow ? "yes" : "no"}`, "aria-labelledby": "summary-title" },
          h("h2", { id: "summary-title" }, r.displayName ?? r.email ?? r.phoneNumber ?? r.uid),
          accountFacts(r),
          h("p", { class: "summary-text", "data-testid": "summary" }, r.summary),
          h("p", { class: "small muted" }, `Checked ${new Date(r.checkedAt).toLocaleTimeString()} · session policy ${r.settings.sessionPolicy} · heartbeat lease ${r.settings.heartbeatLeaseSeconds} s · tokens stale after ${r.settings.tokenStaleDays} days · presence source ${r.settings.presenceSource} (lease ${r.settings.presenceLeaseSeconds} s) · active-elsewhere ${r.settings.activeElsewhereSeconds ? `${r.settings.activeElsewhereSeconds} s` : "off"}`),
        ),
        r.devices.length
          ? h("section", { class: "devices", "aria-label": "Devices" }, ...r.devices.map((d) => deviceCard(uid, d, ctx)))
          : card("Devices", h("p", { class: "empty" }, "This account never logged in on a device (no login call recorded).")),
        preferencesCard(r, ctx),
        card("Last pushes", recentTable(r)),
        r.presenceRecords.length ? card("Presence events not applied", presenceRecordsTable(r.presenceRecords)) : null,
      );
    },
  });
}
