/**
 * Two readings of time, kept apart on purpose. `now()` is monotonic: buckets drain by it, so a wall-clock step
 * (NTP, an operator, a VM resume) can neither throttle nor free anyone. `wall()` is epoch milliseconds, used
 * only for what people read: last_seen_ms, the audit log, logs.
 */
export interface Clock {
  /** Monotonic integer milliseconds; integer values keep ring cell boundaries exact. */
  now(): number;
  /** Epoch milliseconds, for display only. */
  wall(): number;
}

/**
 * A clock that also runs timers on its own time: setTimeout on the system clock, the test's hand on a
 * ManualClock, so a delay (auth.failure_delay_ms) is tested to the millisecond without waiting for it.
 */
export interface TimerClock extends Clock {
  /** Calls `fn` once `ms` have passed on this clock. The timer never keeps the process alive. */
  after(ms: number, fn: () => void): void;
}

// Anchored at process start so monotonic readings look like epoch ms, then advanced only by performance.now().
const origin = Math.floor(performance.timeOrigin);

export const systemClock: TimerClock = {
  now: () => origin + Math.floor(performance.now()),
  wall: () => Date.now(),
  after: (ms, fn) => {
    setTimeout(fn, ms).unref();
  },
};

/**
 * A clock tests move by hand, so no test ever sleeps to wait for a window. Its timers (`after`) run inside
 * `advance` and `set`, in the order they are due, each seeing `now()` at its own due time.
 */
export class ManualClock implements TimerClock {
  private wallOffset = 0;
  /** Pending timers, ordered by due time (first scheduled first among equals). */
  private readonly timers: { at: number; fn: () => void }[] = [];
  constructor(private ms = 0) {}
  now(): number {
    return this.ms;
  }
  wall(): number {
    return this.ms + this.wallOffset;
  }
  advance(ms: number): void {
    this.set(this.ms + ms);
  }
  /** Moves the clock to `ms`, running the timers due by then (none when it moves back). */
  set(ms: number): void {
    for (let next = this.timers[0]; next !== undefined && next.at <= ms; next = this.timers[0]) {
      this.timers.shift();
      this.ms = Math.max(this.ms, next.at);
      next.fn();
    }
    this.ms = ms;
  }
  after(ms: number, fn: () => void): void {
    const at = this.ms + Math.max(0, ms);
    let i = this.timers.length;
    while (i > 0 && this.timers[i - 1]!.at > at) i--;
    this.timers.splice(i, 0, { at, fn });
  }
  /** Timers not yet run. */
  get pending(): number {
    return this.timers.length;
  }
  /** Steps the wall clock alone, as NTP or an operator would. */
  stepWall(ms: number): void {
    this.wallOffset += ms;
  }
}

/** The wall-clock time of a monotonic reading taken earlier. */
export const wallTimeOf = (clock: Clock, monotonic: number): number => clock.wall() - (clock.now() - monotonic);
