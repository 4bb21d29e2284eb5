import { ManualClock } from '../../src/quota/clock.js';
import { QuotaManager } from '../../src/quota/quota-manager.js';
import { QuotaTable } from '../../src/quota/quota-table.js';

export interface GreedyRun {
  /** Recorded units per second achieved, divided by the quota. */
  ratio: number;
  throttles: number;
  maxThrottleMs: number;
}

/**
 * K greedy callers share one bucket: each calls again at once after Ok and after exactly throttle_time_ms
 * after Throttled. The span starts at the first Throttled reply and covers `windows` windows.
 *
 * Record mode pays after the call (record, then wait), so the first throttled call is counted, calls stop at
 * the end of the span, and the span is stretched until every caller's last wait has elapsed.
 * Admit mode pays before the call (wait, then be admitted), so calls admitted after the first refusal up to
 * and including the end of the span are counted, over exactly that span.
 */
export function greedy(opts: {
  quota: number;
  windowMs: number;
  buckets: number;
  size: number;
  callers: number;
  windows: number;
  admit?: boolean;
}): GreedyRun {
  const clock = new ManualClock(1_000_000);
  const table = new QuotaTable({ produce_bytes_rate: opts.quota });
  const m = new QuotaManager(table, { windowMs: opts.windowMs, windowBuckets: opts.buckets, maxThrottleMs: 1e12 }, clock);
  const next = new Array<number>(opts.callers).fill(clock.now());
  let first = -1;
  let recorded = 0;
  let throttles = 0;
  let maxThrottleMs = 0;
  for (;;) {
    let i = 0;
    for (let j = 1; j < next.length; j++) if (next[j]! < next[i]!) i = j;
    const now = next[i]!;
    const spanEnd = first + opts.windows * opts.windowMs;
    if (first >= 0 && (opts.admit ? now > spanEnd : now >= spanEnd)) break;
    clock.set(now);
    const v = m.recordProduce('user', 'client', opts.size, opts.admit ?? false);
    if (v.throttleMs > 0) {
      throttles++;
      maxThrottleMs = Math.max(maxThrottleMs, v.throttleMs);
      if (first < 0) first = now;
    }
    const counted = opts.admit ? first >= 0 && now > first && v.throttleMs === 0 : first >= 0;
    if (counted) recorded += opts.size;
    next[i] = now + v.throttleMs;
  }
  const end = opts.admit ? first + opts.windows * opts.windowMs : Math.max(...next);
  return { ratio: recorded / (((end - first) / 1000) * opts.quota), throttles, maxThrottleMs };
}
