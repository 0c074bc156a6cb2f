// App-side callables (any signed-in user; the Firebase uid is the IM account). Device IDs are
// per user: every call acts on the caller's own users/{uid} document, never anyone else's.
import { getCertificate } from "../certificates/store";
import { callable } from "../common/callable";
import { heartbeatLeaseMs, sessionPolicy } from "../config";
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

/** The answer tells the app the lease, so it can beat comfortably within it (e.g. every third of it). */
export const heartbeat = callable({ name: "heartbeat", access: "user", schema: DeviceRequestSchema }, async ({ deviceId }, caller) => {
  await store.heartbeat(caller.uid, deviceId);
  return { deviceId, leaseSeconds: Math.round(heartbeatLeaseMs() / 1000) };
});

export const logout = callable({ name: "logout", access: "user", schema: DeviceRequestSchema }, async ({ deviceId }, caller) =>
  store.logout(caller.uid, deviceId),
);
