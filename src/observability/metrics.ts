import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { FleetSync } from '../fleet/fleet-sync.js';
import type { RedisBackend } from '../store/redis-backend.js';
import type { ViolationLog } from './violation-log.js';
import type { Guard } from '../auth/guard.js';
import type { LeaseManager } from '../quota/lease-manager.js';
import type { QuotaManager } from '../quota/quota-manager.js';
import type { QuotaAdmin } from '../server/quota-admin.js';
import type { QuotaServer } from '../server/server.js';
import { VERSION } from '../version.js';
import { fleetDataMetrics, fleetMetrics } from './fleet-metrics.js';
import { leaseMetrics, quotaMetrics, violationLogMetrics } from './quota-metrics.js';
import type { RequestStats } from './request-stats.js';
import { adminMetrics, requestMetrics, serverMetrics } from './server-metrics.js';

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

/**
 * Every metric of docs/operations.md (Metrics and health). Label values come only from fixed sets (request type, result, quota
 * type): no label carries a principal, so cardinality is bounded whatever clients send. Per-principal usage
 * is what DescribeUsage and `rivven quota top` are for. The collectors live by area: quota-metrics (decisions,
 * leases, the violation log), server-metrics (listener, connections, requests, admin writes), fleet-metrics.
 */
export function createMetrics(sources: MetricSources): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  fleetMetrics(registry, sources);
  fleetDataMetrics(registry, sources);
  violationLogMetrics(registry, sources);
  quotaMetrics(registry, sources);
  adminMetrics(registry, sources);
  leaseMetrics(registry, sources);
  serverMetrics(registry, sources);
  requestMetrics(registry, sources);
  new Gauge({ name: 'rivven_info', help: 'Build information', labelNames: ['version'], registers: [registry] }).set(
    { version: VERSION },
    1,
  );
  return registry;
}
