// Seeds the `npm start` demo on fresh emulators: an operator with the admin claim, a push
// certificate made from a freshly generated key (known to the fake FCM), and two app users, one of
// them logged in on an Android phone with its app in the background (so it gets offline pushes).
// The users have display names: a message without a Title is titled with its sender's, so the
// demo's first push says "Alice", not a 28-character uid. Then prints what a newcomer can try next.
import { call, callOk, createUser, PROJECT, REGION } from "../test/helpers/emulators.ts";
import { fakeFcm } from "../test/helpers/fakeFcm.ts";

const FUNCTIONS = `http://${process.env.FUNCTIONS_EMULATOR_HOST ?? "127.0.0.1:5001"}/${PROJECT}/${REGION}`;
const FAKE_FCM = process.env.FAKE_FCM_CONTROL_ORIGIN ?? "http://127.0.0.1:9471";
// The CLI finds shifted emulators through the same variable as npm start: say it in every command line.
const OFFSET = Number(process.env.OFFLINE_PUSH_PORT_OFFSET ?? 0);
const CLI = `${OFFSET ? `OFFLINE_PUSH_PORT_OFFSET=${OFFSET} ` : ""}npx offline-push`;
const CONSOLE = process.env.CONSOLE_URL ?? "http://127.0.0.1:5000";

async function main() {
  const operator = await createUser({ admin: true, email: "operator@example.com", displayName: "Olivia (operator)" });
  const alice = await createUser({ email: "alice@example.com", displayName: "Alice" });
  const bob = await createUser({ email: "bob@example.com", displayName: "Bob" });

  const serviceAccount = await fakeFcm.createServiceAccount("demo-chat-app");
  const cert = await callOk("registerPushCertificate", { serviceAccount, label: "demo chat app" }, operator);

  const deviceId = "bobs-pixel-8";
  const token = `demo-fcm-token-${bob.uid}`;
  await callOk("login", { deviceId, platform: "android" }, bob);
  await callOk("setOfflinePushToken", { deviceId, certificateId: cert.certificateId, token }, bob);
  await callOk("doBackground", { deviceId }, bob);

  const sample = JSON.stringify({
    data: {
      to: bob.uid,
      body: [{ MsgType: "TIMTextElem", MsgContent: { Text: "Are you coming tonight?" } }],
      offlinePushInfo: { Ext: JSON.stringify({ conv: `c2c_${alice.uid}` }), AndroidInfo: { GoogleChannelID: "chat" } },
    },
  });
  const pubsubMessage = JSON.stringify({
    MsgKey: "demo-1",
    From_Account: alice.uid,
    To_Account: [bob.uid],
    MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: "hi from the IM backend" } }],
  });
  const probe = await call("listPushCertificates", {}, operator);
  const host = (name: string, fallback: string) => `http://${process.env[name] ?? fallback}`;

  const out = `
================================================================================
 IM offline push: the demo is running on the emulators
================================================================================
 Functions   ${FUNCTIONS}/<name>
 Auth        ${host("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")}   Firestore ${host("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8080")}   Pub/Sub ${host("PUBSUB_EMULATOR_HOST", "127.0.0.1:8085")}
 Fake FCM    ${FAKE_FCM}/  (every push FCM would deliver; also printed above as [fake-fcm])

 Console     ${CONSOLE}   sign in as operator@example.com / password-123
             Bob's phone, and why it gets a push or not: ${CONSOLE}/#/user/${bob.uid}
 Operator    operator@example.com (admin claim)   certificate ${cert.certificateId} (${cert.projectId}) ${probe.error ? "(list failed!)" : "registered"}
 App users   Alice  alice@example.com (uid ${alice.uid})
             Bob    bob@example.com   (uid ${bob.uid}), logged in on "${deviceId}", app in the background
 Passwords   password-123

 ID tokens (valid one hour; sign in again with accounts:signInWithPassword for new ones):
   export OPERATOR_TOKEN=${operator.idToken}
   export ALICE_TOKEN=${alice.idToken}
   export BOB_TOKEN=${bob.idToken}

 Try: Alice sends Bob a message; Bob's phone gets the push, titled "Alice" (her display name; see the fake FCM):
   curl -s ${FUNCTIONS}/sendMessage -H "Authorization: Bearer $ALICE_TOKEN" \\
     -H 'content-type: application/json' -d '${sample}'

 Or publish as the IM backend would, then follow the message:
   echo '${pubsubMessage}' | ${CLI} publish -
   ${CLI} trace demo-1

 Then bring Bob's app to the foreground and send again: no push this time.
   curl -s ${FUNCTIONS}/doForeground -H "Authorization: Bearer $BOB_TOKEN" \\
     -H 'content-type: application/json' -d '{"data":{"deviceId":"${deviceId}"}}'

 Operator CLI (the same commands serve a real project with --project <id>; --help lists them all):
   ${CLI} user bob@example.com   # why Bob gets a push now, or why not (a uid or phone number works too)
   ${CLI} cert add --demo        # a service-account key the fake FCM trusts, registered
   ${CLI} cert list              # certificates and their health
   ${CLI} stats                  # pushes per day
 A key file of your own (into .emulators/, git-ignored: it holds a private key):
   curl -s -X POST ${FAKE_FCM}/control/service-accounts -H 'content-type: application/json' -d '{}' > .emulators/demo-key.json
   ${CLI} cert add .emulators/demo-key.json --label "my demo key"
================================================================================
`;
  process.stdout.write(out);
}

main().catch((err) => {
  process.stderr.write(`seeding failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
