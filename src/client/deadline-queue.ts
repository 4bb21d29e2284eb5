/**
 * Deadlines for many calls with one timer. Calls that share a timeout are added in the order they were made,
 * so their deadlines come in order too: a FIFO, where the timer only ever waits for the head. Adding and
 * expiring are O(1); a call answered in time is skipped when its turn comes (`isPending` says so). One
 * setTimeout per call would cost a timer allocation and a heap insertion on every record call.
 */
export class DeadlineQueue {
  private ids: number[] = [];
  private deadlines: number[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly timeoutMs: number,
    private readonly isPending: (id: number) => boolean,
    private readonly expire: (id: number) => void,
  ) {}

  add(id: number): void {
    this.ids.push(id);
    this.deadlines.push(performance.now() + this.timeoutMs);
    if (this.timer === undefined) this.arm();
  }

  /** Stops the timer; pending ids are forgotten (their owner fails them itself). */
  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.ids = [];
    this.deadlines = [];
    this.head = 0;
  }

  private arm(): void {
    while (this.head < this.ids.length && !this.isPending(this.ids[this.head]!)) this.head++;
    this.compactIfDrained();
    if (this.head >= this.ids.length) {
      this.timer = undefined;
      return;
    }
    const at = this.deadlines[this.head]!;
    // Ref'd on purpose: a call waiting for a reconnection has no socket to keep the process alive, and its
    // promise must still settle. The timer goes away as soon as nothing is pending.
    this.timer = setTimeout(() => this.fire(), Math.max(0, at - performance.now()));
  }

  private fire(): void {
    const now = performance.now();
    while (this.head < this.ids.length && this.deadlines[this.head]! <= now) {
      const id = this.ids[this.head++]!;
      if (this.isPending(id)) this.expire(id);
    }
    this.timer = undefined;
    this.arm();
  }

  private compactIfDrained(): void {
    if (this.head === this.ids.length) {
      this.ids = [];
      this.deadlines = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.ids.length) {
      this.ids = this.ids.slice(this.head);
      this.deadlines = this.deadlines.slice(this.head);
      this.head = 0;
    }
  }
}
