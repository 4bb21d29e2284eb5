// What a resolution answers (Resolution, its levels and order) and how a held value goes into one: apart from
// the QuotaTable so the QuotaManager and LeaseManager, which fill one per call, need only these types.
import { type Limit, perSecond } from './limits.js';
import type { RateList } from './rate-value.js';

/** Which precedence the levels follow: ours (the default) or Kafka's, for fleets migrating from Kafka. */
export type ResolutionOrder = 'rivven' | 'kafka';

/** The resolution levels (docs/algorithm.md); which one matched decides who shares the bucket. */
export type Level = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;

/** Where a (quota key, user, client-id) call lands: the limit, its burst, and the identity of its bucket. */
export interface Resolution {
  level: Level;
  /** The limit per second: the rate of a one-rate per-second key, else the drain of the key's shortest bucket. */
  limit: number;
  /** The key's rates when it is anything but one per-second rate (a bucket each); undefined otherwise. */
  rates?: RateList | undefined;
  /** The bucket's capacity in units when a burst key sets it; undefined: quota x window. */
  burst: number | undefined;
  /** The limit is a shadow value: measure and count, answer Ok. */
  shadow: boolean;
  bucketUser: string | null;
  bucketClient: string | null;
}

/** A Resolution to fill (each resolver keeps one and reuses it: no object per call). */
export const emptyResolution = (): Resolution => ({
  level: 9,
  limit: Infinity,
  rates: undefined,
  burst: undefined,
  shadow: false,
  bucketUser: null,
  bucketClient: null,
});

/** Puts a held value into a resolution: a number as today, a list as its rates (limit: its shortest's drain). */
export function setLimit(out: Resolution, l: Limit): void {
  if (typeof l === 'number') {
    out.limit = l;
    out.rates = undefined;
  } else {
    out.limit = perSecond(l[0]!);
    out.rates = l;
  }
}
