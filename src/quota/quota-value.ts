import { formatRate, parseLimitValue, QuotaValueError, type RateList } from './rate-value.js';

/**
 * The one validation of a limit's value (a rate, a burst, max_in_flight), shared by AlterQuotas' decode, the
 * stores' load, rivven.yaml and RIVVEN_*, and the CLI: the grammar of rate-value.ts, then the gate below.
 */

/**
 * What today's core decides: a single per-second rate, and bursts, that come to a whole number. The grammar
 * accepts more (fractions, min/h/d, lists: docs/protocol.md, "Quota values"); those are refused here, in this one
 * place, until the buckets of several periods land (issue 20's second wave deletes this gate). Returns the amount.
 */
export function supportedByCore(key: string, value: RateList | number): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      throw new QuotaValueError(key, `${value}: a fractional amount is not supported yet; today it must come to a whole number`);
    }
    return value;
  }
  if (value.length !== 1 || value[0]!.unit !== 's') {
    throw new QuotaValueError(
      key,
      `${formatRate(key, value)}: rates per min, h or d and lists of rates are not supported yet; today a rate is a whole number per second`,
    );
  }
  const amount = value[0]!.amount;
  if (!Number.isSafeInteger(amount)) {
    throw new QuotaValueError(
      key,
      `${amount}/s: a fractional rate is not supported yet; today a rate must come to a whole number per second`,
    );
  }
  return amount;
}

/**
 * Validates a limit key's value in any accepted form; returns the number the quota table holds (Infinity for
 * "unlimited"). Throws QuotaValueError (code INVALID_QUOTA_VALUE).
 */
export function parseLimit(key: string, raw: unknown): number {
  const value = parseLimitValue(key, raw);
  return value === null ? Infinity : supportedByCore(key, value);
}
