import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import type { Config } from './config/schema.js';
import {
  adaptiveOptions,
  bucketKeeperOptions,
  dispatcherOptions,
  fleetSyncOptions,
  healthServerOptions,
  leaseOptions,
  quotaManagerOptions,
  serverOptions,
  violationLogOptions,
} from './config/to-options.js';
import type { Histogram, Registry } from 'prom-client';
import { HealthServer } from './observability/http.js';
import type { Logger } from './observability/logger.js';
import { createMetrics } from './observability/metrics.js';
import { RequestStats } from './observability/request-stats.js';
import { systemClock, type Clock } from './quota/clock.js';
import { QuotaManager } from './quota/quota-manager.js';
import { Resources } from './quota/quota-key.js';
import { QuotaTable } from './quota/quota-table.js';
import { Dispatcher } from './server/dispatcher.js';
import { QuotaAdmin } from './server/quota-admin.js';
import { QuotaServer } from './server/server.js';
import type { QuotaStore } from './store/quota-store.js';
import { VERSION } from './version.js';
import { Guard } from './auth/guard.js';
import { LeaseManager } from './quota/lease-manager.js';
import { AdaptiveScaler, systemLoad, type HostLoad } from './quota/adaptive.js';
import { ViolationLog } from './observability/violation-log.js';
import { identities, metricsTls, serverTls } from './auth/security-files.js';
import { FleetBucketKeeper } from './fleet/fleet-bucket-keeper.js';
import { FleetSync } from './fleet/fleet-sync.js';
import type { RedisBackend } from './store/redis-backend.js';

export interface AppDeps {
  logger: Logger;
  store: QuotaStore;
  clock?: Clock;
  /** violations.log (serve puts it in storage.data_dir); memory only when absent. */
  violationsFile?: string;
  /** The load reading adaptive quotas follow (tests inject one); the host's by default. */
  loadReading?: () => HostLoad;
  /** fleet.enabled: the Redis connection the buckets sync through (the Redis store's), and its config version. */
  fleet?: { backend: RedisBackend; configVersion: () => number };
}

/**
 * A listen error that names the setting behind the port: "EADDRINUSE 127.0.0.1:9191" alone does not say that
 * 9191 is the metrics port of a sidecar started beside another.
 */
function portInUse(err: unknown, setting: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (e.code !== 'EADDRINUSE' && e.code !== 'EACCES') return err;
  const why = e.code === 'EADDRINUSE' ? 'is in use (another rivven on this host?)' : 'may not be opened by this user';
  return new Error(`${setting} ${why}: choose another port (0 picks a free one) [${e.message}]`);
}

/** The sidecar, wired from a validated config. `start` loads stored quotas before it listens. */
export class App {
  readonly table: QuotaTable;
  readonly manager: QuotaManager;
  readonly admin: QuotaAdmin;
  readonly server: QuotaServer;
  readonly requests = new RequestStats();
  readonly metrics: Registry;
  readonly guard: Guard;
  readonly leases: LeaseManager;
  readonly violations: ViolationLog;
  readonly adaptive: AdaptiveScaler;
  /** fleet.enabled: the buckets' sync through Redis (made once the protocol port's address, the default node_id, is known). */
  fleet: FleetSync | undefined;
  /** The /metrics, /healthz, /readyz listener; undefined with metrics.enabled: false. */
  readonly http: HealthServer | undefined;
  /** Resolves with the HTTP address once it listens (before stored quotas load, so /readyz can say 503). */
  readonly httpListening: Promise<AddressInfo | undefined>;
  private resolveHttp: (a: AddressInfo | undefined) => void = () => undefined;
  /** fleet.enabled: the buckets the fleet's sync pushes and adopts the fleet's fills into (the manager's, kept with their type). */
  private readonly fleetBuckets: FleetBucketKeeper | undefined;
  private ready = false;
  private stopCleanup: (() => void) | undefined;

  constructor(
    readonly config: Config,
    private readonly deps: AppDeps,
  ) {
    const q = config.quotas;
    this.table = new QuotaTable(q.defaults, q.resolution_order, config.tiers, new Resources(q.resources));
    if (config.fleet.enabled && deps.fleet === undefined) throw new Error('fleet.enabled needs the Redis store');
    // A bucket in use on this sidecar keeps following the fleet for a window after its last call here.
    const buckets = config.fleet.enabled
      ? new FleetBucketKeeper(bucketKeeperOptions(q), q.window_ms + config.fleet.sync_interval_ms)
      : undefined;
    this.fleetBuckets = buckets;
    this.manager = new QuotaManager(this.table, quotaManagerOptions(q), deps.clock ?? systemClock, buckets);
    this.admin = new QuotaAdmin(this.table, deps.store, config.storage.max_entities, () => this.manager.clock.wall());
    const warn = (message: string) => deps.logger.warn(message);
    this.guard = new Guard(identities(config, warn));
    this.leases = new LeaseManager(this.table, this.manager.clock, leaseOptions(q));
    this.violations = new ViolationLog(this.manager.clock, violationLogOptions(config, deps.violationsFile ?? null));
    this.manager.events = this.violations;
    this.adaptive = new AdaptiveScaler(adaptiveOptions(config.adaptive), deps.loadReading ?? systemLoad(), (factor) => {
      this.manager.setAdaptiveFactor(factor);
      deps.logger.warn({ factor, load: this.adaptive.load }, 'adaptive: quotas scaled');
    });
    this.leases.events = this.violations;
    const dispatcher = new Dispatcher(
      this.manager,
      this.admin,
      VERSION,
      deps.logger,
      this.requests,
      { ...dispatcherOptions(config), fleet: () => this.fleet?.describe() },
      this.guard,
      this.leases,
      this.violations,
    );
    this.server = new QuotaServer(dispatcher, serverOptions(config.server, serverTls(config, warn)), deps.logger);
    this.metrics = createMetrics({
      manager: this.manager,
      server: this.server,
      admin: this.admin,
      requests: this.requests,
      guard: this.guard,
      leases: this.leases,
      adaptiveFactor: () => this.manager.adaptiveFactor,
      violations: this.violations,
      backend: deps.fleet?.backend,
      storeFailures: () => deps.store.syncFailures ?? 0,
      fleet: () => this.fleet,
    });
    this.http = config.metrics.enabled
      ? new HealthServer(
          this.metrics,
          () => this.ready && (this.fleet?.degraded === true ? 'degraded' : true),
          healthServerOptions(config.metrics, metricsTls(config, warn)),
        )
      : undefined;
    this.httpListening = new Promise((resolve) => (this.resolveHttp = resolve));
  }

  async start(): Promise<AddressInfo> {
    const m = this.config.metrics;
    const httpAddress = await this.http?.listen(m.host, m.port).catch((err: unknown) => {
      throw portInUse(err, `metrics.port ${m.port} (the /metrics port; --metrics-port, RIVVEN_METRICS_PORT)`);
    });
    this.resolveHttp(httpAddress);
    let loaded: number;
    let address: AddressInfo;
    try {
      await this.violations.load();
      loaded = await this.admin.load();
      address = await this.server.listen().catch((err: unknown) => {
        throw portInUse(err, `server.port ${this.config.server.port} (the protocol port; --port, RIVVEN_SERVER_PORT)`);
      });
    } catch (err) {
      // Nothing may keep a process that failed to start alive (the Redis store would keep reconnecting).
      await this.http?.close();
      await this.deps.store.close().catch(() => undefined);
      throw err;
    }
    const stopBuckets = this.manager.startCleanup();
    const stopAdaptive = this.config.adaptive.enabled ? this.adaptive.start() : () => undefined;
    const stopFleet = this.startFleet(address);
    const leaseTimer = setInterval(
      () => {
        this.leases.sweep();
        void this.violations.tick();
      },
      Math.min(this.config.quotas.cleanup_interval_ms, 1000),
    );
    leaseTimer.unref();
    this.stopCleanup = () => {
      stopBuckets();
      stopAdaptive();
      stopFleet();
      clearInterval(leaseTimer);
    };
    this.ready = true;
    this.deps.logger.info(
      {
        address: `${address.address}:${address.port}`,
        version: VERSION,
        store: this.deps.store.description,
        stored_quotas: loaded,
        metrics: httpAddress
          ? `${m.tls.cert !== null ? 'https' : 'http'}://${httpAddress.address}:${httpAddress.port}/metrics`
          : 'disabled',
        ...(this.fleet ? { fleet: this.fleet.options.nodeId } : {}),
      },
      'rivven listening',
    );
    return address;
  }

  private startFleet(address: AddressInfo): () => void {
    const f = this.config.fleet;
    const deps = this.deps.fleet;
    const buckets = this.fleetBuckets;
    if (buckets === undefined || deps === undefined) return () => undefined;
    const logger = this.deps.logger;
    this.fleet = new FleetSync(
      deps.backend,
      buckets,
      this.manager.clock,
      // The host name, not server.host: behind 0.0.0.0 every container would be "0.0.0.0:9190".
      fleetSyncOptions(this.config, f.node_id ?? `${hostname()}:${address.port}`),
      deps.configVersion,
      this.leases,
    );
    this.fleet.onNodeIdClash = (nodeId, clashing) =>
      clashing
        ? logger.error(
            { node_id: nodeId },
            'fleet: another sidecar sends heartbeats under this node_id; set fleet.node_id to tell them apart',
          )
        : logger.info({ node_id: nodeId }, 'fleet: no other sidecar sends heartbeats under this node_id any more');
    this.fleet.onFallback = (fallback, live) =>
      fallback
        ? logger.warn({ live_sidecars: live }, 'fleet: Redis out of reach, deciding alone with quota / live sidecars')
        : logger.info('fleet: Redis back, usage from the outage pushed with the next sync');
    const histogram = this.metrics.getSingleMetric('rivven_quota_sync_duration_seconds') as Histogram;
    this.fleet.onSyncDuration = (seconds) => histogram.observe(seconds);
    void this.fleet.tick();
    return this.fleet.start();
  }

  /**
   * SIGHUP: reopens the store's log files (logrotate), and reloads the tokens file and the certificates.
   * Existing connections keep their identity and their TLS session. A file that fails to load leaves what was
   * loaded before in force; the error says which.
   */
  async reload(): Promise<void> {
    await this.deps.store.reopen();
    const warn = (message: string) => this.deps.logger.warn(message);
    // Each is read and checked whole before anything is swapped: a refused file leaves the old one in force.
    const next = identities(this.config, warn);
    if (next !== null) this.guard.replace(next);
    const t = serverTls(this.config, warn);
    if (t !== undefined) this.server.reloadTls(t);
    const m = metricsTls(this.config, warn);
    if (m !== undefined) this.http?.reloadTls(m);
  }

  async stop(graceMs = 5000): Promise<void> {
    this.ready = false;
    this.stopCleanup?.();
    await this.server.close(graceMs);
    await this.http?.close();
    await this.violations.tick();
    await this.violations.flushed();
    // After the server closed (its connections' leases ended): the last usage and lease counts reach the fleet.
    await this.fleet?.close();
    await this.deps.store.close();
  }
}
