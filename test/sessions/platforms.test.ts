// The four platforms end to end through the callables: kicks are per platform (a web login does
// not kick the phone; an iOS login kicks the other iPhone, not the Android phone; a desktop login
// kicks the other desktop), a desktop device has no token, web tokens get exactly the FCM message
// an Android token gets, and iOS tokens their own (the apns block: test/fanout/ios.test.ts).
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { call, callOk, clearFirestore, createUser, publish, type TestUser } from "../helpers/emulators.ts";
import { PUSH_TOPIC, entryFor, msgKey, sendsTo, waitForMessage } from "../helpers/fanout.ts";
import { registerCertificate } from "../helpers/certificates.ts";
import { assertSessionInvariants, fakeFcmToken, readDevices } from "../helpers/sessions.ts";

let certificateId: number;

before(async () => {
  await clearFirestore();
  certificateId = (await registerCertificate(await createUser({ admin: true }))).certificateId;
});

const login = (user: TestUser, deviceId: string, platform: string) => callOk<{ kickedDeviceIds: string[] }>("login", { deviceId, platform }, user);

describe("kicks are per platform (SESSION_POLICY=single-device-per-platform)", () => {
  it("web does not kick android, nor android web", async () => {
    const user = await createUser();
    await login(user, "pixel", "android");
    assert.deepEqual((await login(user, "chrome", "web")).kickedDeviceIds, []);
    assert.deepEqual((await login(user, "pixel-2", "android")).kickedDeviceIds, ["pixel"], "another android phone does");
    const devices = await readDevices(user.uid);
    assert.deepEqual([devices.chrome?.session, devices["pixel-2"]?.session, devices.pixel?.session], ["logged-in", "logged-in", "kicked"]);
  });

  it("ios kicks ios, not android", async () => {
    const user = await createUser();
    await login(user, "pixel", "android");
    await login(user, "iphone", "ios");
    assert.deepEqual((await login(user, "iphone-2", "ios")).kickedDeviceIds, ["iphone"]);
    const devices = await readDevices(user.uid);
    assert.equal(devices.pixel?.session, "logged-in");
    assert.equal(devices.iphone?.kickedByDeviceId, "iphone-2");
  });

  it("desktop kicks desktop, and nothing else", async () => {
    const user = await createUser();
    for (const [id, platform] of [["pixel", "android"], ["iphone", "ios"], ["chrome", "web"]]) await login(user, id!, platform!);
    await login(user, "mac", "desktop");
    assert.deepEqual((await login(user, "windows", "desktop")).kickedDeviceIds, ["mac"]);
    const devices = await readDevices(user.uid);
    assert.deepEqual(
      Object.values(devices)
        .filter((d) => d.session === "logged-in")
        .map((d) => `${d.deviceId}:${d.platform}`)
        .sort(),
      ["chrome:web", "iphone:ios", "pixel:android", "windows:desktop"],
    );
  });
});

describe("a desktop device has no FCM token", () => {
  it("setOfflinePushToken answers FAILED_PRECONDITION saying so, and writes nothing", async () => {
    const user = await createUser();
    await login(user, "mac", "desktop");
    const before = await readDevices(user.uid);
    const res = await call("setOfflinePushToken", { deviceId: "mac", certificateId, token: fakeFcmToken() }, user);
    assert.equal(res.error?.status, "FAILED_PRECONDITION", JSON.stringify(res));
    assert.match(res.error?.message ?? "", /desktop apps have no FCM token/);
    assert.equal(res.error?.details?.platform, "desktop");
    assert.deepEqual(await readDevices(user.uid), before);
    const { tokens } = await assertSessionInvariants();
    assert.equal(tokens, 0);
  });

  it("the fan-out records it as platform-without-push, not as a missing token", async () => {
    const [sender, user] = [await createUser(), await createUser()];
    await login(user, "mac", "desktop");
    await callOk("doBackground", { deviceId: "mac" }, user);
    const key = msgKey("desktop");
    await publish(PUSH_TOPIC, { MsgKey: key, From_Account: sender.uid, To_Account: [user.uid], MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: "hi" } }] });
    const entry = entryFor(await waitForMessage(key), user.uid, "mac");
    assert.deepEqual([entry.outcome, entry.reason], ["skipped", "platform-without-push"]);
  });
});

describe("web tokens get the message Android tokens get; iOS tokens get their own", () => {
  it("one message to three users on android, ios and web: web = android, token aside; ios has the apns block instead", async () => {
    const sender = await createUser();
    const users = await Promise.all([createUser(), createUser(), createUser()]);
    const platforms = ["android", "ios", "web"] as const;
    const tokens = await Promise.all(
      users.map(async (user, i) => {
        const token = fakeFcmToken();
        await login(user, "dev", platforms[i]!);
        await callOk("setOfflinePushToken", { deviceId: "dev", certificateId, token }, user);
        await callOk("doBackground", { deviceId: "dev" }, user);
        return token;
      }),
    );
    const key = msgKey("platforms");
    await publish(PUSH_TOPIC, {
      MsgKey: key,
      From_Account: sender.uid,
      To_Account: users.map((u) => u.uid),
      MsgBody: [{ MsgType: "TIMTextElem", MsgContent: { Text: "hello everywhere" } }],
      OfflinePushInfo: { Title: "Sender", Ext: "{\"conv\":\"c2c_x\"}", AndroidInfo: { GoogleChannelID: "chat" } },
    });
    const docs = await waitForMessage(key);
    users.forEach((u) => assert.equal(entryFor(docs, u.uid, "dev").outcome, "sent"));
    const bodies = await Promise.all(tokens.map(async (t) => (await sendsTo(t))[0]?.message as Record<string, unknown> | undefined));
    const withoutToken = bodies.map((b) => ({ ...b, token: undefined }));
    assert.ok(bodies.every((b) => b?.token), "each token got its request");
    assert.deepEqual(withoutToken[2], withoutToken[0], "web = android");
    // The iPhone's own form is asserted field by field in test/fanout/ios.test.ts.
    assert.ok(bodies[1]?.apns, "ios has an apns block");
    assert.equal(bodies[1]?.android, undefined, "and no android block");
  });
});
