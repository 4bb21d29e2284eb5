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

/**
 * The exact, re-enterable form of a value: the largest unit that divides it, so 10485760 is "10MiB/s" for a
 * rate and "10MiB" for a burst. Tier names and block reasons print as they are.
 */
export function formatQuotaValue(key: AlterKey, value: AlterValue | undefined): string {
  if (value === undefined) return '-';
  if (value === 'unlimited') return 'unlimited';
  if (typeof value === 'string') return value;
  const perSecond = key.endsWith('_rate') ? '/s' : '';
  if (key.startsWith('request')) return `${value}${perSecond}`;
  for (const [name, size] of BYTE_UNITS) if (value >= size && value % size === 0) return `${value / size}${name}${perSecond}`;
  return `${value}B${perSecond}`;
}
