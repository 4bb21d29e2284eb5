import { randomBytes } from 'node:crypto';
import { CircuitBreaker } from '../util/breaker.js';
import type { Clock } from '../quota/clock.js';
import type { RedisBackend } from '../store/redis-backend.js';
import type { FleetBucketKeeper } from './fleet-bucket-keeper.js';
import type { FleetDescribed } from '../protocol/messages/describe-fleet.js';
import type { LeaseManager } from '../quota/lease-manager.js';
import type { FleetSyncOptions } from './options.js';
import { BucketSync } from './bucket-sync.js';
import { CallWindow } from './call-window.js';
import { Heartbeat, type SidecarStatus } from './heartbeat.js';
import { LeaseSync } from './lease-sync.js';

export { DEFAULT_FLEET_SYNC_OPTIONS, type FleetSyncOptions } from './options.js';

/** Script calls of one sync out at once. */
const MAX_CALLS_IN_FLIGHT = 4;

/**
 * The fleet through Redis (docs/algorithm.md, fleet buckets; docs/operations.md, fleet): one round every
 * syncIntervalMs runs the bucket sync (bucket-sync.ts) and the lease counts (lease-sync.ts), and every
 * heartbeatIntervalMs a heartbeat (heartbeat.ts), which also counts the live sidecars. Each script is its own
 * module; this one owns the rounds, the breaker and the fallback (the fleet state, quota/fleet-state.ts).
 *
 * Calls go through a breaker. While it is open the buckets decide alone, each unit counted once per live
 * sidecar (quota / live sidecars at last contact); a heartbeat probes after reset_timeout_ms, and the first sync
 * after it closes pushes what was recorded meanwhile, less this sidecar's share of what the quota drained.
 * Record calls never wait for any of this.
 */
export class FleetSync {
  readonly breaker: CircuitBreaker;
  /** Successful syncs. */
  syncs = 0;
  /** Told the seconds each sync took (rivven_quota_sync_duration_seconds). */
  onSyncDuration: (seconds: number) => void = () => undefined;
  /** Told when the fleet falls back (true) or recovers (false). */
  onFallback: (fallback: boolean, live: number) => void = () => undefined;
  /**
   * Told when another sidecar starts writing heartbeats under this node_id (true), and when none has for
   * LIVE_HEARTBEATS heartbeats (false): on change, not at every heartbeat.
   */
  onNodeIdClash: (nodeId: string, clashing: boolean) => void = () => undefined;
  /** Why the last Redis call failed, until one succeeds (fleet status). */
  lastError: string | null = null;
  /** The last fallback's reconciliation: its length and divisor (fleet status, tests). */
  reconciled: { ms: number; divisor: number } | null = null;

  private readonly buckets: BucketSync;
  private readonly heartbeat: Heartbeat;
  private readonly leaseSync: LeaseSync | undefined;
  /** Tells this sidecar process's heartbeats and pushes from another's with the same node_id. */
  private readonly instance = randomBytes(6).toString('hex');
  private running = false;
  /** The round in progress (or the last one). */
  private round: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private lastSyncAt = -1;
  /** After a fallback: the time to forgive, at quota / divisor, in the first sync. */
  private forgive: { ms: number; divisor: number } | null = null;

  constructor(
    private readonly backend: RedisBackend,
    private readonly store: FleetBucketKeeper,
    private readonly clock: Clock,
    readonly options: Readonly<FleetSyncOptions>,
    /** The version of the shared configs this sidecar has applied, for its heartbeat. */
    private readonly configVersion: () => number = () => 0,
    /** In-flight leases, counted fleet-wide when given (their `fleet` is set here). */
    leases?: LeaseManager,
  ) {
    this.breaker = new CircuitBreaker(options.breaker, () => clock.now());
    this.buckets = new BucketSync(backend, store, clock, options, this.instance);
    this.heartbeat = new Heartbeat(backend, store.fleet, clock, options.keyPrefix, options.nodeId, options.heartbeatIntervalMs, (id, on) =>
      this.onNodeIdClash(id, on),
    );
    this.leaseSync = leases === undefined ? undefined : new LeaseSync(backend, leases, store.fleet, clock, options);
  }

  /** True while the buckets decide alone (the breaker is not closed). */
  get degraded(): boolean {
    return this.store.fleet.alone;
  }

  /** Sidecars whose heartbeat is recent, as of the last one that reached Redis (at least 1: this one). */
  get live(): number {
    return this.store.fleet.live;
  }

  /** Every sidecar of the fleet as of the last heartbeat, this one included. */
  get sidecars(): SidecarStatus[] {
    return this.heartbeat.sidecars;
  }

  /** Script calls sent (the Redis commands this sidecar costs, heartbeats included). */
  get calls(): number {
    return this.buckets.sent + this.heartbeat.sent + (this.leaseSync?.sent ?? 0);
  }

  /** Buckets pushed or pulled in successful script calls. */
  get bucketsSynced(): number {
    return this.buckets.synced;
  }

  /** Pushes Redis recognised as applied already (a retry after a timeout, a late reply): not counted again. */
  get duplicatePushes(): number {
    return this.buckets.duplicatePushes;
  }

  /** Pushes in doubt for too long, given up rather than risk counting them twice. */
  get pushesGivenUp(): number {
    return this.buckets.pushesGivenUp;
  }

  /** Heartbeats that found another sidecar's entry under this node_id. */
  get nodeIdClashes(): number {
    return this.heartbeat.nodeIdClashes;
  }

  /** Syncs every syncIntervalMs until stopped; the timer keeps no process alive. */
  start(): () => void {
    this.timer = setInterval(() => void this.tick(), this.options.syncIntervalMs);
    this.timer.unref();
    return () => clearInterval(this.timer);
  }

  /**
   * Shutting down: waits for a round in progress, pushes what is left (unless cut off from Redis), and takes this
   * sidecar out of the heartbeat list so the others count one live sidecar less at once. Never throws.
   */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.round;
    if (this.breaker.state !== 'closed') return;
    await this.tick();
    await this.heartbeat.leave();
  }

  /** A round that starts after this call, waited for (the timer's rounds skip one in progress instead). */
  async syncNow(): Promise<void> {
    await this.round;
    // The timer may have started one meanwhile: that one started after this call too.
    await (this.running ? this.round : this.tick());
  }

  /**
   * One round: a sync, then a heartbeat when due (first, as the probe, when the breaker is half-open). One round
   * at a time: while one runs, a tick does nothing.
   */
  tick(): Promise<void> {
    if (this.running) return Promise.resolve();
    this.running = true;
    this.round = this.runRound();
    return this.round;
  }

  private async runRound(): Promise<void> {
    try {
      if (!this.breaker.allow()) return;
      // The breaker's probe is a heartbeat: small, and it refreshes the live count the fallback divides by.
      if (this.breaker.state === 'half-open' && !(await this.attempt(() => this.beat()))) return;
      if (!(await this.attempt(() => this.sync()))) return;
      // After the sync, so the sync lag it reports is this one's.
      if (this.clock.now() - this.heartbeat.at >= this.options.heartbeatIntervalMs) await this.attempt(() => this.beat());
    } finally {
      this.running = false;
    }
  }

  /** The fleet as seen at the last heartbeat, for DescribeFleet and `rivven fleet status`. */
  describe(): FleetDescribed {
    const hb = this.heartbeat;
    const since = this.clock.now() - hb.at;
    return {
      enabled: true,
      node_id: this.options.nodeId,
      backend: `${this.backend.description} prefix ${this.options.keyPrefix}`,
      breaker: this.breaker.state,
      live: this.live,
      sync_lag_ms: this.syncLagMs,
      // A clash outranks a Redis error: it is the operator's to fix. It counts while seen in the last 3 heartbeats.
      last_error: hb.clashSeen()
        ? `node_id ${JSON.stringify(this.options.nodeId)} is used by another sidecar too: set fleet.node_id`
        : this.lastError,
      sidecars: hb.sidecars.map(({ seen, ...s }) => ({ ...s, seen_ms_ago: Math.max(0, hb.redisNow - seen + since) })),
    };
  }

  /** Ms since the last successful sync, -1 before the first. */
  get syncLagMs(): number {
    return this.lastSyncAt < 0 ? -1 : this.clock.now() - this.lastSyncAt;
  }

  /** Runs a Redis call through the breaker; `call` resolves false when it had nothing to send (neither outcome). */
  private async attempt(call: () => Promise<boolean>): Promise<boolean> {
    let ok = true;
    try {
      if (await call()) {
        this.breaker.success();
        this.lastError = null;
      }
    } catch (err) {
      ok = false;
      this.lastError = (err as Error).message;
      this.breaker.failure();
    }
    this.followBreaker();
    return ok;
  }

  /** Enters or leaves the fallback as the breaker opens or closes. */
  private followBreaker(): void {
    const state = this.breaker.state;
    const fleet = this.store.fleet;
    if (state === 'open' && !fleet.alone) this.onFallback(true, fleet.fallBack(this.clock.now()));
    else if (state === 'closed' && fleet.alone) {
      this.forgive = fleet.recover(this.clock.now());
      this.reconciled = this.forgive;
      this.onFallback(false, 1);
    }
  }

  private async beat(): Promise<boolean> {
    await this.heartbeat.beat({
      node_id: this.options.nodeId,
      sync_lag_ms: this.syncLagMs,
      breaker: this.breaker.state,
      buckets: this.store.size,
      queued: this.store.queued,
      config_version: this.configVersion(),
      sync_interval_ms: this.options.syncIntervalMs,
      settings: this.options.settings ?? '',
      instance: this.instance,
    });
    return true;
  }

  /** The buckets' pushes, then the lease counts, through one window of calls; resolves whether any call went out. */
  private async sync(): Promise<boolean> {
    const started = performance.now();
    const forgive = this.forgive;
    this.forgive = null;
    const window = new CallWindow(MAX_CALLS_IN_FLIGHT);
    await this.buckets.push(window, forgive);
    if (!window.failed && this.leaseSync !== undefined) for (const call of this.leaseSync.calls()) await window.send(call);
    await window.settled();
    this.onSyncDuration((performance.now() - started) / 1000);
    window.check();
    this.syncs++;
    this.lastSyncAt = this.clock.now();
    return window.sent > 0;
  }
}
