// offline-push publish / user / trace / test-push / stats, as subprocesses against the emulators:
// an event published by the CLI reaches the fake FCM, and the diagnostics commands explain it.
import assert from "node:assert/strict";
import { randomInt, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { callOk, createUser, eventually, type TestUser } from "../helpers/emulators.ts";
import { killedDevice, msgKey, sendsTo, waitForMessage } from "../helpers/fanout.ts";
import { presenceEvent, waitForPresence } from "../helpers/presence.ts";
import { ANSI, runCli, runHuman, runJson } from "./run.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "offline-push-cli-"));
let alice: TestUser;
let bob: TestUser;
let bobToken: string;
let certificateId: number;
const key = msgKey("cli");
const bobPhone = `+1555${String(randomInt(1_000_000, 9_999_999))}`;

before(async () => {
  [alice, bob] = await Promise.all([createUser({ displayName: "Alice Example" }), createUser({ displayName: "Bob Example", phoneNumber: bobPhone })]);
  // The certificate through the CLI too: what an operator following README does.
  certificateId = (await runJson<{ certificateId: number }>(["cert", "add", "--demo", "--label", "cli diag"])).certificateId;
  bobToken = await killedDevice(bob, certificateId, "pixel-8");
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe("offline-push publish", () => {
  it("publishes an event file; the push reaches the fake FCM", async () => {
    const file = path.join(dir, "event.json");
    writeFileSync(file, JSON.stringify({ MsgKey: key, From_Account: alice.uid, To_Account: [bob.uid], MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: "see you at 8" } }] }));
    const out = await runHuman(["publish", file]);
    assert.match(out, new RegExp(`Published ${key} to im-offline-push`));
    assert.match(out, new RegExp(`offline-push trace ${key}`));
    const sends = await eventually(async () => {
      const s = await sendsTo(bobToken);
      return s.length > 0 ? s : undefined;
    }, { timeoutMs: 90_000, what: "the push at the fake FCM" });
    assert.equal(sends.length, 1);
    assert.equal((sends[0]!.message as { data?: Record<string, string> }).data?.msgKey, key);
  });

  it("publish - reads stdin; --json answers the message ID", async () => {
    const other = msgKey("cli-stdin");
    const res = await runJson<{ messageId: string; msgKey: string; recipients: number; topic: string }>(["publish", "-"], {
      input: JSON.stringify({ MsgKey: other, From_Account: alice.uid, To_Account: bob.uid, OfflinePushInfo: { PushFlag: 1 } }),
    });
    assert.equal(res.msgKey, other);
    assert.equal(res.recipients, 1);
    assert.equal(res.topic, "im-offline-push");
    assert.match(res.messageId, /^\S+$/);
  });

  it("an event the fan-out would reject fails here, naming the field, exit 2", async () => {
    const res = await runCli(["publish", "-", "--json"], { input: JSON.stringify({ MsgKey: "x", From_Account: alice.uid, To_Account: [], MsgBody: [] }) });
    assert.equal(res.code, 2);
    assert.match(JSON.parse(res.stdout).error.message, /To_Account/);
    const notJson = await runCli(["publish", "-"], { input: "{nope" });
    assert.equal(notJson.code, 2);
    assert.match(notJson.stderr, /stdin is not valid JSON/);
  });
});

describe("offline-push trace / user / test-push / stats", () => {
  it("trace follows the message to FCM's acceptance (table and --json)", async () => {
    await waitForMessage(key, 90_000);
    const json = await runJson<{ found: boolean; counts: { sent: number }; devices: Array<{ uid: string; deviceId: string; outcome: string; stages: Array<{ stage: string }> }> }>(["trace", key]);
    assert.equal(json.found, true);
    assert.equal(json.counts.sent, 1);
    const device = json.devices.find((d) => d.uid === bob.uid);
    assert.equal(device?.outcome, "sent");
    assert.deepEqual(device?.stages.map((s) => s.stage).slice(0, 1), ["published"]);
    const human = await runHuman(["trace", key]);
    assert.match(human, new RegExp(key));
    assert.match(human, /pixel-8/);
    assert.match(human, /to 1 recipient: 1 sent/);
    assert.match(human, /accepted \d\d:\d\d/);
    assert.doesNotMatch(human, ANSI);
    // The summary once, one unit style, and a table no wider than the terminal.
    assert.equal(human.split("1 sent").length - 1, 1, human);
    assert.doesNotMatch(human, /\(s\)|1 devices|\d\.\d\d s/);
    const narrow = await runCli(["trace", key], { env: { COLUMNS: "80" } });
    assert.equal(narrow.code, 0, narrow.stderr);
    for (const l of narrow.stdout.split("\n")) assert.ok(l.length <= 80, `${l.length} columns: ${l}`);
    assert.match(narrow.stdout, new RegExp(bob.uid.slice(0, 6)));
  });

  it("publish takes a Read and a Recall (checked first); trace shows the conversation and what followed the message", async () => {
    await waitForMessage(key, 90_000);
    const eventKey = msgKey("cli-read");
    const read = await runJson<{ event: string; eventKey: string; conversation: string }>(["publish", "-"], {
      input: JSON.stringify({ Event: "Read", EventKey: eventKey, Account: bob.uid, Conversation: `c2c_${alice.uid}` }),
    });
    assert.deepEqual([read.event, read.eventKey, read.conversation], ["Read", eventKey, `c2c_${alice.uid}`]);
    await eventually(async () => ((await sendsTo(bobToken)).some((s) => (s.message as { data?: Record<string, string> }).data?.type === "clear") ? true : undefined), {
      timeoutMs: 90_000,
      what: "the clear at the fake FCM",
    });
    const out = await runHuman(["trace", key]);
    assert.match(out, new RegExp(`conversation c2c_${alice.uid}`));
    assert.match(out, /What followed \(1\)/);
    assert.match(out, new RegExp(`Read ${eventKey}`));

    const recall = await runJson<{ event: string; msgKey: string }>(["publish", "-"], { input: JSON.stringify({ Event: "Recall", MsgKey: key, From_Account: alice.uid }) });
    assert.deepEqual([recall.event, recall.msgKey], ["Recall", key]);
    // Its replacement arrives before the next test counts this device's sends.
    await eventually(async () => ((await sendsTo(bobToken)).some((s) => (s.message as { data?: Record<string, string> }).data?.type === "recall") ? true : undefined), {
      timeoutMs: 90_000,
      what: "the recall at the fake FCM",
    });
    const bad = await runCli(["publish", "-", "--json"], { input: JSON.stringify({ Event: "Read", EventKey: "x", Account: bob.uid }) });
    assert.equal(bad.code, 2);
    assert.match(JSON.parse(bad.stdout).error.message, /Conversation/);
    const unknown = await runCli(["publish", "-", "--json"], { input: JSON.stringify({ Event: "Edit", MsgKey: key }) });
    assert.equal(unknown.code, 2);
    assert.match(JSON.parse(unknown.stdout).error.message, /Event must be one of Read, Recall/);
  });

  it("user finds the account by e-mail or phone number and shows its name and e-mail; an unknown one is no such account, exit 1", async () => {
    const byEmail = await runHuman(["user", bob.email]);
    assert.match(byEmail, /^Bob Example on /);
    assert.match(byEmail, new RegExp(`uid\\s+${bob.uid}`));
    assert.match(byEmail, new RegExp(`contact\\s+${bob.email.replace(/[.]/g, "\\.")}, \\${bobPhone}`));
    const byPhone = await runJson<{ uid: string; foundBy: string; displayName: string; email: string }>(["user", bobPhone]);
    assert.deepEqual([byPhone.uid, byPhone.foundBy, byPhone.displayName, byPhone.email], [bob.uid, "phoneNumber", "Bob Example", bob.email]);
    const nobody = `nobody-${randomUUID()}@example.com`;
    const missing = await runCli(["user", nobody]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, new RegExp(`no such account: Firebase Auth has no user with the uid, e-mail address or phone number "${nobody}"`));
    const missingJson = await runCli(["user", nobody, "--json"]);
    assert.equal(missingJson.code, 1);
    assert.equal((JSON.parse(missingJson.stdout) as { error: { code: string } }).error.code, "not-found");
  });

  it("user says the device would get a push now, then why not once the app is in the foreground", async () => {
    const json = await runJson<{ wouldPushNow: boolean; eligibleDeviceIds: string[]; recent: Array<{ msgKey: string | null }> }>(["user", bob.uid]);
    assert.equal(json.wouldPushNow, true);
    assert.deepEqual(json.eligibleDeviceIds, ["pixel-8"]);
    assert.ok(json.recent.some((m) => m.msgKey === key));
    const yes = await runHuman(["user", bob.uid]);
    assert.match(yes, /pixel-8/);
    assert.match(yes, /│ yes/);

    await callOk("doForeground", { deviceId: "pixel-8" }, bob);
    const no = await runHuman(["user", bob.uid]);
    assert.match(no, /no: foreground/);
    assert.match(no, /what to do:/);
    const noJson = await runJson<{ wouldPushNow: boolean; devices: Array<{ eligibility: { reason: string | null } }> }>(["user", bob.uid]);
    assert.equal(noJson.wouldPushNow, false);
    assert.equal(noJson.devices[0]?.eligibility.reason, "foreground");
  });

  it("publish --presence: the backend's Connect shows in user as connected, its Disconnect makes the device pushable; an unknown device is listed; a bad event fails naming the field", async () => {
    const connectAt = Date.now();
    const file = path.join(dir, "presence.json");
    writeFileSync(file, JSON.stringify({ Account: bob.uid, DeviceId: "pixel-8", Action: "Connect", EventTime: connectAt }));
    const published = await runHuman(["publish", "--presence", file]);
    assert.match(published, /Published 1 presence event\(s\) to im-presence/);
    await waitForPresence(bob.uid, "pixel-8", "Connect", connectAt);
    const connected = await runHuman(["user", bob.uid]);
    assert.match(connected, /no: connected/);
    assert.match(connected, /by im-backend/);
    assert.match(connected, /IM: Connect/);
    assert.match(connected, /presence source both \(lease \d+ s\), active-elsewhere 10 s/);

    const disconnectAt = connectAt + 1;
    const batch = { Events: [presenceEvent(bob.uid, "pixel-8", "Disconnect", disconnectAt, "LinkClose"), presenceEvent(bob.uid, "no-such-device", "Connect", disconnectAt)] };
    const res = await runJson<{ events: number; actions: Record<string, number>; topic: string }>(["publish", "--presence", "-"], { input: JSON.stringify(batch) });
    assert.deepEqual([res.events, res.actions, res.topic], [2, { Disconnect: 1, Connect: 1 }, "im-presence"]);
    await waitForPresence(bob.uid, "pixel-8", "Disconnect", disconnectAt);
    const json = await runJson<{ wouldPushNow: boolean; devices: Array<{ deviceId: string; connection: { connected: boolean; decidedBy: string } }> }>(["user", bob.uid]);
    assert.equal(json.wouldPushNow, true, "the Disconnect is newer than the app's doForeground");
    assert.deepEqual(json.devices.find((d) => d.deviceId === "pixel-8")?.connection.decidedBy, "im-backend");
    const listed = await eventually(async () => {
      const out = await runHuman(["user", bob.uid]);
      return /unknown-device/.test(out) ? out : undefined;
    }, { what: "the unknown device's record in offline-push user" });
    assert.match(listed, /Presence events not applied/);
    assert.match(listed, /no-such-device/);
    assert.match(listed, /IM: Disconnect \(LinkClose\)/);

    const bad = await runCli(["publish", "--presence", "-", "--json"], { input: JSON.stringify({ Events: [presenceEvent(bob.uid, "pixel-8", "Connect"), { ...presenceEvent(bob.uid, "pixel-8", "Connect"), Action: "Bye" }] }) });
    assert.equal(bad.code, 2);
    assert.match(JSON.parse(bad.stdout).error.message, /Events\.1\.Action/);
  });

  it("test-push --dry-run validates with FCM; test-push --device sends (app state ignored)", async () => {
    const dry = await runJson<{ dryRun: boolean; devices: Array<{ deviceId: string; result: string }> }>(["test-push", bob.uid, "--dry-run"]);
    assert.equal(dry.dryRun, true);
    assert.deepEqual(dry.devices.map((d) => [d.deviceId, d.result]), [["pixel-8", "validated"]]);
    const before = (await sendsTo(bobToken)).length;
    const human = await runHuman(["test-push", bob.uid, "--device", "pixel-8", "--title", "CLI test"]);
    assert.match(human, /Test push to/);
    assert.match(human, /pixel-8\s+│ sent/);
    assert.match(human, /projects\/[^/]+\/messages\//);
    const after = await sendsTo(bobToken);
    assert.equal(after.length, before + 1);
    const bad = await runCli(["test-push", bob.uid, "--device", "a/b"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--device /);
  });

  it("stats shows today with a bar chart (table and --json)", async () => {
    const json = await runJson<{ from: string; to: string; days: Array<{ date: string; sent: number }>; totals: { sent: number } }>(["stats", "--days", "3"]);
    assert.equal(json.days.length, 3);
    assert.equal(json.to, new Date().toISOString().slice(0, 10));
    assert.ok(json.totals.sent >= 1, JSON.stringify(json.totals));
    const human = await runHuman(["stats"]);
    assert.match(human, new RegExp(json.to));
    // Series told apart by glyph, not only colour (there is none off a terminal).
    assert.match(human, /█ sent ▒ skipped ░ failed/);
    assert.match(human, /█/);
    const bad = await runCli(["stats", "--days", "0"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--days must be at least 1/);
  });
});

describe("offline-push user: push preferences", () => {
  it("shows the preferences, and answers for a conversation, mentioned or not (table and --json)", async () => {
    const carol = await createUser();
    await killedDevice(carol, certificateId);
    await callOk("setPushPreferences", { conversations: { "group_team-42": { mode: "mentions" }, c2c_spam: { mode: "none" } }, locale: "de-DE", doNotDisturb: { start: "22:00", end: "22:00", timeZone: "Europe/Berlin", allowMentions: true } }, carol);
    const human = await runHuman(["user", carol.uid, "--conversation", "group_team-42"]);
    assert.match(human, /Push preferences/);
    assert.match(human, /a message in group_team-42/);
    assert.match(human, /all day Europe\/Berlin, mentions allowed/);
    assert.match(human, /de-DE/);
    assert.match(human, /group_team-42\s+│ mentions/);
    assert.match(human, /c2c_spam\s+│ none/);
    assert.match(human, /no: not-mentioned/);
    assert.match(human, /Mentions only/, "the explanation table's row");
    const mentioned = await runJson<{ wouldPushNow: boolean; message: { conversation: string; mentioned: boolean } }>(["user", carol.uid, "--conversation", "group_team-42", "--mentioned"]);
    assert.deepEqual(mentioned.message, { conversation: "group_team-42", mentioned: true });
    assert.equal(mentioned.wouldPushNow, true, "mentions pass mentions-only and the all-day window (allowMentions)");
    const quiet = await runHuman(["user", carol.uid]);
    assert.match(quiet, /no: quiet-hours/);
    assert.match(quiet, /Quiet hours/);
    const bad = await runCli(["user", carol.uid, "--conversation", "team-42"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--conversation must be a conversation ID/);
  });
});
