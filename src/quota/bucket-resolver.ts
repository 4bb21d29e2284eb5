// Which buckets a Record call lands in: the per-call resolution (cached per caller), the touch that brings the
// buckets to the current limit (resolve, resolveRates) and the load-based factor (scaled); apart from the
// QuotaManager, which records or admits into what this finds and answers the throttle.
import { GROUP, limitIndexOfKind, PERIOD_INDEX, periodKind, type BucketKeeper } from './bucket-keeper.js';
import { LocalBucketKeeper } from './local-bucket-keeper.js';
import { BucketGroups, MULTI } from './bucket-groups.js';
import type { Clock } from './clock.js';
import type { QuotaKeyIndex, RateKey } from './quota-key.js';
import type { QuotaTable } from './quota-table.js';
import { PERIOD_SECONDS } from './rate-value.js';
import { ResolutionCache } from './resolution-cache.js';
import { emptyResolution, type Resolution } from './resolution.js';
import { DEFAULT_QUOTA_OPTIONS, type QuotaManagerOptions } from './options.js';
import { QuotaCounters } from './quota-counters.js';

/** The cached "bucket" of a caller with nothing to track (unlimited, or maxBuckets reached). */
export const NONE = -1;
/** The cached "bucket" of a caller whose principal is blocked (the wire answers Denied; BrokerQuotas' DENIED is -1). */
export const BLOCKED = -2;
/** At most 4 rates per key. */
export const MAX_RATES = 4;

/**
 * The buckets of the QuotaManager: where each call lands (resolution, cached per caller, under the adaptive
 * factor), over a BucketKeeper (LocalBucketKeeper by default). The QuotaManager adds record, admit and throttle.
 */
export class BucketResolver extends QuotaCounters {
  readonly options: Readonly<QuotaManagerOptions>;
  readonly buckets: BucketKeeper;

  protected readonly cache: ResolutionCache;
  private seenGeneration = -1;
  private seenStoreGeneration = -1;
  /** Load-based adjustment: every rate and burst is multiplied by it (1 unless adaptive is on). */
  private factor = 1;
  private readonly resolution: Resolution = emptyResolution();
  /** The buckets of callers whose key has several rates (cached values at or below MULTI). */
  protected readonly groups: BucketGroups;
  /** Bucket ids found while resolving a multi-rate key, before they are given a group. */
  private readonly found = new Int32Array(MAX_RATES);
  /** The name of each rate key (Verdict.quotaType), built-in and declared resources. */
  protected readonly keyNames: readonly RateKey[];

  constructor(
    readonly table: QuotaTable,
    options: Partial<QuotaManagerOptions> = {},
    readonly clock: Clock,
    buckets?: BucketKeeper,
  ) {
    super();
    this.options = Object.freeze({ ...DEFAULT_QUOTA_OPTIONS, ...options });
    const o = this.options;
    this.buckets =
      buckets ??
      new LocalBucketKeeper({
        windowMs: o.windowMs,
        windowBuckets: o.windowBuckets,
        maxDebtMs: o.maxDebtMs,
        maxBuckets: o.maxBuckets,
        maxBucketsPerPrincipal: o.maxBucketsPerPrincipal,
      });
    this.keyNames = table.resources.rateKeys as readonly RateKey[];
    this.cache = new ResolutionCache(o.maxBuckets);
    this.groups = new BucketGroups(this.buckets);
  }

  /** Scales every limit by `factor` (load-based adjustment); every cached resolution is redone. */
  setAdaptiveFactor(factor: number): void {
    if (factor === this.factor) return;
    this.factor = factor;
    this.seenGeneration = -1;
  }

  get adaptiveFactor(): number {
    return this.factor;
  }

  get bucketCount(): number {
    return this.buckets.size;
  }

  /** The bucket a call of (key, user, client-id) lands in, or -1; for tests of who shares a bucket. */
  bucketIdOf(key: QuotaKeyIndex, user: string | null, client: string | null): number {
    return this.bucketFor(key, user, client, this.clock.now());
  }

  /** Every bucket a call of (key, user, client-id) lands in, shortest period first (one per rate); [] if none. */
  bucketIdsOf(key: QuotaKeyIndex, user: string | null, client: string | null): number[] {
    const ref = this.bucketFor(key, user, client, this.clock.now());
    return ref >= 0 ? [ref] : ref > MULTI ? [] : this.groups.ids(ref);
  }

  /**
   * The bucket a call lands in, brought to `now` under its current limit; -1 when nothing is tracked
   * (unlimited, or maxBuckets reached). For kind GROUP, `a` is the group and `b` is null.
   */
  protected bucketFor(kind: number, a: string | null, b: string | null, now: number): number {
    const cache = this.cache;
    if (this.table.generation !== this.seenGeneration || this.buckets.generation !== this.seenStoreGeneration) {
      // An alteration may change any resolution; a sweep or compaction may have freed or moved any id.
      this.seenGeneration = this.table.generation;
      this.seenStoreGeneration = this.buckets.generation;
      cache.generation++;
    }
    const c = cache.entry(kind, a, b, now);
    const cached = c < 0 ? undefined : cache.get(c);
    if (cached !== undefined) {
      if (cached >= 0) this.buckets.advance(cached, now);
      else if (cached <= MULTI) this.groups.advance(cached, now);
      return cached;
    }
    // A blocked principal is cached as such: until the next alteration its calls cost one lookup.
    const id = kind !== GROUP && this.table.blockedFor(a, b) !== undefined ? BLOCKED : this.resolve(kind, a, b, now, c >= 0);
    // Resolving set the bucket's rate (draining at the old one up to now); calls in between keep it. A call
    // that found no room (maxBuckets) is not cached: it tries for a bucket again next time.
    if (c >= 0) cache.put(c, id, id !== -1 || this.resolution.limit === Infinity);
    return id;
  }

  /**
   * Resolves the limit (into this.resolution), finds or creates the bucket(s) it implies, and sets their rates:
   * one bucket for a key with one rate, else a group (one bucket per rate), which goes in the pool
   * when the caller has a cache entry (`cached`) and in a scratch group otherwise.
   */
  private resolve(kind: number, a: string | null, b: string | null, now: number, cached: boolean): number {
    const r = this.resolution;
    if (kind === GROUP) this.table.resolveGroup(a!, r);
    else this.table.resolve(limitIndexOfKind(kind), a, b, r);
    if (r.limit === Infinity) return NONE;
    if (r.rates !== undefined) return this.resolveRates(kind, now, cached);
    const id = this.buckets.findOrCreate(kind, r.bucketUser, r.bucketClient, now);
    if (id < 0) {
      this.untracked++;
      return NONE;
    }
    const rate = this.scaled(r.limit);
    // A burst below one unit would throttle every call, one within the rate too (P1): it admits one whole call.
    let burst = r.burst === undefined ? undefined : Math.max(1, this.scaled(r.burst));
    // A rate below one unit a second still admits one whole call (P1): its capacity is at least one unit.
    if (burst === undefined && rate < 1) burst = Math.max(1, (rate * this.options.windowMs) / 1000);
    this.buckets.touch(id, rate, now, burst, r.shadow);
    return id;
  }

  /**
   * The buckets of a key with several rates (or one rate per minute, hour or day), one per rate: rate A/P drains
   * at A/P a second with capacity A (a per-second one: quota x window as today), at least one unit; the
   * burst sets the capacity of the shortest (docs/algorithm.md, section 7). Each is touched as it is found, so
   * if maxBuckets stops the set half way, those made are valid buckets (swept when idle) and the call is untracked.
   */
  private resolveRates(kind: number, now: number, cached: boolean): number {
    const r = this.resolution;
    const rates = r.rates!;
    const found = this.found;
    for (let i = 0; i < MAX_RATES; i++) {
      if (i >= rates.length) {
        found[i] = -1;
        continue;
      }
      const rate = rates[i]!;
      const id = this.buckets.findOrCreate(periodKind(kind, PERIOD_INDEX[rate.unit]), r.bucketUser, r.bucketClient, now);
      if (id < 0) {
        this.untracked++;
        return NONE;
      }
      const amount = this.scaled(rate.amount);
      const perSec = amount / PERIOD_SECONDS[rate.unit];
      let capacity: number | undefined;
      if (i === 0 && r.burst !== undefined) capacity = Math.max(1, this.scaled(r.burst));
      else if (rate.unit !== 's') capacity = Math.max(1, amount);
      else if (perSec < 1) capacity = Math.max(1, (perSec * this.options.windowMs) / 1000);
      this.buckets.touch(id, perSec, now, capacity, r.shadow);
      found[i] = id;
    }
    // One rate (10/min) is one bucket like a per-second key: its kind names its period. Several need a group.
    if (rates.length === 1) return found[0]!;
    return this.groups.add(found, this.cache.generation, cached ? -1 : kind === GROUP ? 1 : 0);
  }

  /**
   * A rate or capacity under the load-based factor. Integer ones stay integers, never below 1, which keeps the
   * fill arithmetic exact (docs/algorithm.md); a fractional one (0.17/s) is scaled as it is.
   */
  private scaled(x: number): number {
    const f = this.factor;
    if (f === 1) return x;
    return Number.isInteger(x) ? Math.max(1, Math.floor(x * f)) : x * f;
  }
}
