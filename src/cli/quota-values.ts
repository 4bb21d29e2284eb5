import type { AlterKey, AlterValue, LimitKey, QuotaValue, ResourceKey } from '../quota/quota-key.js';
import { fromLimit } from '../quota/quota-table.js';
import { parseLimit } from '../quota/quota-value.js';
import {
  BYTE_UNITS,
  formatAmount,
  formatRate,
  isByteKey,
  isRateKey,
  parseAmountValue,
  parseRateValue,
  QuotaValueError,
} from '../quota/rate-value.js';
import { formatNumber } from './numbers.js';
import { UsageError } from './exit-codes.js';

/**
 * A flag's value -> what AlterQuotas sends (the canonical form), checked here by the one validation of quota
 * values (docs/protocol.md, "Quota values") so a bad value is a usage error naming the flag, before any request.
 */
export function parseQuotaValue(key: LimitKey | ResourceKey, text: string, flag: string): QuotaValue {
  try {
    return fromLimit(parseLimit(key, text));
  } catch (err) {
    if (!(err instanceof QuotaValueError)) throw err;
    throw new UsageError(`${flag}: ${err.detail}`);
  }
}

/**
 * A configured value as `quota list`, `tier list` and `quota set` print it: exact and re-enterable, in the
 * operator's unit (rate-value's formatter). The largest byte unit that divides it, so 10485760 is "10MiB/s" for a
 * rate and "10MiB" for a burst; counts (requests, max_in_flight) are plain numbers; a rate per another period or a
 * list prints as "10/min" or "10MB/s,100GB/d"; a fraction as it is ("0.17/s"). Tier names and block reasons print
 * as they are.
 */
export function formatConfigured(key: AlterKey | 'max_in_flight', value: AlterValue | readonly (number | string)[] | undefined): string {
  if (value === undefined) return '-';
  if (key === 'tier' || key === 'blocked') return String(value);
  if (value === 'unlimited' || value === Infinity) return 'unlimited';
  try {
    if (isRateKey(key)) return formatRate(key, parseRateValue(key, value));
    const amount = parseAmountValue(key, value);
    return amount === null ? 'unlimited' : formatAmount(key, amount);
  } catch {
    // Not a value of the grammar (a newer server's?): shown as it came, never dropped.
    return String(value);
  }
}

/**
 * A limit in effect, as the usage tables print it (`quota usage`, `quota top`): formatConfigured's form, except
 * that a per-second limit scaled by adaptive quotas (not a whole number) is approximate (formatNumber); --json is
 * exact. So one limit reads the same in `quota list`, `quota usage` and `quota top`.
 */
export function formatQuotaValue(key: AlterKey | 'max_in_flight', value: AlterValue | readonly (number | string)[] | undefined): string {
  if (typeof value === 'number' && Number.isFinite(value) && !Number.isInteger(value)) return approximate(key, value, false);
  return formatConfigured(key, value);
}

/**
 * A measured value (a measured rate, leases held) beside its limit: in the limit's unit family, so 44040192 B/s
 * under a 50MiB/s limit reads "42MiB/s", not "44MB/s". Approximate (formatNumber); --json is exact.
 */
export function formatMeasured(key: string, value: number, limit: number): string {
  if (key === 'max_in_flight') return `${formatNumber(value)} held`;
  return approximate(key, value, /iB/.test(formatQuotaValue('produce_bytes_rate', limit)));
}

function approximate(key: string, value: number, binary: boolean): string {
  const per = isRateKey(key) ? '/s' : '';
  if (!isByteKey(key)) return `${formatNumber(value)}${per}`;
  for (const [name, size] of BYTE_UNITS) {
    if (name.includes('i') === binary && value >= size) return `${formatNumber(value / size)}${name}${per}`;
  }
  return `${formatNumber(value)}B${per}`;
}
