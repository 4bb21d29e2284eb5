import { bucketDisplay } from './entity.js';
import type { Clock } from './clock.js';
import { CONSUME, PRODUCE, QUOTA_KEYS, REQUEST, type QuotaKey, type QuotaKeyIndex } from './quota-key.js';
import type { QuotaTable, Resolution } from './quota-table.js';
import { BucketTable } from './bucket-table.js';

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
}

export const DEFAULT_QUOTA_OPTIONS: Readonly<QuotaManagerOptions> = Object.freeze({
  windowMs: 1000,
  windowBuckets: 10,
  maxThrottleMs: 30000,
  idleTimeoutMs: 3_600_000,
  cleanupIntervalMs: 30_000,
  maxBuckets: 1_000_000,
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

/** Cached resolutions of one (user, client-id) caller, valid while `gen` equals the table's generation. */
class Principal {
  readonly gen = [-1, -1, -1];
  readonly bucketKey: (string | null)[] = [null, null, null];
  readonly bucketUser: (string | null)[] = [null, null, null];
  readonly bucketClient: (string | null)[] = [null, null, null];
  readonly limit = [Infinity, Infinity, Infinity];
  readonly bucketId = [-1, -1, -1];
  seen = 0;
}

/** Group resolutions, cached the same way. */
class GroupEntry {
  gen = -1;
  limit = Infinity;
  bucketId = -1;
  seen = 0;
  constructor(readonly bucketKey: string) {}
}

const NONE = '';

/** Utilization above which a call counts as a near-limit event. */
export const NEAR_LIMIT = 0.8;

/** One live bucket as DescribeUsage reports it. */
export interface BucketUsage {
  entity: string;
  quotaType: QuotaKey;
  /** Usage recorded in the last window, per second. */
  rate: number;
  /** The quota, per second. */
  limit: number;
  /** Outstanding usage / (quota x window); above 1 the bucket is in debt and its callers are throttled. */
  utilization: number;
  throttledTotal: number;
  lastSeenMs: number;
}

export interface UsageQuery {
  /** Keep buckets whose user, client-id or consumer group matches any component; null name = any. */
  components?: [string, string | null][];
  top: number;
  sortBy: 'utilization' | 'rate';
}

function bucketKeyOf(k: QuotaKeyIndex, user: string | null, client: string | null): string {
  // Length-prefixed so no pair of names can produce the same key.
  const u = user === null ? '-' : `${user.length}:${user}`;
  const c = client === null ? '-' : `${client.length}:${client}`;
  return `${k}|${u}|${c}`;
}

/**
 * Measures usage per bucket and decides Ok or Throttled. Pure and synchronous: time comes from the
 * injected clock, the only timer is the optional cleanup interval.
 */
export class QuotaManager {
  readonly options: Readonly<QuotaManagerOptions>;
  readonly buckets: BucketTable;
  /** Calls that needed a new bucket while maxBuckets were tracked; answered Ok without tracking. */
  untracked = 0;
  /** Throttled replies per quota key (the seed's violation counters), and their total throttle time. */
  readonly violations = [0, 0, 0];
  throttleTimeMsTotal = 0;
  /** Calls that left a bucket above NEAR_LIMIT of its capacity, per quota key. */
  readonly nearLimit = [0, 0, 0];

  private readonly ids = new Map<string, number>();
  private keyOf: (string | undefined)[] = [];
  private displayOf: string[] = [];
  private typeOf: QuotaKeyIndex[] = [];
  private userOf: (string | null)[] = [];
  private clientOf: (string | null)[] = [];
  private groupOf: (string | null)[] = [];
  private readonly principals = new Map<string, Map<string, Principal>>();
  private principalCount = 0;
  private readonly groups = new Map<string, GroupEntry>();
  private readonly resolution: Resolution = { level: 9, limit: Infinity, bucketUser: null, bucketClient: null };
  private readonly verdict: Verdict = { throttleMs: 0, quotaType: 'produce_bytes_rate', entity: '', recorded: true };

  constructor(
    readonly table: QuotaTable,
    options: Partial<QuotaManagerOptions> = {},
    readonly clock: Clock,
  ) {
    this.options = Object.freeze({ ...DEFAULT_QUOTA_OPTIONS, ...options });
    this.buckets = new BucketTable(this.options.windowMs, this.options.windowBuckets);
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
    const a = this.principalBucket(CONSUME, user, client, now);
    const b = this.groupBucket(group, now);
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
    if (waitA > 0 && waitB > 0) this.buckets.countThrottle(waitA >= waitB ? b : a);
    return waitA >= waitB ? this.throttled(a, waitA, true) : this.throttled(b, waitB, true);
  }

  /** Drops buckets and cached resolutions idle for idleTimeoutMs. Returns the number of buckets dropped. */
  sweep(): number {
    const cutoff = this.clock.now() - this.options.idleTimeoutMs;
    let dropped = 0;
    for (let id = 0; id < this.keyOf.length; id++) {
      const key = this.keyOf[id];
      if (key !== undefined && this.buckets.lastSeen(id) <= cutoff) {
        this.ids.delete(key);
        this.keyOf[id] = undefined;
        this.userOf[id] = this.clientOf[id] = this.groupOf[id] = null;
        this.buckets.release(id);
        dropped++;
      }
    }
    for (const [user, byClient] of this.principals) {
      for (const [client, p] of byClient) {
        if (p.seen <= cutoff) {
          byClient.delete(client);
          this.principalCount--;
        }
      }
      if (byClient.size === 0) this.principals.delete(user);
    }
    for (const [group, g] of this.groups) if (g.seen <= cutoff) this.groups.delete(group);
    return dropped;
  }

  /** Runs sweep() every cleanupIntervalMs on a timer that does not keep the process alive. */
  startCleanup(): () => void {
    const timer = setInterval(() => this.sweep(), this.options.cleanupIntervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** Live buckets, for DescribeUsage and tests: id, display entity, quota type. */
  *liveBuckets(): Generator<{ id: number; entity: string; quotaType: QuotaKey }> {
    for (let id = 0; id < this.keyOf.length; id++) {
      if (this.keyOf[id] !== undefined) {
        yield { id, entity: this.displayOf[id]!, quotaType: QUOTA_KEYS[this.typeOf[id]!] };
      }
    }
  }

  /** The `top` live buckets by utilization or rate, highest first, optionally filtered by components. */
  usage(query: UsageQuery): BucketUsage[] {
    const now = this.clock.now();
    const b = this.buckets;
    const byRate = query.sortBy === 'rate';
    const best: { id: number; score: number }[] = [];
    for (let id = 0; id < this.keyOf.length; id++) {
      if (this.keyOf[id] === undefined) continue;
      if (query.components && query.components.length > 0 && !query.components.some(([type, name]) => this.matches(id, type, name))) continue;
      const score = byRate ? b.measuredRate(id, now) : b.utilization(id, now);
      // Keep the best `top` in a small sorted list: no sort of every bucket.
      if (best.length === query.top && score <= best[best.length - 1]!.score) continue;
      let at = best.length;
      while (at > 0 && best[at - 1]!.score < score) at--;
      best.splice(at, 0, { id, score });
      if (best.length > query.top) best.pop();
    }
    return best.map(({ id }) => ({
      entity: this.displayOf[id]!,
      quotaType: QUOTA_KEYS[this.typeOf[id]!],
      rate: b.measuredRate(id, now),
      limit: b.rate(id),
      utilization: b.utilization(id, now),
      throttledTotal: b.throttleCount(id),
      lastSeenMs: b.lastSeen(id),
    }));
  }

  /** Highest utilization and the number of buckets above NEAR_LIMIT, per quota key, for metrics. */
  utilizationSummary(): { max: number[]; nearLimit: number[] } {
    const now = this.clock.now();
    const max = [0, 0, 0];
    const near = [0, 0, 0];
    for (let id = 0; id < this.keyOf.length; id++) {
      if (this.keyOf[id] === undefined) continue;
      const u = this.buckets.utilization(id, now);
      const k = this.typeOf[id]!;
      if (u > max[k]!) max[k] = u;
      if (u > NEAR_LIMIT) near[k]!++;
    }
    return { max, nearLimit: near };
  }

  private matches(id: number, type: string, name: string | null): boolean {
    const value = type === 'user' ? this.userOf[id] : type === 'client-id' ? this.clientOf[id] : type === 'consumer-group' ? this.groupOf[id] : undefined;
    return value !== undefined && value !== null && (name === null || value === name);
  }

  /** The bucket a call of (key, user, client-id) lands in, or -1; for tests of who shares a bucket. */
  bucketIdOf(key: QuotaKeyIndex, user: string | null, client: string | null): number {
    return this.principalBucket(key, user, client, this.clock.now());
  }

  private recordOne(k: QuotaKeyIndex, user: string | null, client: string | null, amount: number, admit: boolean, now: number) {
    const id = this.principalBucket(k, user, client, now);
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
    const b = this.buckets;
    this.admit(id, amount, now);
    return b.msToDrain(id, b.outstanding(id) - b.capacity(id));
  }

  private admit(id: number, amount: number, now: number): void {
    const b = this.buckets;
    b.record(id, amount, now);
    if (b.outstanding(id) > NEAR_LIMIT * b.capacity(id)) this.nearLimit[this.typeOf[id]!]!++;
  }

  /**
   * 0 when the call is admitted now; else the whole ms until this same call would be. A call larger than
   * the capacity waits for an empty bucket, so it is never starved by smaller ones.
   */
  private admitWait(id: number, amount: number): number {
    const b = this.buckets;
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
    const k = this.typeOf[id]!;
    this.violations[k]!++;
    this.buckets.countThrottle(id);
    this.throttleTimeMsTotal += ms;
    const v = this.verdict;
    v.throttleMs = ms;
    v.quotaType = QUOTA_KEYS[k];
    v.entity = this.displayOf[id]!;
    v.recorded = recorded;
    return v;
  }

  private principalBucket(k: QuotaKeyIndex, user: string | null, client: string | null, now: number): number {
    const p = this.principal(user, client);
    p.seen = now;
    if (p.gen[k] !== this.table.generation) {
      const r = this.resolution;
      this.table.resolve(k, user, client, r);
      p.gen[k] = this.table.generation;
      p.limit[k] = r.limit;
      p.bucketUser[k] = r.bucketUser;
      p.bucketClient[k] = r.bucketClient;
      p.bucketKey[k] = r.limit === Infinity ? null : bucketKeyOf(k, r.bucketUser, r.bucketClient);
      p.bucketId[k] = -1;
    }
    const key = p.bucketKey[k]!;
    if (key === null) return -1;
    let id = p.bucketId[k]!;
    if (id < 0 || this.keyOf[id] !== key) {
      id = this.bucketId(key, k, p.bucketUser[k]!, p.bucketClient[k]!, null, now);
      p.bucketId[k] = id;
      if (id < 0) return -1;
    }
    this.buckets.touch(id, p.limit[k]!, now);
    return id;
  }

  private groupBucket(group: string, now: number): number {
    let g = this.groups.get(group);
    if (g === undefined) {
      g = new GroupEntry(`g|${group}`);
      if (this.groups.size < this.options.maxBuckets) this.groups.set(group, g);
    }
    g.seen = now;
    if (g.gen !== this.table.generation) {
      g.gen = this.table.generation;
      g.limit = this.table.resolveGroup(group) ?? Infinity;
      g.bucketId = -1;
    }
    if (g.limit === Infinity) return -1;
    let id = g.bucketId;
    if (id < 0 || this.keyOf[id] !== g.bucketKey) {
      id = this.bucketId(g.bucketKey, CONSUME, null, null, group, now);
      g.bucketId = id;
      if (id < 0) return -1;
    }
    this.buckets.touch(id, g.limit, now);
    return id;
  }

  private bucketId(
    key: string,
    k: QuotaKeyIndex,
    user: string | null,
    client: string | null,
    group: string | null,
    now: number,
  ): number {
    const existing = this.ids.get(key);
    if (existing !== undefined) return existing;
    if (this.buckets.size >= this.options.maxBuckets) {
      this.untracked++;
      return -1;
    }
    const id = this.buckets.allocate(now);
    this.ids.set(key, id);
    this.keyOf[id] = key;
    this.displayOf[id] = group !== null ? `consumer-group:${group}` : bucketDisplay(user, client);
    this.typeOf[id] = k;
    this.userOf[id] = user;
    this.clientOf[id] = client;
    this.groupOf[id] = group;
    return id;
  }

  private principal(user: string | null, client: string | null): Principal {
    const u = user ?? NONE;
    const c = client ?? NONE;
    let byClient = this.principals.get(u);
    let p = byClient?.get(c);
    if (p !== undefined) return p;
    p = new Principal();
    // Past the bound, resolutions are not cached: slower for the flood, but memory stays bounded.
    if (this.principalCount >= this.options.maxBuckets) return p;
    if (byClient === undefined) {
      byClient = new Map();
      this.principals.set(u, byClient);
    }
    byClient.set(c, p);
    this.principalCount++;
    return p;
  }
}
