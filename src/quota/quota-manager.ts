import {
  bucketName,
  GROUP,
  KEY_PERIOD_SLOTS,
  keyOfKind,
  keyPeriodSlot,
  limitIndexOfKind,
  LocalBucketStore,
  PERIOD_INDEX,
  periodKind,
  periodOfKind,
  PERIODS,
  resourceKind,
  slotOfKind,
  type BucketStore,
} from './bucket-store.js';
import { admitWait, BucketGroups, MULTI, overWait } from './bucket-groups.js';
import type { Clock } from './clock.js';
import { bucketDisplay } from './entity.js';
import { CONSUME, MAX_RATE_KEYS, PRODUCE, REQUEST, type QuotaKeyIndex, type RateKey } from './quota-key.js';
import { emptyResolution, type QuotaTable, type Resolution } from './quota-table.js';
import { PERIOD_SECONDS, type PeriodUnit } from './rate-value.js';
import { ResolutionCache } from './resolution-cache.js';
import { NO_VIOLATIONS, type ViolationSink } from './violations.js';
import { DEFAULT_QUOTA_OPTIONS, type QuotaManagerOptions } from './options.js';
import { componentMatcher, NEAR_LIMIT, type BucketReport, type UsageQuery, usageReport, utilizationSummary } from './usage-report.js';

/**
 * The answer to one Record* call; throttleMs 0 means Ok.
 * The manager reuses ONE instance for every answer (no allocation per call): copy what you need out of it
 * before the next call to the same manager.
 */
export interface Verdict {
  throttleMs: number;
  /** The rate key that binds: a built-in one, or a declared resource's `<name>_rate`. */
  quotaType: RateKey;
  entity: string;
  recorded: boolean;
  /** The principal is blocked: reject the request (Denied). `entity` names the blocked entity. */
  denied: boolean;
  reason: string;
  /** The period of the rate whose bucket binds (the longest wait): 's' unless the key has other periods. */
  period: PeriodUnit;
}

/** Counters per rate key and period (slotOfKind) summed per rate key (MAX_RATE_KEYS: built-in, then resource slots). */
const perKey = (byPeriod: readonly number[]): number[] =>
  Array.from({ length: MAX_RATE_KEYS }, (_, k) => PERIODS.reduce((sum, _p, p) => sum + byPeriod[keyPeriodSlot(k, p)]!, 0));

/** A violation's detail names a rate per minute, hour or day; a per-second one reads as before periods. */
const perText = (period: PeriodUnit): string => (period === 's' ? '' : ` (the per-${period} rate)`);

/** The cached "bucket" of a caller with nothing to track (unlimited, or maxBuckets reached). */
const NONE = -1;
/** The cached "bucket" of a caller whose principal is blocked. */
const DENIED = -2;
/** At most 4 rates per key. */
const MAX_RATES = 4;

/**
 * The quota policy: for each Record call, which buckets it lands in (resolution, cached per caller), record or
 * admit, the throttle, and the counters behind the metrics. It does not know how buckets are stored: that is
 * the BucketStore's (LocalBucketStore by default). Synchronous and without I/O: time comes from the injected
 * clock; the only timer is the optional cleanup interval.
 */
export class QuotaManager {
  readonly options: Readonly<QuotaManagerOptions>;
  /** Calls that needed a new bucket while maxBuckets were tracked; answered Ok without tracking. */
  untracked = 0;
  /**
   * Throttled replies per rate key (Resources.rateKeys' order: the built-in three, then each resource slot) and period of the bucket that bound (slotOfKind; the
   * rivven_quota_*_violations_total counters, labelled by period), and their total throttle time.
   */
  readonly violationsByPeriod: number[] = new Array<number>(KEY_PERIOD_SLOTS).fill(0);
  throttleTimeMsTotal = 0;
  /** Calls that left a bucket above NEAR_LIMIT of its capacity, per quota key and period of that bucket. */
  readonly nearLimitByPeriod: number[] = new Array<number>(KEY_PERIOD_SLOTS).fill(0);
  /** Calls a shadow limit would have throttled (answered Ok), per quota key and period of the bucket that would have. */
  readonly shadowByPeriod: number[] = new Array<number>(KEY_PERIOD_SLOTS).fill(0);
  /** Calls answered Denied because their principal is blocked. */
  denied = 0;
  readonly buckets: BucketStore;
  /** Where throttles, shadow violations and denials are reported as episodes (the violation log). */
  events: ViolationSink = NO_VIOLATIONS;

  private readonly cache: ResolutionCache;
  private seenGeneration = -1;
  private seenStoreEpoch = -1;
  private sweeping = false;
  /** Load-based adjustment: every rate and burst is multiplied by it (1 unless adaptive is on). */
  private factor = 1;
  private readonly resolution: Resolution = emptyResolution();
  private readonly verdict: Verdict = {
    throttleMs: 0,
    quotaType: 'produce_bytes_rate',
    entity: '',
    recorded: true,
    denied: false,
    reason: '',
    period: 's',
  };
  /** The buckets of callers whose key has several rates (cached values at or below MULTI). */
  private readonly groups: BucketGroups;
  /** The bucket that binds in the last wait computed over one bucket or a group (the longest wait). */
  private bound = -1;
  /** Bucket ids found while resolving a multi-rate key, before they are given a group. */
  private readonly found = new Int32Array(MAX_RATES);
  /** The name of each rate key (Verdict.quotaType), built-in and declared resources. */
  private readonly keyNames: readonly RateKey[];

  constructor(
    readonly table: QuotaTable,
    options: Partial<QuotaManagerOptions> = {},
    readonly clock: Clock,
    buckets?: BucketStore,
  ) {
    this.options = Object.freeze({ ...DEFAULT_QUOTA_OPTIONS, ...options });
    const o = this.options;
    this.buckets =
      buckets ??
      new LocalBucketStore({
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

  // `now` defaults to the injected clock; a server answering a batch of requests passes one reading for all.
  recordProduce(user: string | null, client: string | null, bytes: number, admit: boolean, now = this.clock.now()): Verdict {
    return this.recordOne(PRODUCE, user, client, bytes, admit, now);
  }

  recordRequest(user: string | null, client: string | null, count: number, admit: boolean, now = this.clock.now()): Verdict {
    return this.recordOne(REQUEST, user, client, count, admit, now);
  }

  /** A declared resource's usage (RecordUsage): `slot` is its place in quotas.resources (Resources.slot). */
  recordUsage(slot: number, user: string | null, client: string | null, amount: number, admit: boolean, now = this.clock.now()): Verdict {
    return this.recordOne(resourceKind(slot), user, client, amount, admit, now);
  }

  recordConsume(
    user: string | null,
    client: string | null,
    group: string | null,
    bytes: number,
    admit: boolean,
    now = this.clock.now(),
  ): Verdict {
    if (group === null) return this.recordOne(CONSUME, user, client, bytes, admit, now);
    const a = this.bucketFor(CONSUME, user, client, now);
    if (a === DENIED) return this.deny(user, client);
    const b = this.bucketFor(GROUP, group, null, now);
    if (a === NONE && b === NONE) return this.ok();
    // a and b are each one bucket or a group of them (several rates); `bound` names the one that binds.
    if (admit) {
      const waitA = a === NONE ? 0 : this.enforce(this.admitWaitOf(a, bytes));
      const boundA = this.bound;
      const waitB = b === NONE ? 0 : this.enforce(this.admitWaitOf(b, bytes));
      const boundB = this.bound;
      if (waitA === 0 && waitB === 0) {
        if (a !== NONE) this.chargeOf(a, bytes, now);
        if (b !== NONE) this.chargeOf(b, bytes, now);
        return this.ok();
      }
      return waitA >= waitB ? this.throttled(boundA, waitA, false) : this.throttled(boundB, waitB, false);
    }
    const waitA = a === NONE ? 0 : this.enforce(this.recordWaitOf(a, bytes, now));
    const boundA = this.bound;
    const waitB = b === NONE ? 0 : this.enforce(this.recordWaitOf(b, bytes, now));
    const boundB = this.bound;
    if (waitA === 0 && waitB === 0) return this.ok();
    // Both buckets may be over: each counts its throttle, the reply names the longer wait.
    if (waitA > 0 && waitB > 0) this.buckets.countThrottle(waitA >= waitB ? boundB : boundA);
    return waitA >= waitB ? this.throttled(boundA, waitA, true) : this.throttled(boundB, waitB, true);
  }

  /**
   * Drops buckets and cached resolutions idle for idleTimeoutMs (and lets the bucket store compact), so memory
   * taken by a burst of principals is given back. Runs in slices; one sweep at a time. Resolves with the
   * buckets dropped.
   */
  async sweep(): Promise<number> {
    if (this.sweeping) return 0;
    this.sweeping = true;
    try {
      const cutoff = this.clock.now() - this.options.idleTimeoutMs;
      await this.cache.sweep(cutoff);
      return await this.buckets.sweep(cutoff);
    } finally {
      this.sweeping = false;
    }
  }

  /** Runs sweep() every cleanupIntervalMs on a timer that does not keep the process alive. */
  startCleanup(): () => void {
    const timer = setInterval(() => void this.sweep(), this.options.cleanupIntervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** The `top` live buckets by utilization or rate (docs/protocol.md, DescribeUsage). */
  usage(query: UsageQuery): Promise<BucketReport[]> {
    return usageReport(this.buckets.view(), this.clock, query, this.keyNames);
  }

  /** Throttled replies per rate key (built-in, then resource slots), every period together. */
  get violations(): number[] {
    return perKey(this.violationsByPeriod);
  }

  /** Near-limit calls per rate key, every period together. */
  get nearLimit(): number[] {
    return perKey(this.nearLimitByPeriod);
  }

  /** Shadow violations per rate key, every period together. */
  get shadowViolations(): number[] {
    return perKey(this.shadowByPeriod);
  }

  /** Highest utilization and buckets above NEAR_LIMIT per quota key and period (slotOfKind), for metrics. */
  utilizationSummary(): Promise<{ max: number[]; nearLimit: number[] }> {
    return utilizationSummary(this.buckets.view(), this.clock);
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

  private recordOne(k: number, user: string | null, client: string | null, amount: number, admit: boolean, now: number) {
    const id = this.bucketFor(k, user, client, now);
    if (id < 0) {
      if (id <= MULTI) return this.recordGroup(id, amount, admit, now);
      return id === DENIED ? this.deny(user, client) : this.ok();
    }
    if (admit) {
      const wait = this.enforced(id, admitWait(this.buckets, id, amount));
      if (wait === 0) {
        this.charge(id, amount, now);
        return this.ok();
      }
      return this.throttled(id, wait, false);
    }
    const wait = this.enforced(id, this.recordAndWait(id, amount, now));
    return wait === 0 ? this.ok() : this.throttled(id, wait, true);
  }

  /**
   * A call of a key with several rates (docs/algorithm.md, section 7): the wait is the longest among its
   * buckets; record mode records into every bucket, admit mode into all of them or (refused) none.
   */
  private recordGroup(ref: number, amount: number, admit: boolean, now: number): Verdict {
    if (admit) {
      const wait = this.enforce(this.admitWaitOf(ref, amount));
      if (wait === 0) {
        this.chargeOf(ref, amount, now);
        return this.ok();
      }
      return this.throttled(this.bound, wait, false);
    }
    const wait = this.enforce(this.recordWaitOf(ref, amount, now));
    return wait === 0 ? this.ok() : this.throttled(this.bound, wait, true);
  }

  /** `enforced` for the bucket that bound the last wait computed (`bound`). */
  private enforce(wait: number): number {
    return this.enforced(this.bound, wait);
  }

  /** The admit-mode wait of one bucket or a group (the longest; `bound` names its bucket). Changes nothing. */
  private admitWaitOf(ref: number, amount: number): number {
    if (ref >= 0) {
      this.bound = ref;
      return admitWait(this.buckets, ref, amount);
    }
    const wait = this.groups.admitWait(ref, amount);
    this.bound = this.groups.bound;
    return wait;
  }

  /** Records into one bucket or every bucket of a group, and returns the longest wait (`bound` names its bucket). */
  private recordWaitOf(ref: number, amount: number, now: number): number {
    if (ref >= 0) {
      this.bound = ref;
      return this.recordAndWait(ref, amount, now);
    }
    this.chargeOf(ref, amount, now);
    const wait = this.groups.overWait(ref);
    this.bound = this.groups.bound;
    return wait;
  }

  /** Records `amount` into one bucket or into every bucket of a group; a near-limit call counts once. */
  private chargeOf(ref: number, amount: number, now: number): void {
    if (ref >= 0) this.charge(ref, amount, now);
    else {
      const near = this.groups.record(ref, amount, now, NEAR_LIMIT);
      if (near >= 0) this.nearLimitByPeriod[slotOfKind(this.buckets.kind(near))]!++;
    }
  }

  /**
   * The wait a bucket imposes: `wait` itself, or 0 for a shadow limit, whose would-be throttle is counted
   * (rivven_quota_shadow_violations_total) and not enforced.
   */
  private enforced(id: number, wait: number): number {
    if (wait === 0 || !this.buckets.isShadow(id)) return wait;
    const k = keyOfKind(this.buckets.kind(id));
    this.shadowByPeriod[slotOfKind(this.buckets.kind(id))]!++;
    this.buckets.countThrottle(id);
    const period = periodOfKind(this.buckets.kind(id));
    this.events.violation(
      'SHADOW_VIOLATION',
      this.display(id),
      this.keyNames[k]!,
      `a shadow limit would have throttled ${wait} ms${perText(period)}`,
      period,
    );
    return 0;
  }

  /** Denied: the principal is blocked (the rare path: the blocking entity and reason are looked up again). */
  private deny(user: string | null, client: string | null): Verdict {
    const blocked = this.table.blockedFor(user, client);
    this.denied++;
    const v = this.verdict;
    v.throttleMs = 0;
    v.recorded = false;
    v.denied = true;
    v.entity = blocked?.entity ?? bucketDisplay(user, client);
    v.reason = blocked?.reason ?? '';
    this.events.violation('BLOCKED', v.entity, null, `denied: ${v.reason}`);
    return v;
  }

  /**
   * Clears the level, debt and measured usage of every bucket a component matches (ResetUsage); their limits
   * stay. Resolves with the number of buckets reset.
   */
  resetUsage(components: [string, string | null][]): Promise<number> {
    return this.buckets.resetWhere(componentMatcher(components) ?? (() => true), this.clock.now());
  }

  private recordAndWait(id: number, amount: number, now: number): number {
    this.charge(id, amount, now);
    return overWait(this.buckets, id);
  }

  /** Records `amount` in the bucket (both modes, once a call is let through) and counts a near-limit call. */
  private charge(id: number, amount: number, now: number): void {
    const b = this.buckets;
    b.record(id, amount, now);
    if (b.outstanding(id) > NEAR_LIMIT * b.capacity(id)) this.nearLimitByPeriod[slotOfKind(b.kind(id))]!++;
  }

  private ok(): Verdict {
    const v = this.verdict;
    v.throttleMs = 0;
    v.recorded = true;
    v.denied = false;
    return v;
  }

  private throttled(id: number, waitMs: number, recorded: boolean): Verdict {
    const ms = Math.min(waitMs, this.options.maxThrottleMs);
    const kind = this.buckets.kind(id);
    const k = keyOfKind(kind);
    this.violationsByPeriod[slotOfKind(kind)]!++;
    this.buckets.countThrottle(id);
    this.throttleTimeMsTotal += ms;
    const v = this.verdict;
    v.throttleMs = ms;
    v.quotaType = this.keyNames[k]!;
    v.entity = this.display(id);
    v.recorded = recorded;
    v.denied = false;
    v.period = periodOfKind(kind);
    this.events.violation(
      'RATE_LIMIT_EXCEEDED',
      v.entity,
      v.quotaType,
      `throttled ${ms} ms${perText(v.period)}${recorded ? '' : ' (admit mode: refused)'}`,
      v.period,
    );
    return v;
  }

  /** The display form of a bucket (docs/protocol.md), built when asked (Throttled replies): never stored. */
  private display(id: number): string {
    const b = this.buckets;
    return bucketName(b.kind(id), b.a(id), b.b(id));
  }

  /**
   * The bucket a call lands in, brought to `now` under its current limit; -1 when nothing is tracked
   * (unlimited, or maxBuckets reached). For kind GROUP, `a` is the group and `b` is null.
   */
  private bucketFor(kind: number, a: string | null, b: string | null, now: number): number {
    const cache = this.cache;
    if (this.table.generation !== this.seenGeneration || this.buckets.epoch !== this.seenStoreEpoch) {
      // An alteration may change any resolution; a sweep or compaction may have freed or moved any id.
      this.seenGeneration = this.table.generation;
      this.seenStoreEpoch = this.buckets.epoch;
      cache.epoch++;
    }
    const c = cache.slot(kind, a, b, now);
    const cached = c < 0 ? undefined : cache.get(c);
    if (cached !== undefined) {
      if (cached >= 0) this.buckets.advance(cached, now);
      else if (cached <= MULTI) this.groups.advance(cached, now);
      return cached;
    }
    // A blocked principal is cached as such: until the next alteration its calls cost one lookup.
    const id = kind !== GROUP && this.table.blockedFor(a, b) !== undefined ? DENIED : this.resolve(kind, a, b, now, c >= 0);
    // Resolving set the bucket's rate (draining at the old one up to now); calls in between keep it. A call
    // that found no room (maxBuckets) is not cached: it tries for a bucket again next time.
    if (c >= 0) cache.put(c, id, id !== -1 || this.resolution.limit === Infinity);
    return id;
  }

  /**
   * Resolves the limit (into this.resolution), finds or creates the bucket(s) it implies, and sets their rates:
   * one bucket for a key with one rate, else a group (one bucket per rate), which goes in the pool
   * when the caller has a cache slot (`cached`) and in a scratch group otherwise.
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
    return this.groups.add(found, this.cache.epoch, cached ? -1 : kind === GROUP ? 1 : 0);
  }

  /**
   * A rate or capacity under the load-based factor. Integer ones stay integers, never below 1, which keeps the
   * level arithmetic exact (docs/algorithm.md); a fractional one (0.17/s) is scaled as it is.
   */
  private scaled(x: number): number {
    const f = this.factor;
    if (f === 1) return x;
    return Number.isInteger(x) ? Math.max(1, Math.floor(x * f)) : x * f;
  }
}
