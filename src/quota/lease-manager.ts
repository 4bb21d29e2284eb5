import { randomBytes } from 'node:crypto';
import type { Clock } from './clock.js';
import { bucketDisplay } from './entity.js';
import { IN_FLIGHT } from './quota-key.js';
import { emptyResolution, type QuotaTable, type Resolution } from './quota-table.js';
import { NO_VIOLATIONS, type ViolationSink } from '../observability/violation-log.js';

export interface LeaseOptions {
  /** Longest ttl_ms a lease may ask for. @default 3600000 */
  maxTtlMs: number;
  /** ttl_ms when the request gives none. @default 30000 */
  defaultTtlMs: number;
  /** Leases held at once, all principals together; past it AcquireLease is OVERLOADED. @default 100000 */
  maxLeases: number;
  /** Cap of the wait a refusal reports. @default 30000 */
  maxThrottleMs: number;
}

export const DEFAULT_LEASE_OPTIONS: Readonly<LeaseOptions> = Object.freeze({
  maxTtlMs: 3_600_000,
  defaultTtlMs: 30_000,
  maxLeases: 100_000,
  maxThrottleMs: 30_000,
});

/** The answer to AcquireLease: granted (leaseId set) or refused with the wait until the earliest lease ends. */
export type LeaseAnswer =
  | { granted: true; leaseId: string; ttlMs: number }
  | { granted: false; waitMs: number; entity: string }
  | { granted: false; overloaded: true };

interface Lease {
  group: string;
  expiresAt: number;
  connection: number;
}

/**
 * Fleet mode (docs/operations.md, fleet): the leases other sidecars hold per group, as of the last sync; the
 * groups whose count changed here since; and the fallback's divisor (live sidecars while Redis is out of reach,
 * else 1).
 */
export interface FleetLeases {
  others: Map<string, number>;
  changed: Set<string>;
  divisor: number;
  /** The wait a refusal reports when every lease is held elsewhere (the sync interval: the count is news then). */
  retryMs: number;
}

/** The leases of one group (who shares a max_in_flight limit, decided by the level that set it). */
interface Group {
  limit: number;
  leases: Set<string>;
  /** The group's parts, so DescribeUsage can filter and show them without parsing the display name. */
  user: string | null;
  client: string | null;
}

/**
 * In-flight leases (docs/protocol.md, AcquireLease): a principal may hold at most its `max_in_flight` leases at
 * once. The limit resolves like a rate, and the level that set it decides who shares it, as for buckets (a
 * `user` level: all that user's clients together). A lease ends when released, when its ttl passes (by the
 * injected clock), or when the connection that took it closes. Bounded: maxLeases in all.
 */
export class LeaseManager {
  readonly options: Readonly<LeaseOptions>;
  private readonly leases = new Map<string, Lease>();
  private readonly groups = new Map<string, Group>();
  private readonly byConnection = new Map<number, Set<string>>();
  private readonly resolution: Resolution = emptyResolution();
  /** Refusals because the principal held max_in_flight leases (rivven_lease_refusals_total). */
  refused = 0;
  /** Where refusals are reported as episodes (the violation log). */
  events: ViolationSink = NO_VIOLATIONS;
  /** Set in fleet mode: a group's limit then counts the leases every sidecar holds. */
  fleet: FleetLeases | null = null;

  constructor(
    private readonly table: QuotaTable,
    private readonly clock: Clock,
    options: Partial<LeaseOptions> = {},
  ) {
    this.options = Object.freeze({ ...DEFAULT_LEASE_OPTIONS, ...options });
  }

  get held(): number {
    return this.leases.size;
  }

  acquire(user: string | null, client: string | null, ttlMs: number | undefined, connection: number): LeaseAnswer {
    const now = this.clock.now();
    const r = this.table.resolve(IN_FLIGHT, user, client, this.resolution);
    const group = r.limit === Infinity ? '' : bucketDisplay(r.bucketUser, r.bucketClient);
    let g = this.groups.get(group);
    if (g === undefined) {
      g = { limit: r.limit, leases: new Set(), user: r.bucketUser, client: r.bucketClient };
      this.groups.set(group, g);
    }
    g.limit = r.limit;
    this.expire(g, now);
    const f = this.fleet;
    // Fleet mode: the others' leases count too (a group asked for here is synced from now on, so a first ask
    // is decided on what this sidecar knows, the next ones on the fleet's count); cut off from Redis, this
    // sidecar takes its share of the limit.
    this.fleetChanged(group);
    const elsewhere = f === null || f.divisor > 1 || group === '' ? 0 : (f.others.get(group) ?? 0);
    const limit = f === null || f.divisor === 1 ? g.limit : Math.max(1, Math.floor(g.limit / f.divisor));
    if (g.leases.size + elsewhere >= limit) {
      this.refused++;
      let earliest = Infinity;
      for (const id of g.leases) earliest = Math.min(earliest, this.leases.get(id)!.expiresAt);
      const soonest = earliest === Infinity ? (f?.retryMs ?? this.options.maxThrottleMs) : earliest - now;
      const waitMs = Math.min(Math.max(1, soonest), this.options.maxThrottleMs);
      this.events.violation('CONCURRENT_LIMIT_EXCEEDED', group, 'max_in_flight', `${g.leases.size} of ${g.limit} leases held`);
      return { granted: false, waitMs, entity: group };
    }
    if (this.leases.size >= this.options.maxLeases) return { granted: false, overloaded: true };
    const ttl = Math.min(ttlMs ?? this.options.defaultTtlMs, this.options.maxTtlMs);
    const leaseId = randomBytes(12).toString('base64url');
    this.leases.set(leaseId, { group, expiresAt: now + ttl, connection });
    g.leases.add(leaseId);
    let mine = this.byConnection.get(connection);
    if (mine === undefined) {
      mine = new Set();
      this.byConnection.set(connection, mine);
    }
    mine.add(leaseId);
    return { granted: true, leaseId, ttlMs: ttl };
  }

  /** Ends a lease; an unknown or already ended one is no error (release is idempotent). */
  release(leaseId: string): boolean {
    const lease = this.leases.get(leaseId);
    if (lease === undefined) return false;
    this.end(leaseId, lease);
    return true;
  }

  /** Ends every lease a connection took (it closed). */
  releaseConnection(connection: number): number {
    const mine = this.byConnection.get(connection);
    if (mine === undefined) return 0;
    const n = mine.size;
    for (const id of [...mine]) this.end(id, this.leases.get(id)!);
    return n;
  }

  /** Ends every expired lease; the server runs it on the cleanup timer. */
  sweep(): void {
    const now = this.clock.now();
    for (const g of this.groups.values()) this.expire(g, now);
  }

  /** Leases held here by `group` (fleet sync). */
  heldBy(group: string): number {
    return this.groups.get(group)?.leases.size ?? 0;
  }

  /** Groups holding leases here (fleet sync refreshes them). */
  heldGroups(): IterableIterator<string> {
    return this.groups.keys();
  }

  /** Leases held per group with their limits (for DescribeUsage). */
  *holders(): Generator<{ entity: string; user: string | null; clientId: string | null; held: number; limit: number }> {
    for (const [entity, g] of this.groups) {
      if (entity !== '' && g.leases.size > 0) yield { entity, user: g.user, clientId: g.client, held: g.leases.size, limit: g.limit };
    }
  }

  /**
   * Fleet mode: `group` is to be synced. Bounded: while Redis is out of reach nothing drains the set, and an ask
   * costs nothing to make. A group holding leases here is refreshed once a second anyway, so a change dropped at
   * the bound is late, not lost.
   */
  private fleetChanged(group: string): void {
    const f = this.fleet;
    if (f !== null && group !== '' && f.changed.size < this.options.maxLeases) f.changed.add(group);
  }

  private expire(g: Group, now: number): void {
    for (const id of g.leases) {
      const lease = this.leases.get(id)!;
      if (lease.expiresAt <= now) this.end(id, lease);
    }
  }

  private end(id: string, lease: Lease): void {
    this.leases.delete(id);
    const g = this.groups.get(lease.group);
    g?.leases.delete(id);
    this.fleetChanged(lease.group);
    if (g !== undefined && g.leases.size === 0) this.groups.delete(lease.group);
    const mine = this.byConnection.get(lease.connection);
    mine?.delete(id);
    if (mine?.size === 0) this.byConnection.delete(lease.connection);
  }
}
