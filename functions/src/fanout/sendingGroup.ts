// The batches one invocation processes together (the inline batches of an event) share one
// process, one CPU and one HTTP/2 connection. A batch that is done sending would otherwise make its
// final push-log write (serializing and committing a few hundred outcomes) while the others are
// still sending, and every FCM request behind it waits for that CPU. So a batch's final write waits
// until the group's sends are over: the last push of the group goes out sooner, and the records
// follow a moment later.
//
// The wait is bounded (FINAL_WRITE_MAX_WAIT_MS): a batch whose devices are in a retry wave (FCM
// throttling, an outage) may take minutes, and the others' sends must not stay unrecorded that
// long. Meanwhile every batch keeps its lease and its checkpoints, so what a crash here can repeat
// is unchanged (progress.ts).

/** How long a batch's final write waits for the rest of its group to finish sending. */
export const FINAL_WRITE_MAX_WAIT_MS = 2_000;

export class SendingGroup {
  private sending: number;
  private readonly quietWaiters: Array<() => void> = [];

  constructor(
    batches: number,
    private readonly maxWaitMs = FINAL_WRITE_MAX_WAIT_MS,
  ) {
    this.sending = batches;
  }

  /** A member is done sending (or never sends: an early return). Once per member: see `member()`. */
  private leave(): void {
    this.sending--;
    if (this.sending > 0) return;
    for (const wake of this.quietWaiters.splice(0)) wake();
  }

  /** One member's handle: `doneSending` once it sends no more, `beforeFinalWrite` to wait for the others. */
  member(): { doneSending: () => void; beforeFinalWrite: () => Promise<void> } {
    let left = false;
    const doneSending = () => {
      if (left) return;
      left = true;
      this.leave();
    };
    return {
      doneSending,
      beforeFinalWrite: () => {
        doneSending();
        if (this.sending <= 0) return Promise.resolve();
        return new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.maxWaitMs);
          this.quietWaiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      },
    };
  }
}
