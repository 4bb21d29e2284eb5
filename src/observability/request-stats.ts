import { MESSAGES, messageIndex } from '../protocol/messages/index.js';
import { RESULT_DENIED, RESULT_ERROR, RESULT_OK, RESULT_THROTTLED, RESULTS } from '../protocol/messages/message.js';

/**
 * Per-request counts and latencies, kept in typed arrays so recording costs a few array writes and no
 * allocation, label hashing or Map lookup. The metrics module reads them at scrape time. The request types are
 * the registry of messages' (protocol/messages/index.ts), in its order, and 'unknown'.
 */
export const REQUEST_TYPES: readonly string[] = [...MESSAGES.map((m) => m.type), 'unknown'];
/** The index of a type that is no message's (MESSAGES' own indexes are the others). */
export const UNKNOWN_TYPE = REQUEST_TYPES.length - 1;

export { RESULTS, RESULT_OK, RESULT_THROTTLED, RESULT_ERROR, RESULT_DENIED };
/** Results per request type: counts are indexed [type * RESULT_COUNT + result]. */
export const RESULT_COUNT = RESULTS.length;

/** Histogram upper bounds in seconds; most requests take single-digit microseconds. */
export const LATENCY_BOUNDS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1];

/** A request type's index in REQUEST_TYPES: its place in the registry of messages, or UNKNOWN_TYPE. */
export const requestTypeIndex = (type: string): number => {
  const i = messageIndex(type);
  return i < 0 ? UNKNOWN_TYPE : i;
};

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
