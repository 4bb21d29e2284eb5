import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Metric } from 'prom-client';
import type { FleetSync } from '../fleet/fleet-sync.js';
import { BAD_VALUE_SOURCES } from '../store/bad-values.js';
import type { RedisBackend } from '../store/redis-backend.js';
import type { ViolationLog } from './violation-log.js';
import type { Guard } from '../auth/guard.js';
import type { LeaseManager } from '../quota/lease-manager.js';
import type { QuotaManager } from '../quota/quota-manager.js';
import { keyPeriodSlot } from '../quota/bucket-store.js';
import { QUOTA_KEYS, RESOURCE_KEY_BASE, type QuotaKeyIndex } from '../quota/quota-key.js';
import { PERIOD_UNITS, type PeriodUnit } from '../quota/rate-value.js';
import type { QuotaAdmin } from '../server/quota-admin.js';
import type { QuotaServer } from '../server/server.js';
import { VERSION } from '../version.js';
import { LATENCY_BOUNDS, REQUEST_TYPES, RESULT_COUNT, RESULTS, type RequestStats } from './request-stats.js';

export interface MetricSources {
  guard: Guard;
  adaptiveFactor: () => number;
  leases: LeaseManager;
  manager: QuotaManager;
  server: QuotaServer;
  admin: QuotaAdmin;
  requests: RequestStats;
  violations: ViolationLog;
  /** The Redis connection (storage.backend: redis), whose failures are counted. */
  backend?: RedisBackend | undefined;
  /** Background reads of a shared store that failed. */
  storeFailures?: () => number;
  /** The fleet's sync, once it runs (fleet.enabled). */
  fleet?: () => FleetSync | undefined;
}

const BREAKER_STATES = { closed: 0, open: 1, 'half-open': 2 } as const;

/**
 * The `period` label of a series counted per bucket period: none for 's', so the per-second series are the ones
 * that existed before periods (same names, same labels, same values on a sidecar with per-second quotas only),
 * and `min`, `h`, `d` for the buckets of longer rates. Sums over the label count every bucket once; `{period=""}`
 * selects the per-second ones. Four values at most: the series count stays fixed.
 */
const periodLabel = (period: PeriodUnit): Record<string, string> => (period === 's' ? {} : { period });

/**
 * Every (quota type, period) label set with its counter slot (keyPeriodSlot), per-second first within a key:
 * `rateKeys` are the built-in three, then each declared resource's `<name>_rate` (Resources.rateKeys).
 */
const keyPeriodLabels = (rateKeys: readonly string[]) =>
  rateKeys.flatMap((quota_type, k) =>
    PERIOD_UNITS.map((period, p) => ({
      labels: { quota_type, ...periodLabel(period) },
      slot: keyPeriodSlot(k, p),
    })),
  );

type KeyPeriodLabels = ReturnType<typeof keyPeriodLabels>;

/** Samples of a counter per rate key and period (slotOfKind's layout). */
const byKeyAndPeriod = (labels: KeyPeriodLabels, counts: readonly number[]): Sample[] =>
  labels.map(({ labels, slot }) => ({ labels, value: counts[slot]! }));

interface Sample {
  labels?: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/**
 * A metric computed at scrape time from the hot path's plain counters. The registry only needs `name` and
 * `get()`, so this keeps label handling out of the request path entirely.
 */
function scraped(name: string, help: string, type: 'counter' | 'histogram', values: () => Sample[]): Metric {
  const metric = { name, help, type, aggregator: 'sum', get: async () => ({ name, help, type, aggregator: 'sum', values: values() }) };
  return metric as unknown as Metric;
}

/** A counter whose value lives elsewhere (a plain number the hot path increments). */
function mirroredCounter(registry: Registry, name: string, help: string, read: () => number): void {
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

/**
 * Every metric of docs/operations.md (Metrics and health). Label values come only from fixed sets (request type, result, quota
 * type): no label carries a principal, so cardinality is bounded whatever clients send. Per-principal usage
 * is what DescribeUsage and `rivven quota top` are for.
 */
export function createMetrics(sources: MetricSources): Registry {
  const { manager, server, admin, requests, guard, leases, adaptiveFactor } = sources;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  fleetMetrics(registry, sources);
  fleetDataMetrics(registry, sources);
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

  const violationCounters: [string, QuotaKeyIndex][] = [
    ['rivven_quota_produce_violations_total', 0],
    ['rivven_quota_consume_violations_total', 1],
    ['rivven_quota_request_violations_total', 2],
  ];
  for (const [name, k] of violationCounters) {
    registry.registerMetric(
      scraped(name, `Throttled replies for ${QUOTA_KEYS[k]}, by the period of the rate that bound (none: per second)`, 'counter', () =>
        PERIOD_UNITS.map((period, p) => ({ labels: periodLabel(period), value: manager.violationsByPeriod[keyPeriodSlot(k, p)]! })),
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
            value: manager.violationsByPeriod[keyPeriodSlot(RESOURCE_KEY_BASE + s, p)]!,
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
  mirroredCounter(
    registry,
    'rivven_quota_alterations_total',
    'Quota alterations applied (AlterQuotas, durable)',
    () => admin.alterationsApplied,
  );
  mirroredCounter(
    registry,
    'rivven_admin_writes_refused_total',
    'AlterQuotas and ResetUsage refused OVERLOADED: 256 admin writes were waiting for the store',
    () => admin.writesRefused,
  );
  mirroredCounter(
    registry,
    'rivven_connections_refused_total',
    'Connections refused at accept (max_connections, the open-file limit, or shutting down)',
    () => server.refusedConnections,
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
  mirroredCounter(registry, 'rivven_quota_denied_total', 'Record calls answered Denied: the principal is blocked', () => manager.denied);
  mirroredCounter(
    registry,
    'rivven_auth_failures_total',
    'Hello requests whose token was wrong or missing on a server with a tokens file',
    () => guard.failures,
  );
  mirroredCounter(
    registry,
    'rivven_tls_handshake_failures_total',
    'TLS handshakes that failed: plaintext on the TLS port, a missing or untrusted client certificate',
    () => server.failedHandshakes,
  );
  mirroredCounter(
    registry,
    'rivven_frame_timeouts_total',
    'Connections closed because a started frame did not complete within server.frame_timeout_ms',
    () => server.timedOutFrames,
  );
  mirroredCounter(
    registry,
    'rivven_partial_frame_refusals_total',
    'Connections closed because unfinished frames of all connections exceeded server.max_partial_frame_bytes',
    () => server.partialFrames.refused,
  );
  mirroredCounter(
    registry,
    'rivven_auth_timeouts_total',
    'Connections closed because they did not finish the TLS handshake and authentication within server.auth_timeout_ms',
    () => server.authTimeouts,
  );
  mirroredCounter(
    registry,
    'rivven_unauthenticated_evictions_total',
    'Unauthenticated connections closed to make room for a new one (server.max_unauthenticated_connections, max_connections)',
    () => server.evictedUnauthenticated,
  );
  new Gauge({
    name: 'rivven_unauthenticated_connections',
    help: 'Connections accepted and not yet authenticated (a TLS handshake in progress counts)',
    registers: [registry],
    collect() {
      this.set(server.unauthenticatedCount);
    },
  });
  new Gauge({
    name: 'rivven_partial_frame_bytes',
    help: 'Bytes of unfinished frames held for all connections',
    registers: [registry],
    collect() {
      this.set(server.partialFrames.used);
    },
  });

  registry.registerMetric(
    scraped(
      'rivven_quota_near_limit_total',
      'Calls that left their bucket above 80% of quota x window, by quota type and period',
      'counter',
      () => byKeyAndPeriod(keyLabels, manager.nearLimitByPeriod),
    ),
  );
  registry.registerMetric(
    scraped('rivven_requests_total', 'Requests answered, by type and result', 'counter', () =>
      REQUEST_TYPES.flatMap((type, t) =>
        RESULTS.map((result, r) => ({ labels: { type, result }, value: requests.counts[t * RESULT_COUNT + r]! })),
      ),
    ),
  );
  registry.registerMetric(
    scraped('rivven_request_duration_seconds', 'Time from decoded frame to encoded reply, by request type', 'histogram', () =>
      REQUEST_TYPES.flatMap((type, t) => {
        const base = t * (LATENCY_BOUNDS.length + 1);
        let cumulative = 0;
        const out: Sample[] = LATENCY_BOUNDS.map((le, i) => {
          cumulative += requests.latency[base + i]!;
          return { metricName: 'rivven_request_duration_seconds_bucket', labels: { type, le }, value: cumulative };
        });
        cumulative += requests.latency[base + LATENCY_BOUNDS.length]!;
        out.push({ metricName: 'rivven_request_duration_seconds_bucket', labels: { type, le: '+Inf' }, value: cumulative });
        out.push({ metricName: 'rivven_request_duration_seconds_sum', labels: { type }, value: requests.latencySum[t]! });
        out.push({ metricName: 'rivven_request_duration_seconds_count', labels: { type }, value: cumulative });
        return out;
      }),
    ),
  );

  new Gauge({
    name: 'rivven_connections',
    help: 'Open broker connections',
    registers: [registry],
    collect() {
      this.set(server.connectionCount);
    },
  });
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
      for (const { labels, slot } of keyLabels) {
        this.set(labels, summary.max[slot]!);
        near.set(labels, summary.nearLimit[slot]!);
      }
    },
  });
  new Gauge({ name: 'rivven_info', help: 'Build information', labelNames: ['version'], registers: [registry] }).set(
    { version: VERSION },
    1,
  );
  return registry;
}

/** The metrics of storage.backend: redis and fleet.enabled (docs/operations.md, fleet); 0 without them. */
function fleetMetrics(registry: Registry, { backend, storeFailures, fleet }: MetricSources): void {
  new Gauge({
    name: 'rivven_quota_backend_state',
    help: 'The fleet breaker: 0 closed (synced through Redis), 1 open (deciding alone), 2 half-open (probing)',
    registers: [registry],
    collect() {
      const f = fleet?.();
      this.set(f === undefined ? 0 : BREAKER_STATES[f.breaker.state]);
    },
  });
  mirroredCounter(
    registry,
    'rivven_quota_backend_failures_total',
    'Redis calls that failed or timed out (fleet syncs, heartbeats, AlterQuotas, config polls)',
    () => (backend?.failures ?? 0) + (storeFailures?.() ?? 0),
  );
  new Histogram({
    name: 'rivven_quota_sync_duration_seconds',
    help: 'Time one fleet sync took: push usage, pull the fleet levels, for every queued bucket',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [registry],
  });
  new Gauge({
    name: 'rivven_quota_fleet_sidecars',
    help: 'Live sidecars of the fleet (recent heartbeats) as of the last heartbeat that reached Redis; 0 without fleet',
    registers: [registry],
    collect() {
      this.set(fleet?.()?.live ?? 0);
    },
  });
}

// --- Fleet: Redis' data validated (DESIGN.md section 15; docs/operations.md, fleet failure modes) ---
function fleetDataMetrics(registry: Registry, { backend, fleet }: MetricSources): void {
  new Counter({
    name: 'rivven_fleet_bad_values_total',
    help: 'Values read from Redis that failed validation (ignored or replaced), by where they came from',
    labelNames: ['source'],
    registers: [registry],
    collect() {
      this.reset();
      for (const source of BAD_VALUE_SOURCES) this.inc({ source }, backend?.badValues[source] ?? 0);
    },
  });
  mirroredCounter(
    registry,
    'rivven_fleet_redis_resets_total',
    'Times Redis was found to have lost the fleet data: flushed, restarted empty or replaced (config version went back, keys gone)',
    () => backend?.resets ?? 0,
  );
  mirroredCounter(
    registry,
    'rivven_fleet_duplicate_pushes_total',
    'Buckets of pushes Redis had applied already (resent after a timeout, or a late reply): not counted again',
    () => fleet?.()?.duplicatePushes ?? 0,
  );
  mirroredCounter(
    registry,
    'rivven_fleet_pushes_given_up_total',
    'Pushes whose outcome stayed unknown longer than Redis keeps their record: given up rather than risk counting twice',
    () => fleet?.()?.pushesGivenUp ?? 0,
  );
}
