// Active-elsewhere end to end: the emulated functions run with ACTIVE_ELSEWHERE_SECONDS=10 and
// PRESENCE_SOURCE=both (functions/.env.demo-offline-push). Bob's phone is in his pocket (app in
// the background, token reported); his laptop's desktop app comes to the front and leaves it, told
// by the app's own calls and by the IM backend's presence events.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { callOk, clearFirestore, createUser, publish, type TestUser } from "../helpers/emulators.ts";
import { PUSH_TOPIC, entryFor, killedDevice, msgKey, sendsTo, waitForMessage } from "../helpers/fanout.ts";
import { registerCertificate } from "../helpers/certificates.ts";
import { readDevice } from "../helpers/sessions.ts";
import { closePresenceClient, presenceEvent, publishPresence, waitForPresence } from "../helpers/presence.ts";
import type { PushLogEntry } from "../../functions/src/fanout/schemas.ts";

const WINDOW_MS = 10_000;

let alice: TestUser;
let bob: TestUser;
let phoneToken: string;

before(async () => {
  await clearFirestore();
  const cert = await registerCertificate(await createUser({ admin: true }));
  [alice, bob] = await Promise.all([createUser(), createUser()]);
  phoneToken = await killedDevice(bob, cert.certificateId, "phone");
});
after(closePresenceClient);

async function pushToPhone(): Promise<PushLogEntry> {
  const key = msgKey("elsewhere");
  await publish(PUSH_TOPIC, { MsgKey: key, From_Account: alice.uid, To_Account: [bob.uid], MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: "hi" } }] });
  return entryFor(await waitForMessage(key), bob.uid, "phone");
}

/** Resolves once `ms` have passed since `sinceMs` (the window's end): a wait for the rule's own deadline, not for work. */
const until = (sinceMs: number, ms: number) => new Promise((r) => setTimeout(r, Math.max(0, sinceMs + ms - Date.now())));

/**
 * The phone's outcome for a message decided at `entry.at`, `left` being when the laptop left the
 * user: within the window it is suppressed, after it pushed. A loaded machine may decide late; the
 * assertion follows the decision time either way.
 */
function assertWindow(entry: PushLogEntry, leftMs: number, what: string): void {
  const decidedAfter = entry.at.toMillis() - leftMs;
  const outcome = `${entry.outcome} ${entry.reason}`;
  process.stdout.write(`[active-elsewhere] ${what}: decided ${decidedAfter} ms after the laptop left: ${outcome}\n`);
  // The entry's time is taken a moment after the decision's: at the very edge either is right.
  if (decidedAfter <= WINDOW_MS - 100) assert.equal(outcome, "skipped active-elsewhere", `${what}: decided ${decidedAfter} ms after, within the window`);
  else if (decidedAfter > WINDOW_MS + 100) assert.equal(outcome, "sent sent", `${what}: decided ${decidedAfter} ms after, past the window`);
  else assert.ok(["skipped active-elsewhere", "sent sent"].includes(outcome), `${what}: ${outcome}`);
}

describe("active-elsewhere", () => {
  it("with the laptop's app alone in front of the user, the phone in the pocket gets no push, naming the laptop", async () => {
    const first = await pushToPhone();
    assert.equal(first.outcome, "sent", "no other device: pushed");
    await callOk("login", { deviceId: "laptop", platform: "desktop" }, bob);
    const entry = await pushToPhone();
    assert.deepEqual([entry.outcome, entry.reason], ["skipped", "active-elsewhere"]);
    assert.ok(entry.outcome === "skipped" && entry.detail.includes("laptop (desktop)"), JSON.stringify(entry));
    assert.equal((await sendsTo(phoneToken)).length, 1);
  });

  it("diagnosePush says why, with the laptop named and what to do", async () => {
    const diag = await callOk("diagnosePush", { uid: bob.uid }, await createUser({ admin: true }));
    const phone = diag.devices.find((d: { deviceId: string }) => d.deviceId === "phone");
    assert.equal(phone.eligibility.reason, "active-elsewhere");
    assert.match(phone.summary, /laptop \(desktop\)/);
    assert.equal(phone.eligibility.explanation.title, "Active on another device");
    assert.equal(diag.settings.activeElsewhereSeconds, 10);
    const laptop = diag.devices.find((d: { deviceId: string }) => d.deviceId === "laptop");
    assert.equal(laptop.eligibility.reason, "platform-without-push");
  });

  it("after the laptop goes to the background: still suppressed within ACTIVE_ELSEWHERE_SECONDS, pushed after", async () => {
    await callOk("doBackground", { deviceId: "laptop" }, bob);
    const left = (await readDevice(bob.uid, "laptop"))!.appStateAt.toMillis();
    assertWindow(await pushToPhone(), left, "right after doBackground");
    await until(left, WINDOW_MS + 1_000);
    const after = await pushToPhone();
    assert.equal(after.outcome, "sent", JSON.stringify(after));
  });

  it("the IM backend's Disconnect ends it at once, newer than the laptop app's last call; pushed once the window has passed", async () => {
    await callOk("doForeground", { deviceId: "laptop" }, bob);
    assert.equal((await pushToPhone()).reason, "active-elsewhere", "back in front (the app's own call)");
    const disconnected = Date.now();
    await publishPresence(presenceEvent(bob.uid, "laptop", "Disconnect", disconnected, "LinkClose"));
    await waitForPresence(bob.uid, "laptop", "Disconnect", disconnected);
    assertWindow(await pushToPhone(), disconnected, "right after the laptop's Disconnect");
    await until(disconnected, WINDOW_MS + 1_000);
    assert.equal((await pushToPhone()).outcome, "sent");
  });
});
