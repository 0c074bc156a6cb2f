// One throttled project cannot starve the others: a batch whose project FCM throttles for longer
// than FANOUT_MAX_INLINE_WAIT_SECONDS gives its function slot back at once and is resumed by Cloud
// Tasks when the pause is over (functions/src/fanout/resume.ts), instead of a function sleeping
// through it. The Functions emulator runs at most 8 executions at a time (FUNCTIONS_EMULATOR_PARALLEL),
// as a deployment has a bounded number of instances: 16 events of a throttled project, each of which
// used to hold an execution for the whole invocation budget, would fill them, and another project's
// pushes would wait behind them.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { clearFirestore, createUser, createUsers, publish, type TestUser } from "../helpers/emulators.ts";
import { registerCertificate } from "../helpers/certificates.ts";
import { PUSH_TOPIC, killedDevice, msgKey, sendsTo, waitForMessage } from "../helpers/fanout.ts";
import { fakeFcm } from "../helpers/fakeFcm.ts";

let admin: TestUser;

before(async () => {
  await clearFirestore();
  admin = await createUser({ admin: true });
});

after(async () => {
  await fakeFcm.clearErrors();
});

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const text = [{ MsgType: "TIMTextElem", MsgContent: { Text: "hi" } }];

/** Publishes one event to one recipient; returns its MsgKey and when it was published. */
async function publishOne(uid: string, prefix: string): Promise<{ key: string; at: number }> {
  const key = msgKey(prefix);
  const at = Date.now();
  await publish(PUSH_TOPIC, { MsgKey: key, From_Account: "stream-sender", To_Account: [uid], MsgBody: text });
  return { key, at };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

describe("one throttled project cannot starve the others", () => {
  it("project A answers 429 with Retry-After: 60 to a stream of 16 events; project B's 12 events in the same 35 s are each pushed within seconds; A's devices are pushed exactly once, after the pause", async (t) => {
    const certA = await registerCertificate(admin, "throttled project A");
    const certB = await registerCertificate(admin, "healthy project B");
    const usersA = await createUsers(16);
    const usersB = await createUsers(12);
    const tokensA = new Map<string, string>();
    const tokensB = new Map<string, string>();
    for (const u of usersA) tokensA.set(u.uid, await killedDevice(u, certA.certificateId));
    for (const u of usersB) tokensB.set(u.uid, await killedDevice(u, certB.certificateId));
    // Every request of project A is throttled for 40 s: the events' batches meet it, their resumptions (60 s later) do not.
    const throttle = await fakeFcm.addErrorRule({ projectId: certA.sa.project_id, preset: "quota-exceeded", retryAfterSeconds: 60, forMs: 40_000 });

    // A's events every 0.75 s from the start, B's every 3 s from 1.5 s: both streams overlap.
    const publishedA: Array<{ key: string; at: number; uid: string }> = [];
    const publishedB: Array<{ key: string; at: number; uid: string }> = [];
    const streamA = (async () => {
      for (const u of usersA) {
        publishedA.push({ ...(await publishOne(u.uid, "stream-a")), uid: u.uid });
        await pause(750);
      }
    })();
    const streamB = (async () => {
      await pause(1_500);
      for (const u of usersB) {
        publishedB.push({ ...(await publishOne(u.uid, "stream-b")), uid: u.uid });
        await pause(3_000);
      }
    })();
    await Promise.all([streamA, streamB]);

    // B: each pushed within seconds of its publication, while A's stream was being throttled.
    const latencies: number[] = [];
    for (const p of publishedB) {
      await waitForMessage(p.key, 60_000);
      const [accepted] = (await sendsTo(tokensB.get(p.uid)!)).filter((s) => s.answeredStatus === 200);
      assert.ok(accepted, `B's device of ${p.key} was pushed`);
      latencies.push(Date.parse(accepted.receivedAt) - p.at);
    }
    assert.ok((await fakeFcm.errorRule(throttle.id)).hits >= 1, "FCM throttled project A meanwhile");
    t.diagnostic(`project B, publish to FCM request: median ${median(latencies)} ms, max ${Math.max(...latencies)} ms (${latencies.join(", ")})`);
    for (const ms of latencies) assert.ok(ms < 15_000, `a push of project B waited ${ms} ms`);

    // A: every device pushed exactly once, and none before the pause FCM asked for was over.
    const firstThrottled = Math.min(
      ...(await Promise.all(usersA.map(async (u) => (await sendsTo(tokensA.get(u.uid)!)).filter((s) => s.answeredStatus === 429).map((s) => Date.parse(s.answeredAt))))).flat(),
    );
    const resumedAfter: number[] = [];
    for (const p of publishedA) {
      const docs = await waitForMessage(p.key, 180_000);
      assert.ok(docs[0]!.claims >= 2, `${p.key}: resumed by another delivery`);
      const sends = await sendsTo(tokensA.get(p.uid)!);
      const accepted = sends.filter((s) => s.answeredStatus === 200);
      assert.equal(accepted.length, 1, `A's device of ${p.key} accepted ${accepted.length} times`);
      assert.ok(sends.every((s) => s.answeredStatus === 200 || s.answeredStatus === 429), "throttled or accepted, nothing else");
      const acceptedAt = Date.parse(accepted[0]!.receivedAt);
      assert.ok(acceptedAt >= firstThrottled + 60_000, `A's device of ${p.key} was pushed ${acceptedAt - firstThrottled} ms after the first 429: before the pause was over`);
      resumedAfter.push(acceptedAt - p.at);
    }
    t.diagnostic(`project A, publish to the push after the pause: median ${median(resumedAfter)} ms, max ${Math.max(...resumedAfter)} ms`);
  });
});
