// diagnosePush finds a user the way an operator knows them: by uid, e-mail address or phone number
// (Firebase Auth, through the Auth emulator), shows the account's e-mail and display name, and says
// "no such account" when neither Firebase Auth nor the push records know it.
import assert from "node:assert/strict";
import { randomInt, randomUUID } from "node:crypto";
import { before, describe, it } from "node:test";
import { DiagnosePushResponseSchema } from "../../functions/src/diagnostics/schemas.ts";
import { call, callOk, createUser, publish, type TestUser } from "../helpers/emulators.ts";
import { PUSH_TOPIC, killedDevice, msgKey, waitForMessage } from "../helpers/fanout.ts";
import { registerCertificate } from "../helpers/certificates.ts";
import { textBody } from "./helpers.ts";

/** A phone number no other test uses (E.164, a US 555 number). */
const phone = () => `+1555${String(randomInt(1_000_000, 9_999_999))}`;

describe("diagnosePush: which account", () => {
  let admin: TestUser;
  let bob: TestUser;
  let bobPhone: string;

  before(async () => {
    bobPhone = phone();
    [admin, bob] = await Promise.all([createUser({ admin: true }), createUser({ displayName: "Bob Example", phoneNumber: bobPhone })]);
    const cert = await registerCertificate(admin, "account lookup");
    await killedDevice(bob, cert.certificateId, "pixel-8");
  });

  const diagnose = async (data: Record<string, unknown>) => DiagnosePushResponseSchema.parse(await callOk("diagnosePush", data, admin));

  it("by uid, by e-mail and by phone number: the same account, with its e-mail, phone and display name", async () => {
    const byUid = await diagnose({ uid: bob.uid });
    const byEmail = await diagnose({ account: bob.email.toUpperCase() });
    const byPhone = await diagnose({ account: bobPhone });
    const byUidAsAccount = await diagnose({ account: bob.uid });
    for (const [r, foundBy] of [[byUid, "uid"], [byEmail, "email"], [byPhone, "phoneNumber"], [byUidAsAccount, "uid"]] as const) {
      assert.equal(r.uid, bob.uid);
      assert.equal(r.foundBy, foundBy);
      assert.equal(r.authAccount, true);
      assert.equal(r.email, bob.email);
      assert.equal(r.phoneNumber, bobPhone);
      assert.equal(r.displayName, "Bob Example");
      assert.deepEqual(r.eligibleDeviceIds, ["pixel-8"]);
    }
    assert.match(byEmail.summary, /Bob Example/);
  });

  it("no such account: NOT_FOUND naming the field, for an e-mail, a phone number and a uid nobody has", async () => {
    for (const data of [{ account: `nobody-${randomUUID()}@example.com` }, { account: phone() }, { account: `nobody-${randomUUID()}` }, { uid: `nobody-${randomUUID()}` }]) {
      const res = await call("diagnosePush", data, admin);
      assert.equal(res.error?.status, "NOT_FOUND", JSON.stringify(data));
      assert.match(res.error?.message ?? "", /no such account/);
      assert.equal(res.error?.details?.field, Object.keys(data)[0]);
    }
  });

  it("an IM account that is no Firebase user but that the push records know is diagnosed (authAccount false)", async () => {
    const imOnly = `im-only-${randomUUID()}`;
    const alice = await createUser();
    const key = msgKey("account");
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: alice.uid, To_Account: [imOnly], MsgBody: textBody("hi") });
    await waitForMessage(key);
    const r = await diagnose({ account: imOnly });
    assert.equal(r.uid, imOnly);
    assert.equal(r.authAccount, false);
    assert.equal(r.email, null);
    assert.equal(r.displayName, null);
    assert.ok(r.recent.some((m) => m.msgKey === key), "its last messages are there");
  });

  it("bad requests: INVALID_ARGUMENT naming the field", async () => {
    for (const [data, field] of [
      [{}, "uid"],
      [{ uid: bob.uid, account: bob.email }, "account"],
      [{ account: "" }, "account"],
      [{ account: 42 }, "account"],
      [{ account: "x".repeat(321) }, "account"],
    ] as const) {
      const res = await call("diagnosePush", data, admin);
      assert.equal(res.error?.status, "INVALID_ARGUMENT", JSON.stringify(data));
      assert.equal(res.error?.details?.field, field, JSON.stringify(data));
    }
  });
});
