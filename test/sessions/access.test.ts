// Who may call what, and what bad input does: unauthenticated callers, malformed fields (each one
// named in the error, nothing half-written), and users reaching for another user's device. Also
// that clients cannot read or write session data directly, with data the callables wrote.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { PROJECT, REQUEST_DEADLINE_MS, adminDb, call, callOk, clearFirestore, createUser, createUsers, type TestUser } from "../helpers/emulators.ts";
import { fakeFcmToken, readDevice, readTokenOwner } from "../helpers/sessions.ts";
import { registerCertificate } from "../helpers/certificates.ts";
import { tokenHash } from "../../functions/src/sessions/schemas.ts";

const callables = ["login", "setOfflinePushToken", "doBackground", "doForeground", "heartbeat", "logout"];

let certificateId: number;
let user: TestUser;

before(async () => {
  await clearFirestore();
  certificateId = (await registerCertificate(await createUser({ admin: true }))).certificateId;
  user = await createUser();
  await callOk("login", { deviceId: "d1", platform: "android" }, user);
});

describe("authentication", () => {
  for (const name of callables) {
    it(`${name}: unauthenticated -> unauthenticated`, async () => {
      const res = await call(name, { deviceId: "d1", platform: "android", certificateId, token: "t" });
      assert.equal(res.error?.status, "UNAUTHENTICATED");
    });
  }
});

const long = (n: number) => "a".repeat(n);
const goodToken = fakeFcmToken();
const deviceIdCases: [string, unknown][] = [
  ["missing", undefined],
  ["empty", ""],
  ["129 characters", long(129)],
  ["a slash", "a/b"],
  ["a space", "a b"],
  ["non-ASCII", "téléphone"],
  ["reserved __x__", "__devices__"],
  ["a number", 42],
  ["null", null],
];

/** Every callable's malformed requests, with the field the error must name. CERT: the registered certificate (known only at run time). */
const CERT = Symbol("certificateId");
const cases: { name: string; what: string; data: Record<string, unknown>; field: string }[] = [];
for (const name of callables) {
  const base: Record<string, unknown> =
    name === "login" ? { platform: "android" } : name === "setOfflinePushToken" ? { certificateId: CERT, token: goodToken } : {};
  for (const [what, deviceId] of deviceIdCases) cases.push({ name, what: `deviceId ${what}`, data: { ...base, deviceId }, field: "deviceId" });
  cases.push({ name, what: "an unknown field", data: { ...base, deviceId: "d1", sneaky: true }, field: "sneaky" });
}
for (const [what, platform] of [["missing", undefined], ["harmony (not one of the four)", "harmony"], ["ANDROID", "ANDROID"], ["Desktop", "Desktop"], ["a number", 1]] as const) {
  cases.push({ name: "login", what: `platform ${what}`, data: { deviceId: "d1", platform }, field: "platform" });
}
for (const [what, id] of [["missing", undefined], ["a string", "1"], ["zero", 0], ["negative", -3], ["fractional", 1.5], ["huge", 2 ** 60]] as const) {
  cases.push({ name: "setOfflinePushToken", what: `certificateId ${what}`, data: { deviceId: "d1", certificateId: id, token: goodToken }, field: "certificateId" });
}
for (const [what, token] of [
  ["missing", undefined],
  ["empty", ""],
  ["4097 characters", long(4097)],
  ["a space", "abc def"],
  ["a slash", "abc/def"],
  ["a number", 12345],
  ["an object", { token: "x" }],
] as const) {
  cases.push({ name: "setOfflinePushToken", what: `token ${what}`, data: { deviceId: "d1", certificateId: CERT, token }, field: "token" });
}
for (const [what, unreadCount] of [["negative", -1], ["fractional", 1.5], ["a string", "3"], ["too large", 2 ** 31], ["null", null]] as const) {
  cases.push({ name: "doBackground", what: `unreadCount ${what}`, data: { deviceId: "d1", unreadCount }, field: "unreadCount" });
}

describe("malformed requests -> invalid-argument naming the field, nothing written", () => {
  let before: FirebaseFirestore.DocumentData | undefined;
  it("records the state before", async () => {
    before = (await adminDb().doc(`users/${user.uid}`).get()).data();
    assert.ok(before);
  });
  for (const c of cases) {
    it(`${c.name}: ${c.what} -> invalid-argument (${c.field})`, async () => {
      const data = Object.fromEntries(Object.entries(c.data).filter(([, v]) => v !== undefined).map(([k, v]) => [k, v === CERT ? certificateId : v]));
      const res = await call(c.name, data, user);
      assert.equal(res.error?.status, "INVALID_ARGUMENT", JSON.stringify(res.error));
      assert.equal(res.error?.details?.field, c.field, JSON.stringify(res.error));
      assert.ok(res.error?.message.startsWith(`${c.field}:`), res.error?.message);
    });
  }
  it("a request that is not an object -> invalid-argument", async () => {
    for (const data of [[], "d1", 7]) {
      const res = await call("heartbeat", data, user);
      assert.equal(res.error?.status, "INVALID_ARGUMENT");
    }
  });
  it("left the stored state exactly as it was", async () => {
    assert.deepEqual((await adminDb().doc(`users/${user.uid}`).get()).data(), before);
    assert.equal((await adminDb().collection("pushTokens").get()).size, 0);
  });
});

describe("device IDs are per user: user A cannot touch user B's device", () => {
  let a: TestUser;
  let b: TestUser;
  let tokenB: string;
  before(async () => {
    [a, b] = (await createUsers(2)) as [TestUser, TestUser];
    tokenB = fakeFcmToken();
    await callOk("login", { deviceId: "b-phone", platform: "android" }, b);
    await callOk("setOfflinePushToken", { deviceId: "b-phone", certificateId, token: tokenB }, b);
    await callOk("doBackground", { deviceId: "b-phone", unreadCount: 2 }, b);
  });

  it("A's calls on B's deviceId find no session of A's, and B's device is unchanged", async () => {
    const snapshot = (await adminDb().doc(`users/${b.uid}`).get()).data();
    for (const [name, data] of [
      ["heartbeat", { deviceId: "b-phone" }],
      ["doBackground", { deviceId: "b-phone" }],
      ["doForeground", { deviceId: "b-phone" }],
      ["logout", { deviceId: "b-phone" }],
      ["setOfflinePushToken", { deviceId: "b-phone", certificateId, token: fakeFcmToken() }],
    ] as const) {
      const res = await call(name, data, a);
      assert.equal(res.error?.status, "FAILED_PRECONDITION", `${name}: ${JSON.stringify(res)}`);
      assert.ok(res.error?.message.includes("has no session"));
    }
    assert.deepEqual((await adminDb().doc(`users/${b.uid}`).get()).data(), snapshot);
  });

  it("A logging in with the same deviceId gets a device of A's own and kicks nobody of B's", async () => {
    const res = await callOk("login", { deviceId: "b-phone", platform: "android" }, a);
    assert.deepEqual(res.kickedDeviceIds, []);
    assert.equal((await readDevice(a.uid, "b-phone"))?.session, "logged-in");
    const bDevice = await readDevice(b.uid, "b-phone");
    assert.equal(bDevice?.session, "logged-in");
    assert.equal(bDevice?.token?.token, tokenB);
    assert.equal((await readTokenOwner(tokenB))?.uid, b.uid);
    await callOk("logout", { deviceId: "b-phone" }, a);
    assert.equal((await readDevice(b.uid, "b-phone"))?.session, "logged-in");
  });
});

describe("Firestore rules: clients cannot read or write session data directly", () => {
  const FIRESTORE = process.env.FIRESTORE_EMULATOR_HOST ?? "127.0.0.1:8080";
  const docs = `http://${FIRESTORE}/v1/projects/${PROJECT}/databases/(default)/documents`;
  let owner: TestUser;
  let token: string;
  before(async () => {
    owner = await createUser();
    token = fakeFcmToken();
    await callOk("login", { deviceId: "mine", platform: "android" }, owner);
    await callOk("setOfflinePushToken", { deviceId: "mine", certificateId, token }, owner);
  });

  const request = (method: string, path: string, idToken: string | null, body?: unknown) =>
    fetch(`${docs}/${path}`, {
      method,
      headers: { "content-type": "application/json", ...(idToken ? { authorization: `Bearer ${idToken}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_DEADLINE_MS),
    });

  it("the owner cannot read her own user document or token record, nor list either collection", async () => {
    for (const path of [`users/${owner.uid}`, `pushTokens/${tokenHash(token)}`, "users", "pushTokens"]) {
      const res = await request("GET", path, owner.idToken);
      assert.equal(res.status, 403, `GET ${path}`);
    }
  });

  it("nobody can log a session in, bind a token or delete a record by writing Firestore", async () => {
    const forged = { fields: { devices: { mapValue: { fields: { mine: { mapValue: { fields: { session: { stringValue: "logged-in" } } } } } } } } };
    for (const idToken of [owner.idToken, null]) {
      assert.equal((await request("PATCH", `users/${owner.uid}?updateMask.fieldPaths=devices`, idToken, forged)).status, 403);
      assert.equal((await request("PATCH", `pushTokens/${tokenHash("stolen")}`, idToken, { fields: { uid: { stringValue: owner.uid } } })).status, 403);
      assert.equal((await request("DELETE", `pushTokens/${tokenHash(token)}`, idToken)).status, 403);
    }
    const stored = await readDevice(owner.uid, "mine");
    assert.equal(stored?.token?.token, token);
    assert.equal((await readTokenOwner(token))?.uid, owner.uid);
    assert.equal(await readTokenOwner("stolen"), null);
  });
});
