// The final writes of the batches one invocation processes together wait until the group is done
// sending (fanout/sendingGroup.ts), and never longer than the bound. Pure logic, with mocked timers.
import assert from "node:assert/strict";
import { describe, it, mock } from "node:test";
import { SendingGroup } from "../../functions/src/fanout/sendingGroup.ts";

/** Lets every pending promise callback run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("SendingGroup", () => {
  it("a final write waits until every other member is done sending", async () => {
    const group = new SendingGroup(3, 60_000);
    const [a, b, c] = [group.member(), group.member(), group.member()];
    let written = false;
    void a.beforeFinalWrite().then(() => (written = true));
    await settle();
    assert.equal(written, false, "b and c are still sending");
    b.doneSending();
    b.doneSending(); // a member leaves once, however often it says so
    await settle();
    assert.equal(written, false, "c is still sending");
    c.doneSending();
    await settle();
    assert.equal(written, true);
  });

  it("the last member to finish sending writes at once", async () => {
    const group = new SendingGroup(2, 60_000);
    const [a, b] = [group.member(), group.member()];
    a.doneSending();
    let written = false;
    void b.beforeFinalWrite().then(() => (written = true));
    await settle();
    assert.equal(written, true);
  });

  it("never waits longer than the bound for a member that is still retrying", async () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      const group = new SendingGroup(2, 2_000);
      const [a] = [group.member(), group.member()];
      let written = false;
      void a.beforeFinalWrite().then(() => (written = true));
      mock.timers.tick(1_999);
      await settle();
      assert.equal(written, false);
      mock.timers.tick(1);
      await settle();
      assert.equal(written, true, "written after the bound although the other member still sends");
    } finally {
      mock.timers.reset();
    }
  });
});
