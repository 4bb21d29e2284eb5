import type { AlterKey, AlterValue, QuotaValue } from '../quota/quota-key.js';
import { UsageError } from './exit-codes.js';

// SI units are powers of 1000 (10MB = 10,000,000), IEC units powers of 1024 (10MiB = 10,485,760).
const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  ki: 2 ** 10,
  kib: 2 ** 10,
  mi: 2 ** 20,
  mib: 2 ** 20,
  gi: 2 ** 30,
  gib: 2 ** 30,
  ti: 2 ** 40,
  tib: 2 ** 40,
};

/** "10MB", "10MiB", "5k", "1500", "unlimited" (an optional "/s" is allowed) -> a quota value. */
export function parseQuotaValue(text: string, flag: string): QuotaValue {
  const s = text.trim().toLowerCase().replace(/\/s$/, '');
  if (s === 'unlimited') return 'unlimited';
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(s);
  const unit = m ? UNITS[m[2]!] : undefined;
  if (!m || unit === undefined) {
    throw new UsageError(`${flag}: "${text}" is not a rate; use an integer, a unit (10MB, 10MiB, 5k) or "unlimited"`);
  }
  const value = Number(m[1]) * unit;
  if (value > Number.MAX_SAFE_INTEGER) {
    throw new UsageError(`${flag}: "${text}" is too large; the largest rate is ${Number.MAX_SAFE_INTEGER} (2^53-1), or use "unlimited"`);
  }
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new UsageError(`${flag}: "${text}" must come to a whole number greater than 0`);
  }
  return value;
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
  if (typeof value === 'object') return value.join(',');
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
