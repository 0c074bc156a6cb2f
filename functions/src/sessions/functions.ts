// App-side callables (any signed-in user; the Firebase uid is the IM account). Device IDs are
// per user: every call acts on the caller's own users/{uid} document, never anyone else's.
import { getCertificate } from "../certificates/store";
import { callable } from "../common/callable";
import { heartbeatLeaseMs, presenceSettings, sessionPolicy } from "../config";
import { heartbeatPlan } from "./heartbeat";
import {
  DeviceRequestSchema,
  DoBackgroundRequestSchema,
  LoginRequestSchema,
  SetOfflinePushTokenRequestSchema,
} from "./schemas";
import * as store from "./store";

export const login = callable({ name: "login", access: "user", schema: LoginRequestSchema }, async ({ deviceId, platform }, caller) =>
  store.login(caller.uid, deviceId, platform, sessionPolicy()),
);

export const setOfflinePushToken = callable(
  { name: "setOfflinePushToken", access: "user", schema: SetOfflinePushTokenRequestSchema },
  async ({ deviceId, certificateId, token }, caller) => {
    // not-found before the transaction: an unknown certificate must leave no trace.
    await getCertificate(certificateId);
    return store.setOfflinePushToken(caller.uid, deviceId, certificateId, token);
  },
);

export const doBackground = callable(
  { name: "doBackground", access: "user", schema: DoBackgroundRequestSchema },
  async ({ deviceId, unreadCount }, caller) => {
    await store.setAppState(caller.uid, deviceId, "background", unreadCount ?? null);
    return { deviceId, appState: "background" as const };
  },
);

export const doForeground = callable({ name: "doForeground", access: "user", schema: DeviceRequestSchema }, async ({ deviceId }, caller) => {
  await store.setAppState(caller.uid, deviceId, "foreground", null);
  return { deviceId, appState: "foreground" as const };
});

/**
 * The answer tells the app the lease and the interval to beat at (a third of the lease; null when
 * PRESENCE_SOURCE=im-backend makes beats unnecessary), and whether this beat was stored
 * (sessions/heartbeat.ts: only when it changes something).
 */
export const heartbeat = callable({ name: "heartbeat", access: "user", schema: DeviceRequestSchema }, async ({ deviceId }, caller) => {
  const leaseMs = heartbeatLeaseMs();
  const { source } = presenceSettings();
  const { recorded } = await store.heartbeat(caller.uid, deviceId, leaseMs, source);
  const { intervalMs } = heartbeatPlan(leaseMs, source);
  return {
    deviceId,
    leaseSeconds: Math.round(leaseMs / 1000),
    intervalSeconds: intervalMs === null ? null : Math.floor(intervalMs / 1000),
    recorded,
    presenceSource: source,
  };
});

export const logout = callable({ name: "logout", access: "user", schema: DeviceRequestSchema }, async ({ deviceId }, caller) =>
  store.logout(caller.uid, deviceId),
);
