import type { BucketView } from './bucket-store.js';
import { baseKind, bucketName, GROUP, keyOfKind, periodOfKind } from './bucket-store.js';
import { wallTimeOf, type Clock } from './clock.js';
import { MAX_RATE_KEYS, QUOTA_KEYS, type RateKey } from './quota-key.js';
import type { PeriodUnit } from './rate-value.js';
import { TopK } from './top-k.js';
import { forEachSliced, forRangeSliced } from '../util/slices.js';

/** Utilization above which a call counts as a near-limit event. */
export const NEAR_LIMIT = 0.8;

/** One live bucket, as the usage report sees it (DescribeUsage puts it on the wire). */
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
 * The `top` live buckets by utilization or rate, highest first, optionally filtered by components. Scans in
 * slices (docs/operations.md, limits): a top-K heap, filters by set lookup, never a sort of every bucket.
 */
export async function usageReport(
  view: BucketView,
  clock: Clock,
  query: UsageQuery,
  keyNames: readonly RateKey[] = QUOTA_KEYS,
): Promise<BucketReport[]> {
  const now = clock.now();
  const b = view.table;
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
    out.push({
      entity: bucketName(view.kind(id), view.a(id), view.b(id)),
      user: group ? null : view.a(id),
      clientId: group ? null : view.b(id),
      consumerGroup: group ? view.a(id) : null,
      quotaType: keyNames[keyOfKind(view.kind(id))]!,
      period: periodOfKind(view.kind(id)),
      rate: b.measuredRate(id, now),
      limit: b.rate(id),
      utilization: b.utilization(id, now),
      throttledTotal: b.throttleCount(id),
      lastSeenMs: wallTimeOf(clock, b.lastSeen(id)),
    });
  });
  return out;
}

/** Highest utilization and the number of buckets above NEAR_LIMIT, per quota key, for metrics; sliced. */
export async function utilizationSummary(view: BucketView, clock: Clock): Promise<{ max: number[]; nearLimit: number[] }> {
  const now = clock.now();
  // Indexed by rate key: the built-in three, then every resource slot.
  const max = new Array<number>(MAX_RATE_KEYS).fill(0);
  const near = new Array<number>(MAX_RATE_KEYS).fill(0);
  await forRangeSliced(view.highWater, (id) => {
    if (!view.isLive(id)) return;
    const u = view.table.utilization(id, now);
    const k = keyOfKind(view.kind(id));
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
