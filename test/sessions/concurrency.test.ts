// Races: whatever order concurrent calls land in, the stored state stays consistent (no token
// with two owners, no token on a session that is not logged in).
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { callOk, callRetrying, clearFirestore, createUser, createUsers, mapLimit, type TestUser } from "../helpers/emulators.ts";
import { assertSessionInvariants, fakeFcmToken, readDevice, readTokenOwner } from "../helpers/sessions.ts";
import { registerCertificate } from "../helpers/certificates.ts";
import { tokenHash } from "../../functions/src/sessions/schemas.ts";
import { unbindToken } from "../../functions/src/sessions/store.ts";

let certificateId: number;

before(async () => {
  await clearFirestore();
  certificateId = (await registerCertificate(await createUser({ admin: true }))).certificateId;
});

describe("concurrency", () => {
  it("logout racing setOfflinePushToken on the same device, many rounds", async (t) => {
    const user = await createUser();
    const outcomes = { tokenFirst: 0, logoutFirst: 0 };
    for (let round = 0; round < 12; round++) {
      const token = fakeFcmToken();
      await callOk("login", { deviceId: "racer", platform: "android" }, user);
      const [set, out] = await Promise.all([
        callRetrying("setOfflinePushToken", { deviceId: "racer", certificateId, token }, user),
        callRetrying("logout", { deviceId: "racer" }, user),
      ]);
      assert.equal(out.error, undefined, JSON.stringify(out.error));
      assert.equal(out.result.ended, true);
      if (set.error) {
        // Logout won: the token arrived for a session that had ended.
        assert.equal(set.error.status, "FAILED_PRECONDITION", JSON.stringify(set.error));
        outcomes.logoutFirst++;
      } else {
        outcomes.tokenFirst++;
      }
      const d = await readDevice(user.uid, "racer");
      assert.equal(d?.session, "logged-out");
      assert.equal(d?.token, null, `round ${round}: a logged-out session holds a token`);
      assert.equal(await readTokenOwner(token), null, `round ${round}: the token still has an owner`);
      await assertSessionInvariants();
    }
    assert.equal(outcomes.tokenFirst + outcomes.logoutFirst, 12);
    t.diagnostic(`token first: ${outcomes.tokenFirst} rounds, logout first: ${outcomes.logoutFirst} rounds`);
  });

  it("a login on another device racing setOfflinePushToken: the kicked session never keeps the token", async () => {
    const user = await createUser();
    for (let round = 0; round < 6; round++) {
      const [first, second] = round % 2 ? ["p1", "p2"] : ["p2", "p1"];
      await callOk("login", { deviceId: first, platform: "android" }, user);
      const token = fakeFcmToken();
      const [set, login] = await Promise.all([
        callRetrying("setOfflinePushToken", { deviceId: first, certificateId, token }, user),
        callRetrying("login", { deviceId: second, platform: "android" }, user),
      ]);
      assert.equal(login.error, undefined);
      assert.ok(!set.error || set.error.status === "FAILED_PRECONDITION", JSON.stringify(set.error));
      const d = await readDevice(user.uid, first);
      assert.equal(d?.session, "kicked");
      assert.equal(d?.token, null);
      assert.equal(await readTokenOwner(token), null);
      await assertSessionInvariants();
    }
  });

  it("50 devices of 50 users registering, every token claimed by two users at the same moment", async (t) => {
    const users = await createUsers(50);
    await mapLimit(users, 8, (u, i) => callOk("login", { deviceId: `dev-${i}`, platform: "android" }, u));
    // Pairs of users (same phone, two accounts) report the same token at the same moment. The two
    // calls of a pair are sent together, and 4 pairs race at a time: 8 concurrent transactions is
    // what the Functions emulator serves on a 2-core machine (FUNCTIONS_EMULATOR_PARALLEL), and the
    // race under test is within a pair. ABORTED (contention) is answered for the app to retry, so
    // the test retries as an app does.
    const tokens = Array.from({ length: 25 }, () => fakeFcmToken());
    const stats = { retries: 0 };
    const pairResults = await mapLimit(tokens, 4, (token, p) =>
      Promise.all([p, p + 25].map((i) => callRetrying("setOfflinePushToken", { deviceId: `dev-${i}`, certificateId, token }, users[i]!, stats))),
    );
    for (const res of pairResults.flat()) assert.equal(res.error, undefined, JSON.stringify(res.error));
    t.diagnostic(`retries after ABORTED/UNAVAILABLE: ${stats.retries}`);

    const { tokens: tokenDocs } = await assertSessionInvariants();
    assert.equal(tokenDocs, 25, "each token has exactly one owner record");
    for (let p = 0; p < 25; p++) {
      const owner = await readTokenOwner(tokens[p] as string);
      assert.ok(owner);
      const holders: TestUser[] = [];
      for (const i of [p, p + 25]) {
        const d = await readDevice(users[i]!.uid, `dev-${i}`);
        assert.equal(d?.session, "logged-in");
        if (d?.token) holders.push(users[i]!);
      }
      assert.equal(holders.length, 1, `token ${p} is held by ${holders.length} devices`);
      assert.equal(holders[0]!.uid, owner.uid);
    }
  });

  it("unbindToken (for senders, when FCM says a token is gone) clears both sides; racing a re-report stays consistent", async () => {
    const user = await createUser();
    await callOk("login", { deviceId: "gone", platform: "android" }, user);
    const token = fakeFcmToken();
    await callOk("setOfflinePushToken", { deviceId: "gone", certificateId, token }, user);
    assert.deepEqual(await unbindToken(tokenHash(token)), { uid: user.uid, deviceId: "gone" });
    assert.equal((await readDevice(user.uid, "gone"))?.token, null);
    assert.equal((await readDevice(user.uid, "gone"))?.session, "logged-in", "the session itself goes on");
    assert.equal(await readTokenOwner(token), null);
    assert.equal(await unbindToken(tokenHash(token)), null, "a second unbind finds nothing");

    for (let round = 0; round < 5; round++) {
      const t = fakeFcmToken();
      await callOk("setOfflinePushToken", { deviceId: "gone", certificateId, token: t }, user);
      await Promise.all([unbindToken(tokenHash(t)), callOk("setOfflinePushToken", { deviceId: "gone", certificateId, token: t }, user)]);
      await assertSessionInvariants();
    }
  });
});
