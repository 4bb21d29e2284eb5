import { type Limit, toLimit } from './limits.js';
import { parseLimitValue } from './rate-value.js';

/**
 * The one validation of a limit's value (a rate, a burst, max_in_flight), shared by AlterQuotas' decode, the
 * stores' load, rivven.yaml and RIVVEN_*, and the CLI: every form of the grammar in rate-value.ts (docs/protocol.md,
 * "Quota values"), returned as the quota table holds it.
 */

/**
 * Validates a limit key's value in any accepted form; returns what the quota table holds: a number for a single
 * per-second rate, a burst or a count (Infinity for "unlimited"), else the key's rates, shortest period first.
 * Throws QuotaValueError (code INVALID_QUOTA_VALUE).
 */
export function parseLimit(key: string, raw: unknown): Limit {
  const value = parseLimitValue(key, raw);
  return value === null ? Infinity : toLimit(key, value);
}
