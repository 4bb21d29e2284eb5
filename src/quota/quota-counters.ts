// The counters behind the QuotaManager's metrics (throttles, near-limit and shadow calls by rate key and period,
// denials, untracked calls): apart so the metrics read one small base class, not the Record path around it.
import { KEY_PERIODS, keyPeriodIndex, PERIODS } from './bucket-keeper.js';
import { MAX_RATE_KEYS } from './quota-key.js';

/** Counters per rate key and period (keyPeriodOfKind) summed per rate key (MAX_RATE_KEYS: built-in, then the resources). */
const perKey = (byPeriod: readonly number[]): number[] =>
  Array.from({ length: MAX_RATE_KEYS }, (_, k) => PERIODS.reduce((sum, _p, p) => sum + byPeriod[keyPeriodIndex(k, p)]!, 0));

/** The counters a QuotaManager keeps for its metrics; it counts into them as it answers. */
export class QuotaCounters {
  /** Calls that needed a new bucket while maxBuckets were tracked; answered Ok without tracking. */
  untracked = 0;
  /**
   * Throttled replies per rate key (Resources.rateKeys' order: the built-in three, then each resource) and period of the bucket that bound (keyPeriodOfKind; the
   * rivven_quota_*_violations_total counters, labelled by period), and their total throttle time.
   */
  readonly violationsByPeriod: number[] = new Array<number>(KEY_PERIODS).fill(0);
  throttleTimeMsTotal = 0;
  /** Calls that left a bucket above NEAR_LIMIT of its capacity, per quota key and period of that bucket. */
  readonly nearLimitByPeriod: number[] = new Array<number>(KEY_PERIODS).fill(0);
  /** Calls a shadow limit would have throttled (answered Ok), per quota key and period of the bucket that would have. */
  readonly shadowByPeriod: number[] = new Array<number>(KEY_PERIODS).fill(0);
  /** Calls answered Denied because their principal is blocked. */
  denied = 0;

  /** Throttled replies per rate key (built-in, then the resources), every period together. */
  get violations(): number[] {
    return perKey(this.violationsByPeriod);
  }

  /** Near-limit calls per rate key, every period together. */
  get nearLimit(): number[] {
    return perKey(this.nearLimitByPeriod);
  }

  /** Shadow violations per rate key, every period together. */
  get shadowViolations(): number[] {
    return perKey(this.shadowByPeriod);
  }
}
