import type { BucketKeeper } from './bucket-keeper.js';

/**
 * A key with several rates has one bucket per rate (docs/algorithm.md, section 7). The resolution cache holds
 * one integer per caller: a bucket id (>= 0) for every one-rate key, or, at or below MULTI, a group of bucket ids
 * kept here: MULTI - g is group g, its ids shortest period first.
 */
export const MULTI = -3;
/** Bucket ids per group: at most 4 rates per key. */
const GROUP_SIZE = 4;
/** Groups 0 and 1 are scratch for callers the cache has no room for (1 for consumer groups, 0 for the rest). */
const SCRATCH = 2;
const INITIAL = 64 * GROUP_SIZE;

/** Whole ms until a call of `amount` fits the bucket (0: now); a call above the capacity waits for it to empty. */
export function admitWait(b: BucketKeeper, id: number, amount: number): number {
  const c = b.capacity(id);
  const o = b.outstanding(id);
  // The call counts as the bucket keeper records it (the fleet's fallback: quota / live sidecars).
  const size = amount * 1000 * b.divisor;
  return size > c ? b.msToDrain(id, o) : b.msToDrain(id, o + size - c);
}

/** Whole ms until the bucket is back to its capacity (0: it is not over). */
export const overWait = (b: BucketKeeper, id: number): number => b.msToDrain(id, b.outstanding(id) - b.capacity(id));

/**
 * The groups of the multi-rate callers resolved in the cache's current generation, in one Int32Array (-1 past a
 * key's rates): 16 bytes per such caller, none for the others. Started afresh whenever the cache's generation
 * moves, since no group cached in an older generation is read again. Each wait over a group sets `bound`, the bucket
 * with the longest wait (the shorter period on a tie).
 */
export class BucketGroups {
  bound = -1;
  private pool = new Int32Array(INITIAL);
  private used = SCRATCH;
  private generation = -1;

  constructor(private readonly b: BucketKeeper) {}

  /** Keeps `ids` (GROUP_SIZE of them, -1 past the last) as a group: a fresh one for `generation`, or scratch group `scratch`. */
  add(ids: Int32Array, generation: number, scratch: 0 | 1 | -1): number {
    let g: number = scratch;
    if (scratch < 0) {
      if (this.generation !== generation) {
        this.generation = generation;
        this.used = SCRATCH;
        if (this.pool.length > INITIAL) this.pool = new Int32Array(INITIAL);
      }
      if ((this.used + 1) * GROUP_SIZE > this.pool.length) {
        const pool = new Int32Array(this.pool.length * 2);
        pool.set(this.pool);
        this.pool = pool;
      }
      g = this.used++;
    }
    this.pool.set(ids, g * GROUP_SIZE);
    return MULTI - g;
  }

  /** The bucket ids of a group. */
  ids(ref: number): number[] {
    const base = (MULTI - ref) * GROUP_SIZE;
    return [...this.pool.subarray(base, base + GROUP_SIZE)].filter((id) => id >= 0);
  }

  /** The group's first (shortest-period) bucket. */
  first(ref: number): number {
    return this.pool[(MULTI - ref) * GROUP_SIZE]!;
  }

  /** Brings every bucket of a group to `now`. */
  advance(ref: number, now: number): void {
    const pool = this.pool;
    const base = (MULTI - ref) * GROUP_SIZE;
    for (let i = base; i < base + GROUP_SIZE && pool[i]! >= 0; i++) this.b.advance(pool[i]!, now);
  }

  /** The longest admit-mode wait among the group's buckets; changes nothing. */
  admitWait(ref: number, amount: number): number {
    const pool = this.pool;
    const base = (MULTI - ref) * GROUP_SIZE;
    let worst = 0;
    this.bound = pool[base]!;
    for (let i = base; i < base + GROUP_SIZE && pool[i]! >= 0; i++) {
      const w = admitWait(this.b, pool[i]!, amount);
      if (w > worst) {
        worst = w;
        this.bound = pool[i]!;
      }
    }
    return worst;
  }

  /**
   * Records `amount` in every bucket of the group. Returns the longest-period bucket it left above `near` of its
   * capacity (the one a near-limit call is counted against: the call is one near-limit call, and the longer
   * period is the one that would bind longer), or -1 when none.
   */
  record(ref: number, amount: number, now: number, near: number): number {
    const b = this.b;
    const pool = this.pool;
    const base = (MULTI - ref) * GROUP_SIZE;
    let nearest = -1;
    for (let i = base; i < base + GROUP_SIZE && pool[i]! >= 0; i++) {
      const id = pool[i]!;
      b.record(id, amount, now);
      if (b.outstanding(id) > near * b.capacity(id)) nearest = id;
    }
    return nearest;
  }

  /**
   * The longest wait among the group's buckets after a call was recorded. Every other bucket that is over counts
   * a throttle too, as the principal's and the group's buckets do in a consume call.
   */
  overWait(ref: number): number {
    const b = this.b;
    const pool = this.pool;
    const base = (MULTI - ref) * GROUP_SIZE;
    let worst = 0;
    let over = 0;
    this.bound = pool[base]!;
    for (let i = base; i < base + GROUP_SIZE && pool[i]! >= 0; i++) {
      const w = overWait(b, pool[i]!);
      if (w > 0) over++;
      if (w > worst) {
        worst = w;
        this.bound = pool[i]!;
      }
    }
    if (over > 1) {
      for (let i = base; i < base + GROUP_SIZE && pool[i]! >= 0; i++) {
        if (pool[i] !== this.bound && overWait(b, pool[i]!) > 0) b.countThrottle(pool[i]!);
      }
    }
    return worst;
  }
}
