import type { Clock } from '../quota/clock.js';
import type { FleetState } from '../quota/fleet-state.js';
import type { FleetLeases, LeaseManager } from '../quota/lease-manager.js';
import type { RedisBackend } from '../store/redis-backend.js';

/** What the lease sync reads of FleetSyncOptions. */
export interface LeaseSyncOptions {
  keyPrefix: string;
  nodeId: string;
  syncIntervalMs: number;
  heartbeatIntervalMs: number;
  batchSize: number;
}

/** A lease count above this is not a count (no sidecar can hold so many leases in memory). */
const MAX_LEASE_COUNT = 1_000_000_000;
/** A lease count not refreshed for this many heartbeat intervals is a stopped sidecar's, and ignored. */
const STALE_LEASE_HEARTBEATS = 5;

/**
 * In-flight leases counted fleet-wide (lua/sync-leases-n.lua; docs/operations.md, fleet: leases): each sync
 * sends this sidecar's count per group and learns the others'. It sets the lease manager's `fleet` to what it
 * keeps in sync, and the fleet state the leases read in the fallback.
 */
export class LeaseSync {
  /** Script calls sent. */
  sent = 0;
  private readonly fleet: FleetLeases;
  private lastRefreshAt = Number.NEGATIVE_INFINITY;
  private readonly script: (...args: (string | number)[]) => Promise<number[]>;

  constructor(
    private readonly backend: RedisBackend,
    private readonly leases: LeaseManager,
    state: FleetState,
    private readonly clock: Clock,
    private readonly options: Readonly<LeaseSyncOptions>,
  ) {
    this.fleet = { others: new Map(), changed: new Set(), state, retryMs: options.syncIntervalMs };
    leases.fleet = this.fleet;
    this.script = backend.script('rivvenLeases', new URL('./lua/sync-leases-n.lua', import.meta.url));
  }

  /**
   * This round's calls: this sidecar's counts for each group whose count changed, that others hold leases in, or
   * (once per heartbeat interval, so they do not go stale) that it holds leases in; back come the others' counts.
   * Counts are absolute, so a late or repeated call does no harm; on failure the groups are sent again.
   */
  calls(): (() => Promise<void>)[] {
    const calls: (() => Promise<void>)[] = [];
    const { leases, fleet: f, options: o } = this;
    const groups = new Set(f.changed);
    f.changed.clear();
    for (const g of f.others.keys()) groups.add(g);
    const now = this.clock.now();
    if (now - this.lastRefreshAt >= o.heartbeatIntervalMs) {
      this.lastRefreshAt = now;
      for (const g of leases.heldGroups()) if (g !== '') groups.add(g);
    }
    const all = [...groups];
    const stale = o.heartbeatIntervalMs * STALE_LEASE_HEARTBEATS;
    for (let from = 0; from < all.length; from += o.batchSize) {
      const part = all.slice(from, from + o.batchSize);
      const keys = part.map((g) => `${o.keyPrefix}{leases}:${g}`);
      calls.push(() => {
        this.sent++;
        const counts = part.map((g) => leases.heldBy(g));
        return this.backend.timed(this.script(part.length, ...keys, o.nodeId, stale, MAX_LEASE_COUNT, ...counts)).then(
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
}
