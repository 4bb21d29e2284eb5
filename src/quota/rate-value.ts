import { preview } from '../util/printable.js';

/**
 * The grammar of a quota value (docs/protocol.md, "Quota values"), one home for every surface: AlterQuotas,
 * the stores, rivven.yaml and RIVVEN_*, the CLI. Pure: it knows keys only by their names (`*_rate` is a rate,
 * `*_bytes_*` counts bytes, `max_in_flight` is a whole count) and imports nothing outside src/quota and src/util.
 *
 *   value    = "unlimited" | list
 *   list     = element ("," element)*            (or an array of elements: 1 to 4, distinct units)
 *   element  = amount ["/" unit]                 (no unit: per second)
 *   amount   = number [suffix]                   (a number is also accepted as a JSON/msgpack/YAML number)
 *   number   = digits ["." digits] [("e"|"E") ["+"|"-"] digits]   (ASCII digits only)
 *   unit     = "s" | "min" | "h" | "d"
 *   suffix   = on byte keys: b, k[b], m[b], g[b], t[b] (powers of 1000), ki[b], mi[b], gi[b], ti[b] (powers of 1024);
 *              on count keys: k, m, g, t (powers of 1000: "5k" is 5000 requests)
 *
 * Suffixes and units are case-insensitive ("10MB", "10mb" and "10Mb" are the same: `b` is always a byte, never a
 * bit, and `m` is always mega, never milli); spaces around tokens are ignored. Bursts (`*_burst`) and
 * `max_in_flight` take one amount and no unit; `max_in_flight` is a whole count.
 */

export type PeriodUnit = 's' | 'min' | 'h' | 'd';
/** From the shortest: the order of a canonical list. */
export const PERIOD_UNITS: readonly PeriodUnit[] = Object.freeze(['s', 'min', 'h', 'd'] as const);
export const PERIOD_SECONDS: Readonly<Record<PeriodUnit, number>> = Object.freeze({ s: 1, min: 60, h: 3600, d: 86400 });

/** One rate: `amount` base units (calls or bytes) per `unit`. */
export interface Rate {
  readonly amount: number;
  readonly unit: PeriodUnit;
}
/** A configured rate value: 1..4 rates with distinct units, sorted from the shortest unit. */
export type RateList = readonly Rate[];

/** The canonical form of a rate value (canonicalRate): what replies, stores and --json carry. */
export type CanonicalRate = number | string | (number | string)[];

/** Rates in one value at most (one per period unit). */
export const MAX_RATES = 4;
/** Longest text a value may have: checked before any pattern runs, so a hostile string costs nothing. */
export const MAX_VALUE_CHARS = 256;
/** Largest amount in base units (2^53-1): every amount stays an exact integer in a double where it is one. */
export const MAX_AMOUNT = Number.MAX_SAFE_INTEGER;
/**
 * The smallest rate, per second: one call in about 31.7 years. Far below it a bucket's debt term vanishes in
 * floating point (capacity + max_debt_ms x rate == capacity below ~1e-18/s) and the rate would fail open.
 */
export const MIN_RATE_PER_SECOND = 1e-9;

/**
 * A value outside the grammar. `detail` says what is wrong without the key, so a caller can put its own name
 * first (the CLI names the flag); `message` starts with the key. Callers map it to INVALID_QUOTA_VALUE (its
 * `code`), adding the alteration's index on the wire.
 */
export class QuotaValueError extends Error {
  readonly code = 'INVALID_QUOTA_VALUE' as const;
  constructor(
    readonly key: string,
    readonly detail: string,
  ) {
    super(`${key}: ${detail}`);
    this.name = 'QuotaValueError';
  }
}

/** A key whose values are rates (`produce_bytes_rate`, `request_rate`, a named resource's `<name>_rate`). */
export const isRateKey = (key: string): boolean => key.endsWith('_rate');
/** A key counted in bytes: it takes byte suffixes. */
export const isByteKey = (key: string): boolean => key.includes('_bytes_');
/** The one key that is a whole count (leases held at once). */
export const isWholeCountKey = (key: string): boolean => key === 'max_in_flight';

const DECIMAL: Record<string, number> = { k: 3, m: 6, g: 9, t: 12 };
const BINARY: Record<string, number> = { ki: 10, mi: 20, gi: 30, ti: 40 };
const UNIT_NAMES = new Set<string>(PERIOD_UNITS);

// One element: amount, optional suffix, optional "/unit". Bounded input (MAX_VALUE_CHARS) and no nested
// quantifiers, so matching is linear.
const ELEMENT = /^\s*(-?\d+(?:\.\d+)?|\.\d+)(?:e([+-]?\d{1,4}))?\s*([a-z]*)\s*(?:\/\s*([a-z]*)\s*)?$/i;

const FORMS = 'use a number, <amount>/<unit> with unit s, min, h or d (10/min), a list of up to 4 (10/s,1000/d) or "unlimited"';
const shown = (raw: unknown): string =>
  typeof raw === 'string' ? preview(raw) : typeof raw === 'number' ? String(raw) : Array.isArray(raw) ? 'a list' : typeof raw;

/**
 * Parses any accepted form of a rate key's value: a number, "unlimited", "<amount>/<unit>", a list (an array,
 * or a string with commas). Returns null for unlimited, else the rates in base units sorted from the shortest
 * unit. Throws QuotaValueError for anything else. A number n is [{ amount: n, unit: 's' }].
 */
export function parseRateValue(key: string, raw: unknown): RateList | null {
  if (!isRateKey(key)) throw new QuotaValueError(key, `${key} is an amount, not a rate`);
  let elements: unknown[];
  if (typeof raw === 'string') {
    if (raw.length > MAX_VALUE_CHARS) throw new QuotaValueError(key, `a value is at most ${MAX_VALUE_CHARS} characters`);
    if (isUnlimited(raw)) return null;
    elements = raw.includes(',') ? raw.split(',') : [raw];
  } else if (Array.isArray(raw)) {
    elements = raw;
  } else if (typeof raw === 'number') {
    elements = [raw];
  } else {
    throw new QuotaValueError(key, `${shown(raw)} is not a rate; ${FORMS}`);
  }
  if (elements.length === 0) throw new QuotaValueError(key, `an empty list is not a rate; ${FORMS}`);
  if (elements.length > MAX_RATES) {
    throw new QuotaValueError(key, `${elements.length} rates in one value; at most ${MAX_RATES}, one per unit (s, min, h, d)`);
  }
  const list: Rate[] = [];
  for (const element of elements) {
    const { amount, unit } = parseElement(key, element, Array.isArray(raw), raw);
    if (amount / PERIOD_SECONDS[unit!] < MIN_RATE_PER_SECOND) {
      throw new QuotaValueError(
        key,
        `${shown(element)} is below the smallest rate, ${MIN_RATE_PER_SECOND} a second (one in about 31 years)`,
      );
    }
    if (list.some((r) => r.unit === unit)) {
      throw new QuotaValueError(key, `${shown(raw)} gives two rates per ${unit}; each unit at most once`);
    }
    list.push({ amount, unit: unit! });
  }
  return list.sort((a, b) => PERIOD_SECONDS[a.unit] - PERIOD_SECONDS[b.unit]);
}

/**
 * Parses a burst's or max_in_flight's value: one amount (byte suffixes on byte keys), no unit. Returns null for
 * unlimited, else the amount in base units; max_in_flight must be a whole number.
 */
export function parseAmountValue(key: string, raw: unknown): number | null {
  if (isRateKey(key)) throw new QuotaValueError(key, `${key} is a rate, not an amount`);
  if (typeof raw === 'string') {
    if (raw.length > MAX_VALUE_CHARS) throw new QuotaValueError(key, `a value is at most ${MAX_VALUE_CHARS} characters`);
    if (isUnlimited(raw)) return null;
  } else if (typeof raw !== 'number') {
    throw new QuotaValueError(key, `${shown(raw)} is not ${isWholeCountKey(key) ? 'a count' : 'an amount'}; use a number or "unlimited"`);
  }
  const what = isWholeCountKey(key) ? 'a whole count' : 'an amount';
  if (typeof raw === 'string' && raw.includes(',')) throw new QuotaValueError(key, `${preview(raw)}: ${key} is ${what}, not a list`);
  const { amount, unit } = parseElement(key, raw, false, raw);
  if (unit !== undefined) throw new QuotaValueError(key, `${preview(String(raw))}: ${key} is ${what}, with no unit of time`);
  if (isWholeCountKey(key) && !Number.isInteger(amount)) {
    throw new QuotaValueError(key, `${shown(raw)} must come to a whole number greater than 0`);
  }
  return amount;
}

/** Parses any key's value: a RateList for a rate key, an amount for a burst or max_in_flight; null = unlimited. */
export function parseLimitValue(key: string, raw: unknown): RateList | number | null {
  return isRateKey(key) ? parseRateValue(key, raw) : parseAmountValue(key, raw);
}

const isUnlimited = (s: string): boolean => s.length < 16 && s.trim().toLowerCase() === 'unlimited';

/** One amount with its optional unit; a rate key's element without a unit is per second. */
function parseElement(key: string, element: unknown, inList: boolean, whole: unknown): { amount: number; unit: PeriodUnit | undefined } {
  if (typeof element === 'number') return { amount: checkAmount(key, element, element), unit: isRateKey(key) ? 's' : undefined };
  if (typeof element !== 'string') {
    if (Array.isArray(element)) throw new QuotaValueError(key, `a list inside a list is not a rate; ${FORMS}`);
    throw new QuotaValueError(key, `${inList ? `a list element is ${typeof element}` : `${shown(element)} is not a rate`}; ${FORMS}`);
  }
  if (element.length > MAX_VALUE_CHARS) throw new QuotaValueError(key, `a value is at most ${MAX_VALUE_CHARS} characters`);
  if (element.includes(',')) throw new QuotaValueError(key, `a list element is a list (${preview(element)})`);
  if (isUnlimited(element)) {
    throw new QuotaValueError(key, `"unlimited" cannot be part of a list (${shown(whole)}); give it alone`);
  }
  const m = ELEMENT.exec(element);
  if (m === null) {
    if (isRateKey(key)) throw new QuotaValueError(key, `${preview(element)} is not a rate; ${FORMS}`);
    const what = isWholeCountKey(key) ? 'a whole count' : 'an amount';
    throw new QuotaValueError(
      key,
      `${preview(element)} is not ${what}; use a number${isByteKey(key) ? ' (10MB, 10MiB)' : ''} or "unlimited"`,
    );
  }
  const [, mantissa, exp, suffixText, unitText] = m as unknown as [string, string, string | undefined, string, string | undefined];
  let amount = Number(`${mantissa}e${Number(exp ?? 0) + scaleOf(key, suffixText.toLowerCase(), element)}`);
  const binary = BINARY[suffixText.toLowerCase().replace(/b$/, '')];
  if (binary !== undefined) amount *= 2 ** binary;
  let unit: PeriodUnit | undefined;
  if (unitText !== undefined) {
    const u = unitText.toLowerCase();
    if (!isRateKey(key)) {
      const what = isWholeCountKey(key) ? 'a whole count' : 'an amount';
      throw new QuotaValueError(key, `${preview(element)}: ${key} is ${what}, with no unit of time`);
    }
    if (!UNIT_NAMES.has(u)) throw new QuotaValueError(key, `${preview(element)}: unknown unit ${preview(unitText)}; use s, min, h or d`);
    unit = u as PeriodUnit;
  } else if (isRateKey(key)) {
    unit = 's';
  }
  return { amount: checkAmount(key, amount, element), unit };
}

/** The power of ten a suffix scales by (0 for a binary one, applied by the caller); throws for a suffix the key does not take. */
function scaleOf(key: string, suffix: string, element: string): number {
  if (suffix === '') return 0;
  if (isByteKey(key)) {
    if (suffix === 'b') return 0;
    const base = suffix.endsWith('b') ? suffix.slice(0, -1) : suffix;
    if (DECIMAL[base] !== undefined) return DECIMAL[base];
    if (BINARY[base] !== undefined) return 0;
  } else if (DECIMAL[suffix] !== undefined) {
    return DECIMAL[suffix];
  }
  if (UNIT_NAMES.has(suffix)) throw new QuotaValueError(key, `${preview(element)}: a unit of time follows a slash (10/${suffix})`);
  const allowed = isByteKey(key) ? 'kB, MB, GB, TB, KiB, MiB, GiB, TiB' : 'k, M, G, T (thousands ...); byte units are for *_bytes_* keys';
  throw new QuotaValueError(key, `${preview(element)}: unknown unit ${preview(suffix)}; use ${allowed}`);
}

function checkAmount(key: string, amount: number, raw: unknown): number {
  if (Number.isNaN(amount)) throw new QuotaValueError(key, `NaN is not a number; ${FORMS}`);
  if (amount <= 0) throw new QuotaValueError(key, `${shown(raw)} must be greater than 0`);
  if (amount > MAX_AMOUNT) {
    throw new QuotaValueError(key, `${shown(raw)} is too large; the largest rate is ${MAX_AMOUNT} (2^53-1), or use "unlimited"`);
  }
  return amount;
}

const amountText = (n: number): string => String(n);

/**
 * The canonical wire and store form: a plain number for a single per-second rate; else `<amount>/<unit>` with the
 * amount in base units, or a list of its elements' canonical forms (a per-second element as a plain number)
 * sorted from the shortest unit. A one-element list with another unit is a plain string, not a list.
 */
export function canonicalRate(list: RateList): CanonicalRate {
  const sorted = [...list].sort((a, b) => PERIOD_SECONDS[a.unit] - PERIOD_SECONDS[b.unit]);
  const one = (r: Rate): number | string => (r.unit === 's' ? r.amount : `${amountText(r.amount)}/${r.unit}`);
  return sorted.length === 1 ? one(sorted[0]!) : sorted.map(one);
}

/** Byte units, largest first, so the biggest unit that divides an amount exactly is found first. */
export const BYTE_UNITS: readonly [string, number][] = [
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
 * An amount as an operator writes it: on a byte key the largest byte unit that divides it exactly (10485760 ->
 * "10MiB", 1000000 -> "1MB", 1500 -> "1500B"); on a count key the number. Exact and re-enterable.
 */
export function formatAmount(key: string, amount: number): string {
  if (!isByteKey(key)) return amountText(amount);
  if (Number.isInteger(amount)) {
    for (const [name, size] of BYTE_UNITS) if (amount >= size && amount % size === 0) return `${amount / size}${name}`;
  }
  return `${amountText(amount)}B`;
}

/** A rate value as tables print it, in the operator's unit: "10/min", "100GB/d", "10MiB/s,100GB/d"; "unlimited" for null. */
export function formatRate(key: string, list: RateList | null): string {
  if (list === null) return 'unlimited';
  return list.map((r) => `${formatAmount(key, r.amount)}/${r.unit}`).join(',');
}
