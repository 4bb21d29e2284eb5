import type { BucketUsage } from '../client/quota-client.js';
import { escapeUnprintable } from '../util/printable.js';
import { showName, truncate } from './show-name.js';
import { textTable } from './text-table.js';

/** Approximate human rates for a live view; exact values are in --json. */
export function humanRate(quotaType: string, perSecond: number): string {
  if (quotaType === 'request_rate') return `${trim(perSecond)}/s`;
  if (quotaType === 'max_in_flight') return `${trim(perSecond)} held`;
  const units: [string, number][] = [
    ['GB', 1e9],
    ['MB', 1e6],
    ['kB', 1e3],
  ];
  for (const [name, size] of units) if (perSecond >= size) return `${trim(perSecond / size)}${name}/s`;
  return `${trim(perSecond)}B/s`;
}

const trim = (n: number): string => (Number.isInteger(n) ? String(n) : n.toFixed(n >= 100 ? 0 : 1));

function ago(ms: number): string {
  if (ms < 1000) return 'now';
  if (ms < 60_000) return `${Math.round(ms / 1000)}s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)}m`;
  return `${Math.round(ms / 3_600_000)}h`;
}

/** The bucket as the CLI shows it: from its parts when the server sends them, names shown safely. */
export function showBucket(b: BucketUsage): string {
  if (b.user === undefined && b.client_id === undefined && b.consumer_group === undefined) return escapeUnprintable(b.entity);
  if (b.consumer_group !== null && b.consumer_group !== undefined) return `consumer-group:${showName(b.consumer_group)}`;
  const parts: string[] = [];
  if (b.user !== null && b.user !== undefined) parts.push(`user:${showName(b.user)}`);
  if (b.client_id !== null && b.client_id !== undefined) parts.push(`client-id:${showName(b.client_id)}`);
  return parts.length === 0 ? 'anonymous' : parts.join('/');
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
      humanRate(b.quota_type, b.rate),
      humanRate(b.quota_type, b.limit),
      `${Math.round(b.utilization * 100)}%`,
      String(b.throttled_total),
      ago(Math.max(0, now - b.last_seen_ms)),
    ]),
  ]);
}
