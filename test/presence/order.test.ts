// Pure: the presence event's schema (one event, the batch form) and which event wins per device.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Timestamp } from "firebase-admin/firestore";
import { isNewer, newestPerDevice, presenceOf } from "../../functions/src/presence/order.ts";
import { MAX_PRESENCE_EVENTS, PresenceBatchSchema, PresenceEventSchema, isBatchMessage, type PresenceEvent } from "../../functions/src/presence/schemas.ts";
import type { StoredPresence } from "../../functions/src/sessions/schemas.ts";

const T = Date.UTC(2026, 10, 1, 12);
const ev = (Action: PresenceEvent["Action"], EventTime: number, DeviceId = "pixel", Account = "bob"): PresenceEvent => ({ Account, DeviceId, Action, Reason: null, EventTime });
const stored = (action: StoredPresence["action"], ms: number): StoredPresence => ({ ...presenceOf(ev(action, ms)), at: Timestamp.fromMillis(ms + 10) });

describe("presence event schema", () => {
  it("accepts the documented event, drops fields it does not know, Reason optional", () => {
    const parsed = PresenceEventSchema.parse({ Account: "bob", DeviceId: "bobs-pixel-8", Action: "Disconnect", Reason: "LinkClose", EventTime: T, ClientIP: "10.0.0.1" });
    assert.deepEqual(parsed, { Account: "bob", DeviceId: "bobs-pixel-8", Action: "Disconnect", Reason: "LinkClose", EventTime: T });
    assert.equal(PresenceEventSchema.parse({ Account: "bob", DeviceId: "d", Action: "Connect", EventTime: T }).Reason, null);
  });

  it("names the field that is wrong", () => {
    const field = (raw: unknown) => {
      const r = PresenceEventSchema.safeParse(raw);
      assert.equal(r.success, false);
      return r.success ? "" : r.error.issues[0]?.path.join(".");
    };
    const ok = { Account: "bob", DeviceId: "d", Action: "Connect", EventTime: T };
    assert.equal(field({ ...ok, Action: "Login" }), "Action");
    assert.equal(field({ ...ok, Account: "a/b" }), "Account");
    assert.equal(field({ ...ok, DeviceId: "__x__" }), "DeviceId");
    assert.equal(field({ ...ok, EventTime: "1700000000000" }), "EventTime");
    assert.equal(field({ ...ok, EventTime: Math.floor(T / 1000) }), "EventTime", "seconds, not milliseconds");
    assert.equal(field({ ...ok, EventTime: Date.now() + 3_600_000 }), "EventTime", "an hour in the future");
    assert.equal(field({ ...ok, Reason: "x".repeat(129) }), "Reason");
    assert.equal(field({ ...ok, EventTime: undefined }), "EventTime");
  });

  it("the batch form: Events, 1 to 500 entries, each validated on its own later", () => {
    assert.equal(isBatchMessage({ Events: [] }), true);
    assert.equal(isBatchMessage({ Account: "bob" }), false);
    assert.equal(isBatchMessage([1]), false);
    assert.equal(PresenceBatchSchema.safeParse({ Events: [] }).success, false);
    assert.equal(PresenceBatchSchema.safeParse({ Events: Array(MAX_PRESENCE_EVENTS + 1).fill({}) }).success, false);
    assert.equal(PresenceBatchSchema.safeParse({ Events: [{}, "x"] }).success, true);
  });
});

describe("which presence event wins", () => {
  it("a newer EventTime wins; an older or the same event changes nothing", () => {
    assert.equal(isNewer(ev("Connect", T), null), true);
    assert.equal(isNewer(ev("Connect", T + 1), stored("Disconnect", T)), true);
    assert.equal(isNewer(ev("Connect", T - 1), stored("Disconnect", T)), false, "a stale Connect after a newer Disconnect");
    assert.equal(isNewer(ev("Disconnect", T), stored("Disconnect", T)), false, "the same event twice");
  });

  it("at the same millisecond: Logout over Disconnect over Connect, whatever the arrival order", () => {
    assert.equal(isNewer(ev("Disconnect", T), stored("Connect", T)), true);
    assert.equal(isNewer(ev("Connect", T), stored("Disconnect", T)), false);
    assert.equal(isNewer(ev("Logout", T), stored("Disconnect", T)), true);
    assert.equal(isNewer(ev("Disconnect", T), stored("Logout", T)), false);
  });

  it("in one message, the newest event of each device; the rest are superseded", () => {
    const events = [ev("Connect", T), ev("Disconnect", T + 5), ev("Connect", T + 3), ev("Connect", T, "tablet"), ev("Connect", T, "pixel", "carol")];
    const { newest, superseded } = newestPerDevice(events);
    assert.deepEqual(
      newest.map((e) => [e.Account, e.DeviceId, e.Action, e.EventTime - T]),
      [["bob", "pixel", "Disconnect", 5], ["bob", "tablet", "Connect", 0], ["carol", "pixel", "Connect", 0]],
    );
    assert.equal(superseded.length, 2);
  });

  it("the stored presence: Connect is connected, Disconnect and Logout are not", () => {
    assert.equal(presenceOf(ev("Connect", T)).state, "connected");
    assert.equal(presenceOf(ev("Disconnect", T)).state, "disconnected");
    const { eventTime, ...rest } = presenceOf({ ...ev("Logout", T), Reason: "Kick" });
    assert.deepEqual(rest, { state: "disconnected", action: "Logout", reason: "Kick" });
    assert.equal(eventTime.toMillis(), T);
  });
});
