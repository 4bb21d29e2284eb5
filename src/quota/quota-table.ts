// The QuotaTable: the 9-level resolution (levels, Kafka order, tiers, blocks) over the stored configurations
// (entity-configs.ts); value forms are in limits.ts and resolution types in resolution.ts, re-exported here.
import { DEFAULT_NAME, describeEntity, type EntityRef } from './entity.js';
import { EntityConfigs } from './entity-configs.js';
import { asNumber, type EntityConfig, isShadow, type Limit } from './limits.js';
import { BURST_OFFSET, burstIndexOf, CONSUME, NO_RESOURCES, type LimitKeyIndex, type QuotaValue, type Resources } from './quota-key.js';
import type { RateList } from './rate-value.js';
import { type Level, type Resolution, type ResolutionOrder, setLimit } from './resolution.js';

export { type ConfiguredEntity, EntityConfigs } from './entity-configs.js';
export { type EntityConfig, fromLimit, isShadow, type Limit, type Limits, perSecond, toLimit, withShadow } from './limits.js';
export { emptyResolution, type Level, type Resolution, type ResolutionOrder } from './resolution.js';

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
export class QuotaTable extends EntityConfigs {
  constructor(
    bootDefaults: Partial<Record<string, QuotaValue | RateList>> = {},
    readonly order: ResolutionOrder = 'rivven',
    bootTiers: Record<string, Partial<Record<string, QuotaValue | RateList>>> = {},
    /** The named resources (quotas.resources): their keys index limits after the built-in ones. */
    resources: Resources = NO_RESOURCES,
  ) {
    super(bootDefaults, bootTiers, resources);
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
}
