// A revoked operator loses access at once, not when the ID token expires (up to an hour): the
// operator callables check revocation (verifyIdToken(token, true)) through the Auth emulator.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { getApps, initializeApp } from "firebase-admin/app";
import { getAuth } from "firebase-admin/auth";
import { PROJECT, call, createUser, eventually, signIn, type TestUser } from "../helpers/emulators.ts";
import { runJson } from "../cli/run.ts";

const auth = () => getAuth(getApps().find((a) => a.name === "revocation-test") ?? initializeApp({ projectId: PROJECT }, "revocation-test"));

/** The token's auth_time (seconds): Auth compares it with the revocation time, also in whole seconds. */
function authTime(idToken: string): number {
  const payload = JSON.parse(Buffer.from(idToken.split(".")[1] ?? "", "base64url").toString("utf8")) as { auth_time: number };
  return payload.auth_time;
}

/** Until the wall clock is in a later second than the sign-in: a revocation in the same second would not count against it. */
async function afterSignInSecond(user: TestUser): Promise<void> {
  const signedIn = authTime(user.idToken);
  await eventually(async () => (Math.floor(Date.now() / 1000) > signedIn ? true : undefined), { timeoutMs: 5_000, intervalMs: 50, what: "the next second" });
}

describe("operator access ends when the operator's sign-in is revoked", () => {
  let operator: TestUser;

  before(async () => {
    operator = await createUser({ admin: true });
  });

  it("revoking the refresh tokens: the same ID token is refused at the next operator call; a new sign-in works", async () => {
    assert.equal((await call("listPushCertificates", {}, operator)).error, undefined, "the operator works before");
    await afterSignInSecond(operator);
    await auth().revokeRefreshTokens(operator.uid);
    for (const name of ["listPushCertificates", "diagnosePush", "pushStats"]) {
      const res = await call(name, name === "diagnosePush" ? { uid: operator.uid } : name === "pushStats" ? { from: "2026-01-01", to: "2026-01-02" } : {}, operator);
      assert.equal(res.error?.status, "UNAUTHENTICATED", `${name}: ${JSON.stringify(res.error)}`);
      assert.match(res.error?.message ?? "", /revoked/);
    }
    // A new sign-in (a new ID token) works again: the claim itself was not touched.
    const again = await signIn(operator.email);
    assert.equal((await call("listPushCertificates", {}, again)).error, undefined);
  });

  it("`offline-push admin revoke` takes the claim away and the ID token it was in stops working at once", async () => {
    const second = await createUser({ admin: true });
    assert.equal((await call("listPushCertificates", {}, second)).error, undefined);
    await afterSignInSecond(second);
    const res = await runJson<{ admin: boolean }>(["admin", "revoke", second.email]);
    assert.equal(res.admin, false);
    const refused = await call("listPushCertificates", {}, second);
    assert.equal(refused.error?.status, "UNAUTHENTICATED", JSON.stringify(refused.error));
  });

  it("a disabled operator account is refused too", async () => {
    const third = await createUser({ admin: true });
    await auth().updateUser(third.uid, { disabled: true });
    const res = await call("listPushCertificates", {}, third);
    assert.equal(res.error?.status, "UNAUTHENTICATED", JSON.stringify(res.error));
  });
});
