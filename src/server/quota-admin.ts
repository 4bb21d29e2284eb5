import { RivvenError } from '../protocol/error-codes.js';
import type { Alteration } from '../protocol/messages/alter-quotas.js';
import type { ComponentFilter, QuotaEntry } from '../protocol/messages/describe-quotas.js';
import { entityToWire, parseEntity, type EntityRef } from '../quota/entity.js';
import { forEachSliced } from '../util/slices.js';
import { QUOTA_KEYS, quotaKeyIndex, type QuotaKeyIndex } from '../quota/quota-key.js';
import { fromLimit, toLimit, type QuotaTable } from '../quota/quota-table.js';
import type { AuditRecord, QuotaChange, QuotaStore } from '../store/quota-store.js';

/**
 * Reads and changes the configured quotas. Alterations are serialized: each is validated against the state
 * it applies to, made durable through the store, and only then applied in memory, so a failed write
 * changes nothing and concurrent AlterQuotas from several connections cannot interleave.
 */
export class QuotaAdmin {
  private chain: Promise<unknown> = Promise.resolve();
  alterationsApplied = 0;

  constructor(
    readonly table: QuotaTable,
    readonly store: QuotaStore,
    /** Configured entities at most (storage.max_entities). @default 100000 */
    readonly maxEntities = 100_000,
    private readonly wallClock: () => number = Date.now,
  ) {
    // Every durable change reaches the table this one way, whoever made it (this sidecar or, with a shared
    // store, another): the table bumps its generation and every cached resolution is redone.
    store.onChange((changes) => this.applyToTable(changes));
  }

  private applyToTable(changes: QuotaChange[]): void {
    for (const c of changes) {
      const key = quotaKeyIndex(c.quota_key);
      if (key === -1) continue;
      this.table.set(parseEntity(c.entity), key, c.quota_value === null ? undefined : toLimit(c.quota_value));
    }
  }

  /** Loads the store's values into the table. A bad stored entry stops the start, naming the store. */
  async load(): Promise<number> {
    const stored = await this.store.load();
    for (const [i, q] of stored.entries()) {
      const key = typeof q === 'object' && q !== null ? quotaKeyIndex(q.quota_key) : -1;
      let valid = key !== -1 && (q.quota_value === 'unlimited' || (Number.isSafeInteger(q.quota_value) && (q.quota_value as number) > 0));
      let ref: EntityRef | undefined;
      try {
        ref = valid ? parseEntity(q.entity) : undefined;
      } catch {
        valid = false;
      }
      if (!valid || ref === undefined) {
        throw new Error(`${this.store.description}: entry ${i} is not a valid quota: ${JSON.stringify(q)?.slice(0, 200)}`);
      }
      this.table.set(ref, key as QuotaKeyIndex, toLimit(q.quota_value));
    }
    return stored.length;
  }

  /**
   * Passes each configured entity that contains any of `filters` (all when none) to `add`, in slices so a
   * table of 100k entities never holds the event loop; `add` may throw to stop (REPLY_TOO_LARGE).
   */
  async describe(filters: ComponentFilter[], add: (entry: QuotaEntry) => void): Promise<void> {
    const match = filterMatcher(filters);
    await forEachSliced(this.table.entries(), ({ ref, limits }) => {
      if (match !== null && !match(ref)) return;
      const quotas: QuotaEntry['quotas'] = {};
      limits.forEach((limit, k) => {
        if (limit !== undefined) quotas[QUOTA_KEYS[k]!] = fromLimit(limit);
      });
      add({ entity: entityToWire(ref), quotas });
    });
  }

  alter(alterations: Alteration[], validateOnly: boolean, principal: string, client: string | null = null): Promise<number> {
    if (validateOnly) return Promise.resolve(alterations.length);
    const run = this.chain.then(() => this.apply(alterations, principal, client));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /**
   * Makes the alterations durable, then applies them. Removing a value that is not set is no change: it is
   * not counted, not stored and not audited. Returns the number of alterations that changed something.
   */
  private async apply(alterations: Alteration[], principal: string, client: string | null): Promise<number> {
    const time = new Date(this.wallClock()).toISOString();
    const effective = alterations.filter(({ ref, key, limit }) => limit !== undefined || this.table.get(ref, key) !== undefined);
    if (effective.length === 0) return 0;
    this.checkEntityLimit(effective);
    const changes: QuotaChange[] = [];
    const audit: AuditRecord[] = [];
    for (const { ref, key, limit } of effective) {
      const entity = entityToWire(ref);
      const quotaKey = QUOTA_KEYS[key];
      const old = this.table.get(ref, key);
      const value = limit === undefined ? null : fromLimit(limit);
      changes.push({ entity, quota_key: quotaKey, quota_value: value });
      audit.push({ time, principal, client, entity, quota_key: quotaKey, old: old === undefined ? null : fromLimit(old), new: value });
    }
    try {
      await this.store.apply(changes, audit);
    } catch (err) {
      throw new RivvenError('STORAGE_ERROR', `could not persist the alteration: ${(err as Error).message}`);
    }
    this.alterationsApplied += effective.length;
    return effective.length;
  }

  /**
   * Refuses a change that would leave more than maxEntities entities configured (checked before anything is
   * written; a request that removes some entities and adds others counts both).
   */
  private checkEntityLimit(alterations: Alteration[]): void {
    const after = new Map<string, { before: boolean; keys: Set<number> }>();
    for (const { ref, key, limit } of alterations) {
      const id = JSON.stringify(entityToWire(ref));
      let e = after.get(id);
      if (e === undefined) {
        const keys = new Set<number>();
        for (const [k, l] of (this.table.limits(ref) ?? []).entries()) if (l !== undefined) keys.add(k);
        e = { before: keys.size > 0, keys };
        after.set(id, e);
      }
      if (limit === undefined) e.keys.delete(key);
      else e.keys.add(key);
    }
    let delta = 0;
    for (const e of after.values()) delta += Number(e.keys.size > 0) - Number(e.before);
    if (delta > 0 && this.table.entityCount + delta > this.maxEntities) {
      throw new RivvenError(
        'TOO_MANY_ENTITIES',
        `${this.table.entityCount} entities are configured and storage.max_entities is ${this.maxEntities}; remove some or raise the limit`,
      );
    }
  }
}

/** Component filters as set lookups: O(1) per entity whatever the number of filters; null matches all. */
function filterMatcher(filters: ComponentFilter[]): ((ref: EntityRef) => boolean) | null {
  if (filters.length === 0) return null;
  const names = { user: new Set<string>(), 'client-id': new Set<string>(), 'consumer-group': new Set<string>() };
  let globalDefault = false;
  for (const f of filters) {
    if (f.type === 'default') globalDefault = true;
    else names[f.type].add(f.name);
  }
  return (ref) => {
    switch (ref.kind) {
      case 'default':
        return globalDefault;
      case 'user':
        return names.user.has(ref.user);
      case 'client-id':
        return names['client-id'].has(ref.client);
      case 'user+client-id':
        return names.user.has(ref.user) || names['client-id'].has(ref.client);
      case 'consumer-group':
        return names['consumer-group'].has(ref.group);
    }
  };
}
