import { KeyedIds } from './keyed-ids.js';
import { forRangeSliced } from '../util/slices.js';

const INITIAL = 1024;

/**
 * Per caller (kind, user or group, client-id) that has called: the bucket id its last resolution gave, tagged
 * with the generation it was made in. The owner bumps the generation whenever a resolution may have changed (an
 * alteration) or an id may have gone stale (the bucket keeper's generation moved); each caller then re-resolves once,
 * on its next call. No object per caller: typed arrays indexed by a KeyedIds id.
 */
export class ResolutionCache {
  /** Misses cannot be cached once this many callers are held: they resolve every time. */
  constructor(private readonly maxCallers: number) {}

  generation = 0;
  private ids = new KeyedIds(INITIAL);
  private generations = new Int32Array(INITIAL);
  private buckets = new Int32Array(INITIAL);
  private seen = new Float64Array(INITIAL);

  /** The caller's entry (created if there is room), or -1; `now` marks it as seen. */
  entry(kind: number, a: string | null, b: string | null, now: number): number {
    let c = this.ids.find(kind, a, b);
    if (c < 0) {
      if (this.ids.size >= this.maxCallers) return -1;
      c = this.ids.add(kind, a, b);
      if (c >= this.generations.length) this.grow(this.ids.capacity);
      this.generations[c] = -1;
    }
    this.seen[c] = now;
    return c;
  }

  /** The cached bucket id of an entry, or undefined when it must be resolved again. */
  get(c: number): number | undefined {
    return this.generations[c] === this.generation ? this.buckets[c] : undefined;
  }

  /** Caches `bucket` for the entry in this generation; `keep` false leaves it to be resolved next time too. */
  put(c: number, bucket: number, keep: boolean): void {
    this.buckets[c] = bucket;
    this.generations[c] = keep ? this.generation : -1;
  }

  /**
   * Forgets callers not seen since `cutoff`, in slices; when most of the room is then unused, starts afresh
   * with small tables (it is only a cache: every caller resolves once again), so the memory is given back.
   */
  async sweep(cutoff: number): Promise<void> {
    const ids = this.ids;
    await forRangeSliced(ids.highWater, (c) => {
      if (ids === this.ids && ids.isLive(c) && this.seen[c]! <= cutoff) ids.remove(c);
    });
    if (ids === this.ids && ids.capacity > INITIAL && ids.size * 4 < ids.capacity) this.reset();
  }

  private reset(): void {
    this.ids = new KeyedIds(INITIAL);
    this.generations = new Int32Array(INITIAL);
    this.buckets = new Int32Array(INITIAL);
    this.seen = new Float64Array(INITIAL);
    this.generation++;
  }

  private grow(capacity: number): void {
    const grow = <T extends Float64Array | Int32Array>(a: T, make: (n: number) => T): T => {
      const b = make(capacity);
      b.set(a);
      return b;
    };
    this.generations = grow(this.generations, (n) => new Int32Array(n));
    this.buckets = grow(this.buckets, (n) => new Int32Array(n));
    this.seen = grow(this.seen, (n) => new Float64Array(n));
  }
}
