/**
 * Per-request counts and latencies, kept in typed arrays so recording costs a few array writes and no
 * allocation, label hashing or Map lookup. The metrics module reads them at scrape time.
 */
export const REQUEST_TYPES = [
  'Hello',
  'Ping',
  'RecordProduce',
  'RecordConsume',
  'RecordRequest',
  'DescribeQuotas',
  'DescribeUsage',
  'AlterQuotas',
  'ResetUsage',
  'AcquireLease',
  'ReleaseLease',
  'DescribeViolations',
  'DescribeFleet',
  'RecordUsage',
  'unknown',
] as const;
export const UNKNOWN_TYPE = REQUEST_TYPES.length - 1;

export const RESULTS = ['ok', 'throttled', 'error', 'denied'] as const;
export const RESULT_OK = 0;
export const RESULT_THROTTLED = 1;
export const RESULT_ERROR = 2;
export const RESULT_DENIED = 3;
/** Results per request type: counts are indexed [type * RESULT_COUNT + result]. */
export const RESULT_COUNT = RESULTS.length;

/** Histogram upper bounds in seconds; most requests take single-digit microseconds. */
export const LATENCY_BOUNDS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1];

const typeIndex = new Map<string, number>(REQUEST_TYPES.map((t, i) => [t, i]));
export const requestTypeIndex = (type: string): number => typeIndex.get(type) ?? UNKNOWN_TYPE;

export class RequestStats {
  /** [type * RESULT_COUNT + result] */
  readonly counts = new Float64Array(REQUEST_TYPES.length * RESULTS.length);
  /** [type * (bounds + 1) + bucket], not cumulative; the last bucket is +Inf */
  readonly latency = new Float64Array(REQUEST_TYPES.length * (LATENCY_BOUNDS.length + 1));
  readonly latencySum = new Float64Array(REQUEST_TYPES.length);

  observe(type: number, result: number, seconds: number): void {
    this.observeMany(type, result, 1, seconds);
  }

  /** `n` requests of one type and result that took `seconds` each (a batch's average). */
  observeMany(type: number, result: number, n: number, seconds: number): void {
    const c = type * RESULT_COUNT + result;
    this.counts[c] = this.counts[c]! + n;
    this.latencySum[type] = this.latencySum[type]! + seconds * n;
    let i = 0;
    while (i < LATENCY_BOUNDS.length && seconds > LATENCY_BOUNDS[i]!) i++;
    const b = type * (LATENCY_BOUNDS.length + 1) + i;
    this.latency[b] = this.latency[b]! + n;
  }
}
