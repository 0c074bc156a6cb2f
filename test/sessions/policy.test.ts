// Pure: who a login kicks offline under each session policy, and the request schemas' field errors.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Timestamp } from "firebase-admin/firestore";
import { sessionPolicy } from "../../functions/src/config.ts";
import { devicesToKick, endedDevicesToDrop } from "../../functions/src/sessions/policy.ts";
import { FcmTokenSchema, MAX_FCM_TOKEN_LENGTH, tokenHash, type Device } from "../../functions/src/sessions/schemas.ts";

const t = Timestamp.fromMillis(0);
function device(deviceId: string, session: Device["session"], platform = "android"): Device {
  return {
    deviceId,
    platform: platform as Device["platform"],
    session,
    sessionId: `s-${deviceId}`,
    loggedInAt: t,
    endedAt: null,
    kickedByDeviceId: null,
    appState: "foreground",
    appStateAt: t,
    unreadCount: null,
    lastHeartbeatAt: t,
    token: null,
  };
}

const devices = Object.fromEntries(
  [device("a", "logged-in"), device("b", "logged-out"), device("c", "kicked"), device("d", "logged-in"), device("x.y", "logged-in"), device("ios1", "logged-in", "ios")].map(
    (d) => [d.deviceId, d],
  ),
);

describe("devicesToKick", () => {
  it("single-device-per-platform: every other logged-in device of the same platform", () => {
    assert.deepEqual(devicesToKick(devices, "new", "android", "single-device-per-platform"), ["a", "d", "x.y"]);
  });

  it("never kicks the device logging in, nor ended sessions, nor other platforms", () => {
    assert.deepEqual(devicesToKick(devices, "a", "android", "single-device-per-platform"), ["d", "x.y"]);
    assert.ok(!devicesToKick(devices, "new", "android", "single-device-per-platform").includes("ios1"));
  });

  it("multi-device: kicks nobody", () => {
    assert.deepEqual(devicesToKick(devices, "new", "android", "multi-device"), []);
  });

  it("a first login kicks nobody", () => {
    assert.deepEqual(devicesToKick({}, "new", "android", "single-device-per-platform"), []);
  });
});

describe("sessionPolicy config", () => {
  it("defaults to single-device-per-platform, accepts multi-device, refuses anything else", () => {
    const saved = process.env.SESSION_POLICY;
    try {
      delete process.env.SESSION_POLICY;
      assert.equal(sessionPolicy(), "single-device-per-platform");
      process.env.SESSION_POLICY = "multi-device";
      assert.equal(sessionPolicy(), "multi-device");
      process.env.SESSION_POLICY = "many";
      assert.throws(() => sessionPolicy(), /SESSION_POLICY must be one of/);
    } finally {
      if (saved === undefined) delete process.env.SESSION_POLICY;
      else process.env.SESSION_POLICY = saved;
    }
  });
});

describe("FCM token validation", () => {
  it("accepts a real-looking token and the longest allowed, refuses beyond it and other characters", () => {
    const real = "dQw4w9WgXcQ:APA91bH" + "x-_".repeat(45);
    assert.ok(FcmTokenSchema.safeParse(real).success);
    assert.ok(FcmTokenSchema.safeParse("a".repeat(MAX_FCM_TOKEN_LENGTH)).success);
    assert.ok(!FcmTokenSchema.safeParse("a".repeat(MAX_FCM_TOKEN_LENGTH + 1)).success);
    for (const bad of ["", "has space", "slash/", "plus+", "équipe", "new\nline"]) assert.ok(!FcmTokenSchema.safeParse(bad).success, bad);
  });

  it("hashes tokens to 64 hex characters, distinct per token", () => {
    assert.match(tokenHash("abc"), /^[0-9a-f]{64}$/);
    assert.notEqual(tokenHash("abc"), tokenHash("abd"));
  });
});

describe("endedDevicesToDrop", () => {
  const ended = [
    { deviceId: "b", endedAtMs: 200 },
    { deviceId: "now", endedAtMs: Infinity },
    { deviceId: "a", endedAtMs: 100 },
    { deviceId: "c", endedAtMs: 200 },
  ];

  it("drops the oldest beyond `keep`; a session ending now is the newest; ties by ID", () => {
    assert.deepEqual(endedDevicesToDrop(ended, 2), ["c", "a"]);
    assert.deepEqual(endedDevicesToDrop(ended, 4), []);
  });

  it("a keep of zero or less drops every ended device", () => {
    assert.deepEqual(endedDevicesToDrop(ended, 0).sort(), ["a", "b", "c", "now"]);
    assert.deepEqual(endedDevicesToDrop(ended, -3).length, 4);
  });
});
