/**
 * Accuracy (P2): greedy callers that wait exactly throttle_time_ms achieve the quota. Call sizes 0.1%, 10%,
 * 100%, 500% of quota x window, 1 and 4 callers on one bucket, measured over 25 windows from the first
 * Throttled reply (docs/algorithm.md, section 4, for the measure and its bound).
 */
import { greedy } from '../test/helpers/greedy.js';

export interface AccuracyRow {
  size_percent: number;
  callers: number;
  achieved_over_quota: number;
}

export function accuracy(): AccuracyRow[] {
  const quota = 10_000_000;
  const rows: AccuracyRow[] = [];
  for (const fraction of [0.001, 0.1, 1, 5]) {
    for (const callers of [1, 4]) {
      const r = greedy({ quota, windowMs: 1000, buckets: 10, size: fraction * quota, callers, windows: 25 });
      rows.push({ size_percent: fraction * 100, callers, achieved_over_quota: Math.round(r.ratio * 10000) / 10000 });
    }
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(JSON.stringify(accuracy()));
