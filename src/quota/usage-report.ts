import type { BucketView } from './bucket-keeper.js';
import { baseKind, bucketName, GROUP, KEY_PERIODS, keyOfKind, periodOfKind, keyPeriodOfKind } from './bucket-keeper.js';
import { wallTimeOf, type Clock } from './clock.js';
import { QUOTA_KEYS, type RateKey } from './quota-key.js';
import { PERIOD_SECONDS, type PeriodUnit } from './rate-value.js';
import { TopK } from './top-k.js';
import { forEachSliced, forRangeSliced } from '../util/slices.js';

/** Utilization above which a call counts as a near-limit event. */
export const NEAR_LIMIT = 0.8;

/** One bucket held, as the usage report sees it (DescribeUsage puts it on the wire). */
export interface BucketReport {
  entity: string;
  /** The bucket's parts, so a reader never has to parse `entity` (names may contain ':' or '/'). */
  user: string | null;
  clientId: string | null;
  consumerGroup: string | null;
  quotaType: RateKey;
  /** The period of the rate this bucket enforces: one row per rate of a key with several ('s' for today's). */
  period: PeriodUnit;
  /** Usage recorded in the last window, per second. */
  rate: number;
  /** The quota, per second (a rate A/P drains at A/P per second). */
  limit: number;
  /** The quota per `period`: A of a rate A/P (limit x the period's seconds; `limit` itself for 's'). */
  limitPerPeriod: number;
  /**
   * Outstanding usage in units (calls or bytes): recorded and not yet drained, debt included. A bucket of A/P
   * with `used` u has room for about A - u now (its capacity less u), and gains A/P a second.
   */
  used: number;
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
 * The `top` buckets held, by utilization or rate, highest first, optionally filtered by components. Scans in
 * slices (docs/operations.md, limits): a top-K heap, filters by set lookup, never a sort of every bucket.
 */
export async function usageReport(
  view: BucketView,
  clock: Clock,
  query: UsageQuery,
  keyNames: readonly RateKey[] = QUOTA_KEYS,
): Promise<BucketReport[]> {
  const now = clock.now();
  const b = view.arrays;
  const byRate = query.sortBy === 'rate';
  const match = componentMatcher(query.components ?? []);
  const best = new TopK(query.top);
  await forRangeSliced(view.highWater, (id) => {
    if (!view.isLive(id)) return;
    if (match !== null && !match(baseKind(view.kind(id)) === GROUP, view.a(id), view.b(id))) return;
    best.offer(id, byRate ? b.measuredRate(id, now) : b.utilization(id, now));
  });
  const out: BucketReport[] = [];
  await forEachSliced(best.sorted(), (id) => {
    if (!view.isLive(id)) return;
    const group = baseKind(view.kind(id)) === GROUP;
    const period = periodOfKind(view.kind(id));
    out.push({
      entity: bucketName(view.kind(id), view.a(id), view.b(id)),
      user: group ? null : view.a(id),
      clientId: group ? null : view.b(id),
      consumerGroup: group ? view.a(id) : null,
      quotaType: keyNames[keyOfKind(view.kind(id))]!,
      period,
      rate: b.measuredRate(id, now),
      limit: b.rate(id),
      limitPerPeriod: perPeriod(b.rate(id), period),
      used: snap(b.outstandingAt(id, now) / 1000),
      utilization: b.utilization(id, now),
      throttledTotal: b.throttleCount(id),
      lastSeenMs: wallTimeOf(clock, b.lastSeen(id)),
    });
  });
  return out;
}

/**
 * A rate per second back in its period's terms: 10/min drains at 10/60 a second, and 10/60 x 60 reads 10 again
 * (snapped: the division and the product may each round, which an operator should never see as 9.999999999).
 */
const perPeriod = (perSecond: number, period: PeriodUnit): number =>
  period === 's' ? perSecond : snap(perSecond * PERIOD_SECONDS[period]);
/** The nearest whole number when within rounding of it (2^40 B/d stays 1099511627776), else 15 digits. */
const snap = (x: number): number => {
  const whole = Math.round(x);
  return Math.abs(x - whole) <= Math.abs(x) * 1e-12 ? whole : Number(x.toPrecision(15));
};

/**
 * Highest utilization and the number of buckets above NEAR_LIMIT, per rate key and period (indexed by
 * keyPeriodOfKind), for metrics; sliced.
 */
export async function utilizationSummary(view: BucketView, clock: Clock): Promise<{ max: number[]; nearLimit: number[] }> {
  const now = clock.now();
  // Indexed by rate key (the built-in three, then every resource) and period.
  const max = new Array<number>(KEY_PERIODS).fill(0);
  const near = new Array<number>(KEY_PERIODS).fill(0);
  await forRangeSliced(view.highWater, (id) => {
    if (!view.isLive(id)) return;
    const u = view.arrays.utilization(id, now);
    const k = keyPeriodOfKind(view.kind(id));
    if (u > max[k]!) max[k] = u;
    if (u > NEAR_LIMIT) near[k]!++;
  });
  return { max, nearLimit: near };
}

/**
 * A filter over (is a group bucket, user or group, client-id) built from components by set lookup: O(1) per
 * bucket whatever the number of components. null when there is nothing to filter.
 */
export function componentMatcher(
  components: [string, string | null][],
): ((group: boolean, a: string | null, b: string | null) => boolean) | null {
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
