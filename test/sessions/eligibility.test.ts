// Pure: the push-eligibility predicate over every session, token and app state (no emulator).
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Timestamp } from "firebase-admin/firestore";
import { formatDuration } from "../../functions/src/common/format.ts";
import { presenceSettings } from "../../functions/src/config.ts";
import {
  activeUntil,
  connectionOf,
  eligibilityConfig,
  pushEligibility,
  type Eligibility,
  type EligibilityContext,
} from "../../functions/src/sessions/eligibility.ts";
import { NO_PREFERENCES, type MessagePreferences } from "../../functions/src/preferences/schemas.ts";
import { IneligibleReasonSchema, type Device, type IneligibleReason, type PresenceAction } from "../../functions/src/sessions/schemas.ts";

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const DAY = 24 * 60 * MINUTE;
const now = new Date("2030-01-15T12:00:00Z");
const at = (msAgo: number) => Timestamp.fromMillis(now.getTime() - msAgo);

const ctx: EligibilityContext = { leaseMs: 2 * MINUTE, tokenStaleMs: 30 * DAY, certificateExists: (id) => id === 7 };

function device(overrides: Partial<Device> = {}): Device {
  return {
    deviceId: "d1",
    platform: "android",
    session: "logged-in",
    sessionId: "s1",
    loggedInAt: at(60 * MINUTE),
    endedAt: null,
    kickedByDeviceId: null,
    appState: "background",
    appStateAt: at(10 * MINUTE),
    unreadCount: 3,
    lastHeartbeatAt: at(10 * SECOND),
    token: { certificateId: 7, token: "tok:abc", tokenHash: "h", boundAt: at(DAY), refreshedAt: at(DAY) },
    ...overrides,
  };
}

/** The IM backend's event `msAgo` before now, as stored on the device. */
function presence(action: PresenceAction, msAgo: number, reason: string | null = null): NonNullable<Device["presence"]> {
  return { state: action === "Connect" ? "connected" : "disconnected", action, eventTime: at(msAgo), reason, at: at(msAgo - 50) };
}
const HOUR = 60 * MINUTE;
const imBackend: EligibilityContext = { ...ctx, presenceSource: "im-backend", presenceLeaseMs: HOUR };
const both: EligibilityContext = { ...ctx, presenceSource: "both", presenceLeaseMs: HOUR };

const seen = new Set<IneligibleReason>();
function ineligible(result: Eligibility, reason: IneligibleReason, detailIncludes: string[] = []): void {
  assert.equal(result.eligible, false, `expected ${reason}, got eligible`);
  if (result.eligible) return;
  assert.equal(result.reason, reason, result.detail);
  assert.ok(result.detail.length > 20, "detail is a sentence");
  for (const part of detailIncludes) assert.ok(result.detail.includes(part), `detail "${result.detail}" mentions "${part}"`);
  seen.add(reason);
}

describe("pushEligibility", () => {
  it("no device -> no-device", () => {
    ineligible(pushEligibility(undefined, now, ctx), "no-device", ["never logged in"]);
  });

  it("logged in, token, background -> eligible", () => {
    assert.deepEqual(pushEligibility(device(), now, ctx), { eligible: true });
  });

  it("background with a heartbeat long gone is still eligible (backgrounded means offline push)", () => {
    assert.deepEqual(pushEligibility(device({ lastHeartbeatAt: at(DAY) }), now, ctx), { eligible: true });
  });

  it("foreground within the lease -> foreground, at the lease boundary too", () => {
    ineligible(pushEligibility(device({ appState: "foreground" }), now, ctx), "foreground", ["foreground", "10 s ago", "2 min lease"]);
    ineligible(pushEligibility(device({ appState: "foreground", lastHeartbeatAt: at(2 * MINUTE) }), now, ctx), "foreground");
  });

  it("foreground with a heartbeat older than the lease counts as killed -> eligible", () => {
    assert.deepEqual(pushEligibility(device({ appState: "foreground", lastHeartbeatAt: at(2 * MINUTE + 1) }), now, ctx), { eligible: true });
    assert.deepEqual(pushEligibility(device({ appState: "foreground", lastHeartbeatAt: at(DAY) }), now, ctx), { eligible: true });
  });

  it("a heartbeat stamped slightly in the future (clock skew) is within the lease", () => {
    ineligible(pushEligibility(device({ appState: "foreground", lastHeartbeatAt: at(-5 * SECOND) }), now, ctx), "foreground");
  });

  it("logged out -> logged-out, whatever else the document says", () => {
    ineligible(pushEligibility(device({ session: "logged-out", endedAt: at(3 * MINUTE), token: null }), now, ctx), "logged-out", ["logged out", "3 min ago"]);
    // Even a token left behind by a bug must not make a logged-out device eligible.
    ineligible(pushEligibility(device({ session: "logged-out", endedAt: at(MINUTE) }), now, ctx), "logged-out");
  });

  it("kicked -> kicked, naming the device that took over", () => {
    const kicked = device({ session: "kicked", endedAt: at(5 * MINUTE), kickedByDeviceId: "d2", token: null });
    ineligible(pushEligibility(kicked, now, ctx), "kicked", ["d2", "5 min ago"]);
    ineligible(pushEligibility({ ...kicked, token: device().token }, now, ctx), "kicked");
  });

  it("logged in without a token -> no-token (before foreground: it is the lasting cause)", () => {
    ineligible(pushEligibility(device({ token: null }), now, ctx), "no-token", ["setOfflinePushToken"]);
    ineligible(pushEligibility(device({ token: null, appState: "foreground" }), now, ctx), "no-token");
  });

  it("token bound to a deleted certificate -> certificate-missing", () => {
    const token = { ...device().token!, certificateId: 8 };
    ineligible(pushEligibility(device({ token }), now, ctx), "certificate-missing", ["certificate 8"]);
  });

  it("token not refreshed for longer than the staleness window -> token-stale; at the window it is fresh", () => {
    const stale = { ...device().token!, refreshedAt: at(30 * DAY + 1) };
    ineligible(pushEligibility(device({ token: stale }), now, ctx), "token-stale", ["30 days"]);
    const edge = { ...device().token!, refreshedAt: at(30 * DAY) };
    assert.deepEqual(pushEligibility(device({ token: edge }), now, ctx), { eligible: true });
  });

  it("the lease and staleness come from the context, not constants", () => {
    assert.deepEqual(pushEligibility(device({ appState: "foreground" }), now, { ...ctx, leaseMs: 5 * SECOND }), { eligible: true });
    ineligible(pushEligibility(device(), now, { ...ctx, tokenStaleMs: DAY / 2 }), "token-stale", ["12 h"]);
  });

  describe("platforms", () => {
    it("a desktop device has no push (before any token question), whatever its state", () => {
      ineligible(pushEligibility(device({ platform: "desktop", token: null }), now, ctx), "platform-without-push", ["desktop", "no FCM token"]);
      ineligible(pushEligibility(device({ platform: "desktop", token: null, appState: "foreground" }), now, ctx), "platform-without-push");
      ineligible(pushEligibility(device({ platform: "desktop", session: "logged-out", endedAt: at(MINUTE), token: null }), now, ctx), "logged-out");
    });

    it("ios and web devices are judged like android ones", () => {
      for (const platform of ["ios", "web"] as const) {
        assert.deepEqual(pushEligibility(device({ platform }), now, ctx), { eligible: true });
        ineligible(pushEligibility(device({ platform, appState: "foreground" }), now, ctx), "foreground");
        ineligible(pushEligibility(device({ platform, token: null }), now, ctx), "no-token");
      }
    });
  });

  describe("PRESENCE_SOURCE", () => {
    const fg = (over: Partial<Device>) => device({ appState: "foreground", appStateAt: at(20 * MINUTE), lastHeartbeatAt: at(20 * MINUTE), ...over });

    it("app (the default): the backend's events are not used, only the heartbeat lease", () => {
      assert.deepEqual(pushEligibility(fg({ presence: presence("Connect", 10 * SECOND) }), now, ctx), { eligible: true }, "a Connect does not silence it");
      ineligible(pushEligibility(fg({ lastHeartbeatAt: at(10 * SECOND), presence: presence("Disconnect", SECOND) }), now, ctx), "foreground", ["heartbeat"]);
      assert.deepEqual(pushEligibility(fg({ presence: presence("Connect", SECOND) }), now, { ...ctx, presenceSource: "app" }), { eligible: true });
    });

    it("im-backend: a Connect newer than the app's last call keeps it connected for the presence lease, without heartbeats", () => {
      ineligible(pushEligibility(fg({ lastHeartbeatAt: at(2 * HOUR), presence: presence("Connect", 50 * MINUTE, "Login") }), now, imBackend), "connected", ["Connect", "50 min ago", "reason Login", "60 min presence lease"]);
      assert.deepEqual(pushEligibility(fg({ lastHeartbeatAt: at(2 * HOUR), presence: presence("Connect", HOUR + 1) }), now, imBackend), { eligible: true }, "past the presence lease: a lost Disconnect silences at most that long");
    });

    it("im-backend: a Disconnect newer than everything makes it eligible at once; a background app is pushed even while connected", () => {
      assert.deepEqual(pushEligibility(fg({ lastHeartbeatAt: at(30 * SECOND), presence: presence("Disconnect", SECOND, "LinkClose") }), now, imBackend), { eligible: true });
      assert.deepEqual(pushEligibility(device({ appState: "background", presence: presence("Connect", SECOND) }), now, imBackend), { eligible: true });
    });

    it("im-backend: the app's login or doForeground, newer than the backend's last word, counts as a Connect (the backend's Connect may have come before the first login)", () => {
      ineligible(pushEligibility(fg({ lastHeartbeatAt: at(30 * MINUTE) }), now, imBackend), "foreground", ["IM backend has said nothing newer", "60 min presence lease"]);
      ineligible(pushEligibility(fg({ lastHeartbeatAt: at(30 * MINUTE), presence: presence("Disconnect", 40 * MINUTE) }), now, imBackend), "foreground");
      assert.deepEqual(pushEligibility(fg({ lastHeartbeatAt: at(HOUR + SECOND) }), now, imBackend), { eligible: true });
    });

    it("both: the newest signal wins: a Disconnect at T overrides a heartbeat older than T, and a heartbeat after it overrides the Disconnect", () => {
      assert.deepEqual(pushEligibility(fg({ lastHeartbeatAt: at(20 * SECOND), presence: presence("Disconnect", 10 * SECOND) }), now, both), { eligible: true });
      ineligible(pushEligibility(fg({ lastHeartbeatAt: at(5 * SECOND), presence: presence("Disconnect", 10 * SECOND) }), now, both), "foreground", ["heartbeat"]);
      ineligible(pushEligibility(fg({ lastHeartbeatAt: at(30 * MINUTE), presence: presence("Connect", 20 * MINUTE) }), now, both), "connected", ["Connect"]);
      // The app's own signal counts for the heartbeat lease with both: a Connect older than a lapsed heartbeat does not keep it connected.
      assert.deepEqual(pushEligibility(fg({ lastHeartbeatAt: at(10 * MINUTE), presence: presence("Connect", 20 * MINUTE) }), now, both), { eligible: true });
    });

    it("a tie goes to the backend's event; connectionOf says which signal decided", () => {
      const d = fg({ lastHeartbeatAt: at(MINUTE), presence: presence("Disconnect", MINUTE) });
      assert.deepEqual(pushEligibility(d, now, both), { eligible: true });
      const c = connectionOf(d, now, both);
      assert.deepEqual([c.connected, c.by, c.atMs, c.leaseMs], [false, "im-backend", now.getTime() - MINUTE, HOUR]);
      const app = connectionOf(d, now, ctx);
      assert.deepEqual([app.connected, app.by, app.leaseMs], [true, "app", 2 * MINUTE]);
    });
  });

  describe("active-elsewhere", () => {
    const elsewhere: EligibilityContext = { ...both, activeElsewhereMs: MINUTE };
    const phone = device({ deviceId: "phone" });
    const laptop = (over: Partial<Device>) => device({ deviceId: "laptop", platform: "desktop", token: null, appState: "foreground", appStateAt: at(HOUR), lastHeartbeatAt: at(5 * SECOND), ...over });

    it("off by default (0): another device in front of the user changes nothing", () => {
      assert.deepEqual(pushEligibility(phone, now, both, [phone, laptop({})]), { eligible: true });
    });

    it("another device in the foreground and connected suppresses the phone, naming it", () => {
      ineligible(pushEligibility(phone, now, elsewhere, [phone, laptop({})]), "active-elsewhere", ["laptop (desktop)", "in the foreground and connected", "(60 s)"]);
      ineligible(pushEligibility(phone, now, elsewhere, [phone, laptop({ lastHeartbeatAt: at(HOUR), presence: presence("Connect", MINUTE) })]), "active-elsewhere", ["IM backend's Connect"]);
    });

    it("and for ACTIVE_ELSEWHERE_SECONDS after it left the foreground or disconnected, not after", () => {
      ineligible(pushEligibility(phone, now, elsewhere, [laptop({ appState: "background", appStateAt: at(50 * SECOND) })]), "active-elsewhere", ["until 50 s ago"]);
      assert.deepEqual(pushEligibility(phone, now, elsewhere, [laptop({ appState: "background", appStateAt: at(61 * SECOND) })]), { eligible: true });
      ineligible(pushEligibility(phone, now, elsewhere, [laptop({ lastHeartbeatAt: at(40 * SECOND), presence: presence("Disconnect", 30 * SECOND, "LinkClose") })]), "active-elsewhere", ["until 30 s ago"]);
      assert.deepEqual(pushEligibility(phone, now, elsewhere, [laptop({ lastHeartbeatAt: at(2 * HOUR), presence: presence("Disconnect", 2 * MINUTE) })]), { eligible: true });
      // A lapsed heartbeat: it was last seen at its last beat.
      assert.deepEqual(pushEligibility(phone, now, elsewhere, [laptop({ lastHeartbeatAt: at(3 * MINUTE) })]), { eligible: true });
    });

    it("ended sessions and the device itself never count; its own foreground comes first", () => {
      assert.deepEqual(pushEligibility(phone, now, elsewhere, [phone, laptop({ session: "logged-out", endedAt: at(SECOND) }), laptop({ deviceId: "x", session: "kicked" })]), { eligible: true });
      ineligible(pushEligibility(device({ deviceId: "phone", appState: "foreground" }), now, elsewhere, [laptop({})]), "foreground");
      assert.equal(activeUntil(laptop({ session: "kicked" }), now, elsewhere), null);
    });

    it("the most recently active of several devices is named", () => {
      const r = pushEligibility(phone, now, elsewhere, [laptop({ appState: "background", appStateAt: at(40 * SECOND) }), laptop({ deviceId: "tab", platform: "web", appState: "background", appStateAt: at(10 * SECOND) })]);
      ineligible(r, "active-elsewhere", ["tab (web)", "10 s ago"]);
    });
  });

  describe("the recipient's preferences for the message (muted, not-mentioned, quiet-hours)", () => {
    // 2030-01-15T12:00:00Z is 13:00 in Berlin (winter time).
    const prefs = (p: Partial<MessagePreferences>): MessagePreferences => ({ ...NO_PREFERENCES, ...p });
    const msg = (p: Partial<MessagePreferences>, mentioned = false) => ({ conversation: "group_team", mentioned, prefs: prefs(p) });
    const dnd = (start: string, end: string, allowMentions = false) => ({ start, end, timeZone: "Europe/Berlin", allowMentions });

    it("a muted conversation is skipped as muted, mentions included; a past mutedUntil falls back to the mode", () => {
      ineligible(pushEligibility(device(), now, ctx, [], msg({ conversation: { mode: "none" } }, true)), "muted", ["group_team", "mode \"none\""]);
      ineligible(pushEligibility(device(), now, ctx, [], msg({ conversation: { mutedUntil: at(-HOUR) } }, true)), "muted", ["2030-01-15T13:00:00.000Z"]);
      assert.deepEqual(pushEligibility(device(), now, ctx, [], msg({ conversation: { mutedUntil: at(SECOND) } })), { eligible: true });
      ineligible(pushEligibility(device(), now, ctx, [], msg({ conversation: { mode: "mentions", mutedUntil: at(SECOND) } })), "not-mentioned");
    });

    it("mentions-only lets mentions through", () => {
      ineligible(pushEligibility(device(), now, ctx, [], msg({ conversation: { mode: "mentions" } })), "not-mentioned", ["mentions only"]);
      assert.deepEqual(pushEligibility(device(), now, ctx, [], msg({ conversation: { mode: "mentions" } }, true)), { eligible: true });
    });

    it("inside the do-not-disturb window: quiet-hours, unless allowMentions and mentioned", () => {
      ineligible(pushEligibility(device(), now, ctx, [], msg({ doNotDisturb: dnd("12:30", "13:30") })), "quiet-hours", ["12:30-13:30 Europe/Berlin", "it is 13:00 there"]);
      ineligible(pushEligibility(device(), now, ctx, [], msg({ doNotDisturb: dnd("12:30", "13:30") }, true)), "quiet-hours");
      assert.deepEqual(pushEligibility(device(), now, ctx, [], msg({ doNotDisturb: dnd("12:30", "13:30", true) }, true)), { eligible: true });
      ineligible(pushEligibility(device(), now, ctx, [], msg({ doNotDisturb: dnd("12:30", "13:30", true) })), "quiet-hours", ["mentions would pass"]);
      assert.deepEqual(pushEligibility(device(), now, ctx, [], msg({ doNotDisturb: dnd("13:01", "12:59") })), { eligible: true }, "outside a window crossing midnight");
      ineligible(pushEligibility(device(), now, ctx, [], msg({ doNotDisturb: dnd("09:00", "09:00") })), "quiet-hours", ["all day"]);
    });

    it("lasting causes of the device first, then the preferences, then the transient ones", () => {
      const muted = msg({ conversation: { mode: "none" } });
      ineligible(pushEligibility(device({ session: "logged-out", endedAt: at(MINUTE) }), now, ctx, [], muted), "logged-out");
      ineligible(pushEligibility(device({ token: null }), now, ctx, [], muted), "no-token");
      ineligible(pushEligibility(device({ appState: "foreground", appStateAt: at(SECOND) }), now, ctx, [], muted), "muted");
      ineligible(pushEligibility(device({ appState: "foreground", appStateAt: at(SECOND) }), now, ctx, [], msg({})), "foreground");
    });
  });

  it("every ineligibility reason is reachable", () => {
    assert.deepEqual([...seen].sort(), [...IneligibleReasonSchema.options].sort());
  });
});

describe("eligibilityConfig", () => {
  const names = ["HEARTBEAT_LEASE_SECONDS", "TOKEN_STALE_DAYS", "PRESENCE_SOURCE", "PRESENCE_LEASE_SECONDS", "ACTIVE_ELSEWHERE_SECONDS"] as const;
  const saved = names.map((name) => [name, process.env[name]] as const);
  after(() => {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  it("defaults to a 2-minute lease, 30-day staleness, presence from the app, a 1-hour presence lease, active-elsewhere off", () => {
    for (const name of names) delete process.env[name];
    assert.deepEqual(eligibilityConfig(), { leaseMs: 2 * MINUTE, tokenStaleMs: 30 * DAY, presenceSource: "app", presenceLeaseMs: HOUR, activeElsewhereMs: 0 });
  });

  it("reads the configured values and adds the certificate lookup", () => {
    process.env.HEARTBEAT_LEASE_SECONDS = "5";
    process.env.TOKEN_STALE_DAYS = "7";
    const full = eligibilityConfig((id) => id === 1);
    assert.equal(full.leaseMs, 5 * SECOND);
    assert.equal(full.tokenStaleMs, 7 * DAY);
    assert.equal(full.certificateExists(1), true);
    assert.equal(full.certificateExists(2), false);
  });

  it("reads the presence settings; an invalid PRESENCE_SOURCE falls back to app (pushes go on) and is named", () => {
    process.env.PRESENCE_SOURCE = "im-backend";
    process.env.PRESENCE_LEASE_SECONDS = "600";
    process.env.ACTIVE_ELSEWHERE_SECONDS = "30";
    const c = eligibilityConfig();
    assert.deepEqual([c.presenceSource, c.presenceLeaseMs, c.activeElsewhereMs], ["im-backend", 10 * MINUTE, 30 * SECOND]);
    process.env.PRESENCE_SOURCE = "backend";
    process.env.ACTIVE_ELSEWHERE_SECONDS = "-5";
    assert.deepEqual(presenceSettings(), { source: "app", leaseMs: 10 * MINUTE, activeElsewhereMs: 0, invalidSource: "backend" });
  });
});

describe("formatDuration", () => {
  it("reads like a person would say it", () => {
    assert.equal(formatDuration(45 * SECOND), "45 s");
    assert.equal(formatDuration(3 * MINUTE), "3 min");
    assert.equal(formatDuration(125 * MINUTE), "2 h 5 min");
    assert.equal(formatDuration(31 * DAY), "31 days");
  });
});
