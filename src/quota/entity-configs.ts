// The table's storage: every entity's configuration by kind, the tier member index and the generation bumped
// on each change; apart from the level walk (quota-table.ts), which reads it and is all the Record path calls.
import { entityKey, type EntityRef } from './entity.js';
import {
  BURST_OFFSET,
  NO_RESOURCES,
  type AlterKey,
  type AlterValue,
  type LimitKeyIndex,
  type QuotaValue,
  type Resources,
} from './quota-key.js';
import { type EntityConfig, fromLimit, type Limit, type Limits, toLimit, withShadow } from './limits.js';
import type { RateList } from './rate-value.js';

const NO_MEMBERS: ReadonlyMap<string, EntityRef> = new Map();

const isEmpty = (c: EntityConfig): boolean => c.limits.every((v) => v === undefined) && c.tier === undefined && c.blocked === undefined;

export interface ConfiguredEntity {
  ref: EntityRef;
  config: EntityConfig;
}

/**
 * The configured values: boot defaults and tiers from rivven.yaml plus run-time values, by entity. Every change
 * bumps `generation`, which lets callers cache resolutions until the next change. QuotaTable adds the resolution.
 */
export class EntityConfigs {
  generation = 0;
  protected readonly bootDefaults: Limits;
  protected readonly bootTiers: Map<string, Limits>;
  protected readonly globalDefault: EntityConfig;
  protected readonly users = new Map<string, EntityConfig>();
  protected readonly clients = new Map<string, EntityConfig>();
  protected readonly userClients = new Map<string, Map<string, EntityConfig>>();
  protected readonly groups = new Map<string, EntityConfig>();
  protected readonly tiers = new Map<string, EntityConfig>();
  /** tier -> the entities assigned to it, by entityKey (tierMembers). */
  private readonly members = new Map<string, Map<string, EntityRef>>();
  private userClientCount = 0;

  constructor(
    bootDefaults: Partial<Record<string, QuotaValue | RateList>> = {},
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
