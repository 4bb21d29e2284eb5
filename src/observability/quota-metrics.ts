import { Gauge, type Registry } from 'prom-client';
import { keyPeriodIndex } from '../quota/bucket-keeper.js';
import { QUOTA_KEYS, RESOURCE_KEY_BASE, type QuotaKeyIndex } from '../quota/quota-key.js';
import { PERIOD_UNITS } from '../quota/rate-value.js';
import type { MetricSources } from './metrics.js';
import { byKeyAndPeriod, keyPeriodLabels, mirroredCounter, periodLabel, scraped } from './scraped-metrics.js';

/** The violation log's own counters: events it could not write (they stay in memory), episodes it could not open. */
export function violationLogMetrics(registry: Registry, sources: MetricSources): void {
  mirroredCounter(
    registry,
    'rivven_violation_log_write_failures_total',
    'Appends to violations.log that failed (the events stay in memory)',
    () => sources.violations.writeFailures,
  );
  mirroredCounter(
    registry,
    'rivven_violation_log_dropped_total',
    'Events not written to violations.log because violations.max_queued_bytes were waiting (they stay in memory)',
    () => sources.violations.writesDropped,
  );
  mirroredCounter(
    registry,
    'rivven_violation_episodes_dropped_total',
    'Violations that opened no episode: quotas.max_buckets episodes open, or the principal held its share',
    () => sources.violations.dropped,
  );
}

/**
 * The quota decisions (QuotaManager): violations, throttle time, buckets, shadow limits, blocks, the adaptive
 * factor; per quota type (or declared resource) and period, so the label sets are bounded by the config.
 */
export function quotaMetrics(registry: Registry, { manager, adaptiveFactor }: MetricSources): void {
  const violationCounters: [string, QuotaKeyIndex][] = [
    ['rivven_quota_produce_violations_total', 0],
    ['rivven_quota_consume_violations_total', 1],
    ['rivven_quota_request_violations_total', 2],
  ];
  for (const [name, k] of violationCounters) {
    registry.registerMetric(
      scraped(name, `Throttled replies for ${QUOTA_KEYS[k]}, by the period of the rate that bound (none: per second)`, 'counter', () =>
        PERIOD_UNITS.map((period, p) => ({ labels: periodLabel(period), value: manager.violationsByPeriod[keyPeriodIndex(k, p)]! })),
      ),
    );
  }
  // Named resources (quotas.resources): a series per declared name and period, so the label set is bounded by the config.
  const resources = manager.table.resources.names;
  registry.registerMetric(
    scraped(
      'rivven_quota_resource_violations_total',
      'Throttled replies for a named resource (quotas.resources), by resource and the period of the rate that bound',
      'counter',
      () =>
        resources.flatMap((resource, s) =>
          PERIOD_UNITS.map((period, p) => ({
            labels: { resource, ...periodLabel(period) },
            value: manager.violationsByPeriod[keyPeriodIndex(RESOURCE_KEY_BASE + s, p)]!,
          })),
        ),
    ),
  );
  /** Every rate key's label sets: the built-in three, then each declared resource's `<name>_rate`, by period. */
  const keyLabels = keyPeriodLabels(manager.table.resources.rateKeys);
  mirroredCounter(
    registry,
    'rivven_quota_throttle_time_ms_total',
    'Sum of throttle_time_ms over all Throttled replies',
    () => manager.throttleTimeMsTotal,
  );
  mirroredCounter(
    registry,
    'rivven_quota_bucket_overflow_total',
    "Calls sent to their user's overflow bucket because the user held its share of buckets (quotas.max_buckets_per_principal)",
    () => ('overflowed' in manager.buckets ? Number(manager.buckets.overflowed) : 0),
  );
  mirroredCounter(
    registry,
    'rivven_quota_untracked_total',
    'Calls answered Ok untracked because quotas.max_buckets buckets exist',
    () => manager.untracked,
  );
  registry.registerMetric(
    scraped(
      'rivven_quota_shadow_violations_total',
      'Calls a shadow limit would have throttled (answered Ok), by quota type and period',
      'counter',
      () => byKeyAndPeriod(keyLabels, manager.shadowByPeriod),
    ),
  );
  new Gauge({
    name: 'rivven_quota_adaptive_factor',
    help: 'The factor every rate and burst is multiplied by under load (1: not scaled; adaptive.enabled)',
    registers: [registry],
    collect() {
      this.set(adaptiveFactor());
    },
  });
  mirroredCounter(registry, 'rivven_quota_denied_total', 'Record calls answered Denied: the principal is blocked', () => manager.denied);
  registry.registerMetric(
    scraped(
      'rivven_quota_near_limit_total',
      'Calls that left their bucket above 80% of quota x window, by quota type and period',
      'counter',
      () => byKeyAndPeriod(keyLabels, manager.nearLimitByPeriod),
    ),
  );
  new Gauge({
    name: 'rivven_quota_buckets',
    help: 'Usage buckets being tracked',
    registers: [registry],
    collect() {
      this.set(manager.bucketCount);
    },
  });
  const near = new Gauge({
    name: 'rivven_quota_buckets_near_limit',
    help: 'Buckets above 80% of quota x window now, by quota type and period',
    labelNames: ['quota_type', 'period'],
    registers: [registry],
  });
  new Gauge({
    name: 'rivven_quota_max_utilization',
    help: 'Highest bucket utilization (outstanding / quota x window) now, by quota type and period; above 1 someone is throttled',
    labelNames: ['quota_type', 'period'],
    registers: [registry],
    async collect() {
      // One pass over the buckets per scrape serves both gauges.
      const summary = await manager.utilizationSummary();
      for (const { labels, index } of keyLabels) {
        this.set(labels, summary.max[index]!);
        near.set(labels, summary.nearLimit[index]!);
      }
    },
  });
}

/** In-flight leases (LeaseManager, max_in_flight): refusals, by the limit or the server bound that refused, and held. */
export function leaseMetrics(registry: Registry, { leases }: MetricSources): void {
  mirroredCounter(
    registry,
    'rivven_lease_refusals_total',
    'AcquireLease answered Throttled: the principal held max_in_flight leases',
    () => leases.refused,
  );
  registry.registerMetric(
    scraped('rivven_lease_overloaded_total', 'AcquireLease answered OVERLOADED, by the server bound that refused it', 'counter', () => [
      { labels: { bound: 'max_leases_per_principal' }, value: leases.refusedShare },
      { labels: { bound: 'max_leases' }, value: leases.refusedFull },
    ]),
  );
  new Gauge({
    name: 'rivven_leases_held',
    help: 'In-flight leases held now',
    registers: [registry],
    collect() {
      this.set(leases.held);
    },
  });
}
