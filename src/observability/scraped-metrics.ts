import { Counter, type Metric, type Registry } from 'prom-client';
import { keyPeriodIndex } from '../quota/bucket-keeper.js';
import { PERIOD_UNITS, type PeriodUnit } from '../quota/rate-value.js';

// The two ways a metric reads a number the hot path keeps (scraped, mirroredCounter), and the labels of the
// series counted per rate key and period: what every area's collectors (quota, server, fleet metrics) share.

/**
 * The `period` label of a series counted per bucket period: none for 's', so the per-second series are the ones
 * that a dashboard knowing no periods reads (same names, same labels, same values on a sidecar with per-second quotas only),
 * and `min`, `h`, `d` for the buckets of longer rates. Sums over the label count every bucket once; `{period=""}`
 * selects the per-second ones. Four values at most: the series count stays fixed.
 */
export const periodLabel = (period: PeriodUnit): Record<string, string> => (period === 's' ? {} : { period });

/**
 * Every (quota type, period) label set with its counter index (keyPeriodIndex), per-second first within a key:
 * `rateKeys` are the built-in three, then each declared resource's `<name>_rate` (Resources.rateKeys).
 */
export const keyPeriodLabels = (rateKeys: readonly string[]) =>
  rateKeys.flatMap((quota_type, k) =>
    PERIOD_UNITS.map((period, p) => ({
      labels: { quota_type, ...periodLabel(period) },
      index: keyPeriodIndex(k, p),
    })),
  );

export type KeyPeriodLabels = ReturnType<typeof keyPeriodLabels>;

/** Samples of a counter per rate key and period (keyPeriodOfKind's layout). */
export const byKeyAndPeriod = (labels: KeyPeriodLabels, counts: readonly number[]): Sample[] =>
  labels.map(({ labels, index }) => ({ labels, value: counts[index]! }));

export interface Sample {
  labels?: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/**
 * A metric computed at scrape time from the hot path's plain counters. The registry only needs `name` and
 * `get()`, so this keeps label handling out of the request path entirely.
 */
export function scraped(name: string, help: string, type: 'counter' | 'histogram', values: () => Sample[]): Metric {
  const metric = { name, help, type, aggregator: 'sum', get: async () => ({ name, help, type, aggregator: 'sum', values: values() }) };
  return metric as unknown as Metric;
}

/** A counter whose value lives elsewhere (a plain number the hot path increments). */
export function mirroredCounter(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}
