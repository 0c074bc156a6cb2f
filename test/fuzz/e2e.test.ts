// The fuzz sample end to end: a few hundred generated events published to the Pub/Sub emulator
// and malformed requests sent to the callables over HTTP. Every event ends in a record (a rejected
// event or a finished batch): no delivery crashed. No answer is INTERNAL. A bearer token that names
// no usable account is UNAUTHENTICATED.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import fc from "fast-check";
import { PROJECT, REGION, REQUEST_DEADLINE_MS, adminDb, call, clearFirestore, createUser, eventually, mapLimit, type TestUser } from "../helpers/emulators.ts";
import { eventBytes, mutated, requests, seed } from "./arbitraries.ts";

const PUBSUB = process.env.PUBSUB_EMULATOR_HOST ?? "127.0.0.1:8085";
const FUNCTIONS = process.env.FUNCTIONS_EMULATOR_HOST ?? "127.0.0.1:5001";

let user: TestUser;
let admin: TestUser;

before(async () => {
  await clearFirestore();
  [user, admin] = [await createUser(), await createUser({ admin: true })];
});

/** Publishes raw bytes (not necessarily JSON) to the event topic; returns the message ID. */
async function publishRaw(text: string): Promise<string> {
  const res = await fetch(`http://${PUBSUB}/v1/projects/${PROJECT}/topics/im-offline-push:publish`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ messages: [{ data: Buffer.from(text).toString("base64") }] }),
    signal: AbortSignal.timeout(REQUEST_DEADLINE_MS),
  });
  assert.equal(res.status, 200);
  return ((await res.json()) as { messageIds: string[] }).messageIds[0] as string;
}

describe("fuzz, end to end", () => {
  it("300 generated and mutated events published: every one ends in a record, none crashes a delivery", async (t) => {
    t.diagnostic(`seed ${seed}`);
    const samples = fc.sample(eventBytes, { numRuns: 300, seed });
    const ids = new Set(await mapLimit(samples, 8, publishRaw));
    // What is still missing, for the failure message: slow (batches still running) or lost.
    let progress = "nothing read yet";
    const covered = await eventually(
      async () => {
        const docs = (await adminDb().collection("pushLog").get()).docs.map((d) => d.data());
        const done = new Set<string>();
        for (const d of docs) if (d.kind === "rejected" || d.state === "done") done.add(d.eventId as string);
        const running = docs.filter((d) => d.kind === "batch" && d.state !== "done").length;
        const missing = [...ids].filter((id) => !done.has(id));
        progress = `${missing.length} of ${ids.size} events without a record (e.g. ${missing.slice(0, 5).join(", ")}), ${running} batches running`;
        return missing.length === 0 ? { docs: docs.length, running } : undefined;
      },
      { timeoutMs: 240_000, intervalMs: 1_000, what: "a record of every published event" },
    ).catch((err: unknown) => {
      throw new Error(`${err instanceof Error ? err.message : String(err)}; ${progress}`);
    });
    t.diagnostic(`${ids.size} events -> ${covered.docs} push-log documents`);
  });

  it("300 malformed requests over HTTP, spread over every callable: never INTERNAL", async (t) => {
    const adminOnly = new Set(["registerPushCertificate", "updatePushCertificate", "deletePushCertificate", "listPushCertificates"]);
    const cases = requests.flatMap(({ name, valid }) => fc.sample(mutated(valid), { numRuns: Math.ceil(300 / requests.length), seed }).map((data) => ({ name, data })));
    const statuses = new Map<string, number>();
    await mapLimit(cases, 4, async ({ name, data }) => {
      const res = await call(name, data, adminOnly.has(name) ? admin : user);
      const status = res.error?.status ?? "OK";
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      assert.notEqual(status, "INTERNAL", `${name} ${JSON.stringify(data).slice(0, 200)}: ${res.error?.message}`);
      if (status === "INVALID_ARGUMENT") assert.ok(typeof res.error?.details?.field === "string" && res.error.details.field.length > 0, `${name}: the field is named`);
    });
    t.diagnostic(JSON.stringify(Object.fromEntries(statuses)));
    assert.ok((statuses.get("INVALID_ARGUMENT") ?? 0) > cases.length / 2);
  });

  it("a bearer token that names no usable account (Bearer abc): UNAUTHENTICATED, never INTERNAL", async () => {
    for (const name of ["login", "heartbeat", "sendMessage", "listPushCertificates"]) {
      const res = await call(name, { deviceId: "phone", platform: "android", to: "bob" }, "abc");
      assert.equal(res.error?.status, "UNAUTHENTICATED", `${name}: ${JSON.stringify(res.error)}`);
    }
  });

  it("a body without the callable protocol's {data} wrapper: INVALID_ARGUMENT as JSON; a body that is not JSON: 400 before any function code runs", async () => {
    const url = `http://${FUNCTIONS}/${PROJECT}/${REGION}/heartbeat`;
    const headers = { "content-type": "application/json", authorization: `Bearer ${user.idToken}` };
    const unwrapped = await fetch(url, { method: "POST", headers, body: JSON.stringify({ deviceId: "phone" }), signal: AbortSignal.timeout(REQUEST_DEADLINE_MS) });
    assert.equal(unwrapped.status, 400);
    assert.equal(((await unwrapped.json()) as { error: { status: string } }).error.status, "INVALID_ARGUMENT");
    const notJson = await fetch(url, { method: "POST", headers, body: "{not json", signal: AbortSignal.timeout(REQUEST_DEADLINE_MS) });
    assert.equal(notJson.status, 400);
    await notJson.text();
  });
});
