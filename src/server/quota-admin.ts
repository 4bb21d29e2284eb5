import { RivvenError } from '../protocol/error-codes.js';
import type { Alteration } from '../protocol/messages/alter-quotas.js';
import type { ComponentFilter } from '../protocol/messages/describe-quotas.js';
import { entityContains, entityToWire, parseEntity, type Entity } from '../quota/entity.js';
import { QUOTA_KEYS, quotaKeyIndex, type QuotaKey, type QuotaKeyIndex, type QuotaValue } from '../quota/quota-key.js';
import { fromLimit, toLimit, type QuotaTable } from '../quota/quota-table.js';
import type { AuditRecord, QuotaStore, StoredQuota } from '../store/quota-store.js';

export interface QuotaEntry {
  entity: Entity;
  quotas: Partial<Record<QuotaKey, QuotaValue>>;
}

/**
 * Reads and changes the configured quotas. Alterations are serialized: each is validated against the state
 * it applies to, made durable through the store, and only then applied in memory, so a failed write
 * changes nothing and concurrent AlterQuotas from several connections cannot interleave.
 */
export class QuotaAdmin {
  /** Run-time values only (what the store holds), keyed by entity and key, in insertion order. */
  private readonly runtime = new Map<string, StoredQuota>();
  private chain: Promise<unknown> = Promise.resolve();
  alterationsApplied = 0;

  constructor(
    readonly table: QuotaTable,
    readonly store: QuotaStore,
  ) {}

  /** Loads the store's values into the table. A bad stored entry stops the start, naming the store. */
  async load(): Promise<number> {
    const stored = await this.store.load();
    for (const [i, q] of stored.entries()) {
      const key = quotaKeyIndex(q.quota_key);
      let valid = key !== -1 && (q.quota_value === 'unlimited' || (Number.isSafeInteger(q.quota_value) && q.quota_value > 0));
      let ref;
      try {
        ref = parseEntity(q.entity);
      } catch {
        valid = false;
      }
      if (!valid || ref === undefined) {
        throw new Error(`${this.store.description}: entry ${i} is not a valid quota: ${JSON.stringify(q)}`);
      }
      const entity = entityToWire(ref);
      this.table.set(ref, key as QuotaKeyIndex, toLimit(q.quota_value));
      this.runtime.set(idOf(entity, q.quota_key), { entity, quota_key: q.quota_key, quota_value: q.quota_value });
    }
    return stored.length;
  }

  describe(filters: ComponentFilter[]): QuotaEntry[] {
    const out: QuotaEntry[] = [];
    for (const { ref, limits } of this.table.entries()) {
      if (filters.length > 0 && !filters.some((f) => entityContains(ref, f.type, f.name))) continue;
      const quotas: QuotaEntry['quotas'] = {};
      limits.forEach((limit, k) => {
        if (limit !== undefined) quotas[QUOTA_KEYS[k]!] = fromLimit(limit);
      });
      out.push({ entity: entityToWire(ref), quotas });
    }
    return out;
  }

  alter(alterations: Alteration[], validateOnly: boolean, principal: string, client: string | null = null): Promise<number> {
    if (validateOnly) return Promise.resolve(alterations.length);
    const run = this.chain.then(() => this.apply(alterations, principal, client));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async apply(alterations: Alteration[], principal: string, client: string | null): Promise<number> {
    const time = new Date().toISOString();
    const next = new Map(this.runtime);
    const audit: AuditRecord[] = alterations.map(({ ref, key, limit }) => {
      const entity = entityToWire(ref);
      const quotaKey = QUOTA_KEYS[key];
      const id = idOf(entity, quotaKey);
      const old = this.table.get(ref, key);
      if (limit === undefined) next.delete(id);
      else next.set(id, { entity, quota_key: quotaKey, quota_value: fromLimit(limit) });
      return {
        time,
        principal,
        client,
        entity,
        quota_key: quotaKey,
        old: old === undefined ? null : fromLimit(old),
        new: limit === undefined ? null : fromLimit(limit),
      };
    });
    try {
      await this.store.save([...next.values()], audit);
    } catch (err) {
      throw new RivvenError('STORAGE_ERROR', `could not persist the alteration: ${(err as Error).message}`);
    }
    this.runtime.clear();
    for (const [id, q] of next) this.runtime.set(id, q);
    for (const { ref, key, limit } of alterations) this.table.set(ref, key, limit);
    this.alterationsApplied += alterations.length;
    return alterations.length;
  }
}

const idOf = (entity: Entity, key: QuotaKey): string => JSON.stringify([entity, key]);
