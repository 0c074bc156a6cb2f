// Pure: when a heartbeat is written (sessions/heartbeat.ts), and the lease guarantees that rule
// keeps, checked by replaying an app that beats at the interval the heartbeat answer gives.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Timestamp } from "firebase-admin/firestore";
import { beatNeedsWrite, heartbeatPlan } from "../../functions/src/sessions/heartbeat.ts";
import { pushEligibility } from "../../functions/src/sessions/eligibility.ts";
import type { Device } from "../../functions/src/sessions/schemas.ts";

const LEASE = 120_000;
const T0 = Date.UTC(2030, 0, 15, 12);

function device(lastBeatMs: number, presence: Device["presence"] = null): Device {
  const t = Timestamp.fromMillis(T0);
  return {
    deviceId: "phone",
    platform: "android",
    session: "logged-in",
    sessionId: "s",
    loggedInAt: t,
    endedAt: null,
    kickedByDeviceId: null,
    appState: "foreground",
    appStateAt: t,
    unreadCount: null,
    lastHeartbeatAt: Timestamp.fromMillis(lastBeatMs),
    token: { certificateId: 1, token: "t", tokenHash: "h", boundAt: t, refreshedAt: t },
    presence,
  };
}
const ctx = { leaseMs: LEASE, tokenStaleMs: 30 * 86_400_000, certificateExists: () => true };

/** An app beating every `every` ms from T0 (its login) for `forMs`: the writes, and the oldest the stored beat got while it beat. */
function replay(every: number, forMs: number, lose: (beat: number) => boolean = () => false) {
  let stored = T0;
  let writes = 0;
  let beats = 0;
  let worstAge = 0;
  for (let t = T0 + every; t <= T0 + forMs; t += every) {
    worstAge = Math.max(worstAge, t - stored);
    beats++;
    if (lose(beats)) continue;
    if (beatNeedsWrite(device(stored), t, LEASE, "app")) {
      stored = t;
      writes++;
    }
  }
  return { writes, beats, worstAge, stored };
}

describe("heartbeat writes", () => {
  it("the plan: write when the stored beat is half a lease old; beat every third of it; no beats with im-backend", () => {
    assert.deepEqual(heartbeatPlan(LEASE, "app"), { writeAfterMs: 60_000, intervalMs: 40_000 });
    assert.deepEqual(heartbeatPlan(LEASE, "both"), { writeAfterMs: 60_000, intervalMs: 40_000 });
    assert.deepEqual(heartbeatPlan(LEASE, "im-backend"), { writeAfterMs: 60_000, intervalMs: null });
  });

  it("a beat inside the first half of the lease is not written; from the half on it is", () => {
    assert.equal(beatNeedsWrite(device(T0), T0 + 59_999, LEASE, "app"), false);
    assert.equal(beatNeedsWrite(device(T0), T0 + 60_000, LEASE, "app"), true);
    assert.equal(beatNeedsWrite(device(T0), T0 - 5_000, LEASE, "app"), false, "a stored beat ahead of the clock (skew) is not rewritten");
  });

  it("an app beating every 40 s for an hour: every second beat written (45 an hour instead of 90), never counted as killed", () => {
    const r = replay(40_000, 3_600_000);
    assert.equal(r.beats, 90);
    assert.equal(r.writes, 45);
    assert.equal(r.worstAge, 80_000, "the stored beat is at most 2/3 of the lease old when the next beat comes");
    // At every instant while it beats, the fan-out judges it connected (in the foreground: no push).
    for (let t = T0; t <= T0 + 3_600_000; t += 10_000) {
      const stored = replay(40_000, t - T0).stored;
      assert.equal(pushEligibility(device(stored), new Date(t), ctx).eligible, false, `at +${(t - T0) / 1000} s`);
    }
  });

  it("one lost beat after a written one does not make it count as killed; a device that stops is killed at most a lease after its last beat", () => {
    // Beats 2, 4, 6... are written; beat 3 (the one after a written beat) lost: the stored beat is still at most 80 s old.
    assert.equal(replay(40_000, 600_000, (n) => n === 3).worstAge, 80_000);
    // Beat 4 lost (one that would have been written): the next one finds the stored beat exactly a lease old, the edge.
    assert.equal(replay(40_000, 600_000, (n) => n === 4).worstAge, LEASE);
    // Stops after its beat at +200 s (beats at 40..200; written at 80, 160): the stored beat is +160 s.
    const { stored } = replay(40_000, 200_000);
    assert.equal(stored, T0 + 160_000);
    const lastBeat = T0 + 200_000;
    assert.equal(pushEligibility(device(stored), new Date(lastBeat + LEASE / 2 - 1), ctx).eligible, false, "not before half a lease");
    assert.equal(pushEligibility(device(stored), new Date(lastBeat + LEASE), ctx).eligible, true, "at most a lease after the last beat");
  });

  it("with both, a beat newer than a stored Disconnect is always written (it reconnects the device); with im-backend never", () => {
    const t = Timestamp.fromMillis;
    const disconnected = device(T0, { state: "disconnected", action: "Disconnect", eventTime: t(T0 + 5_000), reason: "LinkClose", at: t(T0 + 5_100) });
    assert.equal(beatNeedsWrite(disconnected, T0 + 10_000, LEASE, "both"), true);
    assert.equal(beatNeedsWrite(disconnected, T0 + 10_000, LEASE, "app"), false, "app ignores the backend");
    const connected = device(T0, { state: "connected", action: "Connect", eventTime: t(T0 + 5_000), reason: null, at: t(T0 + 5_100) });
    assert.equal(beatNeedsWrite(connected, T0 + 10_000, LEASE, "both"), false);
    assert.equal(beatNeedsWrite(device(T0 - 3_600_000), T0, LEASE, "im-backend"), false);
  });
});
