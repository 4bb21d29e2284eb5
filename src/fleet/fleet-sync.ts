import { randomBytes } from 'node:crypto';
import calculateSlot from 'cluster-key-slot';
import { CircuitBreaker, type BreakerOptions } from '../client/breaker.js';
import { GROUP } from '../quota/bucket-store.js';
import type { Clock } from '../quota/clock.js';
import { QUOTA_KEYS } from '../quota/quota-key.js';
import type { RedisBackend } from '../store/redis-backend.js';
import { emptyBatch, type FleetBucketStore, type SyncBatch } from './fleet-bucket-store.js';
import type { FleetDescribed, FleetSidecar } from '../protocol/messages/describe-fleet.js';
import type { LeaseManager } from '../quota/lease-manager.js';

export interface FleetSyncOptions {
  /** Prefix of every key; sidecars with the same prefix share buckets. */
  keyPrefix: string;
  /** This sidecar's name in `rivven fleet status`. */
  nodeId: string;
  /** How often usage is pushed and the fleet's levels pulled. */
  syncIntervalMs: number;
  /** How often this sidecar says it is alive (and reads who else is). @default 1000 */
  heartbeatIntervalMs: number;
  breaker: BreakerOptions;
  /** Buckets per script call: a bigger sync is split, so no call holds Redis (or this loop) for long. @default 1000 */
  batchSize: number;
  /** Digest of the settings that shape buckets, compared across the fleet (`rivven fleet status`). @default "" */
  settings?: string;
}

/** One sidecar as its heartbeat stored it: DescribeFleet's row, with the Redis time it was written. */
export type SidecarStatus = Omit<FleetSidecar, 'seen_ms_ago'> & {
  /** Redis time of its last heartbeat (epoch ms). */
  seen: number;
};

/** How long Redis keeps a push series' record (the script's minimum key life): a series in doubt is resent
 * within SERIES_RESEND_MS of its first send, or given up (it could be counted twice after that). */
const SERIES_KEEP_MS = 60_000;
const SERIES_RESEND_MS = 50_000;
/** Series fields one bucket holds before those of long-gone sidecar processes are removed. */
const SERIES_FIELDS = 64;
/** A lease count above this is not a count (no sidecar can hold so many leases in memory). */
const MAX_LEASE_COUNT = 1_000_000_000;
/** Script codes of a bucket with a problem (sync-buckets-n.lua). */
const BUCKET_PROBLEMS: Record<number, string> = {
  1: 'not a bucket (another type, or unparsable): replaced by an empty bucket',
  2: 'level unparsable or stamped far ahead of Redis time: replaced',
  3: "a sidecar's push series unparsable or stamped far ahead of Redis time: dropped",
};
const WRITE_FAILED = 4;
const ALREADY_APPLIED = 5;

/** A sidecar is live while its last heartbeat is this many intervals old at most. */
const LIVE_HEARTBEATS = 3;
/** A sidecar silent for this many heartbeat intervals is removed from the list. */
const FORGET_HEARTBEATS = 60;
/** Script calls of one sync out at once. */
const MAX_CALLS_IN_FLIGHT = 4;
/** A lease count not refreshed for this many heartbeat intervals is a stopped sidecar's, and ignored. */
const STALE_LEASE_HEARTBEATS = 5;

/**
 * Fleet buckets through Redis (docs/algorithm.md, fleet buckets; docs/operations.md, fleet). Every
 * syncIntervalMs: the queued buckets' usage is pushed and the fleet's levels pulled, in one script call per
 * Redis Cluster slot (per batchSize buckets), with Redis draining every bucket by its own clock. Every
 * heartbeatIntervalMs: a heartbeat, which also counts the live sidecars.
 *
 * Calls go through a breaker. While it is open the buckets decide alone, each unit counted once per live
 * sidecar (quota / live sidecars at last contact); a heartbeat probes after reset_timeout_ms, and the first sync
 * after it closes pushes what was recorded meanwhile, less this sidecar's share of what the quota drained.
 * Record calls never wait for any of this.
 */
export class FleetSync {
  readonly breaker: CircuitBreaker;
  /** Successful syncs, and buckets pushed or pulled in them. */
  syncs = 0;
  bucketsSynced = 0;
  /** Script calls sent (the Redis commands this sidecar costs, heartbeats included). */
  calls = 0;
  /** Every sidecar of the fleet as of the last heartbeat, this one included. */
  sidecars: SidecarStatus[] = [];
  /** Told the seconds each sync took (rivven_quota_sync_duration_seconds). */
  onSyncDuration: (seconds: number) => void = () => undefined;
  /** Told when the fleet falls back (true) or recovers (false). */
  onFallback: (fallback: boolean, live: number) => void = () => undefined;
  /**
   * Told when another sidecar starts writing heartbeats under this node_id (true), and when none has for
   * LIVE_HEARTBEATS heartbeats (false): on change, not at every heartbeat.
   */
  onNodeIdClash: (nodeId: string, clashing: boolean) => void = () => undefined;
  private clashing = false;
  /** Heartbeats that found another sidecar's entry under this node_id. */
  nodeIdClashes = 0;
  /** Pushes Redis recognised as applied already (a retry after a timeout, a late reply): not counted again. */
  duplicatePushes = 0;
  /** Pushes in doubt for too long, given up rather than risk counting them twice. */
  pushesGivenUp = 0;
  /** The last push series handed out (increasing, like Redis time in ms). */
  private lastSeries = 0;
  private lastClashAt = Number.NEGATIVE_INFINITY;
  /** The status this sidecar wrote with its last heartbeat (without its time), to notice another writer. */
  private lastWritten: string | null = null;
  /** Tells this sidecar's heartbeats from another's with the same node_id. */
  private readonly instance = randomBytes(6).toString('hex');

  private readonly syncScript: (...args: (string | number)[]) => Promise<number[]>;
  private readonly heartbeatScript: (...args: (string | number)[]) => Promise<(number | string | null)[]>;
  private readonly leasesScript: (...args: (string | number)[]) => Promise<number[]>;
  private readonly sidecarsKey: string;
  private running = false;
  /** The round in progress (or the last one). */
  private round: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private lastSyncAt = -1;
  private lastHeartbeatAt = Number.NEGATIVE_INFINITY;
  private lastLeaseRefreshAt = Number.NEGATIVE_INFINITY;
  /** After a fallback: the time to forgive, at quota / divisor, in the first sync. */
  private forgive: { ms: number; divisor: number } | null = null;
  /** Redis time of the last heartbeat's reply, which `sidecars` are as of. */
  private heartbeatRedisNow = 0;
  /** Why the last Redis call failed, until one succeeds (fleet status). */
  lastError: string | null = null;
  /** The last fallback's reconciliation: its length and divisor (fleet status, tests). */
  reconciled: { ms: number; divisor: number } | null = null;

  constructor(
    private readonly backend: RedisBackend,
    private readonly store: FleetBucketStore,
    private readonly clock: Clock,
    readonly options: Readonly<FleetSyncOptions>,
    /** The version of the shared configs this sidecar has applied, for its heartbeat. */
    private readonly configVersion: () => number = () => 0,
    /** In-flight leases, counted fleet-wide when given (their `fleet` is set here). */
    private readonly leases?: LeaseManager,
  ) {
    if (leases !== undefined) leases.fleet = { others: new Map(), changed: new Set(), state: store.fleet, retryMs: options.syncIntervalMs };
    this.breaker = new CircuitBreaker(options.breaker, () => clock.now());
    this.syncScript = backend.script('rivvenSync', new URL('./lua/sync-buckets-n.lua', import.meta.url));
    this.heartbeatScript = backend.script('rivvenHeartbeat', new URL('./lua/heartbeat-1.lua', import.meta.url));
    this.leasesScript = backend.script('rivvenLeases', new URL('./lua/sync-leases-n.lua', import.meta.url));
    this.sidecarsKey = `${options.keyPrefix}{fleet}:sidecars`;
  }

  /** True while the buckets decide alone (the breaker is not closed). */
  get degraded(): boolean {
    return this.store.fleet.alone;
  }

  /** Sidecars whose heartbeat is recent, as of the last one that reached Redis (at least 1: this one). */
  get live(): number {
    return this.store.fleet.live;
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
    await this.backend.timed(this.backend.client.hdel(this.sidecarsKey, this.options.nodeId)).catch(() => undefined);
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
      if (this.breaker.state === 'half-open' && !(await this.attempt(() => this.heartbeat()))) return;
      if (!(await this.attempt(() => this.sync()))) return;
      // After the sync, so the sync lag it reports is this one's.
      if (this.clock.now() - this.lastHeartbeatAt >= this.options.heartbeatIntervalMs) await this.attempt(() => this.heartbeat());
    } finally {
      this.running = false;
    }
  }

  /** The fleet as seen at the last heartbeat, for DescribeFleet and `rivven fleet status`. */
  describe(): FleetDescribed {
    const since = this.clock.now() - this.lastHeartbeatAt;
    return {
      enabled: true,
      node_id: this.options.nodeId,
      backend: `${this.backend.description} prefix ${this.options.keyPrefix}`,
      breaker: this.breaker.state,
      live: this.live,
      sync_lag_ms: this.syncLagMs,
      // A clash outranks a Redis error: it is the operator's to fix. It counts while seen in the last 3 heartbeats.
      last_error:
        this.clock.now() - this.lastClashAt <= LIVE_HEARTBEATS * this.options.heartbeatIntervalMs
          ? `node_id ${JSON.stringify(this.options.nodeId)} is used by another sidecar too: set fleet.node_id`
          : this.lastError,
      sidecars: this.sidecars.map(({ seen, ...s }) => ({ ...s, seen_ms_ago: Math.max(0, this.heartbeatRedisNow - seen + since) })),
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

  private async heartbeat(): Promise<boolean> {
    const status: Omit<SidecarStatus, 'seen'> = {
      node_id: this.options.nodeId,
      sync_lag_ms: this.syncLagMs,
      breaker: this.breaker.state,
      buckets: this.store.size,
      queued: this.store.queued,
      config_version: this.configVersion(),
      sync_interval_ms: this.options.syncIntervalMs,
      settings: this.options.settings ?? '',
      instance: this.instance,
    };
    const hb = this.options.heartbeatIntervalMs;
    // The script closes the object with the Redis time it was written.
    const open = JSON.stringify(status).slice(0, -1);
    this.calls++;
    const reply = await this.backend.timed(
      this.heartbeatScript(this.sidecarsKey, this.options.nodeId, open, hb * FORGET_HEARTBEATS, hb * LIVE_HEARTBEATS),
    );
    const previousAt = this.lastHeartbeatAt;
    this.lastHeartbeatAt = this.clock.now();
    const now = Number(reply[0]);
    if (!Number.isSafeInteger(now) || now <= 0) throw new Error('the heartbeat script answered without a Redis time');
    this.heartbeatRedisNow = now;
    const bad = Number(reply[2]);
    if (bad > 0)
      this.backend.badValue(
        'heartbeat',
        this.sidecarsKey,
        `${bad} entry(ies) unparsable, stamped ahead of Redis time, or a key of another type: removed`,
      );
    // Our own entry gone although we wrote it within the time Redis keeps entries: Redis lost its keys.
    if (reply[1] === null && this.lastWritten !== null && this.lastHeartbeatAt - previousAt < hb * FORGET_HEARTBEATS)
      this.backend.lostData(
        `this sidecar's heartbeat entry (${this.sidecarsKey}) is gone ${this.lastHeartbeatAt - previousAt} ms after it was written`,
      );
    this.checkNodeId(reply[1], open);
    const sidecars: SidecarStatus[] = [];
    // Judged by Redis time: an entry seen ahead of it (the script removes those far ahead) or long ago is not live.
    const newest = now + hb * LIVE_HEARTBEATS;
    const oldest = now - hb * FORGET_HEARTBEATS;
    for (let i = 3; i < reply.length; i++) {
      const status = parseStatus(String(reply[i]));
      if (status === undefined || status.seen > newest || status.seen < oldest) {
        this.backend.badValue('heartbeat', this.sidecarsKey, 'an entry this version does not write (fields, types or sizes): ignored');
        continue;
      }
      sidecars.push(status);
    }
    sidecars.sort((a, b) => (a.node_id < b.node_id ? -1 : a.node_id > b.node_id ? 1 : 0));
    this.sidecars = sidecars;
    this.store.fleet.live = Math.max(1, sidecars.filter((s) => s.seen >= now - hb * LIVE_HEARTBEATS).length);
    return true;
  }

  /**
   * Another sidecar writing under this node_id would merge two sidecars into one: one live sidecar fewer in the
   * fallback's divisor, and lease counts that overwrite each other. So each heartbeat checks that the entry
   * still holds what this sidecar wrote last (its status carries a random instance id).
   */
  private checkNodeId(previous: unknown, mine: string): void {
    const written = this.lastWritten;
    this.lastWritten = mine;
    const now = this.clock.now();
    if (written !== null && typeof previous === 'string' && !previous.startsWith(`${written},"seen":`)) {
      this.nodeIdClashes++;
      this.lastClashAt = now;
    }
    // The same window describe() uses: the other's last write is still seen once after it stopped.
    const clashing = now - this.lastClashAt <= LIVE_HEARTBEATS * this.options.heartbeatIntervalMs;
    if (clashing === this.clashing) return;
    this.clashing = clashing;
    this.onNodeIdClash(this.options.nodeId, clashing);
  }

  private async sync(): Promise<boolean> {
    const started = performance.now();
    this.pushesGivenUp += this.store.dropInDoubt(this.clock.now() - SERIES_RESEND_MS);
    // A new series for this round's pushes: increasing per process, and close to Redis time, so the script can
    // tell a long-gone process's series from a live one's.
    this.lastSeries = Math.max(this.lastSeries + 1, Math.floor(Date.now() + this.backend.clockOffset));
    this.store.series = this.lastSeries;
    const names = this.store.swapQueue();
    const forgive = this.forgive;
    this.forgive = null;
    const size = this.options.batchSize;
    // Calls go out a few at a time, each with its own deadline: a big sync (after an outage, say) sent all at
    // once would queue on Redis past the deadlines of its own later calls.
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    let sent = 0;
    const send = async (call: () => Promise<void>) => {
      sent++;
      const p: Promise<void> = call().then(
        () => void inFlight.delete(p),
        (err: unknown) => {
          failure ??= err;
          inFlight.delete(p);
        },
      );
      inFlight.add(p);
      while (inFlight.size >= MAX_CALLS_IN_FLIGHT) await Promise.race(inFlight);
    };
    let from = 0;
    for (; from < names.kinds.length && failure === undefined; from += size) {
      const batch = emptyBatch();
      this.store.collect(names, from, Math.min(names.kinds.length, from + size), batch, forgive?.ms, forgive?.divisor);
      for (let i = 0; i < batch.kinds.length; i++)
        batch.keys.push(bucketKey(this.options.keyPrefix, batch.kinds[i]!, batch.as[i]!, batch.bs[i]!));
      for (const part of this.backend.cluster ? bySlot(batch) : [batch]) await send(() => this.push(part));
      // Each batch is built in its own turn of the loop, so a big sync never holds it for long.
      await new Promise((r) => setImmediate(r));
    }
    // Stopped by a failure: the buckets not yet taken wait for the next sync, their usage still in them.
    if (from < names.kinds.length) this.store.requeue(names, from);
    if (failure === undefined) for (const call of this.leaseCalls()) await send(call);
    await Promise.all(inFlight);
    this.onSyncDuration((performance.now() - started) / 1000);
    if (failure !== undefined) throw failure;
    this.syncs++;
    this.lastSyncAt = this.clock.now();
    return sent > 0;
  }

  /**
   * The lease counts: this sidecar's for each group whose count changed, that others hold leases in, or (once
   * per heartbeat interval, so they do not go stale) that it holds leases in; back come the others' counts.
   * Counts are absolute, so a late or repeated call does no harm; on failure the groups are sent again.
   */
  private leaseCalls(): (() => Promise<void>)[] {
    const calls: (() => Promise<void>)[] = [];
    const leases = this.leases;
    const f = leases?.fleet;
    if (leases === undefined || f == null) return calls;
    const groups = new Set(f.changed);
    f.changed.clear();
    for (const g of f.others.keys()) groups.add(g);
    const now = this.clock.now();
    if (now - this.lastLeaseRefreshAt >= this.options.heartbeatIntervalMs) {
      this.lastLeaseRefreshAt = now;
      for (const g of leases.heldGroups()) if (g !== '') groups.add(g);
    }
    const all = [...groups];
    const stale = this.options.heartbeatIntervalMs * STALE_LEASE_HEARTBEATS;
    for (let from = 0; from < all.length; from += this.options.batchSize) {
      const part = all.slice(from, from + this.options.batchSize);
      const keys = part.map((g) => `${this.options.keyPrefix}{leases}:${g}`);
      calls.push(() => {
        this.calls++;
        const counts = part.map((g) => leases.heldBy(g));
        return this.backend.timed(this.leasesScript(part.length, ...keys, this.options.nodeId, stale, MAX_LEASE_COUNT, ...counts)).then(
          (others: number[]) => {
            for (let i = 0; i < part.length; i++) {
              const n = Number(others[i]);
              if (Number.isSafeInteger(n) && n > 0) f.others.set(part[i]!, n);
              else f.others.delete(part[i]!);
            }
            const bad = Number(others[part.length] ?? 0);
            if (bad > 0)
              this.backend.badValue(
                'lease',
                keys[0]!,
                `${bad} lease count(s) invalid (unparsable, too big, stamped ahead of Redis time, or a key of another type): removed`,
              );
          },
          (err: unknown) => {
            for (const g of part) f.changed.add(g);
            throw err;
          },
        );
      });
    }
    return calls;
  }

  /**
   * One script call. On failure or timeout Redis may have applied it or not: the batch's pushes stay in doubt
   * and a later sync resends them under the same series, which the script applies at most once.
   */
  private async push(batch: SyncBatch): Promise<void> {
    if (batch.kinds.length === 0) return;
    const n = batch.kinds.length;
    const head = 4;
    const args: (string | number)[] = new Array(1 + n + head + 5 * n);
    args[0] = n;
    for (let i = 0; i < n; i++) args[1 + i] = batch.keys[i]!;
    args[1 + n] = this.backend.deadline();
    args[2 + n] = this.instance;
    args[3 + n] = SERIES_KEEP_MS;
    args[4 + n] = SERIES_FIELDS;
    for (let i = 0; i < n; i++) {
      const at = 1 + n + head + 5 * i;
      args[at] = batch.pushes[i]!;
      args[at + 1] = batch.series[i]!;
      args[at + 2] = batch.rates[i]!;
      args[at + 3] = Math.round(batch.ceilings[i]!);
      args[at + 4] = batch.resets[i] ? 1 : 0;
    }
    this.calls++;
    try {
      const reply = await this.backend.timed(this.syncScript(...args));
      if (reply[0] === -1) {
        this.backend.failures++;
        throw new Error(`Redis ran the sync after its deadline (${this.backend.commandTimeoutMs} ms); nothing was pushed`);
      }
      if (!Array.isArray(reply) || reply.length < n + 1 || (reply.length - n - 1) % 2 !== 0)
        throw new Error('the sync script answered in a shape this version does not know');
      // Replies of a big sync arrive together: each batch settles in its own turn of the loop.
      await new Promise((r) => setImmediate(r));
      const failed = this.problems(batch, reply);
      if (failed !== undefined) this.store.restore(batch, this.clock.now(), failed);
      this.store.settle(batch, reply.slice(1, n + 1), this.clock.now(), failed);
      this.bucketsSynced += n;
    } catch (err) {
      this.store.restore(batch, this.clock.now());
      throw err;
    }
  }

  /** The script's (bucket, code) pairs after the levels: logged and counted; returns the buckets not applied. */
  private problems(batch: SyncBatch, reply: number[]): Set<number> | undefined {
    const n = batch.kinds.length;
    let failed: Set<number> | undefined;
    for (let j = n + 1; j + 1 < reply.length; j += 2) {
      const i = Number(reply[j]) - 1;
      const code = Number(reply[j + 1]);
      if (!(i >= 0 && i < n)) continue;
      if (code === ALREADY_APPLIED) this.duplicatePushes++;
      else if (code === WRITE_FAILED) {
        failed ??= new Set();
        failed.add(i);
      } else this.backend.badValue('bucket', batch.keys[i]!, BUCKET_PROBLEMS[code] ?? `code ${code}`);
    }
    return failed;
  }
}

const BREAKER_STATES: readonly string[] = ['closed', 'open', 'half-open'];
/** The longest text a heartbeat entry may carry per field (a node_id is host:port; settings a short digest). */
const MAX_TEXT = 256;

/** A heartbeat entry as written by this version, or undefined: the CLI prints what comes from here. */
function parseStatus(json: string): SidecarStatus | undefined {
  let s: Record<string, unknown>;
  try {
    s = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof s !== 'object' || s === null || typeof s.node_id !== 'string' || !BREAKER_STATES.includes(s.breaker as string))
    return undefined;
  if (typeof s.settings !== 'string' || typeof s.instance !== 'string') return undefined;
  if (s.node_id.length > MAX_TEXT || s.settings.length > MAX_TEXT || s.instance.length > MAX_TEXT) return undefined;
  const numbers = ['seen', 'buckets', 'queued', 'config_version', 'sync_interval_ms'] as const;
  if (!numbers.every((k) => Number.isSafeInteger(s[k]) && (s[k] as number) >= 0)) return undefined;
  if (!Number.isSafeInteger(s.sync_lag_ms) || (s.sync_lag_ms as number) < -1) return undefined;
  // Only what this version writes: no extra fields to carry into DescribeFleet.
  const { node_id, sync_lag_ms, breaker, buckets, queued, config_version, sync_interval_ms, settings, instance, seen } =
    s as unknown as SidecarStatus;
  return { node_id, sync_lag_ms, breaker, buckets, queued, config_version, sync_interval_ms, settings, instance, seen };
}

/**
 * A bucket's key: the prefix, then the bucket's name as its hash tag, so each bucket lands in a slot of its own
 * choosing and the fleet's buckets spread over a Cluster. JSON keeps names that contain separators apart.
 */
export function bucketKey(prefix: string, kind: number, a: string | null, b: string | null): string {
  return `${prefix}bucket:{${JSON.stringify([kind === GROUP ? 'group' : QUOTA_KEYS[kind], a, b])}}`;
}

/** Splits a batch by Redis Cluster slot: a script's keys must share one. */
function bySlot(batch: SyncBatch): SyncBatch[] {
  const parts = new Map<number, SyncBatch>();
  for (let i = 0; i < batch.kinds.length; i++) {
    const slot = calculateSlot(batch.keys[i]!);
    let part = parts.get(slot);
    if (part === undefined) {
      part = emptyBatch();
      parts.set(slot, part);
    }
    part.kinds.push(batch.kinds[i]!);
    part.as.push(batch.as[i]!);
    part.bs.push(batch.bs[i]!);
    part.pushes.push(batch.pushes[i]!);
    part.series.push(batch.series[i]!);
    part.rates.push(batch.rates[i]!);
    part.ceilings.push(batch.ceilings[i]!);
    part.resets.push(batch.resets[i]!);
    part.keys.push(batch.keys[i]!);
  }
  return [...parts.values()];
}
