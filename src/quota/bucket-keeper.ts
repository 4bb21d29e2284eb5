import type { BucketArrays } from './bucket-arrays.js';
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

/** The bucket kind of a consumer group's consume_bytes_rate bucket; the built-in rates' kinds are their key indexes. */
export const GROUP = QUOTA_KEYS.length;
/** The base kind of resource s (its index in quotas.resources, up to MAX_RESOURCES) is RESOURCE_KIND + s. */
export const RESOURCE_KIND = GROUP + 1;
/** The base kind of a declared resource's bucket. */
export const resourceKind = (resource: number): number => RESOURCE_KIND + resource;

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
 * Counters per rate key and period (the metrics' `quota_type` x `period`): one counter each. Rate keys are indexed
 * like Resources.rateKeys: the built-in three, then each declared resource (MAX_RATE_KEYS in all).
 */
export const KEY_PERIODS = MAX_RATE_KEYS * PERIODS.length;
/** The counter index of rate key `k` (keyOfKind's index) and period index `p` (PERIOD_INDEX) in such counters. */
export const keyPeriodIndex = (k: number, p: number): number => k * PERIODS.length + p;
/** The counter index of the key and period a bucket of `kind` counts against (a consumer group's: consume's). */
export const keyPeriodOfKind = (kind: number): number => keyPeriodIndex(keyOfKind(kind), Math.floor(kind / KIND_STRIDE));

/** A bucket's display form (docs/protocol.md, Record calls): Throttled.entity, usage rows, violation events. */
export const bucketName = (kind: number, a: string | null, b: string | null): string =>
  baseKind(kind) === GROUP ? `consumer-group:${a!}` : bucketDisplay(a, b);

/**
 * The rate key a bucket of `kind` counts against: a built-in key's index (a group's counts as consume), or
 * RESOURCE_KEY_BASE + a resource's index (the index of the manager's per-key counters and of Resources.rateKeys).
 */
export const keyOfKind = (kind: number): number => {
  const base = baseKind(kind);
  return base < GROUP ? base : base === GROUP ? CONSUME : RESOURCE_KEY_BASE + base - RESOURCE_KIND;
};

/** The limit index a base kind (not GROUP) resolves: a built-in rate's, or a resource's rate. */
export const limitIndexOfKind = (base: number): LimitKeyIndex => (base < GROUP ? base : resourceRateIndex(base - RESOURCE_KIND));

/**
 * Where usage buckets are kept, as the quota policy sees them. A bucket is named by (kind, a, b): the kind is a
 * quota key index or GROUP, plus its rate's period (periodKind), `a` the user (or consumer group), `b` the client-id. It is handed out as a small
 * integer id, valid until `generation` changes (a sweep dropped buckets, or a compaction moved them): whoever caches
 * ids must check the generation. The fill arithmetic is docs/algorithm.md, sections 2-3.
 *
 * Implementations: LocalBucketKeeper (this process's typed-array tables); the fleet mode adds buckets synced
 * through Redis behind the same interface.
 */
export interface BucketKeeper {
  /** Buckets held. */
  readonly size: number;
  /** Bumped whenever an id may stop naming its bucket. */
  readonly generation: number;
  /** How many times each unit counts against a quota: 1, or the fleet state's divisor (its fallback). */
  readonly divisor: number;
  /** The bucket of (kind, a, b), created empty at `now` if missing; -1 when maxBuckets are held. */
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
  /** Whole ms until the fill drains by `excess` milli-units. */
  msToDrain(id: number, excess: number): number;
  countThrottle(id: number): void;
  /** Throttled replies the bucket has caused since it was created. */
  throttleCount(id: number): number;
  kind(id: number): number;
  a(id: number): string | null;
  b(id: number): string | null;
  /** Resets every bucket `match` accepts (fill, debt and measured usage); sliced. Resolves with the count. */
  resetWhere(match: (group: boolean, a: string | null, b: string | null) => boolean, now: number): Promise<number>;
  /** Drops buckets last seen at or before `cutoff`; sliced. Resolves with the number dropped. */
  sweep(cutoff: number): Promise<number>;
  /** A read-only view of the buckets for reports, valid across slices (see BucketView). */
  view(): BucketView;
}

/**
 * What a report reads, taken at one moment: if a compaction replaces the tables while a sliced report runs,
 * the view keeps reading the old ones, and a bucket dropped meanwhile reads as not held.
 */
export interface BucketView {
  readonly highWater: number;
  isLive(id: number): boolean;
  kind(id: number): number;
  a(id: number): string | null;
  b(id: number): string | null;
  readonly arrays: BucketArrays;
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
