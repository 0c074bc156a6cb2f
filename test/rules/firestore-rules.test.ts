// Proves the rules: clients (signed in or not, even operators with the admin claim) can neither read
// nor write any collection directly. Every change goes through the callables.
import { assertFails, initializeTestEnvironment, type RulesTestEnvironment } from "@firebase/rules-unit-testing";
import { doc, getDoc, setDoc, deleteDoc, collection, getDocs, updateDoc } from "firebase/firestore";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { PROJECT } from "../helpers/emulators.ts";

const [host, port] = (process.env.FIRESTORE_EMULATOR_HOST ?? "127.0.0.1:8080").split(":");

let env: RulesTestEnvironment;

before(async () => {
  env = await initializeTestEnvironment({
    projectId: PROJECT,
    firestore: { host, port: Number(port), rules: readFileSync("firestore.rules", "utf8") },
  });
  await env.withSecurityRulesDisabled(async (ctx) => {
    const db = ctx.firestore();
    await setDoc(doc(db, "pushCertificates/1"), { certificateId: 1, encryptedKey: { ciphertext: "x" } });
    await setDoc(doc(db, "meta/pushCertificateIds"), { lastId: 1 });
    await setDoc(doc(db, "users/alice"), { devices: { d1: { state: "logged-in" } } });
    await setDoc(doc(db, "pushTokens/abc"), { uid: "alice", deviceId: "d1" });
    await setDoc(doc(db, "pushLog/m1"), { uid: "alice" });
    await setDoc(doc(db, "pushLog/m1/outcomes/1-0"), { uids: ["alice"], entries: [] });
    await setDoc(doc(db, "sendLimits/alice"), { count: 1 });
    await setDoc(doc(db, "pushOpened/r1"), { uid: "alice", msgKey: "m1", deviceId: "d1" });
    await setDoc(doc(db, "pushStats/2026-11__0"), { month: "2026-11", shard: 0, days: {} });
    await setDoc(doc(db, "presenceLog/unknown-device__x"), { kind: "unknown-device", accounts: ["alice"], deviceId: "d9" });
    await setDoc(doc(db, "pushBadges/alice"), { devices: { iphone: { count: 3 } } });
  });
});

after(async () => {
  await env.clearFirestore();
  await env.cleanup();
});

const documents = ["pushCertificates/1", "meta/pushCertificateIds", "users/alice", "users/bob", "pushTokens/abc", "pushLog/m1", "pushLog/m1/outcomes/1-0", "sendLimits/alice", "pushOpened/r1", "pushStats/2026-11__0", "presenceLog/unknown-device__x", "pushBadges/alice", "anything/else"];
const collections = ["pushCertificates", "meta", "users", "pushTokens", "pushLog", "pushLog/m1/outcomes", "sendLimits", "pushOpened", "pushStats", "presenceLog", "pushBadges"];

const clients = {
  unauthenticated: () => env.unauthenticatedContext().firestore(),
  "signed-in user alice (reading even her own data)": () => env.authenticatedContext("alice").firestore(),
  "operator with the admin claim": () => env.authenticatedContext("ops", { admin: true }).firestore(),
};

for (const [who, firestore] of Object.entries(clients)) {
  describe(`Firestore rules: ${who}`, () => {
    for (const path of documents) {
      it(`cannot read, create, update or delete ${path}`, async () => {
        const db = firestore();
        await assertFails(getDoc(doc(db, path)));
        await assertFails(setDoc(doc(db, path), { injected: true }));
        await assertFails(updateDoc(doc(db, path), { injected: true }));
        await assertFails(deleteDoc(doc(db, path)));
      });
    }
    for (const name of collections) {
      it(`cannot list ${name}`, async () => {
        await assertFails(getDocs(collection(firestore(), name)));
      });
    }
  });
}
