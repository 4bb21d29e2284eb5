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

// Anchored at process start so monotonic readings look like epoch ms, then advanced only by performance.now().
const origin = Math.floor(performance.timeOrigin);

export const systemClock: Clock = {
  now: () => origin + Math.floor(performance.now()),
  wall: () => Date.now(),
};

/** A clock tests move by hand, so no test ever sleeps to wait for a window. */
export class ManualClock implements Clock {
  private wallOffset = 0;
  constructor(private ms = 0) {}
  now(): number {
    return this.ms;
  }
  wall(): number {
    return this.ms + this.wallOffset;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
  set(ms: number): void {
    this.ms = ms;
  }
  /** Steps the wall clock alone, as NTP or an operator would. */
  stepWall(ms: number): void {
    this.wallOffset += ms;
  }
}

/** The wall-clock time of a monotonic reading taken earlier. */
export const wallTimeOf = (clock: Clock, monotonic: number): number => clock.wall() - (clock.now() - monotonic);
