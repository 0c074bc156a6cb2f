// Pure: the push-eligibility predicate over every session, token and app state (no emulator).
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Timestamp } from "firebase-admin/firestore";
import { formatDuration } from "../../functions/src/common/format.ts";
import {
  eligibilityConfig,
  pushEligibility,
  type Eligibility,
  type EligibilityContext,
} from "../../functions/src/sessions/eligibility.ts";
import { IneligibleReasonSchema, type Device, type IneligibleReason } from "../../functions/src/sessions/schemas.ts";

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

  it("every ineligibility reason is reachable", () => {
    assert.deepEqual([...seen].sort(), [...IneligibleReasonSchema.options].sort());
  });
});

describe("eligibilityConfig", () => {
  const saved = { lease: process.env.HEARTBEAT_LEASE_SECONDS, stale: process.env.TOKEN_STALE_DAYS };
  after(() => {
    for (const [name, value] of [["HEARTBEAT_LEASE_SECONDS", saved.lease], ["TOKEN_STALE_DAYS", saved.stale]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  it("defaults to a 2-minute lease and 30-day staleness", () => {
    delete process.env.HEARTBEAT_LEASE_SECONDS;
    delete process.env.TOKEN_STALE_DAYS;
    assert.deepEqual(eligibilityConfig(), { leaseMs: 2 * MINUTE, tokenStaleMs: 30 * DAY });
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
});

describe("formatDuration", () => {
  it("reads like a person would say it", () => {
    assert.equal(formatDuration(45 * SECOND), "45 s");
    assert.equal(formatDuration(3 * MINUTE), "3 min");
    assert.equal(formatDuration(125 * MINUTE), "2 h 5 min");
    assert.equal(formatDuration(31 * DAY), "31 days");
  });
});
