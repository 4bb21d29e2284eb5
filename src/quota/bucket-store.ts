import { BucketTable } from './bucket-table.js';
import { bucketDisplay } from './entity.js';
import {
  CONSUME,
  MAX_RATE_KEYS,
  MAX_RESOURCES,
  QUOTA_KEYS,
  RESOURCE_KEY_BASE,
  resourceRateIndex,
  type LimitKeyIndex,
} from './quota-key.js';
import type { PeriodUnit } from './rate-value.js';
import { CountMinSketch } from '../util/count-min.js';
import { KeyedIds } from './keyed-ids.js';
import { forRangeSliced } from '../util/slices.js';

/** The bucket kind of a consumer group's consume_bytes_rate bucket; the built-in rates' kinds are their key indexes. */
export const GROUP = QUOTA_KEYS.length;
/** The base kind of resource slot s is RESOURCE_KIND + s (quotas.resources; up to MAX_RESOURCES). */
export const RESOURCE_KIND = GROUP + 1;
/** The base kind of a declared resource's bucket. */
export const resourceKind = (slot: number): number => RESOURCE_KIND + slot;

/**
 * A key with several rates has one bucket per rate: the bucket of the rate with unit PERIODS[p] has kind
 * `base + KIND_STRIDE * p`, base being the quota key index or GROUP. A per-second rate (p = 0) keeps the base
 * kind itself, so a key configured as today has exactly today's buckets.
 */
export const PERIODS: readonly PeriodUnit[] = ['s', 'min', 'h', 'd'];
export const KIND_STRIDE = RESOURCE_KIND + MAX_RESOURCES;
export const PERIOD_INDEX: Readonly<Record<PeriodUnit, number>> = Object.freeze({ s: 0, min: 1, h: 2, d: 3 });
/** The kind of the bucket for rate period `p` (an index into PERIODS) of base kind `base`. */
export const periodKind = (base: number, p: number): number => base + KIND_STRIDE * p;
/** The quota key index or GROUP a kind belongs to, whatever its period. */
export const baseKind = (kind: number): number => kind % KIND_STRIDE;
/** The period of the rate a bucket of `kind` enforces. */
export const periodOfKind = (kind: number): PeriodUnit => PERIODS[Math.floor(kind / KIND_STRIDE)]!;

/**
 * Counters per rate key and period (the metrics' `quota_type` x `period`): one slot each. Rate keys are indexed
 * like Resources.rateKeys: the built-in three, then each resource slot (MAX_RATE_KEYS in all).
 */
export const KEY_PERIOD_SLOTS = MAX_RATE_KEYS * PERIODS.length;
/** The slot of rate key `k` (keyOfKind's index) and period index `p` (PERIOD_INDEX) in such counters. */
export const keyPeriodSlot = (k: number, p: number): number => k * PERIODS.length + p;
/** The slot of the key and period a bucket of `kind` counts against (a consumer group's: consume's). */
export const slotOfKind = (kind: number): number => keyPeriodSlot(keyOfKind(kind), Math.floor(kind / KIND_STRIDE));

/** A bucket's display form (docs/protocol.md, Record calls): Throttled.entity, usage rows, violation events. */
export const bucketName = (kind: number, a: string | null, b: string | null): string =>
  baseKind(kind) === GROUP ? `consumer-group:${a!}` : bucketDisplay(a, b);

/** Whose share of maxBuckets a bucket counts against: its user, else its client-id or group, each apart. */
const principalOf = (kind: number, a: string | null, b: string | null): string =>
  baseKind(kind) === GROUP ? `g:${a!}` : a !== null ? `u:${a}` : b !== null ? `c:${b}` : '';

/**
 * The rate key a bucket of `kind` counts against: a built-in key's index (a group's counts as consume), or
 * RESOURCE_KEY_BASE + a resource's slot (the index of the manager's per-key counters and of Resources.rateKeys).
 */
export const keyOfKind = (kind: number): number => {
  const base = baseKind(kind);
  return base < GROUP ? base : base === GROUP ? CONSUME : RESOURCE_KEY_BASE + base - RESOURCE_KIND;
};

/** The limit index a base kind (not GROUP) resolves: a built-in rate's, or a resource's rate. */
export const limitIndexOfKind = (base: number): LimitKeyIndex => (base < GROUP ? base : resourceRateIndex(base - RESOURCE_KIND));

/**
 * Where usage buckets live, as the quota policy sees them. A bucket is named by (kind, a, b): the kind is a
 * quota key index or GROUP, plus its rate's period (periodKind), `a` the user (or consumer group), `b` the client-id. It is handed out as a small
 * integer id, valid until `epoch` changes (a sweep dropped buckets, or a compaction moved them): whoever caches
 * ids must check the epoch. The level arithmetic is docs/algorithm.md, sections 2-3.
 *
 * Implementations: LocalBucketStore (this process's typed-array tables); the fleet mode adds buckets synced
 * through Redis behind the same interface.
 */
export interface BucketStore {
  /** Live buckets. */
  readonly size: number;
  /** Bumped whenever an id may stop naming its bucket. */
  readonly epoch: number;
  /** How many times each unit counts against a quota: 1, or the fleet state's divisor (its fallback). */
  readonly weight: number;
  /** The bucket of (kind, a, b), created empty at `now` if missing; -1 when maxBuckets are live. */
  findOrCreate(kind: number, a: string | null, b: string | null, now: number): number;
  /**
   * Brings a bucket to `now` under `ratePerSec` (after a resolution, which may have changed the rate), with
   * `burst` units of capacity (quota x window when undefined) and whether the limit is a shadow one.
   */
  touch(id: number, ratePerSec: number, now: number, burst: number | undefined, shadow: boolean): void;
  /** True when the bucket's limit is a shadow value: measured and counted, never enforced. */
  isShadow(id: number): boolean;
  /** Brings a bucket to `now` at the rate it has. */
  advance(id: number, now: number): void;
  record(id: number, amount: number, now: number): void;
  /** Outstanding usage in milli-units (the window's share plus debt). */
  outstanding(id: number): number;
  /** quota x window (the burst) in milli-units. */
  capacity(id: number): number;
  /** Whole ms until the level drains by `excess` milli-units. */
  msToDrain(id: number, excess: number): number;
  countThrottle(id: number): void;
  /** Throttled replies the bucket has caused since it was created. */
  throttleCount(id: number): number;
  kind(id: number): number;
  a(id: number): string | null;
  b(id: number): string | null;
  /** Resets every bucket `match` accepts (level, debt and measured usage); sliced. Resolves with the count. */
  resetWhere(match: (group: boolean, a: string | null, b: string | null) => boolean, now: number): Promise<number>;
  /** Drops buckets last seen at or before `cutoff`; sliced. Resolves with the number dropped. */
  sweep(cutoff: number): Promise<number>;
  /** A read-only view of the buckets for reports, valid across slices (see BucketView). */
  view(): BucketView;
}

/**
 * What a report reads, taken at one moment: if a compaction replaces the tables while a sliced report runs,
 * the view keeps reading the old ones, and a bucket dropped meanwhile reads as not live.
 */
export interface BucketView {
  readonly highWater: number;
  isLive(id: number): boolean;
  kind(id: number): number;
  a(id: number): string | null;
  b(id: number): string | null;
  readonly table: BucketTable;
}

export interface LocalBucketStoreOptions {
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

/**
 * State another module keeps per bucket beside the tables, by the same ids (the fleet's sync state): the store
 * sizes, starts, moves (compaction) and resets it together with each bucket, so it never names another bucket.
 */
export interface BucketColumns<C> {
  /** Makes room for ids below `capacity`. */
  ensure(capacity: number): void;
  /** Bucket `id` was created. */
  init(id: number): void;
  /** Bucket `id` was reset (ResetUsage). */
  reset(id: number): void;
  /** Bucket `from` of `source` moved to `to` here (a compaction). */
  copyFrom(source: C, from: number, to: number): void;
}

const INITIAL = 1024;

/**
 * The client-id of a principal's overflow bucket: once a user holds its share of buckets, its calls for further
 * client-ids share this one bucket per quota key, so they stay limited (together) instead of going untracked.
 */
export const OVERFLOW_CLIENT = '\u0000';
/** Longest stretch of background bucket moving after a compaction before it yields. */
const MIGRATION_SLICE_MS = 5;

/**
 * Buckets in this process: a KeyedIds index over a BucketTable, no object per bucket (docs/algorithm.md,
 * section 5). Sweeps run in slices; when a sweep leaves most of the room unused, the tables are compacted
 * incrementally: fresh, right-sized ones take over at once, and each live bucket moves across when it is next
 * looked up or in MIGRATION_SLICE_MS background slices (as Redis rehashes a dict). Until the last one has
 * moved, a bucket not yet moved is missing from views; lookups never miss it.
 */
export class LocalBucketStore<C extends BucketColumns<C> = never> implements BucketStore {
  epoch = 0;
  protected ids = new KeyedIds(INITIAL);
  protected table: BucketTable;
  /** The owner's per-bucket columns, by the same ids as `table` (null without them). */
  protected columns: C | null;
  private migration: { ids: KeyedIds; table: BucketTable; columns: C | null; cursor: number } | null = null;

  /**
   * Live buckets per principal (user, else client-id or group), for the share: a sketch of fixed size (1 MiB at
   * most), never below the true count, since one Map entry per principal cost a third of a bucket's memory.
   */
  private readonly perPrincipal: CountMinSketch;
  private readonly share: number;
  /** Calls sent to an overflow bucket because their principal held its share of maxBuckets. */
  overflowed = 0;

  constructor(
    private readonly options: LocalBucketStoreOptions,
    /** Makes the owner's per-bucket columns for tables of `size` buckets. */
    private readonly newColumns: ((size: number) => C) | null = null,
  ) {
    this.table = this.newTable(INITIAL);
    this.columns = newColumns === null ? null : newColumns(INITIAL);
    this.share = options.maxBucketsPerPrincipal ?? Math.max(1, Math.floor(options.maxBuckets / 10));
    this.perPrincipal = new CountMinSketch(Math.min(Math.max(64, options.maxBuckets), 65_536));
  }

  /** Every unit counts once: this process's buckets take whole quotas (the fleet's store overrides this). */
  get weight(): number {
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
    this.table.ensure(this.ids.capacity);
    this.table.init(id, now);
    if (this.columns !== null) {
      this.columns.ensure(this.ids.capacity);
      this.columns.init(id);
    }
    this.perPrincipal.add(principal, 1);
    return id;
  }

  touch(id: number, ratePerSec: number, now: number, burst: number | undefined, shadow: boolean): void {
    this.table.touch(id, ratePerSec, now, burst, shadow);
  }

  isShadow(id: number): boolean {
    return this.table.isShadow(id);
  }

  advance(id: number, now: number): void {
    this.table.advance(id, now);
  }

  record(id: number, amount: number, now: number): void {
    this.table.record(id, amount, now);
  }

  outstanding(id: number): number {
    return this.table.outstanding(id);
  }

  capacity(id: number): number {
    return this.table.capacity(id);
  }

  msToDrain(id: number, excess: number): number {
    return this.table.msToDrain(id, excess);
  }

  countThrottle(id: number): void {
    this.table.countThrottle(id);
  }

  throttleCount(id: number): number {
    return this.table.throttleCount(id);
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
      table: this.table,
    };
  }

  async sweep(cutoff: number): Promise<number> {
    const ids = this.ids;
    let dropped = 0;
    await forRangeSliced(ids.highWater, (id) => {
      // A compaction between slices replaces the index: the rest of this sweep is then the next one's.
      if (ids !== this.ids || !ids.isLive(id) || this.table.lastSeen(id) > cutoff) return;
      this.perPrincipal.add(principalOf(ids.kind(id), ids.a(id), ids.b(id)), -1);
      ids.remove(id);
      dropped++;
      // Cached ids may name this one, which a new bucket may take before the next step.
      this.epoch++;
    });
    if (this.migration === null && this.ids.capacity > INITIAL && this.ids.size * 4 < this.ids.capacity) this.compact();
    return dropped;
  }

  async resetWhere(match: (group: boolean, a: string | null, b: string | null) => boolean, now: number): Promise<number> {
    let count = 0;
    // Both the current tables and those a compaction is still moving out of: a bucket moves with its state.
    const sets: [KeyedIds, BucketTable, C | null][] = [[this.ids, this.table, this.columns]];
    if (this.migration !== null) sets.push([this.migration.ids, this.migration.table, this.migration.columns]);
    for (const [ids, table, columns] of sets) {
      await forRangeSliced(ids.highWater, (id) => {
        if (!ids.isLive(id) || !match(baseKind(ids.kind(id)) === GROUP, ids.a(id), ids.b(id))) return;
        table.reset(id, now);
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

  private newTable(size: number): BucketTable {
    const o = this.options;
    return new BucketTable(o.windowMs, o.windowBuckets, size, o.maxDebtMs);
  }

  private compact(): void {
    const size = Math.max(INITIAL, this.ids.size * 2);
    this.migration = { ids: this.ids, table: this.table, columns: this.columns, cursor: 0 };
    this.ids = new KeyedIds(size);
    this.table = this.newTable(size);
    this.columns = this.newColumns === null ? null : this.newColumns(size);
    this.epoch++;
    setTimeout(() => this.migrateSome(), 0).unref();
  }

  /** Moves one bucket of the old tables into the current ones; returns its new id. */
  private move(oldId: number): number {
    const m = this.migration!;
    const to = this.ids.add(m.ids.kind(oldId), m.ids.a(oldId), m.ids.b(oldId));
    this.table.ensure(this.ids.capacity);
    this.table.copyFrom(m.table, oldId, to);
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
