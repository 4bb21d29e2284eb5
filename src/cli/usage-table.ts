import type { BucketUsage } from '../client/quota-client.js';
import { textTable } from './text-table.js';

/** Approximate human rates for a live view; exact values are in --json. */
export function humanRate(quotaType: string, perSecond: number): string {
  if (quotaType === 'request_rate') return `${trim(perSecond)}/s`;
  const units: [string, number][] = [['GB', 1e9], ['MB', 1e6], ['kB', 1e3]];
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

/** The usage table: one row per bucket, utilization as a percentage (over 100% = being throttled). */
export function usageTable(buckets: BucketUsage[], now: number): string {
  return textTable([
    ['ENTITY', 'QUOTA', 'RATE', 'LIMIT', 'UTIL', 'THROTTLED', 'SEEN'],
    ...buckets.map((b) => [
      b.entity,
      b.quota_type,
      humanRate(b.quota_type, b.rate),
      humanRate(b.quota_type, b.limit),
      `${Math.round(b.utilization * 100)}%`,
      String(b.throttled_total),
      ago(Math.max(0, now - b.last_seen_ms)),
    ]),
  ]);
}
