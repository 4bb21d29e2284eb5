import { BucketArrays } from './bucket-arrays.js';
import { baseKind, GROUP, type BucketColumns, type BucketKeeper, type BucketView } from './bucket-keeper.js';
import { CountMinSketch } from '../util/count-min.js';
import { KeyedIds } from './keyed-ids.js';
import { forRangeSliced } from '../util/slices.js';

export interface LocalBucketKeeperOptions {
  windowMs: number;
  windowBuckets: number;
  maxDebtMs: number;
  maxBuckets: number;
  /**
   * One principal's share of maxBuckets (the bucket's user, else its client-id or group): past it that
   * principal's further buckets of a kind are one shared overflow bucket. @default a tenth of maxBuckets
   */
  maxBucketsPerPrincipal?: number;
}

/** Whose share of maxBuckets a bucket counts against: its user, else its client-id or group, each apart. */
const principalOf = (kind: number, a: string | null, b: string | null): string =>
  baseKind(kind) === GROUP ? `g:${a!}` : a !== null ? `u:${a}` : b !== null ? `c:${b}` : '';

const INITIAL = 1024;

/**
 * The client-id of a principal's overflow bucket: once a user holds its share of buckets, its calls for further
 * client-ids share this one bucket per quota key, so they stay limited (together) instead of going untracked.
 */
export const OVERFLOW_CLIENT = '\u0000';
/** Longest stretch of background bucket moving after a compaction before it yields. */
const MIGRATION_SLICE_MS = 5;

/**
 * Buckets in this process: a KeyedIds index over a BucketArrays, no object per bucket (docs/algorithm.md,
 * section 5). Sweeps run in slices; when a sweep leaves most of the room unused, the tables are compacted
 * incrementally: fresh, right-sized ones take over at once, and each held bucket moves across when it is next
 * looked up or in MIGRATION_SLICE_MS background slices (as Redis rehashes a dict). Until the last one has
 * moved, a bucket not yet moved is missing from views; lookups never miss it.
 */
export class LocalBucketKeeper<C extends BucketColumns<C> = never> implements BucketKeeper {
  generation = 0;
  protected ids = new KeyedIds(INITIAL);
  protected arrays: BucketArrays;
  /** The owner's per-bucket columns, by the same ids as `table` (null without them). */
  protected columns: C | null;
  private migration: { ids: KeyedIds; arrays: BucketArrays; columns: C | null; cursor: number } | null = null;

  /**
   * Buckets held per principal (user, else client-id or group), for the share: a sketch of fixed size (1 MiB at
   * most), never below the true count, since one Map entry per principal cost a third of a bucket's memory.
   */
  private readonly perPrincipal: CountMinSketch;
  private readonly share: number;
  /** Calls sent to an overflow bucket because their principal held its share of maxBuckets. */
  overflowed = 0;

  constructor(
    private readonly options: LocalBucketKeeperOptions,
    /** Makes the owner's per-bucket columns for tables of `size` buckets. */
    private readonly newColumns: ((size: number) => C) | null = null,
  ) {
    this.arrays = this.newArrays(INITIAL);
    this.columns = newColumns === null ? null : newColumns(INITIAL);
    this.share = options.maxBucketsPerPrincipal ?? Math.max(1, Math.floor(options.maxBuckets / 10));
    this.perPrincipal = new CountMinSketch(Math.min(Math.max(64, options.maxBuckets), 65_536));
  }

  /** Every unit counts once: this process's buckets take whole quotas (the fleet's store overrides this). */
  get divisor(): number {
    return 1;
  }

  get size(): number {
    // A moved bucket leaves the old index, so the two sizes never count one bucket twice.
    return this.ids.size + (this.migration === null ? 0 : this.migration.ids.size);
  }

  /** True while a compaction is still moving buckets. */
  get compacting(): boolean {
    return this.migration !== null;
  }

  find(kind: number, a: string | null, b: string | null): number {
    const id = this.ids.find(kind, a, b);
    if (id >= 0 || this.migration === null) return id;
    const old = this.migration.ids.find(kind, a, b);
    return old >= 0 ? this.move(old) : -1;
  }

  findOrCreate(kind: number, a: string | null, b: string | null, now: number): number {
    const existing = this.find(kind, a, b);
    if (existing >= 0) return existing;
    if (this.size >= this.options.maxBuckets) return -1;
    const principal = principalOf(kind, a, b);
    if (a !== null && b !== OVERFLOW_CLIENT && this.perPrincipal.estimate(principal) >= this.share) {
      // Its share is taken: one user spread over many client-ids cannot fill the table for everyone.
      this.overflowed++;
      return this.findOrCreate(kind, a, OVERFLOW_CLIENT, now);
    }
    const id = this.ids.add(kind, a, b);
    this.arrays.ensure(this.ids.capacity);
    this.arrays.init(id, now);
    if (this.columns !== null) {
      this.columns.ensure(this.ids.capacity);
      this.columns.init(id);
    }
    this.perPrincipal.add(principal, 1);
    return id;
  }

  touch(id: number, ratePerSec: number, now: number, burst: number | undefined, shadow: boolean): void {
    this.arrays.touch(id, ratePerSec, now, burst, shadow);
  }

  isShadow(id: number): boolean {
    return this.arrays.isShadow(id);
  }

  advance(id: number, now: number): void {
    this.arrays.advance(id, now);
  }

  record(id: number, amount: number, now: number): void {
    this.arrays.record(id, amount, now);
  }

  outstanding(id: number): number {
    return this.arrays.outstanding(id);
  }

  capacity(id: number): number {
    return this.arrays.capacity(id);
  }

  msToDrain(id: number, excess: number): number {
    return this.arrays.msToDrain(id, excess);
  }

  countThrottle(id: number): void {
    this.arrays.countThrottle(id);
  }

  throttleCount(id: number): number {
    return this.arrays.throttleCount(id);
  }

  kind(id: number): number {
    return this.ids.kind(id);
  }

  a(id: number): string | null {
    return this.ids.a(id);
  }

  b(id: number): string | null {
    return this.ids.b(id);
  }

  view(): BucketView {
    const ids = this.ids;
    return {
      highWater: ids.highWater,
      isLive: (id) => ids.isLive(id),
      kind: (id) => ids.kind(id),
      a: (id) => ids.a(id),
      b: (id) => ids.b(id),
      arrays: this.arrays,
    };
  }

  async sweep(cutoff: number): Promise<number> {
    const ids = this.ids;
    let dropped = 0;
    await forRangeSliced(ids.highWater, (id) => {
      // A compaction between slices replaces the index: the rest of this sweep is then the next one's.
      if (ids !== this.ids || !ids.isLive(id) || this.arrays.lastSeen(id) > cutoff) return;
      this.perPrincipal.add(principalOf(ids.kind(id), ids.a(id), ids.b(id)), -1);
      ids.remove(id);
      dropped++;
      // Cached ids may name this one, which a new bucket may take before the next step.
      this.generation++;
    });
    if (this.migration === null && this.ids.capacity > INITIAL && this.ids.size * 4 < this.ids.capacity) this.compact();
    return dropped;
  }

  async resetWhere(match: (group: boolean, a: string | null, b: string | null) => boolean, now: number): Promise<number> {
    let count = 0;
    // Both the current tables and those a compaction is still moving out of: a bucket moves with its state.
    const sets: [KeyedIds, BucketArrays, C | null][] = [[this.ids, this.arrays, this.columns]];
    if (this.migration !== null) sets.push([this.migration.ids, this.migration.arrays, this.migration.columns]);
    for (const [ids, arrays, columns] of sets) {
      await forRangeSliced(ids.highWater, (id) => {
        if (!ids.isLive(id) || !match(baseKind(ids.kind(id)) === GROUP, ids.a(id), ids.b(id))) return;
        arrays.reset(id, now);
        columns?.reset(id);
        this.wasReset(ids.kind(id), ids.a(id), ids.b(id));
        count++;
      });
    }
    return count;
  }

  /** Told of each bucket resetWhere resets (the fleet store resets it in Redis too). */
  protected wasReset(_kind: number, _a: string | null, _b: string | null): void {}

  /** Moves every bucket a compaction has left, at once (tests, benchmarks). */
  finishCompaction(): void {
    const m = this.migration;
    if (m === null) return;
    for (; m.cursor < m.ids.highWater; m.cursor++) if (m.ids.isLive(m.cursor)) this.move(m.cursor);
    this.migration = null;
  }

  private newArrays(size: number): BucketArrays {
    const o = this.options;
    return new BucketArrays(o.windowMs, o.windowBuckets, size, o.maxDebtMs);
  }

  private compact(): void {
    const size = Math.max(INITIAL, this.ids.size * 2);
    this.migration = { ids: this.ids, arrays: this.arrays, columns: this.columns, cursor: 0 };
    this.ids = new KeyedIds(size);
    this.arrays = this.newArrays(size);
    this.columns = this.newColumns === null ? null : this.newColumns(size);
    this.generation++;
    setTimeout(() => this.migrateSome(), 0).unref();
  }

  /** Moves one bucket of the old tables into the current ones; returns its new id. */
  private move(oldId: number): number {
    const m = this.migration!;
    const to = this.ids.add(m.ids.kind(oldId), m.ids.a(oldId), m.ids.b(oldId));
    this.arrays.ensure(this.ids.capacity);
    this.arrays.copyFrom(m.arrays, oldId, to);
    if (this.columns !== null) {
      this.columns.ensure(this.ids.capacity);
      this.columns.copyFrom(m.columns!, oldId, to);
    }
    m.ids.remove(oldId);
    return to;
  }

  private migrateSome(): void {
    const m = this.migration;
    if (m === null) return;
    const started = performance.now();
    while (m.cursor < m.ids.highWater) {
      const id = m.cursor++;
      if (m.ids.isLive(id)) this.move(id);
      if ((m.cursor & 255) === 0 && performance.now() - started > MIGRATION_SLICE_MS) break;
    }
    if (m.cursor >= m.ids.highWater) {
      this.migration = null;
      return;
    }
    setTimeout(() => this.migrateSome(), 0).unref();
  }
}
