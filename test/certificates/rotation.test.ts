// A certificate's key, as the sends see it: a replaced key is used for the very next push (no
// propagation delay), a rejected replacement leaves the old key sending, and a deleted certificate
// stops its devices' pushes with a recorded reason.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { call, callOk, createUser, publish, type TestUser } from "../helpers/emulators.ts";
import { fakeFcm } from "../helpers/fakeFcm.ts";
import { entryFor, killedDevice, msgKey, PUSH_TOPIC, sendsTo, waitForMessage } from "../helpers/fanout.ts";
import { registerCertificate } from "../helpers/certificates.ts";

let admin: TestUser;
let sender: TestUser;
let recipient: TestUser;

before(async () => {
  [admin, sender, recipient] = await Promise.all([createUser({ admin: true }), createUser(), createUser()]);
});

async function pushOnce(text: string) {
  const key = msgKey("rotation");
  await publish(PUSH_TOPIC, {
    MsgKey: key,
    From_Account: sender.uid,
    To_Account: recipient.uid,
    MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: text } }],
  });
  return waitForMessage(key);
}

describe("certificate keys in use by the fan-out", () => {
  it("a replaced key signs the very next push; a rejected replacement leaves the old key in use", async () => {
    const { certificateId, sa: first } = await registerCertificate(admin, "rotation");
    const token = await killedDevice(recipient, certificateId);

    await pushOnce("one");
    let sends = await sendsTo(token);
    assert.equal(sends.length, 1);
    assert.equal(sends[0]?.clientEmail, first.client_email);

    // A rejected update (a key Google does not know) must not touch the key in use.
    const unknown = await fakeFcm.createServiceAccount(first.project_id);
    await fakeFcm.revoke(unknown.client_email);
    const rejected = await call("updatePushCertificate", { certificateId, serviceAccount: unknown }, admin);
    assert.equal(rejected.error?.status, "FAILED_PRECONDITION");
    await pushOnce("two");
    sends = await sendsTo(token);
    assert.equal(sends.length, 2);
    assert.equal(sends[1]?.clientEmail, first.client_email, "the old key still sends");

    // A good replacement is used at once, although the old key's access token is still cached.
    const second = await fakeFcm.createServiceAccount(first.project_id);
    await callOk("updatePushCertificate", { certificateId, serviceAccount: second }, admin);
    await pushOnce("three");
    sends = await sendsTo(token);
    assert.equal(sends.length, 3);
    assert.equal(sends[2]?.clientEmail, second.client_email, "the new key sends the next push");
  });

  it("after deletePushCertificate its devices get nothing, recorded as certificate-missing", async () => {
    const other = await createUser();
    const { certificateId } = await registerCertificate(admin, "to delete");
    const token = await killedDevice(other, certificateId);
    const deleted = await callOk("deletePushCertificate", { certificateId }, admin);
    assert.equal(deleted.boundTokens, 1);

    const key = msgKey("deleted-cert");
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: sender.uid, To_Account: other.uid, MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: "hi" } }] });
    const docs = await waitForMessage(key);
    const entry = entryFor(docs, other.uid);
    assert.equal(entry.outcome, "skipped");
    assert.equal(entry.reason, "certificate-missing");
    assert.equal((await sendsTo(token)).length, 0);
  });
});
