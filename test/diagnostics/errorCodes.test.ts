// Error codes come from FCM, so they are outside input, and the counts keyed by them must count
// whatever they say: "constructor", "toString" or "__proto__" are not Object.prototype's members
// here. The fake FCM answers each device with one of them; pushStats and traceMessage count them.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { addEntry, emptyDelta } from "../../functions/src/fanout/pushStats.ts";
import { Timestamp } from "firebase-admin/firestore";
import { clearFirestore, createUser, createUsers, publish, type TestUser } from "../helpers/emulators.ts";
import { fakeFcm } from "../helpers/fakeFcm.ts";
import { PUSH_TOPIC, killedDevice, msgKey, sendsTo } from "../helpers/fanout.ts";
import { registerCertificate } from "../helpers/certificates.ts";
import { stats, textBody, todayUtc, traced } from "./helpers.ts";

let admin: TestUser;

before(async () => {
  await clearFirestore();
  admin = await createUser({ admin: true });
});

const failedWith = (errorCode: string) => ({
  outcome: "failed" as const,
  uid: "u",
  deviceId: "phone",
  reason: "invalid-message" as const,
  detail: "",
  certificateId: 1,
  error: { kind: "invalid-message", httpStatus: 400, status: "FAILED_PRECONDITION", errorCode, message: "" },
  attempts: 1,
  at: Timestamp.now(),
});

describe("counts keyed by an FCM error code", () => {
  it("a batch's statistics count constructor, toString, hasOwnProperty and valueOf like any code", () => {
    const delta = emptyDelta();
    for (const code of ["constructor", "constructor", "toString", "hasOwnProperty", "valueOf", "__proto__"]) addEntry(delta, failedWith(code));
    assert.deepEqual({ ...delta.failedByErrorCode }, { constructor: 2, toString: 1, hasOwnProperty: 1, valueOf: 1, other: 1 });
    assert.deepEqual({ ...delta.byCertificate["1"]!.failedByErrorCode }, { constructor: 2, toString: 1, hasOwnProperty: 1, valueOf: 1, other: 1 });
  });

  it("FCM answering constructor (twice), toString and __proto__: pushStats and traceMessage count each (__proto__, a name Firestore reserves, as other)", async () => {
    const cert = await registerCertificate(admin, "odd error codes");
    const codes = ["constructor", "constructor", "toString", "__proto__"];
    const users = await createUsers(codes.length);
    const tokens: string[] = [];
    for (const u of users) tokens.push(await killedDevice(u, cert.certificateId));
    for (const [i, code] of codes.entries()) {
      await fakeFcm.addErrorRule({ token: tokens[i], httpStatus: 400, status: "FAILED_PRECONDITION", errorCode: code, message: "odd code" });
    }
    const key = msgKey("odd-codes");
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: "odd-sender", To_Account: users.map((u) => u.uid), MsgBody: textBody("hi") });
    const { docs, trace } = await traced(admin, key);
    for (const [i, code] of codes.entries()) assert.deepEqual((await sendsTo(tokens[i]!)).map((s) => s.errorCode), [code], "the fake answered the code");

    const expected = { constructor: 2, toString: 1, other: 1 };
    assert.equal(docs[0]!.counts.failed, 4);
    assert.equal(trace.counts.failed, 4);
    assert.deepEqual({ ...trace.counts.byErrorCode }, expected);
    assert.match(trace.summary, /4 failed \(constructor 2, other 1, toString 1\)/);
    // Each device's own record keeps FCM's code as it came.
    assert.deepEqual(trace.devices.map((d) => d.error?.errorCode).sort(), [...codes].sort());

    const s = await stats(admin, { from: todayUtc(-1), to: todayUtc(), certificateId: cert.certificateId });
    assert.equal(s.totals.failed, 4);
    assert.deepEqual({ ...s.totals.failedByErrorCode }, expected);
    assert.deepEqual({ ...s.totals.failedByReason }, { "invalid-message": 4 });
  });
});
