import { DEFAULT_NAME, type EntityRef } from './entity.js';
import { CONSUME, QUOTA_KEYS, type QuotaKeyIndex, type QuotaValue } from './quota-key.js';

/** Per-key limits of one entity, indexed like QUOTA_KEYS; undefined = not set here, Infinity = "unlimited". */
export type Limits = (number | undefined)[];

const emptyLimits = (): Limits => QUOTA_KEYS.map(() => undefined);
const isEmpty = (l: Limits): boolean => l.every((v) => v === undefined);

export const toLimit = (v: QuotaValue): number => (v === 'unlimited' ? Infinity : v);
export const fromLimit = (n: number): QuotaValue => (n === Infinity ? 'unlimited' : n);

/** Which precedence the levels follow: ours (the default) or Kafka's, for fleets migrating from Kafka. */
export type ResolutionOrder = 'rivven' | 'kafka';

/** The resolution levels (docs/algorithm.md); which one matched decides who shares the bucket. */
export type Level = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;

/** Where a (quota key, user, client-id) call lands: the limit, and the identity of its bucket. */
export interface Resolution {
  level: Level;
  limit: number;
  bucketUser: string | null;
  bucketClient: string | null;
}

export interface ConfiguredEntity {
  ref: EntityRef;
  limits: Limits;
}

/**
 * The configured quotas: boot defaults from rivven.yaml plus run-time values, and the 9-level resolution.
 * Every change bumps `generation`, which lets callers cache resolutions until the next change.
 */
export class QuotaTable {
  generation = 0;
  private readonly bootDefaults: Limits;
  private readonly globalDefault: Limits = emptyLimits();
  private readonly users = new Map<string, Limits>();
  private readonly clients = new Map<string, Limits>();
  private readonly userClients = new Map<string, Map<string, Limits>>();
  private readonly groups = new Map<string, Limits>();
  private userClientCount = 0;

  constructor(
    bootDefaults: Partial<Record<(typeof QUOTA_KEYS)[number], QuotaValue>> = {},
    readonly order: ResolutionOrder = 'rivven',
  ) {
    this.bootDefaults = QUOTA_KEYS.map((k) => {
      const v = bootDefaults[k];
      return v === undefined ? undefined : toLimit(v);
    }) as Limits;
  }

  /** The run-time value set on exactly this entity (not resolved). */
  get(ref: EntityRef, key: QuotaKeyIndex): number | undefined {
    return this.limitsOf(ref, false)?.[key];
  }

  /** True when the entity has any run-time value (the global default always exists). */
  has(ref: EntityRef): boolean {
    return this.limitsOf(ref, false) !== undefined;
  }

  /** The entity's run-time values (not resolved), or undefined when it has none. */
  limits(ref: EntityRef): Readonly<Limits> | undefined {
    return ref.kind === 'default' ? this.globalDefault : this.limitsOf(ref, false);
  }

  /** Configured entities, the global default not counted. */
  get entityCount(): number {
    return this.users.size + this.clients.size + this.groups.size + this.userClientCount;
  }

  /** Sets (or with undefined removes) one run-time value. */
  set(ref: EntityRef, key: QuotaKeyIndex, limit: number | undefined): void {
    const before = ref.kind === 'user+client-id' && this.has(ref);
    const limits = this.limitsOf(ref, true)!;
    if (ref.kind === 'user+client-id' && !before) this.userClientCount++;
    limits[key] = limit;
    if (limit === undefined && isEmpty(limits)) {
      if (ref.kind === 'user+client-id') this.userClientCount--;
      this.drop(ref);
    }
    this.generation++;
  }

  /** The global default as it applies: run-time value, else rivven.yaml, else unlimited. */
  effectiveDefault(key: QuotaKeyIndex): number {
    return this.globalDefault[key] ?? this.bootDefaults[key] ?? Infinity;
  }

  /**
   * The first level that sets `key` for (user, client-id), into `out`. The `rivven` order (docs/algorithm.md)
   * ranks a specific client-id (level 5) above the <default> user levels 6 and 7; the `kafka` order ranks it
   * below them, as Kafka does: 1, 2, 3, 4, 6, 7, 5, 8, 9.
   */
  resolve(key: QuotaKeyIndex, user: string | null, client: string | null, out: Resolution): Resolution {
    const byUser = user !== null ? this.userClients.get(user) : undefined;
    const defaultUser = user !== null ? this.userClients.get(DEFAULT_NAME) : undefined;
    const own = client !== null ? this.clients.get(client)?.[key] : undefined;
    if (client !== null) {
      const l1 = byUser?.get(client)?.[key];
      if (l1 !== undefined) return found(out, 1, l1, user, client);
      const l2 = byUser?.get(DEFAULT_NAME)?.[key];
      if (l2 !== undefined) return found(out, 2, l2, user, client);
    }
    const l3 = user !== null ? this.users.get(user)?.[key] : undefined;
    if (l3 !== undefined) return found(out, 3, l3, user, null);
    if (client !== null) {
      const l4 = defaultUser?.get(client)?.[key];
      if (l4 !== undefined) return found(out, 4, l4, user, client);
      if (this.order === 'rivven' && own !== undefined) return found(out, 5, own, null, client);
      const l6 = defaultUser?.get(DEFAULT_NAME)?.[key];
      if (l6 !== undefined) return found(out, 6, l6, user, client);
    }
    const l7 = user !== null ? this.users.get(DEFAULT_NAME)?.[key] : undefined;
    if (l7 !== undefined) return found(out, 7, l7, user, null);
    if (client !== null) {
      if (this.order === 'kafka' && own !== undefined) return found(out, 5, own, null, client);
      const l8 = this.clients.get(DEFAULT_NAME)?.[key];
      if (l8 !== undefined) return found(out, 8, l8, null, client);
    }
    return found(out, 9, this.effectiveDefault(key), user, client);
  }

  /** A consumer group's consume_bytes_rate: its own, else the group default; the global default never applies. */
  resolveGroup(group: string): number | undefined {
    return this.groups.get(group)?.[CONSUME] ?? this.groups.get(DEFAULT_NAME)?.[CONSUME];
  }

  /** Every configured entity, lazily; the global default first, always, with its effective values. */
  *entries(): Generator<ConfiguredEntity> {
    yield { ref: { kind: 'default' }, limits: QUOTA_KEYS.map((_, k) => this.effectiveDefault(k as QuotaKeyIndex)) };
    for (const [user, limits] of this.users) yield { ref: { kind: 'user', user }, limits };
    for (const [client, limits] of this.clients) yield { ref: { kind: 'client-id', client }, limits };
    for (const [user, byClient] of this.userClients) {
      for (const [client, limits] of byClient) yield { ref: { kind: 'user+client-id', user, client }, limits };
    }
    for (const [group, limits] of this.groups) yield { ref: { kind: 'consumer-group', group }, limits };
  }

  private limitsOf(ref: EntityRef, create: boolean): Limits | undefined {
    switch (ref.kind) {
      case 'default':
        return this.globalDefault;
      case 'user':
        return lookup(this.users, ref.user, create);
      case 'client-id':
        return lookup(this.clients, ref.client, create);
      case 'consumer-group':
        return lookup(this.groups, ref.group, create);
      case 'user+client-id': {
        let byClient = this.userClients.get(ref.user);
        if (byClient === undefined) {
          if (!create) return undefined;
          byClient = new Map();
          this.userClients.set(ref.user, byClient);
        }
        return lookup(byClient, ref.client, create);
      }
    }
  }

  private drop(ref: EntityRef): void {
    switch (ref.kind) {
      case 'default':
        return;
      case 'user':
        this.users.delete(ref.user);
        return;
      case 'client-id':
        this.clients.delete(ref.client);
        return;
      case 'consumer-group':
        this.groups.delete(ref.group);
        return;
      case 'user+client-id': {
        const byClient = this.userClients.get(ref.user);
        byClient?.delete(ref.client);
        if (byClient?.size === 0) this.userClients.delete(ref.user);
      }
    }
  }
}

function lookup(map: Map<string, Limits>, name: string, create: boolean): Limits | undefined {
  let limits = map.get(name);
  if (limits === undefined && create) {
    limits = emptyLimits();
    map.set(name, limits);
  }
  return limits;
}

function found(out: Resolution, level: Level, limit: number, user: string | null, client: string | null): Resolution {
  out.level = level;
  out.limit = limit;
  out.bucketUser = user;
  out.bucketClient = client;
  return out;
}
