import { bucketName, GROUP, keyOfKind, LocalBucketStore, type BucketStore } from './bucket-store.js';
import type { Clock } from './clock.js';
import { bucketDisplay } from './entity.js';
import { CONSUME, PRODUCE, QUOTA_KEYS, REQUEST, type QuotaKey, type QuotaKeyIndex } from './quota-key.js';
import { emptyResolution, type QuotaTable, type Resolution } from './quota-table.js';
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
  quotaType: QuotaKey;
  entity: string;
  recorded: boolean;
  /** The principal is blocked: reject the request (Denied). `entity` names the blocked entity. */
  denied: boolean;
  reason: string;
}

/** The cached "bucket" of a caller whose principal is blocked. */
const DENIED = -2;

/**
 * The quota policy: for each Record call, which buckets it lands in (resolution, cached per caller), record or
 * admit, the throttle, and the counters behind the metrics. It does not know how buckets are stored: that is
 * the BucketStore's (LocalBucketStore by default). Pure and synchronous: time comes from the injected clock;
 * the only timer is the optional cleanup interval.
 */
export class QuotaManager {
  readonly options: Readonly<QuotaManagerOptions>;
  /** Calls that needed a new bucket while maxBuckets were tracked; answered Ok without tracking. */
  untracked = 0;
  /** Throttled replies per quota key (the rivven_quota_*_violations_total counters), and their total throttle time. */
  readonly violations = QUOTA_KEYS.map(() => 0);
  throttleTimeMsTotal = 0;
  /** Calls that left a bucket above NEAR_LIMIT of its capacity, per quota key. */
  readonly nearLimit = QUOTA_KEYS.map(() => 0);
  /** Calls a shadow limit would have throttled (answered Ok), per quota key. */
  readonly shadowViolations = QUOTA_KEYS.map(() => 0);
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
  };

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
    this.cache = new ResolutionCache(o.maxBuckets);
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
    if (a < 0 && b < 0) return this.ok();
    if (admit) {
      const waitA = a < 0 ? 0 : this.enforced(a, this.admitWait(a, bytes));
      const waitB = b < 0 ? 0 : this.enforced(b, this.admitWait(b, bytes));
      if (waitA === 0 && waitB === 0) {
        if (a >= 0) this.charge(a, bytes, now);
        if (b >= 0) this.charge(b, bytes, now);
        return this.ok();
      }
      return waitA >= waitB ? this.throttled(a, waitA, false) : this.throttled(b, waitB, false);
    }
    const waitA = a < 0 ? 0 : this.enforced(a, this.recordAndWait(a, bytes, now));
    const waitB = b < 0 ? 0 : this.enforced(b, this.recordAndWait(b, bytes, now));
    if (waitA === 0 && waitB === 0) return this.ok();
    // Both buckets may be over: each counts its throttle, the reply names the longer wait.
    if (waitA > 0 && waitB > 0) this.buckets.countThrottle(waitA >= waitB ? b : a);
    return waitA >= waitB ? this.throttled(a, waitA, true) : this.throttled(b, waitB, true);
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
    return usageReport(this.buckets.view(), this.clock, query);
  }

  /** Highest utilization and buckets above NEAR_LIMIT per quota key, for metrics. */
  utilizationSummary(): Promise<{ max: number[]; nearLimit: number[] }> {
    return utilizationSummary(this.buckets.view(), this.clock);
  }

  /** The bucket a call of (key, user, client-id) lands in, or -1; for tests of who shares a bucket. */
  bucketIdOf(key: QuotaKeyIndex, user: string | null, client: string | null): number {
    return this.bucketFor(key, user, client, this.clock.now());
  }

  private recordOne(k: QuotaKeyIndex, user: string | null, client: string | null, amount: number, admit: boolean, now: number) {
    const id = this.bucketFor(k, user, client, now);
    if (id < 0) return id === DENIED ? this.deny(user, client) : this.ok();
    if (admit) {
      const wait = this.enforced(id, this.admitWait(id, amount));
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
   * The wait a bucket imposes: `wait` itself, or 0 for a shadow limit, whose would-be throttle is counted
   * (rivven_quota_shadow_violations_total) and not enforced.
   */
  private enforced(id: number, wait: number): number {
    if (wait === 0 || !this.buckets.isShadow(id)) return wait;
    const k = keyOfKind(this.buckets.kind(id));
    this.shadowViolations[k]!++;
    this.buckets.countThrottle(id);
    this.events.violation('SHADOW_VIOLATION', this.display(id), QUOTA_KEYS[k], `a shadow limit would have throttled ${wait} ms`);
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
    const b = this.buckets;
    this.charge(id, amount, now);
    return b.msToDrain(id, b.outstanding(id) - b.capacity(id));
  }

  /** Records `amount` in the bucket (both modes, once a call is let through) and counts a near-limit call. */
  private charge(id: number, amount: number, now: number): void {
    const b = this.buckets;
    b.record(id, amount, now);
    if (b.outstanding(id) > NEAR_LIMIT * b.capacity(id)) this.nearLimit[keyOfKind(b.kind(id))]!++;
  }

  /**
   * 0 when the call is admitted now; else the whole ms until this same call would be. A call larger than
   * the capacity waits for an empty bucket, so it is never starved by smaller ones.
   */
  private admitWait(id: number, amount: number): number {
    const b = this.buckets;
    const c = b.capacity(id);
    const o = b.outstanding(id);
    // The call counts as its weight would record it (the fleet's fallback: quota / live sidecars).
    const size = amount * 1000 * b.weight;
    return size > c ? b.msToDrain(id, o) : b.msToDrain(id, o + size - c);
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
    const k = keyOfKind(this.buckets.kind(id));
    this.violations[k]!++;
    this.buckets.countThrottle(id);
    this.throttleTimeMsTotal += ms;
    const v = this.verdict;
    v.throttleMs = ms;
    v.quotaType = QUOTA_KEYS[k];
    v.entity = this.display(id);
    v.recorded = recorded;
    v.denied = false;
    this.events.violation('RATE_LIMIT_EXCEEDED', v.entity, v.quotaType, `throttled ${ms} ms${recorded ? '' : ' (admit mode: refused)'}`);
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
      return cached;
    }
    // A blocked principal is cached as such: until the next alteration its calls cost one lookup.
    const id = kind !== GROUP && this.table.blockedFor(a, b) !== undefined ? DENIED : this.resolve(kind, a, b, now);
    // Resolving set the bucket's rate (draining at the old one up to now); calls in between keep it. A call
    // that found no room (maxBuckets) is not cached: it tries for a bucket again next time.
    if (c >= 0) cache.put(c, id, id !== -1 || this.resolution.limit === Infinity);
    return id;
  }

  /** Resolves the limit (into this.resolution), finds or creates the bucket it implies, and sets its rate. */
  private resolve(kind: number, a: string | null, b: string | null, now: number): number {
    const r = this.resolution;
    if (kind === GROUP) this.table.resolveGroup(a!, r);
    else this.table.resolve(kind as QuotaKeyIndex, a, b, r);
    if (r.limit === Infinity) return -1;
    const id = this.buckets.findOrCreate(kind, r.bucketUser, r.bucketClient, now);
    if (id < 0) {
      this.untracked++;
      return -1;
    }
    const f = this.factor;
    // Integer rates keep the level arithmetic exact (docs/algorithm.md), and never below 1 unit/s.
    const rate = f === 1 ? r.limit : Math.max(1, Math.floor(r.limit * f));
    const burst = f === 1 || r.burst === undefined ? r.burst : Math.max(1, Math.floor(r.burst * f));
    this.buckets.touch(id, rate, now, burst, r.shadow);
    return id;
  }
}
