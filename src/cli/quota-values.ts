import type { AlterKey, AlterValue, LimitKey, QuotaValue } from '../quota/quota-key.js';
import { fromLimit } from '../quota/quota-table.js';
import { parseLimit } from '../quota/quota-value.js';
import { QuotaValueError } from '../quota/rate-value.js';
import { UsageError } from './exit-codes.js';

/**
 * A flag's value -> what AlterQuotas sends (the canonical form), checked here by the one validation of quota
 * values (docs/protocol.md, "Quota values") so a bad value is a usage error naming the flag, before any request.
 */
export function parseQuotaValue(key: LimitKey, text: string, flag: string): QuotaValue {
  try {
    return fromLimit(parseLimit(key, text));
  } catch (err) {
    if (!(err instanceof QuotaValueError)) throw err;
    throw new UsageError(`${flag}: ${err.detail}`);
  }
}

const BYTE_UNITS: [string, number][] = [
  ['TiB', 2 ** 40],
  ['TB', 1e12],
  ['GiB', 2 ** 30],
  ['GB', 1e9],
  ['MiB', 2 ** 20],
  ['MB', 1e6],
  ['KiB', 2 ** 10],
  ['kB', 1e3],
];

/** Keys counted in units rather than bytes: requests, and leases held at once. */
const isCount = (key: string): boolean => key.startsWith('request') || key === 'max_in_flight';

/** "/s" for a rate; a burst or max_in_flight is an amount, not a rate. */
const suffix = (key: string): string => (key.endsWith('_rate') ? '/s' : '');

/**
 * The exact, re-enterable form of a value: the largest unit that divides it, so 10485760 is "10MiB/s" for a
 * rate and "10MiB" for a burst; counts (requests, max_in_flight) are plain numbers. Tier names and block
 * reasons print as they are. Every table of the CLI prints limits with this, so one limit reads the same in
 * `quota list`, `quota usage` and `quota top`.
 */
export function formatQuotaValue(key: AlterKey | 'max_in_flight', value: AlterValue | undefined): string {
  if (value === undefined) return '-';
  if (value === 'unlimited') return 'unlimited';
  if (typeof value === 'string') return value;
  if (!Number.isFinite(value)) return 'unlimited';
  // A limit scaled by adaptive quotas need not be whole.
  if (!Number.isInteger(value)) return approximate(key, value, false);
  if (isCount(key)) return `${value}${suffix(key)}`;
  for (const [name, size] of BYTE_UNITS) if (value >= size && value % size === 0) return `${value / size}${name}${suffix(key)}`;
  return `${value}B${suffix(key)}`;
}

/**
 * A measured value (a live rate, leases held) beside its limit: in the limit's unit family, so 44040192 B/s
 * under a 50MiB/s limit reads "42MiB/s", not "44MB/s". Approximate (3 significant digits); --json is exact.
 */
export function formatMeasured(key: string, value: number, limit: number): string {
  if (key === 'max_in_flight') return `${round(value)} held`;
  return approximate(key, value, /iB/.test(formatQuotaValue('produce_bytes_rate', limit)));
}

function approximate(key: string, value: number, binary: boolean): string {
  if (isCount(key)) return `${round(value)}${suffix(key)}`;
  for (const [name, size] of BYTE_UNITS) {
    if (name.includes('i') === binary && value >= size) return `${round(value / size)}${name}${suffix(key)}`;
  }
  return `${round(value)}B${suffix(key)}`;
}

function round(n: number): string {
  if (Number.isInteger(n)) return String(n);
  const fixed = n.toFixed(n >= 100 ? 0 : n >= 10 ? 1 : 2);
  return fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed;
}
