/**
 * Usage buckets, stored as struct-of-arrays so a bucket costs a few typed-array cells, not an object.
 *
 * Each bucket has two parts:
 * - the fill: outstanding usage (the window's share plus any debt) that drains continuously at the quota
 *   rate. It decides Ok/Throttled. Capacity = quota x window is the burst a fresh bucket accepts; anything
 *   above it is debt, carried until the quota has paid it off (docs/algorithm.md derives the throttle math
 *   and why this, unlike a forgetting window, keeps the long-run rate exact).
 * - the ring: actual usage per ring cell over the last window, for the measured rate that operators see
 *   (Float32: it is only displayed, and half the size of the fill's precision is plenty for that).
 *
 * Ids come from the owner (a KeyedIds index); `ensure` sizes the arrays for them. State another module keeps per
 * bucket (the fleet's sync state) lives in its own columns by the same ids (BucketColumns), not here.
 *
 * The fill is kept in milli-units (units x 1000), so with integer quotas and an integer-ms clock the drain per
 * millisecond is the quota itself and every quantity is an integer: throttle times are exact, with no
 * floating-point rounding to make a throttle 1 ms short.
 */
/**
 * A fractional rate (10/min drains 1/6 milli-unit a ms) cannot keep the fill exact: a quotient that is a whole
 * number of ms in exact arithmetic comes out a hair either side. Within this many ms of a whole number it is
 * taken as that number, so P3 holds to the millisecond (docs/algorithm.md, section 7); float error stays below
 * 1e-8 ms at any fill the ceiling allows.
 */
const SNAP_MS = 1e-6;

const floorSnapped = (q: number): number => {
  const k = Math.round(q);
  return Math.abs(q - k) < SNAP_MS ? k : Math.floor(q);
};

export class BucketArrays {
  /** Milliseconds one ring cell covers. */
  readonly cellMs: number;
  private ring: Float32Array;
  private ringHead: Float64Array;
  private fill: Float64Array;
  private levelAt: Float64Array;
  private rateOf: Float64Array;
  private cap: Float64Array;
  private seen: Float64Array;
  private throttles: Float64Array;
  /** 1 when the bucket's limit is a shadow value: measured and counted, never enforced. */
  private shadowOf: Uint8Array;
  private allocated: number;

  constructor(
    readonly windowMs: number,
    /** Cells of the measured-rate ring per bucket (quotas.window_buckets). */
    readonly ringCells: number,
    initialBuckets = 1024,
    /** Debt beyond this many ms of a bucket's quota is forgiven (docs/algorithm.md, bounded debt). */
    readonly maxDebtMs = Infinity,
  ) {
    if (!Number.isInteger(windowMs / ringCells)) throw new RangeError('window_ms must be a multiple of window_buckets');
    this.cellMs = windowMs / ringCells;
    this.allocated = Math.max(1, initialBuckets);
    this.ring = new Float32Array(this.allocated * ringCells);
    this.ringHead = new Float64Array(this.allocated);
    this.fill = new Float64Array(this.allocated);
    this.levelAt = new Float64Array(this.allocated);
    this.rateOf = new Float64Array(this.allocated);
    this.cap = new Float64Array(this.allocated);
    this.seen = new Float64Array(this.allocated);
    this.throttles = new Float64Array(this.allocated);
    this.shadowOf = new Uint8Array(this.allocated);
  }

  /** Makes room for ids below `capacity`. */
  ensure(capacity: number): void {
    while (this.allocated < capacity) this.grow();
  }

  /** Starts bucket `id` empty at `now`. */
  init(id: number, now: number): void {
    this.ring.fill(0, id * this.ringCells, (id + 1) * this.ringCells);
    this.ringHead[id] = Math.floor(now / this.cellMs);
    this.fill[id] = 0;
    this.levelAt[id] = now;
    this.seen[id] = now;
    this.throttles[id] = 0;
  }

  /** Copies bucket `from` of `source` (same window shape) into `to` here: used when compacting. */
  copyFrom(source: BucketArrays, from: number, to: number): void {
    const s = this.ringCells;
    this.ring.set(source.ring.subarray(from * s, (from + 1) * s), to * s);
    this.ringHead[to] = source.ringHead[from]!;
    this.fill[to] = source.fill[from]!;
    this.levelAt[to] = source.levelAt[from]!;
    this.rateOf[to] = source.rateOf[from]!;
    this.cap[to] = source.cap[from]!;
    this.seen[to] = source.seen[from]!;
    this.throttles[to] = source.throttles[from]!;
    this.shadowOf[to] = source.shadowOf[from]!;
  }

  /**
   * Brings the bucket to `now` under `ratePerSec` (which may have changed since the last access): drains
   * the fill by the time elapsed at the rate it had, then applies the current rate and capacity: `burst`
   * units when a burst key sets it, else quota x window.
   */
  touch(id: number, ratePerSec: number, now: number, burst?: number, shadow = false): void {
    this.advance(id, now);
    this.rateOf[id] = ratePerSec;
    this.cap[id] = burst === undefined || burst === Infinity ? ratePerSec * this.windowMs : burst * 1000;
    this.shadowOf[id] = shadow ? 1 : 0;
  }

  /** True when the bucket's limit is a shadow value. */
  isShadow(id: number): boolean {
    return this.shadowOf[id] === 1;
  }

  /** Forgets the bucket's fill, debt and measured usage (ResetUsage); its limit stays. */
  reset(id: number, now: number): void {
    this.fill[id] = 0;
    this.levelAt[id] = now;
    this.ring.fill(0, id * this.ringCells, (id + 1) * this.ringCells);
  }

  /** Brings the bucket to `now` at the rate it already has (no alteration since it was resolved). */
  advance(id: number, now: number): void {
    if (now > this.levelAt[id]!) {
      this.fill[id] = this.fillNow(id, now);
      this.levelAt[id] = now;
    }
    this.seen[id] = now;
  }

  /** The fill drained to `now` at the bucket's rate (milli-units per ms = units per second), not stored. */
  private fillNow(id: number, now: number): number {
    const elapsed = now - this.levelAt[id]!;
    if (elapsed <= 0) return this.fill[id]!;
    const drained = this.fill[id]! - elapsed * this.rateOf[id]!;
    return Math.max(0, drained);
  }

  /**
   * Adds `amount` units: to the fill (decisions) and to the current ring cell (measurement). The fill gets
   * `divisor` times the amount: a fleet sidecar cut off from Redis decides with quota / N, which is the same as
   * counting each unit N times against the whole quota (docs/algorithm.md, fleet fallback).
   */
  record(id: number, amount: number, now: number, divisor = 1): void {
    const fill = this.fill[id]! + amount * 1000 * divisor;
    this.fill[id] = Math.min(fill, this.ceiling(id));
    const cur = Math.floor(now / this.cellMs);
    const base = id * this.ringCells;
    this.expireRing(id, base, cur);
    const cell = base + (cur % this.ringCells);
    this.ring[cell] = this.ring[cell]! + amount;
  }

  /**
   * Whole milliseconds until the fill drains by `excess` milli-units. Floor: a remainder worth less than
   * 1 ms stays in the fill as debt instead of becoming a 0 ms throttle.
   */
  msToDrain(id: number, excess: number): number {
    if (excess <= 0) return 0;
    const rate = this.rateOf[id]!;
    if (!Number.isInteger(rate)) return floorSnapped(excess / rate);
    const ms = Math.floor(excess / rate);
    // Correct the one case where the float quotient rounds up across an integer.
    return ms * rate > excess ? ms - 1 : ms;
  }

  /** Outstanding usage in milli-units: this window's share plus debt. */
  outstanding(id: number): number {
    return this.fill[id]!;
  }

  /** The highest fill: capacity plus max_debt_ms of the quota (milli-units). */
  ceiling(id: number): number {
    return this.cap[id]! + this.maxDebtMs * this.rateOf[id]!;
  }

  /** Sets the fill at `now` (the fleet's fill, learnt from a sync), bounded by the ceiling. */
  setFill(id: number, fill: number, now: number): void {
    this.fill[id] = Math.min(Math.max(0, fill), this.ceiling(id));
    if (now > this.levelAt[id]!) this.levelAt[id] = now;
  }

  /** quota x window in milli-units: the burst a fresh bucket accepts. */
  capacity(id: number): number {
    return this.cap[id]!;
  }

  lastSeen(id: number): number {
    return this.seen[id]!;
  }

  countThrottle(id: number): void {
    this.throttles[id] = this.throttles[id]! + 1;
  }

  throttleCount(id: number): number {
    return this.throttles[id]!;
  }

  /** The quota (units per second) the bucket was last touched under. */
  rate(id: number): number {
    return this.rateOf[id]!;
  }

  /** Outstanding usage at `now` in milli-units, without changing the bucket (usage reports). */
  outstandingAt(id: number, now: number): number {
    return this.fillNow(id, now);
  }

  /** Outstanding / capacity at `now`, without changing the bucket: above 1 means in debt (throttled). */
  utilization(id: number, now: number): number {
    return this.fillNow(id, now) / this.cap[id]!;
  }

  /** Usage recorded in the last window, per second: the measured rate. */
  measuredRate(id: number, now: number): number {
    const cur = Math.floor(now / this.cellMs);
    const base = id * this.ringCells;
    this.expireRing(id, base, cur);
    let sum = 0;
    for (let i = 0; i < this.ringCells; i++) sum += this.ring[base + i]!;
    return (sum * 1000) / this.windowMs;
  }

  private expireRing(id: number, base: number, cur: number): void {
    const head = this.ringHead[id]!;
    if (cur <= head) return;
    const steps = cur - head;
    if (steps >= this.ringCells) {
      this.ring.fill(0, base, base + this.ringCells);
    } else {
      for (let i = 1; i <= steps; i++) this.ring[base + ((head + i) % this.ringCells)] = 0;
    }
    this.ringHead[id] = cur;
  }

  private grow(): void {
    const n = this.allocated * 2;
    const widen = (a: Float64Array, len: number): Float64Array => {
      const b = new Float64Array(len);
      b.set(a);
      return b;
    };
    const ring = new Float32Array(n * this.ringCells);
    ring.set(this.ring);
    this.ring = ring;
    this.ringHead = widen(this.ringHead, n);
    this.fill = widen(this.fill, n);
    this.levelAt = widen(this.levelAt, n);
    this.rateOf = widen(this.rateOf, n);
    this.cap = widen(this.cap, n);
    this.seen = widen(this.seen, n);
    this.throttles = widen(this.throttles, n);
    const shadow = new Uint8Array(n);
    shadow.set(this.shadowOf);
    this.shadowOf = shadow;
    this.allocated = n;
  }
}
