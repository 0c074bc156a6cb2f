// The Admin SDK, initialised once for the target: on the emulators it talks to the Auth emulator
// (FIREBASE_AUTH_EMULATOR_HOST, set by resolveTarget); on a project it uses Application Default
// Credentials.
import type { App } from "firebase-admin/app";
import type { Auth } from "firebase-admin/auth";
import type { Target } from "./target.ts";

let app: App | undefined;

export async function adminAuth(target: Target): Promise<Auth> {
  // Loaded on first use: most commands never need the Admin SDK's start-up cost.
  const { initializeApp } = await import("firebase-admin/app");
  const { getAuth } = await import("firebase-admin/auth");
  app ??= initializeApp(
    {
      projectId: target.projectId,
      // With user ADC (gcloud auth application-default login) custom tokens are signed through the
      // IAM API as this service account.
      ...(target.mode === "project" && target.signer ? { serviceAccountId: target.signer } : {}),
    },
    "offline-push-cli",
  );
  return getAuth(app);
}
