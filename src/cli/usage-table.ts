import type { BucketUsage } from '../client/quota-client.js';
import { formatRate, isRateKey, PERIOD_SECONDS } from '../quota/rate-value.js';
import { escapeUnprintable } from '../util/printable.js';
import { formatCount, formatDuration, formatPercent } from './numbers.js';
import { formatMeasured, formatQuotaValue } from './quota-values.js';
import { showName, truncate } from './show-name.js';
import { textTable } from './text-table.js';

/** The bucket as the CLI shows it: from its parts when the server sends them, names shown safely. */
export function showBucket(b: BucketUsage): string {
  if (b.user === undefined && b.client_id === undefined && b.consumer_group === undefined) return escapeUnprintable(b.entity);
  if (b.consumer_group !== null && b.consumer_group !== undefined) return `consumer-group:${showName(b.consumer_group)}`;
  const parts: string[] = [];
  if (b.user !== null && b.user !== undefined) parts.push(`user:${showName(b.user)}`);
  if (b.client_id !== null && b.client_id !== undefined) parts.push(`client-id:${showName(b.client_id)}`);
  return parts.length === 0 ? 'anonymous' : parts.join('/');
}

/**
 * RATE and LIMIT of a row. RATE is always the rate measured over the last window, per second ("15/s"): projected
 * onto a minute or a day, one second's calls would read as an alarm ("86400/d" for one call). LIMIT is the row's
 * own rate in the operator's unit, exact and re-enterable: "10/s", or "10/min" and "10000/d" for the buckets of
 * rates per minute and per day (formatRate), so the rows of one key read as the value it was given.
 */
function rateAndLimit(b: BucketUsage): [string, string] {
  // The limit's unit family (MiB or MB) from the amount as it was given: 100GiB/d, not its 1.2MB a second.
  const rate = formatMeasured(b.quota_type, b.rate, b.limit_per_period ?? b.limit);
  const period = b.period;
  if (period === undefined || !isRateKey(b.quota_type)) return [rate, formatQuotaValue(b.quota_type, b.limit)];
  return [rate, formatRate(b.quota_type, [{ amount: b.limit_per_period ?? b.limit * PERIOD_SECONDS[period], unit: period }])];
}

/** Room the other columns of the usage table take, so the entity column can use the rest of the width. */
const OTHER_COLUMNS = 62;

/**
 * The usage table: one row per bucket, utilization as a percentage (over 100% = being throttled). Entities
 * are cut to fit `width` columns with an ellipsis; --json has them whole.
 */
export function usageTable(buckets: BucketUsage[], now: number, width = 120): string {
  const entityWidth = Math.max(16, width - OTHER_COLUMNS);
  return textTable([
    ['ENTITY', 'QUOTA', 'RATE', 'LIMIT', 'UTIL', 'THROTTLED', 'SEEN'],
    ...buckets.map((b) => [
      truncate(showBucket(b), entityWidth),
      b.quota_type,
      ...rateAndLimit(b),
      formatPercent(b.utilization),
      formatCount(b.throttled_total),
      formatDuration(Math.max(0, now - b.last_seen_ms), 'coarse'),
    ]),
  ]);
}
