// The table's storage form of a value (Limit, toLimit/fromLimit) and the shadow mask helpers: apart from the
// QuotaTable so the value forms, which protocol, config and the CLI read too, do not come with the level walk.
import type { LimitKeyIndex, QuotaValue } from './quota-key.js';
import { canonicalRate, PERIOD_SECONDS, parseRateValue, type Rate, type RateList } from './rate-value.js';

/**
 * One key's value as the table holds it: a number for a single per-second rate (Kafka's form, and every burst
 * and count; Infinity = "unlimited"), else the key's rates, shortest period first (docs/algorithm.md, section 7).
 * A single per-second rate is never held as a list, so the common case stays a number on the hot path.
 */
export type Limit = number | RateList;

/** The values of one entity, indexed like LIMIT_KEYS; undefined = not set here. */
export type Limits = (Limit | undefined)[];

/** Everything configured on one entity. */
export interface EntityConfig {
  limits: Limits;
  /**
   * Bit k set: limits[k] is a shadow value (measured and counted, never enforced). Up to 39 keys (16 resources),
   * so it is read and written with isShadow/withShadow (exact integers up to 2^53), not 32-bit operators.
   */
  shadow: number;
  /** The tier whose values apply where this entity sets none (user and client-id entities). */
  tier: string | undefined;
  /** Why every record call of this principal is denied; undefined when it is not blocked. */
  blocked: string | undefined;
}

/** Whether bit k of a shadow mask is set. */
export const isShadow = (mask: number, k: LimitKeyIndex): boolean => Math.floor(mask / 2 ** k) % 2 === 1;
/** The mask with bit k set or cleared. */
export const withShadow = (mask: number, k: LimitKeyIndex, on: boolean): number =>
  isShadow(mask, k) === on ? mask : on ? mask + 2 ** k : mask - 2 ** k;

const isRateList = (v: unknown): v is RateList => Array.isArray(v) && v.every((r) => typeof r === 'object' && r !== null);

/**
 * A value as the table holds it, from a number, "unlimited", a RateList or any form parseRateValue accepts
 * (the canonical form read back from a store included). Values are validated before they get here; a list of
 * one per-second rate becomes a plain number.
 */
export function toLimit(key: string, v: QuotaValue | RateList): Limit {
  if (typeof v === 'number') return v;
  if (v === 'unlimited') return Infinity;
  const list = isRateList(v) ? v : parseRateValue(key, v);
  if (list === null) return Infinity;
  if (list.length === 1 && list[0]!.unit === 's') return list[0]!.amount;
  return Object.freeze(list.map((r) => Object.freeze({ amount: r.amount, unit: r.unit })));
}

/** The wire (canonical) form of a held value. */
export const fromLimit = (l: Limit): QuotaValue => (typeof l !== 'number' ? canonicalRate(l) : l === Infinity ? 'unlimited' : l);

/** Units per second of one rate: the drain of its bucket. */
export const perSecond = (r: Rate): number => r.amount / PERIOD_SECONDS[r.unit];

/** A burst or count held as a list (not a form validation lets through) counts as its first amount. */
export const asNumber = (l: Limit): number => (typeof l === 'number' ? l : l[0]!.amount);
