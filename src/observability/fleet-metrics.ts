import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { BAD_VALUE_SOURCES } from '../store/bad-values.js';
import type { MetricSources } from './metrics.js';
import { mirroredCounter } from './scraped-metrics.js';

const BREAKER_STATES = { closed: 0, open: 1, 'half-open': 2 } as const;

/** The metrics of storage.backend: redis and fleet.enabled (docs/operations.md, fleet); 0 without them. */
export function fleetMetrics(registry: Registry, { backend, storeFailures, fleet }: MetricSources): void {
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
    help: 'Time one fleet sync took: push usage, pull the fleet fills, for every queued bucket',
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
export function fleetDataMetrics(registry: Registry, { backend, fleet }: MetricSources): void {
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
