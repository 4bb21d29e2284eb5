// STUB of the interface in h-values' rate-value.ts (their version replaces this file at merge): only what the
// quota domain consumes, with a minimal parser so the domain can be tested before the real one lands.
export type PeriodUnit = 's' | 'min' | 'h' | 'd';
export const PERIOD_SECONDS: Readonly<Record<PeriodUnit, number>> = Object.freeze({ s: 1, min: 60, h: 3600, d: 86400 });
/** One rate: `amount` base units (calls or bytes) per `unit`. */
export interface Rate {
  readonly amount: number;
  readonly unit: PeriodUnit;
}
/** A configured rate value: 1..4 rates with distinct units, sorted from the shortest unit. */
export type RateList = readonly Rate[];

const ORDER: readonly PeriodUnit[] = ['s', 'min', 'h', 'd'];

/** Parse any accepted form of a key's value; null for unlimited. (Stub: no byte suffixes, plain Error.) */
export function parseRateValue(key: string, raw: unknown): RateList | null {
  if (raw === 'unlimited') return null;
  const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : [raw];
  const list = items.map((item): Rate => {
    if (typeof item === 'number' && Number.isFinite(item) && item > 0) return { amount: item, unit: 's' };
    const m = typeof item === 'string' ? /^([0-9.e+]+)(?:\/(s|min|h|d))?$/.exec(item.trim()) : null;
    const amount = m === null ? Number.NaN : Number(m[1]);
    if (m === null || !Number.isFinite(amount) || amount <= 0) throw new Error(`${key}: not a rate value: ${String(item).slice(0, 64)}`);
    return { amount, unit: (m[2] ?? 's') as PeriodUnit };
  });
  if (list.length > 4 || new Set(list.map((r) => r.unit)).size !== list.length) throw new Error(`${key}: at most 4 rates, distinct units`);
  return list.sort((a, b) => ORDER.indexOf(a.unit) - ORDER.indexOf(b.unit));
}

/** Canonical wire/store form: a plain number for a single per-second rate, else '<amount>/<unit>' or a list. */
export function canonicalRate(list: RateList): number | string | string[] {
  const one = (r: Rate): number | string => (r.unit === 's' ? r.amount : `${r.amount}/${r.unit}`);
  if (list.length === 1) return one(list[0]!);
  return list.map((r) => String(one(r)));
}
