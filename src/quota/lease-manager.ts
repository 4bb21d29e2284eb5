import type { Clock } from './clock.js';
import type { FleetState } from './fleet-state.js';
import { bucketDisplay } from './entity.js';
import { IN_FLIGHT } from './quota-key.js';
import type { QuotaTable } from './quota-table.js';
import { emptyResolution, type Resolution } from './resolution.js';
import { NO_VIOLATIONS, type ViolationSink } from './violations.js';
import { IndexedHeap } from '../util/indexed-heap.js';
import { byExpiry, leaseId, newGroup, type Group, type Lease } from './lease-group.js';
import { DEFAULT_LEASE_OPTIONS, defaultShare, type LeaseOptions } from './options.js';

/**
 * Who a lease counts against for the share: the user, else the client-id, named as entities are, so a client-id
 * without a user never shares a count with the user of the same name (an anonymous client calling itself
 * "alice" could otherwise take user alice's share and lock her out); '' when neither is given.
 */
export const principalOf = (user: string | null, client: string | null): string =>
  user !== null ? `user:${user}` : client !== null ? `client-id:${client}` : '';

/** The server bound that refused an AcquireLease (OVERLOADED), named as the config key that sets it. */
export type LeaseBound = 'quotas.max_leases' | 'quotas.max_leases_per_principal';

/**
 * The answer to AcquireLease: granted (leaseId set), refused at the group's max_in_flight with the wait until
 * its earliest lease ends, or refused by a server bound (the principal's share, or all leases together).
 */
export type LeaseAnswer =
  | { granted: true; leaseId: string; ttlMs: number }
  | { granted: false; waitMs: number; entity: string }
  | { granted: false; overloaded: LeaseBound; principal: string; held: number; bound: number };

/** Leases ended per acquire or sweep step beyond the asking group's own (the rest wait for the sweep timer). */
const EXPIRE_STEP = 1024;
/** The longest one sweep runs: a mass expiry is ended over several timer runs, never in one long hold. */
const SWEEP_MS = 8;

/**
 * Fleet mode (docs/operations.md, fleet): the leases other sidecars hold per group, as of the last sync; the
 * groups whose count changed here since; and the fleet's state (its divisor: live sidecars while Redis is out
 * of reach, else 1).
 */
export interface FleetLeases {
  others: Map<string, number>;
  changed: Set<string>;
  state: FleetState;
  /** The wait a refusal reports when every lease is held elsewhere (the sync interval: the count is news then). */
  retryMs: number;
}

/**
 * In-flight leases (docs/protocol.md, AcquireLease): a principal may hold at most its `max_in_flight` leases at
 * once. The limit resolves like a rate, and the level that set it decides who shares it, as for buckets (a
 * `user` level: all that user's clients together). A lease ends when released, when its ttl passes (by the
 * injected clock), or when the connection that took it closes. Bounded: maxLeases in all, and
 * maxLeasesPerPrincipal per principal whatever its max_in_flight (docs/operations.md, limits).
 *
 * Cost does not grow with what others hold: each group keeps its leases in a heap by expiry, so an acquire ends
 * its own group's expired leases and reads the earliest end in O(log n); all leases sit in one more heap, which
 * the sweep pops. A refusal looks things up and keeps nothing (no group, no count, nothing per principal).
 */
export class LeaseManager {
  readonly options: Readonly<LeaseOptions>;
  private readonly leases = new Map<string, Lease>();
  private readonly groups = new Map<string, Group>();
  private readonly all = new IndexedHeap<Lease>(
    byExpiry,
    (l) => l.inAll,
    (l, i) => {
      l.inAll = i;
    },
  );
  /** Leases held per principal (the share of maxLeases); a principal holding none has no entry. */
  private readonly perPrincipal = new Map<string, number>();
  private readonly byConnection = new Map<number, Set<Lease>>();
  private readonly resolution: Resolution = emptyResolution();
  /** Refusals because the principal held max_in_flight leases (rivven_lease_refusals_total). */
  refused = 0;
  /** Refusals by a server bound: the principal's share, and all leases together (rivven_lease_overloaded_total). */
  refusedShare = 0;
  refusedFull = 0;
  /** Where refusals are reported as episodes (the violation log). */
  events: ViolationSink = NO_VIOLATIONS;
  /** Set in fleet mode: a group's limit then counts the leases every sidecar holds. */
  fleet: FleetLeases | null = null;

  constructor(
    private readonly table: QuotaTable,
    private readonly clock: Clock,
    options: Partial<LeaseOptions> = {},
  ) {
    const maxLeases = options.maxLeases ?? DEFAULT_LEASE_OPTIONS.maxLeases;
    this.options = Object.freeze({ ...DEFAULT_LEASE_OPTIONS, maxLeasesPerPrincipal: defaultShare(maxLeases), ...options });
  }

  get held(): number {
    return this.leases.size;
  }

  acquire(user: string | null, client: string | null, ttlMs: number | undefined, connection: number): LeaseAnswer {
    const now = this.clock.now();
    const r = this.table.resolve(IN_FLIGHT, user, client, this.resolution);
    const key = r.limit === Infinity ? '' : bucketDisplay(r.bucketUser, r.bucketClient);
    let g = this.groups.get(key);
    if (g !== undefined) {
      g.limit = r.limit;
      // Only a limited group needs its count exact now; the unlimited one ('', shared by every principal without
      // a limit) is left to the sweep, so no acquire ends other principals' leases.
      if (key !== '') this.expireGroup(g, now);
      if (g.leases.size === 0) g = undefined; // ending its last lease removed it
    }
    const inGroup = g?.leases.size ?? 0;
    const f = this.fleet;
    // Fleet mode: the others' leases count too (a group asked for here is synced from now on, so a first ask
    // is decided on what this sidecar knows, the next ones on the fleet's count); cut off from Redis, this
    // sidecar takes its share of the limit.
    this.fleetChanged(key);
    const divisor = f === null ? 1 : f.state.divisor;
    const elsewhere = f === null || divisor > 1 || key === '' ? 0 : (f.others.get(key) ?? 0);
    const limit = divisor === 1 ? r.limit : Math.max(1, Math.floor(r.limit / divisor));
    if (inGroup + elsewhere >= limit) {
      this.refused++;
      const earliest = g?.leases.peek();
      const soonest = earliest === undefined ? (f?.retryMs ?? this.options.maxThrottleMs) : earliest.expiresAt - now;
      const waitMs = Math.min(Math.max(1, soonest), this.options.maxThrottleMs);
      this.events.violation('CONCURRENT_LIMIT_EXCEEDED', key, 'max_in_flight', `${inGroup} of ${r.limit} leases held`);
      return { granted: false, waitMs, entity: key };
    }
    const principal = principalOf(user, client);
    const o = this.options;
    // A server bound about to refuse first ends what has expired elsewhere (a step of it: the sweep does the rest).
    if (this.leases.size >= o.maxLeases || (this.perPrincipal.get(principal) ?? 0) >= o.maxLeasesPerPrincipal) this.expireSome(now);
    const mine = this.perPrincipal.get(principal) ?? 0;
    if (mine >= o.maxLeasesPerPrincipal) {
      this.refusedShare++;
      return { granted: false, overloaded: 'quotas.max_leases_per_principal', principal, held: mine, bound: o.maxLeasesPerPrincipal };
    }
    if (this.leases.size >= o.maxLeases) {
      this.refusedFull++;
      return { granted: false, overloaded: 'quotas.max_leases', principal, held: this.leases.size, bound: o.maxLeases };
    }
    return this.grant(g ?? this.newGroup(key, r.limit, r.bucketUser, r.bucketClient), principal, ttlMs, connection, now);
  }

  /** Ends a lease; an unknown or already ended one is no error (release is idempotent). */
  release(leaseId: string): boolean {
    const lease = this.leases.get(leaseId);
    if (lease === undefined) return false;
    this.end(lease);
    return true;
  }

  /** Ends every lease a connection took (it closed). */
  releaseConnection(connection: number): number {
    const mine = this.byConnection.get(connection);
    if (mine === undefined) return 0;
    const n = mine.size;
    for (const lease of [...mine]) this.end(lease);
    return n;
  }

  /**
   * Ends expired leases, soonest first, a step at a time for at most SWEEP_MS (what is left waits for the next
   * run); the server runs it on the cleanup timer.
   */
  sweep(): void {
    const now = this.clock.now();
    const started = performance.now();
    while (this.expireSome(now) === EXPIRE_STEP && performance.now() - started < SWEEP_MS);
  }

  /** Leases held here by `group` (fleet sync). */
  heldBy(group: string): number {
    return this.groups.get(group)?.leases.size ?? 0;
  }

  /** Leases the principal of (user, client) holds here (its share of maxLeases). */
  heldByPrincipal(user: string | null, client: string | null = null): number {
    return this.perPrincipal.get(principalOf(user, client)) ?? 0;
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

  private newGroup(key: string, limit: number, user: string | null, client: string | null): Group {
    const g = newGroup(key, limit, user, client);
    this.groups.set(key, g);
    return g;
  }

  private grant(g: Group, principal: string, ttlMs: number | undefined, connection: number, now: number): LeaseAnswer {
    const ttl = Math.min(ttlMs ?? this.options.defaultTtlMs, this.options.maxTtlMs);
    const id = leaseId();
    const lease: Lease = { id, group: g, principal, expiresAt: now + ttl, connection, inGroup: -1, inAll: -1 };
    this.leases.set(id, lease);
    g.leases.push(lease);
    this.all.push(lease);
    this.perPrincipal.set(principal, (this.perPrincipal.get(principal) ?? 0) + 1);
    let mine = this.byConnection.get(connection);
    if (mine === undefined) {
      mine = new Set();
      this.byConnection.set(connection, mine);
    }
    mine.add(lease);
    return { granted: true, leaseId: id, ttlMs: ttl };
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

  /** Ends the group's expired leases: work for the asker's own leases only. */
  private expireGroup(g: Group, now: number): void {
    for (let l = g.leases.peek(); l !== undefined && l.expiresAt <= now; l = g.leases.peek()) this.end(l);
  }

  /** Ends up to EXPIRE_STEP expired leases of any group, soonest first; returns how many. */
  private expireSome(now: number): number {
    let n = 0;
    for (let l = this.all.peek(); l !== undefined && l.expiresAt <= now && n < EXPIRE_STEP; l = this.all.peek(), n++) this.end(l);
    return n;
  }

  private end(lease: Lease): void {
    this.leases.delete(lease.id);
    const g = lease.group;
    g.leases.remove(lease);
    this.all.remove(lease);
    this.fleetChanged(g.key);
    if (g.leases.size === 0) this.groups.delete(g.key);
    const left = this.perPrincipal.get(lease.principal)! - 1;
    if (left === 0) this.perPrincipal.delete(lease.principal);
    else this.perPrincipal.set(lease.principal, left);
    const mine = this.byConnection.get(lease.connection);
    mine?.delete(lease);
    if (mine?.size === 0) this.byConnection.delete(lease.connection);
  }
}
