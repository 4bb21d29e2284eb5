import { bucketDisplay } from './entity.js';
import { wallTimeOf, type Clock } from './clock.js';
import { TopK } from './top-k.js';
import { forEachSliced, forRangeSliced } from '../util/slices.js';
import { CONSUME, PRODUCE, QUOTA_KEYS, REQUEST, type QuotaKey, type QuotaKeyIndex } from './quota-key.js';
import type { QuotaTable, Resolution } from './quota-table.js';
import { BucketTable } from './bucket-table.js';
import { KeyedIds } from './keyed-ids.js';

export interface QuotaManagerOptions {
  /** Length of the sliding window. @default 1000 */
  windowMs: number;
  /** Sub-buckets per window; windowMs must be a multiple. @default 10 */
  windowBuckets: number;
  /** Upper bound of any throttle_time_ms. @default 30000 */
  maxThrottleMs: number;
  /** A bucket untouched this long is dropped. @default 3600000 */
  idleTimeoutMs: number;
  /** How often idle buckets are swept. @default 30000 */
  cleanupIntervalMs: number;
  /** Hard bound on tracked buckets; past it new buckets are not tracked (fail open). @default 1000000 */
  maxBuckets: number;
  /**
   * How far past its capacity one bucket's level may go, in ms of its quota: debt beyond it is forgiven, so
   * one huge call cannot throttle a principal for years (docs/algorithm.md, bounded debt). @default 300000
   */
  maxDebtMs: number;
}

export const DEFAULT_QUOTA_OPTIONS: Readonly<QuotaManagerOptions> = Object.freeze({
  windowMs: 1000,
  windowBuckets: 10,
  maxThrottleMs: 30000,
  idleTimeoutMs: 3_600_000,
  cleanupIntervalMs: 30_000,
  maxBuckets: 1_000_000,
  maxDebtMs: 300_000,
});

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
}

/** Utilization above which a call counts as a near-limit event. */
export const NEAR_LIMIT = 0.8;

/** One live bucket, as the usage report sees it (DescribeUsage puts it on the wire). */
export interface BucketReport {
  entity: string;
  /** The bucket's parts, so a reader never has to parse `entity` (names may contain ':' or '/'). */
  user: string | null;
  clientId: string | null;
  consumerGroup: string | null;
  quotaType: QuotaKey;
  /** Usage recorded in the last window, per second. */
  rate: number;
  /** The quota, per second. */
  limit: number;
  /** Outstanding usage / (quota x window); above 1 the bucket is in debt and its callers are throttled. */
  utilization: number;
  throttledTotal: number;
  /** Epoch ms (wall clock) of the last call. */
  lastSeenMs: number;
}

export interface UsageQuery {
  /** Keep buckets whose user, client-id or consumer group matches any component; null name = any. */
  components?: [string, string | null][];
  top: number;
  sortBy: 'utilization' | 'rate';
}

/**
 * A filter over (is a group bucket, user or group, client-id) built from components by set lookup: O(1) per
 * bucket whatever the number of components. null when there is nothing to filter.
 */
function componentMatcher(components: [string, string | null][]): ((group: boolean, a: string | null, b: string | null) => boolean) | null {
  if (components.length === 0) return null;
  const sets = { user: new Set<string>(), 'client-id': new Set<string>(), 'consumer-group': new Set<string>() };
  const any = { user: false, 'client-id': false, 'consumer-group': false };
  for (const [type, name] of components) {
    if (!(type in sets)) continue;
    const t = type as keyof typeof sets;
    if (name === null) any[t] = true;
    else sets[t].add(name);
  }
  const hit = (t: keyof typeof sets, v: string | null): boolean => v !== null && (any[t] || sets[t].has(v));
  return (group, a, b) => (group ? hit('consumer-group', a) : hit('user', a) || hit('client-id', b));
}

/** Bucket and cache kinds beyond the three quota keys: a consumer group's consume_bytes_rate bucket. */
const GROUP = 3;
const INITIAL = 1024;
/** Longest stretch of background bucket moving after a compaction before it yields. */
const MIGRATION_SLICE_MS = 5;

/**
 * Measures usage per bucket and decides Ok or Throttled. Pure and synchronous: time comes from the
 * injected clock, the only timer is the optional cleanup interval.
 *
 * Two indexes of small integer ids, neither making an object per entry (docs/algorithm.md, section 5):
 * - buckets: (quota key or GROUP, user or group, client-id) -> bucket id, whose state is in a BucketTable;
 * - callers: (quota key or GROUP, user or group, client-id) -> a cached resolution (bucket id and limit),
 *   valid while its epoch matches: any alteration, and any sweep that drops buckets, starts a new epoch.
 */
export class QuotaManager {
  readonly options: Readonly<QuotaManagerOptions>;
  /** Calls that needed a new bucket while maxBuckets were tracked; answered Ok without tracking. */
  untracked = 0;
  /** Throttled replies per quota key (the seed's violation counters), and their total throttle time. */
  readonly violations = [0, 0, 0];
  throttleTimeMsTotal = 0;
  /** Calls that left a bucket above NEAR_LIMIT of its capacity, per quota key. */
  readonly nearLimit = [0, 0, 0];

  private bucketIds = new KeyedIds(INITIAL);
  private table_: BucketTable;
  private callerIds = new KeyedIds(INITIAL);
  private callerEpoch = new Int32Array(INITIAL);
  private callerBucket = new Int32Array(INITIAL);
  private callerSeen = new Float64Array(INITIAL);
  private epoch = 0;
  private seenGeneration = -1;
  /** A compaction in progress: the old index and table, and how far the background move has got. */
  private sweeping = false;
  private migration: { ids: KeyedIds; table: BucketTable; cursor: number } | null = null;
  private readonly resolution: Resolution = { level: 9, limit: Infinity, bucketUser: null, bucketClient: null };
  private readonly verdict: Verdict = { throttleMs: 0, quotaType: 'produce_bytes_rate', entity: '', recorded: true };

  constructor(
    readonly table: QuotaTable,
    options: Partial<QuotaManagerOptions> = {},
    readonly clock: Clock,
  ) {
    this.options = Object.freeze({ ...DEFAULT_QUOTA_OPTIONS, ...options });
    this.table_ = new BucketTable(this.options.windowMs, this.options.windowBuckets, INITIAL, this.options.maxDebtMs);
  }

  /** The bucket state (replaced when a sweep compacts it). */
  get buckets(): BucketTable {
    return this.table_;
  }

  get bucketCount(): number {
    // A moved bucket leaves the old index, so the two sizes never count one bucket twice.
    return this.bucketIds.size + (this.migration === null ? 0 : this.migration.ids.size);
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
    const b = this.bucketFor(GROUP, group, null, now);
    if (a < 0 && b < 0) return this.ok();
    if (admit) {
      const waitA = a < 0 ? 0 : this.admitWait(a, bytes);
      const waitB = b < 0 ? 0 : this.admitWait(b, bytes);
      if (waitA === 0 && waitB === 0) {
        if (a >= 0) this.admit(a, bytes, now);
        if (b >= 0) this.admit(b, bytes, now);
        return this.ok();
      }
      return waitA >= waitB ? this.throttled(a, waitA, false) : this.throttled(b, waitB, false);
    }
    const waitA = a < 0 ? 0 : this.recordAndWait(a, bytes, now);
    const waitB = b < 0 ? 0 : this.recordAndWait(b, bytes, now);
    if (waitA === 0 && waitB === 0) return this.ok();
    // Both buckets may be over: each counts its throttle, the reply names the longer wait.
    if (waitA > 0 && waitB > 0) this.table_.countThrottle(waitA >= waitB ? b : a);
    return waitA >= waitB ? this.throttled(a, waitA, true) : this.throttled(b, waitB, true);
  }

  /**
   * Drops buckets and cached resolutions idle for idleTimeoutMs, and compacts the tables when most of their
   * room is unused, so memory taken by a burst of principals is given back. Runs in slices (a million buckets
   * never stall the event loop); one sweep at a time. Resolves with the buckets dropped.
   */
  async sweep(): Promise<number> {
    if (this.sweeping) return 0;
    this.sweeping = true;
    try {
      const cutoff = this.clock.now() - this.options.idleTimeoutMs;
      // Read afresh in each step: a compaction may replace them between slices (then the rest is skipped).
      const ids = this.bucketIds;
      let dropped = 0;
      await forRangeSliced(ids.highWater, (id) => {
        if (ids !== this.bucketIds || !ids.isLive(id) || this.table_.lastSeen(id) > cutoff) return;
        ids.remove(id);
        dropped++;
        // Cached resolutions may name this id, which a new bucket may take before the next step.
        this.epoch++;
      });
      const callers = this.callerIds;
      await forRangeSliced(callers.highWater, (c) => {
        if (callers === this.callerIds && callers.isLive(c) && this.callerSeen[c]! <= cutoff) callers.remove(c);
      });
      const now = this.bucketIds;
      if (this.migration === null && now.capacity > INITIAL && now.size * 4 < now.capacity) this.compact();
      return dropped;
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

  /**
   * The `top` live buckets by utilization or rate, highest first, optionally filtered by components. Scans
   * in slices (docs/operations.md, long requests): the bucket index it started with stays readable even if a
   * sweep compacts meanwhile, and a bucket dropped meanwhile is left out.
   */
  async usage(query: UsageQuery): Promise<BucketReport[]> {
    const now = this.clock.now();
    const ids = this.bucketIds;
    const b = this.table_;
    const byRate = query.sortBy === 'rate';
    const match = componentMatcher(query.components ?? []);
    const best = new TopK(query.top);
    await forRangeSliced(ids.highWater, (id) => {
      if (!ids.isLive(id)) return;
      const group = ids.kind(id) === GROUP;
      if (match !== null && !match(group, ids.a(id), ids.b(id))) return;
      best.offer(id, byRate ? b.measuredRate(id, now) : b.utilization(id, now));
    });
    const out: BucketReport[] = [];
    await forEachSliced(best.sorted(), (id) => {
      if (!ids.isLive(id)) return;
      const group = ids.kind(id) === GROUP;
      const k = (group ? CONSUME : ids.kind(id)) as QuotaKeyIndex;
      out.push({
        entity: group ? `consumer-group:${ids.a(id)!}` : bucketDisplay(ids.a(id), ids.b(id)),
        user: group ? null : ids.a(id),
        clientId: group ? null : ids.b(id),
        consumerGroup: group ? ids.a(id) : null,
        quotaType: QUOTA_KEYS[k],
        rate: b.measuredRate(id, now),
        limit: b.rate(id),
        utilization: b.utilization(id, now),
        throttledTotal: b.throttleCount(id),
        lastSeenMs: wallTimeOf(this.clock, b.lastSeen(id)),
      });
    });
    return out;
  }

  /** Highest utilization and the number of buckets above NEAR_LIMIT, per quota key, for metrics; sliced. */
  async utilizationSummary(): Promise<{ max: number[]; nearLimit: number[] }> {
    const now = this.clock.now();
    const max = [0, 0, 0];
    const near = [0, 0, 0];
    const ids = this.bucketIds;
    const table = this.table_;
    await forRangeSliced(ids.highWater, (id) => {
      if (!ids.isLive(id)) return;
      const u = table.utilization(id, now);
      const kind = ids.kind(id);
      const k = kind === GROUP ? CONSUME : kind;
      if (u > max[k]!) max[k] = u;
      if (u > NEAR_LIMIT) near[k]!++;
    });
    return { max, nearLimit: near };
  }

  /** The bucket a call of (key, user, client-id) lands in, or -1; for tests of who shares a bucket. */
  bucketIdOf(key: QuotaKeyIndex, user: string | null, client: string | null): number {
    return this.bucketFor(key, user, client, this.clock.now());
  }

  private recordOne(k: QuotaKeyIndex, user: string | null, client: string | null, amount: number, admit: boolean, now: number) {
    const id = this.bucketFor(k, user, client, now);
    if (id < 0) return this.ok();
    if (admit) {
      const wait = this.admitWait(id, amount);
      if (wait === 0) {
        this.admit(id, amount, now);
        return this.ok();
      }
      return this.throttled(id, wait, false);
    }
    const wait = this.recordAndWait(id, amount, now);
    return wait === 0 ? this.ok() : this.throttled(id, wait, true);
  }

  private recordAndWait(id: number, amount: number, now: number): number {
    const b = this.table_;
    this.admit(id, amount, now);
    return b.msToDrain(id, b.outstanding(id) - b.capacity(id));
  }

  private admit(id: number, amount: number, now: number): void {
    const b = this.table_;
    b.record(id, amount, now);
    if (b.outstanding(id) > NEAR_LIMIT * b.capacity(id)) this.nearLimit[this.keyOf(id)]!++;
  }

  /**
   * 0 when the call is admitted now; else the whole ms until this same call would be. A call larger than
   * the capacity waits for an empty bucket, so it is never starved by smaller ones.
   */
  private admitWait(id: number, amount: number): number {
    const b = this.table_;
    const c = b.capacity(id);
    const o = b.outstanding(id);
    const size = amount * 1000;
    return size > c ? b.msToDrain(id, o) : b.msToDrain(id, o + size - c);
  }

  private ok(): Verdict {
    const v = this.verdict;
    v.throttleMs = 0;
    v.recorded = true;
    return v;
  }

  private throttled(id: number, waitMs: number, recorded: boolean): Verdict {
    const ms = Math.min(waitMs, this.options.maxThrottleMs);
    const k = this.keyOf(id);
    this.violations[k]!++;
    this.table_.countThrottle(id);
    this.throttleTimeMsTotal += ms;
    const v = this.verdict;
    v.throttleMs = ms;
    v.quotaType = QUOTA_KEYS[k];
    v.entity = this.display(id);
    v.recorded = recorded;
    return v;
  }

  /** The quota key a bucket counts against (a group bucket counts consume_bytes_rate). */
  private keyOf(id: number): QuotaKeyIndex {
    const kind = this.bucketIds.kind(id);
    return (kind === GROUP ? CONSUME : kind) as QuotaKeyIndex;
  }

  /** The display form of DESIGN section 3, built when asked (Throttled replies, usage): never stored. */
  private display(id: number): string {
    const ids = this.bucketIds;
    return ids.kind(id) === GROUP ? `consumer-group:${ids.a(id)!}` : bucketDisplay(ids.a(id), ids.b(id));
  }

  /**
   * The bucket a call lands in, brought to `now` under its current limit; -1 when nothing is tracked
   * (unlimited, or maxBuckets reached). For kind GROUP, `a` is the group and `b` is null.
   */
  private bucketFor(kind: number, a: string | null, b: string | null, now: number): number {
    if (this.table.generation !== this.seenGeneration) {
      this.seenGeneration = this.table.generation;
      this.epoch++;
    }
    const callers = this.callerIds;
    let c = callers.find(kind, a, b);
    if (c < 0) {
      if (callers.size >= this.options.maxBuckets) return this.resolveUncached(kind, a, b, now);
      c = callers.add(kind, a, b);
      if (c >= this.callerEpoch.length) this.growCallers(callers.capacity);
      this.callerEpoch[c] = -1;
    }
    this.callerSeen[c] = now;
    if (this.callerEpoch[c] !== this.epoch) {
      // Resolving sets the bucket's rate (draining at the old one up to now); calls in between keep it.
      const id = this.resolveUncached(kind, a, b, now);
      this.callerBucket[c] = id;
      // A call that found no room (maxBuckets) is not cached: it retries for a bucket next time.
      this.callerEpoch[c] = id < 0 && this.resolution.limit !== Infinity ? -1 : this.epoch;
      return id;
    }
    const id = this.callerBucket[c]!;
    if (id >= 0) this.table_.advance(id, now);
    return id;
  }

  private resolveUncached(kind: number, a: string | null, b: string | null, now: number): number {
    const id = this.resolveBucket(kind, a, b, now);
    if (id >= 0) this.table_.touch(id, this.resolution.limit, now);
    return id;
  }

  /** Resolves the limit (into this.resolution) and finds or creates the bucket it implies. */
  private resolveBucket(kind: number, a: string | null, b: string | null, now: number): number {
    const r = this.resolution;
    if (kind === GROUP) {
      r.limit = this.table.resolveGroup(a!) ?? Infinity;
      r.bucketUser = a;
      r.bucketClient = null;
    } else {
      this.table.resolve(kind as QuotaKeyIndex, a, b, r);
    }
    if (r.limit === Infinity) return -1;
    const ids = this.bucketIds;
    const existing = ids.find(kind, r.bucketUser, r.bucketClient);
    if (existing >= 0) return existing;
    if (this.migration !== null) {
      const old = this.migration.ids.find(kind, r.bucketUser, r.bucketClient);
      if (old >= 0) return this.moveBucket(old);
    }
    if (this.bucketCount >= this.options.maxBuckets) {
      this.untracked++;
      return -1;
    }
    const id = ids.add(kind, r.bucketUser, r.bucketClient);
    this.table_.ensure(ids.capacity);
    this.table_.init(id, now);
    return id;
  }

  private growCallers(capacity: number): void {
    const grow = <T extends Float64Array | Int32Array>(a: T, make: (n: number) => T): T => {
      const b = make(capacity);
      b.set(a);
      return b;
    };
    this.callerEpoch = grow(this.callerEpoch, (n) => new Int32Array(n));
    this.callerBucket = grow(this.callerBucket, (n) => new Int32Array(n));
    this.callerSeen = grow(this.callerSeen, (n) => new Float64Array(n));
  }

  /**
   * Gives back the room of dropped buckets without stopping the world: a fresh, right-sized index and table
   * take over at once, and each live bucket of the old ones moves across when it is next looked up, or in
   * background slices of SLICE_MS, whichever comes first (as Redis rehashes a dict). Until the last one has
   * moved, a bucket not yet moved is missing from usage reports and metrics summaries; decisions never miss it.
   */
  private compact(): void {
    const old = this.bucketIds;
    const size = Math.max(INITIAL, old.size * 2);
    this.migration = { ids: old, table: this.table_, cursor: 0 };
    this.bucketIds = new KeyedIds(size);
    this.table_ = new BucketTable(this.options.windowMs, this.options.windowBuckets, size, this.options.maxDebtMs);
    this.callerIds = new KeyedIds(INITIAL);
    this.callerEpoch = new Int32Array(INITIAL);
    this.callerBucket = new Int32Array(INITIAL);
    this.callerSeen = new Float64Array(INITIAL);
    this.epoch++;
    setTimeout(() => this.migrateSome(), 0).unref();
  }

  /** Moves one bucket of the migration's old table into the current one; returns its new id. */
  private moveBucket(oldId: number): number {
    const m = this.migration!;
    const ids = this.bucketIds;
    const to = ids.add(m.ids.kind(oldId), m.ids.a(oldId), m.ids.b(oldId));
    this.table_.ensure(ids.capacity);
    this.table_.copyFrom(m.table, oldId, to);
    m.ids.remove(oldId);
    return to;
  }

  private migrateSome(): void {
    const m = this.migration;
    if (m === null) return;
    const started = performance.now();
    while (m.cursor < m.ids.highWater) {
      const id = m.cursor++;
      if (m.ids.isLive(id)) this.moveBucket(id);
      if ((m.cursor & 255) === 0 && performance.now() - started > MIGRATION_SLICE_MS) break;
    }
    if (m.cursor >= m.ids.highWater) {
      this.migration = null;
      return;
    }
    setTimeout(() => this.migrateSome(), 0).unref();
  }

  /** True while a compaction is still moving buckets (tests). */
  get compacting(): boolean {
    return this.migration !== null;
  }

  /** Moves every bucket a compaction has left at once (tests, and shutdown). */
  finishCompaction(): void {
    const m = this.migration;
    if (m === null) return;
    for (; m.cursor < m.ids.highWater; m.cursor++) if (m.ids.isLive(m.cursor)) this.moveBucket(m.cursor);
    this.migration = null;
  }
}
