import { DEFAULT_NAME, describeEntity, entityKey, type EntityRef } from './entity.js';
import {
  BURST_OFFSET,
  burstIndexOf,
  CONSUME,
  NO_RESOURCES,
  type AlterKey,
  type AlterValue,
  type LimitKeyIndex,
  type QuotaValue,
  type Resources,
} from './quota-key.js';
import { canonicalRate, PERIOD_SECONDS, parseRateValue, type Rate, type RateList } from './rate-value.js';

/**
 * One key's value as the table holds it: a number for a single per-second rate (Kafka's form, and every burst
 * and count; Infinity = "unlimited"), else the key's rates, shortest period first (docs/algorithm.md, section 7).
 * A single per-second rate is never held as a list, so the common case stays a number on the hot path.
 */
export type Limit = number | RateList;

/** The values of one entity, indexed like LIMIT_KEYS; undefined = not set here. */
export type Limits = (Limit | undefined)[];

/** Everything configured on one entity. */
export interface EntityConfig {
  limits: Limits;
  /**
   * Bit k set: limits[k] is a shadow value (measured and counted, never enforced). Up to 39 keys (16 resources),
   * so it is read and written with isShadow/withShadow (exact integers up to 2^53), not 32-bit operators.
   */
  shadow: number;
  /** The tier whose values apply where this entity sets none (user and client-id entities). */
  tier: string | undefined;
  /** Why every record call of this principal is denied; undefined when it is not blocked. */
  blocked: string | undefined;
}

const NO_MEMBERS: ReadonlyMap<string, EntityRef> = new Map();

/** Whether bit k of a shadow mask is set. */
export const isShadow = (mask: number, k: LimitKeyIndex): boolean => Math.floor(mask / 2 ** k) % 2 === 1;
/** The mask with bit k set or cleared. */
export const withShadow = (mask: number, k: LimitKeyIndex, on: boolean): number =>
  isShadow(mask, k) === on ? mask : on ? mask + 2 ** k : mask - 2 ** k;

const isEmpty = (c: EntityConfig): boolean => c.limits.every((v) => v === undefined) && c.tier === undefined && c.blocked === undefined;

const isRateList = (v: unknown): v is RateList => Array.isArray(v) && v.every((r) => typeof r === 'object' && r !== null);

/**
 * A value as the table holds it, from a number, "unlimited", a RateList or any form parseRateValue accepts
 * (the canonical form read back from a store included). Values are validated before they get here; a list of
 * one per-second rate becomes a plain number.
 */
export function toLimit(key: string, v: QuotaValue | RateList): Limit {
  if (typeof v === 'number') return v;
  if (v === 'unlimited') return Infinity;
  const list = isRateList(v) ? v : parseRateValue(key, v);
  if (list === null) return Infinity;
  if (list.length === 1 && list[0]!.unit === 's') return list[0]!.amount;
  return Object.freeze(list.map((r) => Object.freeze({ amount: r.amount, unit: r.unit })));
}

/** The wire (canonical) form of a held value. */
export const fromLimit = (l: Limit): QuotaValue => (typeof l !== 'number' ? canonicalRate(l) : l === Infinity ? 'unlimited' : l);

/** Units per second of one rate: the drain of its bucket. */
export const perSecond = (r: Rate): number => r.amount / PERIOD_SECONDS[r.unit];

/** A burst or count held as a list (not a form validation lets through) counts as its first amount. */
const asNumber = (l: Limit): number => (typeof l === 'number' ? l : l[0]!.amount);

/** Which precedence the levels follow: ours (the default) or Kafka's, for fleets migrating from Kafka. */
export type ResolutionOrder = 'rivven' | 'kafka';

/** The resolution levels (docs/algorithm.md); which one matched decides who shares the bucket. */
export type Level = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;

/** Where a (quota key, user, client-id) call lands: the limit, its burst, and the identity of its bucket. */
export interface Resolution {
  level: Level;
  /** The limit per second: the rate of a one-rate per-second key, else the drain of the key's shortest bucket. */
  limit: number;
  /** The key's rates when it is anything but one per-second rate (a bucket each); undefined otherwise. */
  rates?: RateList | undefined;
  /** The bucket's capacity in units when a burst key sets it; undefined: quota x window. */
  burst: number | undefined;
  /** The limit is a shadow value: measure and count, answer Ok. */
  shadow: boolean;
  bucketUser: string | null;
  bucketClient: string | null;
}

/** A Resolution to fill (each resolver keeps one and reuses it: no object per call). */
export const emptyResolution = (): Resolution => ({
  level: 9,
  limit: Infinity,
  rates: undefined,
  burst: undefined,
  shadow: false,
  bucketUser: null,
  bucketClient: null,
});

export interface ConfiguredEntity {
  ref: EntityRef;
  config: EntityConfig;
}

/** A level's entity: its configuration (if any), and who shares the bucket when it decides. */
type Visit = (
  level: Level,
  config: EntityConfig | undefined,
  ref: () => EntityRef,
  bucketUser: string | null,
  bucketClient: string | null,
) => boolean;

/**
 * The configured quotas: boot defaults and tiers from rivven.yaml plus run-time values, and the 9-level
 * resolution (docs/algorithm.md, section 1). At each level an entity's own value for a key beats its tier's.
 * Every change bumps `generation`, which lets callers cache resolutions until the next change.
 */
export class QuotaTable {
  generation = 0;
  private readonly bootDefaults: Limits;
  private readonly bootTiers: Map<string, Limits>;
  private readonly globalDefault: EntityConfig;
  private readonly users = new Map<string, EntityConfig>();
  private readonly clients = new Map<string, EntityConfig>();
  private readonly userClients = new Map<string, Map<string, EntityConfig>>();
  private readonly groups = new Map<string, EntityConfig>();
  private readonly tiers = new Map<string, EntityConfig>();
  /** tier -> the entities assigned to it, by entityKey (tierMembers). */
  private readonly members = new Map<string, Map<string, EntityRef>>();
  private userClientCount = 0;

  constructor(
    bootDefaults: Partial<Record<string, QuotaValue | RateList>> = {},
    readonly order: ResolutionOrder = 'rivven',
    bootTiers: Record<string, Partial<Record<string, QuotaValue | RateList>>> = {},
    /** The named resources (quotas.resources): their keys index limits after the built-in ones. */
    readonly resources: Resources = NO_RESOURCES,
  ) {
    this.globalDefault = this.emptyConfig();
    this.bootDefaults = this.toLimits(bootDefaults);
    this.bootTiers = new Map(Object.entries(bootTiers).map(([name, values]) => [name, this.toLimits(values)]));
  }

  /** The run-time value set on exactly this entity (not resolved). */
  get(ref: EntityRef, key: LimitKeyIndex): Limit | undefined {
    return this.configOf(ref, false)?.limits[key];
  }

  /** The run-time value of any key on exactly this entity, as the wire carries it. */
  getValue(ref: EntityRef, key: AlterKey): AlterValue | undefined {
    const c = this.configOf(ref, false);
    if (c === undefined) return undefined;
    if (key === 'tier') return c.tier;
    if (key === 'blocked') return c.blocked;
    const v = c.limits[this.resources.limitIndex(key)];
    return v === undefined ? undefined : fromLimit(v);
  }

  /** True when the entity has any run-time value (the global default always exists). */
  has(ref: EntityRef): boolean {
    return this.configOf(ref, false) !== undefined;
  }

  /** The entity's run-time configuration, or undefined when it has none. */
  config(ref: EntityRef): Readonly<EntityConfig> | undefined {
    return this.configOf(ref, false);
  }

  /** True when the tier exists: it has run-time values or rivven.yaml defines it. */
  hasTier(name: string): boolean {
    return this.tiers.has(name) || this.bootTiers.has(name);
  }

  /** True when rivven.yaml defines the tier (it exists whatever its run-time values). */
  hasBootTier(name: string): boolean {
    return this.bootTiers.has(name);
  }

  /**
   * The entities assigned to a tier, by entityKey (to refuse deleting a tier in use): an index kept on every
   * change, so the check costs what the tier's own members cost, not a scan of every configured entity.
   */
  tierMembers(name: string): ReadonlyMap<string, EntityRef> {
    return this.members.get(name) ?? NO_MEMBERS;
  }

  /** Configured entities, the global default not counted. */
  get entityCount(): number {
    return this.users.size + this.clients.size + this.groups.size + this.tiers.size + this.userClientCount;
  }

  /** Sets (or with undefined removes) one run-time value of a limit key. */
  set(ref: EntityRef, key: LimitKeyIndex, limit: Limit | undefined, shadow = false): void {
    this.change(ref, (c) => {
      c.limits[key] = limit;
      c.shadow = withShadow(c.shadow, key, shadow && limit !== undefined);
    });
  }

  /** Sets (or with undefined removes) one run-time value of any key. */
  setValue(ref: EntityRef, key: AlterKey, value: AlterValue | RateList | undefined, shadow = false): void {
    if (key === 'tier' || key === 'blocked') {
      this.change(ref, (c) => {
        c[key] = value as string | undefined;
      });
      return;
    }
    this.set(ref, this.resources.limitIndex(key), value === undefined ? undefined : toLimit(key, value), shadow);
  }

  /** The global default of a rate as it applies: run-time value, else rivven.yaml, else unlimited. */
  effectiveDefault(key: LimitKeyIndex): Limit {
    return this.globalDefault.limits[key] ?? this.bootDefaults[key] ?? Infinity;
  }

  /**
   * The first level that sets `key` for (user, client-id), into `out`, with the burst that applies and whether
   * the value is a shadow one. The `rivven` order (docs/algorithm.md) ranks a specific client-id (level 5) above
   * the <default> user levels 6 and 7; the `kafka` order ranks it below them, as Kafka does.
   */
  resolve(key: LimitKeyIndex, user: string | null, client: string | null, out: Resolution): Resolution {
    out.level = 9;
    setLimit(out, this.effectiveDefault(key));
    out.shadow = isShadow(this.globalDefault.shadow, key) && this.globalDefault.limits[key] !== undefined;
    out.bucketUser = user;
    out.bucketClient = client;
    this.walk(user, client, (level, config, _, bu, bc) => {
      const v = this.valueAt(config, key);
      if (v === undefined) return false;
      out.level = level;
      setLimit(out, v.value);
      out.shadow = v.shadow;
      out.bucketUser = bu;
      out.bucketClient = bc;
      return true;
    });
    const b = burstIndexOf(key);
    out.burst = b >= 0 ? this.burstFor(b, user, client) : undefined;
    return out;
  }

  /** A consumer group's consume_bytes_rate: its own, else the group default; the global default never applies. */
  resolveGroup(group: string, out: Resolution): Resolution {
    const own = this.groups.get(group);
    const fallback = this.groups.get(DEFAULT_NAME);
    const c = own?.limits[CONSUME] !== undefined ? own : fallback;
    out.level = 9;
    setLimit(out, c?.limits[CONSUME] ?? Infinity);
    out.shadow = c !== undefined && isShadow(c.shadow, CONSUME);
    const burst = own?.limits[CONSUME + BURST_OFFSET] ?? fallback?.limits[CONSUME + BURST_OFFSET];
    out.burst = burst === undefined ? undefined : asNumber(burst);
    out.bucketUser = group;
    out.bucketClient = null;
    return out;
  }

  /** The entity and reason of the first level that blocks (user, client-id), or undefined. */
  blockedFor(user: string | null, client: string | null): { entity: string; reason: string } | undefined {
    let found: { entity: string; reason: string } | undefined;
    this.walk(user, client, (_level, config, ref) => {
      if (config?.blocked === undefined) return false;
      found = { entity: describeEntity(ref()), reason: config.blocked };
      return true;
    });
    return found;
  }

  /** Every configured entity, lazily; the global default first, always, with its effective rates. */
  *entries(): Generator<ConfiguredEntity> {
    const g = this.globalDefault;
    yield {
      ref: { kind: 'default' },
      config: { ...g, limits: g.limits.map((l, k) => (k < BURST_OFFSET ? this.effectiveDefault(k) : l)) },
    };
    for (const [user, config] of this.users) yield { ref: { kind: 'user', user }, config };
    for (const [client, config] of this.clients) yield { ref: { kind: 'client-id', client }, config };
    for (const [user, byClient] of this.userClients) {
      for (const [client, config] of byClient) yield { ref: { kind: 'user+client-id', user, client }, config };
    }
    for (const [group, config] of this.groups) yield { ref: { kind: 'consumer-group', group }, config };
    for (const [tier, config] of this.tiers) yield { ref: { kind: 'tier', tier }, config };
  }

  /** Levels 1 to 8 in this table's order, each with its entity; `visit` returns true to stop. */
  private walk(user: string | null, client: string | null, visit: Visit): void {
    const byUser = user !== null ? this.userClients.get(user) : undefined;
    const defaultUser = user !== null ? this.userClients.get(DEFAULT_NAME) : undefined;
    const own = client !== null ? this.clients.get(client) : undefined;
    const uc = (u: string, c: string) => (): EntityRef => ({ kind: 'user+client-id', user: u, client: c });
    if (client !== null && user !== null) {
      if (visit(1, byUser?.get(client), uc(user, client), user, client)) return;
      if (visit(2, byUser?.get(DEFAULT_NAME), uc(user, DEFAULT_NAME), user, client)) return;
    }
    if (user !== null && visit(3, this.users.get(user), () => ({ kind: 'user', user }), user, null)) return;
    if (client !== null) {
      if (user !== null && visit(4, defaultUser?.get(client), uc(DEFAULT_NAME, client), user, client)) return;
      if (this.order === 'rivven' && visit(5, own, () => ({ kind: 'client-id', client }), null, client)) return;
      if (user !== null && visit(6, defaultUser?.get(DEFAULT_NAME), uc(DEFAULT_NAME, DEFAULT_NAME), user, client)) return;
    }
    if (user !== null && visit(7, this.users.get(DEFAULT_NAME), () => ({ kind: 'user', user: DEFAULT_NAME }), user, null)) return;
    if (client !== null) {
      if (this.order === 'kafka' && visit(5, own, () => ({ kind: 'client-id', client }), null, client)) return;
      visit(8, this.clients.get(DEFAULT_NAME), () => ({ kind: 'client-id', client: DEFAULT_NAME }), null, client);
    }
  }

  /** An entity's value for a key: its own, else its tier's (run-time, else rivven.yaml). */
  private valueAt(config: EntityConfig | undefined, key: LimitKeyIndex): { value: Limit; shadow: boolean } | undefined {
    if (config === undefined) return undefined;
    const own = config.limits[key];
    if (own !== undefined) return { value: own, shadow: isShadow(config.shadow, key) };
    if (config.tier === undefined) return undefined;
    const tier = this.tiers.get(config.tier);
    const fromTier = tier?.limits[key];
    if (fromTier !== undefined) return { value: fromTier, shadow: isShadow(tier!.shadow, key) };
    const boot = this.bootTiers.get(config.tier)?.[key];
    return boot === undefined ? undefined : { value: boot, shadow: false };
  }

  /** A rate's burst (limit index b), resolved like the rate itself: the first level that sets it, else the global default's. */
  private burstFor(b: LimitKeyIndex, user: string | null, client: string | null): number | undefined {
    let burst: Limit | undefined;
    this.walk(user, client, (_level, config) => {
      burst = this.valueAt(config, b)?.value;
      return burst !== undefined;
    });
    burst ??= this.globalDefault.limits[b] ?? this.bootDefaults[b];
    return burst === undefined ? undefined : asNumber(burst);
  }

  private change(ref: EntityRef, edit: (c: EntityConfig) => void): void {
    const existed = this.has(ref);
    const config = this.configOf(ref, true)!;
    if (ref.kind === 'user+client-id' && !existed) this.userClientCount++;
    const tierBefore = config.tier;
    edit(config);
    if (config.tier !== tierBefore) this.moveMember(ref, tierBefore, config.tier);
    if (ref.kind !== 'default' && isEmpty(config)) {
      if (ref.kind === 'user+client-id') this.userClientCount--;
      this.drop(ref);
    }
    this.generation++;
  }

  private moveMember(ref: EntityRef, from: string | undefined, to: string | undefined): void {
    const key = entityKey(ref);
    if (from !== undefined) {
      const m = this.members.get(from);
      m?.delete(key);
      if (m?.size === 0) this.members.delete(from);
    }
    if (to !== undefined) {
      let m = this.members.get(to);
      if (m === undefined) {
        m = new Map();
        this.members.set(to, m);
      }
      m.set(key, ref);
    }
  }

  private configOf(ref: EntityRef, create: boolean): EntityConfig | undefined {
    switch (ref.kind) {
      case 'default':
        return this.globalDefault;
      case 'user':
        return this.lookup(this.users, ref.user, create);
      case 'client-id':
        return this.lookup(this.clients, ref.client, create);
      case 'consumer-group':
        return this.lookup(this.groups, ref.group, create);
      case 'tier':
        return this.lookup(this.tiers, ref.tier, create);
      case 'user+client-id': {
        let byClient = this.userClients.get(ref.user);
        if (byClient === undefined) {
          if (!create) return undefined;
          byClient = new Map();
          this.userClients.set(ref.user, byClient);
        }
        return this.lookup(byClient, ref.client, create);
      }
    }
  }

  private emptyConfig(): EntityConfig {
    return { limits: this.resources.limitKeys.map(() => undefined), shadow: 0, tier: undefined, blocked: undefined };
  }

  private lookup(map: Map<string, EntityConfig>, name: string, create: boolean): EntityConfig | undefined {
    let config = map.get(name);
    if (config === undefined && create) {
      config = this.emptyConfig();
      map.set(name, config);
    }
    return config;
  }

  /** Boot values by key name (rivven.yaml), as held. */
  private toLimits(values: Partial<Record<string, QuotaValue | RateList>>): Limits {
    return this.resources.limitKeys.map((k) => {
      const v = values[k];
      return v === undefined ? undefined : toLimit(k, v);
    });
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
      case 'tier':
        this.tiers.delete(ref.tier);
        return;
      case 'user+client-id': {
        const byClient = this.userClients.get(ref.user);
        byClient?.delete(ref.client);
        if (byClient?.size === 0) this.userClients.delete(ref.user);
      }
    }
  }
}

/** Puts a held value into a resolution: a number as today, a list as its rates (limit: its shortest's drain). */
function setLimit(out: Resolution, l: Limit): void {
  if (typeof l === 'number') {
    out.limit = l;
    out.rates = undefined;
  } else {
    out.limit = perSecond(l[0]!);
    out.rates = l;
  }
}
