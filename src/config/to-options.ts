// rivven.yaml's sections turned into the options of the classes they configure: one function per options type,
// so app.ts only wires. The defaults are not here: the schema took them from each options type's DEFAULT_*.
import { createHash } from 'node:crypto';
import { DEFAULT_FLEET_SYNC_OPTIONS, type FleetSyncOptions } from '../fleet/options.js';
import type { HealthServerOptions } from '../observability/http.js';
import type { ViolationLogOptions } from '../observability/options.js';
import type { LocalBucketKeeperOptions } from '../quota/local-bucket-keeper.js';
import { Resources } from '../quota/quota-key.js';
import { defaultShare, type AdaptiveOptions, type LeaseOptions, type QuotaManagerOptions } from '../quota/options.js';
import type { DispatcherOptions, ServerOptions, ServerTls } from '../server/options.js';
import type { Config } from './schema.js';

/** How buckets fill and drain: the part of the quota settings a bucket keeper (local or fleet) needs. */
export const bucketKeeperOptions = (q: Config['quotas']): LocalBucketKeeperOptions => ({
  windowMs: q.window_ms,
  windowBuckets: q.window_buckets,
  maxDebtMs: q.max_debt_ms,
  maxBuckets: q.max_buckets,
  maxBucketsPerPrincipal: q.max_buckets_per_principal ?? undefined,
});

export const quotaManagerOptions = (q: Config['quotas']): QuotaManagerOptions => ({
  windowMs: q.window_ms,
  windowBuckets: q.window_buckets,
  maxThrottleMs: q.max_throttle_ms,
  idleTimeoutMs: q.idle_timeout_ms,
  cleanupIntervalMs: q.cleanup_interval_ms,
  maxBuckets: q.max_buckets,
  maxBucketsPerPrincipal: q.max_buckets_per_principal ?? undefined,
  maxDebtMs: q.max_debt_ms,
});

/** The lease bounds rivven.yaml sets; a lease's ttl bounds have no key and keep DEFAULT_LEASE_OPTIONS'. */
export const leaseOptions = (q: Config['quotas']): Pick<LeaseOptions, 'maxLeases' | 'maxLeasesPerPrincipal' | 'maxThrottleMs'> => ({
  maxLeases: q.max_leases,
  maxLeasesPerPrincipal: q.max_leases_per_principal ?? defaultShare(q.max_leases),
  maxThrottleMs: q.max_throttle_ms,
});

/** `file`: violations.log (serve puts it in storage.data_dir), or null for memory only. */
export const violationLogOptions = (c: Config, file: string | null): ViolationLogOptions => ({
  maxEvents: c.violations.max_events,
  file,
  maxFileBytes: c.violations.max_file_bytes,
  // A caller honouring every throttle never waits longer than max_throttle_ms: its episode stays one.
  episodeGapMs: c.quotas.max_throttle_ms + c.quotas.window_ms,
  maxEpisodes: c.quotas.max_buckets,
  maxEpisodesPerPrincipal: c.violations.max_episodes_per_principal ?? undefined,
  maxQueuedBytes: c.violations.max_queued_bytes,
});

export const adaptiveOptions = (a: Config['adaptive']): AdaptiveOptions => ({
  cpuThreshold: a.cpu_threshold,
  memoryThreshold: a.memory_threshold,
  minFactor: a.min_factor,
  checkIntervalMs: a.check_interval_ms,
});

/** Without `fleet`, which the app adds: it reads the running FleetSync. */
export const dispatcherOptions = (c: Config): Omit<DispatcherOptions, 'fleet'> => ({
  maxReplyBytes: c.server.max_reply_bytes,
  authFailureDelayMs: c.auth.failure_delay_ms,
  authTimeoutMs: c.server.auth_timeout_ms,
});

/** `tls`: the certificates read from server.tls (auth/security-files.ts), undefined for plaintext. */
export const serverOptions = (s: Config['server'], tls: ServerTls | undefined): ServerOptions => ({
  host: s.host,
  port: s.port,
  maxConnections: s.max_connections,
  maxFrameBytes: s.max_frame_bytes,
  maxConnectionBytes: s.max_connection_bytes,
  frameTimeoutMs: s.frame_timeout_ms,
  authTimeoutMs: s.auth_timeout_ms,
  maxUnauthenticatedConnections: s.max_unauthenticated_connections,
  maxPartialFrameBytes: s.max_partial_frame_bytes,
  tls,
});

/** The /metrics listener; its socket bounds have no key and keep DEFAULT_HEALTH_SERVER_OPTIONS'. */
export const healthServerOptions = (m: Config['metrics'], tls: HealthServerOptions['tls']): HealthServerOptions => ({
  tls,
  tokenSha256: m.token_sha256,
});

/**
 * The rivven.yaml settings that decide how usage fills and drains a bucket, as a short digest: two fleet sidecars
 * that differ here count the same calls differently (`rivven fleet status` warns).
 */
export function bucketSettingsDigest(c: Config): string {
  const q = c.quotas;
  const shape = [q.defaults, q.window_ms, q.max_debt_ms, q.resolution_order, c.tiers, c.fleet.sync_interval_ms];
  return createHash('sha256').update(JSON.stringify(shape)).digest('hex').slice(0, 8);
}

/**
 * `nodeId`: fleet.node_id, else what the app derives from the host and the protocol port it listens on.
 * The heartbeat interval and the batch size have no key and keep DEFAULT_FLEET_SYNC_OPTIONS'.
 */
export const fleetSyncOptions = (c: Config, nodeId: string): FleetSyncOptions => ({
  keyPrefix: c.storage.redis.key_prefix,
  nodeId,
  syncIntervalMs: c.fleet.sync_interval_ms,
  heartbeatIntervalMs: DEFAULT_FLEET_SYNC_OPTIONS.heartbeatIntervalMs,
  breaker: { failureThreshold: c.fleet.breaker.failure_threshold, resetTimeoutMs: c.fleet.breaker.reset_timeout_ms },
  batchSize: DEFAULT_FLEET_SYNC_OPTIONS.batchSize,
  settings: bucketSettingsDigest(c),
  ...(c.quotas.resources.length > 0 ? { rateKeys: new Resources(c.quotas.resources).rateKeys } : {}),
});
