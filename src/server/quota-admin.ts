import { RivvenError } from '../protocol/error-codes.js';
import { type Alteration, canonicalValue } from '../protocol/messages/alter-quotas.js';
import type { ComponentFilter, QuotaEntry } from '../protocol/messages/describe-quotas.js';
import { entityToWire, parseEntity, type EntityRef } from '../quota/entity.js';
import { forEachSliced } from '../util/slices.js';
import { resourceKeyShape, type AlterKey, type AlterValue, type LimitKey, type ResourceKey, type Resources } from '../quota/quota-key.js';
import { parseLimit } from '../quota/quota-value.js';
import { QuotaValueError } from '../quota/rate-value.js';
import { fromLimit, isShadow, type QuotaTable } from '../quota/quota-table.js';
import type { AuditRecord, QuotaChange, QuotaStore, ResetAuditRecord, StoredQuota } from '../store/quota-store.js';
import { checkEntityLimit, checkResources, checkTiers } from './alter-checks.js';

/**
 * Admin writes (AlterQuotas, and ResetUsage's audit record) waiting for the store at most; past it the request is
 * OVERLOADED, so what waits in memory for audit.log is bounded.
 */
export const MAX_PENDING_WRITES = 256;

/**
 * Reads and changes the configured quotas. Alterations are serialized: each is validated against the state
 * it applies to, made durable through the store, and only then applied in memory, so a failed write
 * changes nothing and concurrent AlterQuotas from several connections cannot interleave.
 */
export class QuotaAdmin {
  private chain: Promise<unknown> = Promise.resolve();
  private pendingWrites = 0;
  alterationsApplied = 0;
  /** Admin writes refused because MAX_PENDING_WRITES were waiting (rivven_admin_writes_refused_total). */
  writesRefused = 0;

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
      // A resource this sidecar does not declare (a shared store, another sidecar's rivven.yaml): not ours to hold.
      if (!this.table.resources.isAlterKey(c.quota_key)) continue;
      const value = c.quota_value === null ? undefined : c.quota_value;
      this.table.setValue(parseEntity(c.entity), c.quota_key, value, c.shadow === true);
    }
  }

  /** Loads the store's values into the table. A bad stored entry stops the start, naming the store. */
  async load(): Promise<number> {
    const stored = await this.store.load();
    for (const [i, q] of stored.entries()) {
      // As applyToTable: in a shared store, another sidecar's resource is not ours to hold, nor to refuse to start
      // over (every sidecar without it would stop at its next restart, and could not delete it either).
      if (
        this.store.shared === true &&
        typeof q.quota_key === 'string' &&
        resourceKeyShape(q.quota_key) &&
        !this.table.resources.isAlterKey(q.quota_key)
      )
        continue;
      let valid: { ref: EntityRef; value: AlterValue } | undefined;
      try {
        valid = { value: storedValue(q, this.table.resources), ref: parseEntity(q.entity) };
      } catch (err) {
        const why = err instanceof QuotaValueError ? ` (${err.message})` : '';
        throw new Error(`${this.store.description}: entry ${i} is not a valid quota${why}: ${JSON.stringify(q)?.slice(0, 200)}`);
      }
      this.table.setValue(valid.ref, q.quota_key, valid.value, q.shadow === true);
    }
    return stored.length;
  }

  /**
   * Passes each configured entity that contains any of `filters` (all when none) to `add`, in slices so a
   * table of 100k entities never holds the event loop; `add` may throw to stop (REPLY_TOO_LARGE).
   */
  async describe(filters: ComponentFilter[], add: (entry: QuotaEntry) => void): Promise<void> {
    const match = filterMatcher(filters);
    await forEachSliced(this.table.entries(), ({ ref, config }) => {
      if (match !== null && !match(ref)) return;
      const quotas: QuotaEntry['quotas'] = {};
      const shadow: (LimitKey | ResourceKey)[] = [];
      const names = this.table.resources.limitKeys as readonly AlterKey[];
      config.limits.forEach((limit, k) => {
        if (limit === undefined) return;
        quotas[names[k]!] = fromLimit(limit);
        if (isShadow(config.shadow, k)) shadow.push(names[k] as LimitKey | ResourceKey);
      });
      if (config.tier !== undefined) quotas.tier = config.tier;
      if (config.blocked !== undefined) quotas.blocked = config.blocked;
      add(shadow.length > 0 ? { entity: entityToWire(ref), quotas, shadow } : { entity: entityToWire(ref), quotas });
    });
  }

  alter(alterations: Alteration[], validateOnly: boolean, principal: string, client: string | null = null): Promise<number> {
    return this.queued(() => this.apply(alterations, validateOnly, principal, client));
  }

  /**
   * Writes the audit record of a ResetUsage (who forgave the usage of which entities) before the reset is done:
   * if it cannot be made durable, the request fails with STORAGE_ERROR and nothing is forgiven.
   */
  auditReset(entities: [string, string | null][], principal: string, client: string | null): Promise<void> {
    const record: ResetAuditRecord = { time: new Date(this.wallClock()).toISOString(), principal, client, action: 'reset_usage', entities };
    return this.queued(() =>
      this.store.recordAudit([record]).catch((err: Error) => {
        throw new RivvenError('STORAGE_ERROR', `could not write the audit record of the reset: ${err.message}`);
      }),
    );
  }

  /** Runs `work` after every admin write before it, unless MAX_PENDING_WRITES already wait (OVERLOADED). */
  private queued<T>(work: () => Promise<T>): Promise<T> {
    if (this.pendingWrites >= MAX_PENDING_WRITES) {
      this.writesRefused++;
      return Promise.reject(new RivvenError('OVERLOADED', `${MAX_PENDING_WRITES} admin changes are waiting to be written; retry`));
    }
    this.pendingWrites++;
    const run = this.chain.then(work).finally(() => this.pendingWrites--);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /**
   * Checks the alterations against the configuration (tiers, the entity limit), then, unless validateOnly,
   * makes them durable and so applies them. Removing a value that is not set is no change: it is not counted,
   * not stored and not audited. Returns the number of alterations that changed (or would change) something.
   */
  private async apply(alterations: Alteration[], validateOnly: boolean, principal: string, client: string | null): Promise<number> {
    checkResources(this.table, alterations);
    checkTiers(this.table, alterations);
    const effective = alterations.filter(({ ref, key, value }) => value !== undefined || this.table.getValue(ref, key) !== undefined);
    // A dry run answers what the real request would: every check, nothing written.
    checkEntityLimit(this.table, this.maxEntities, effective);
    if (validateOnly) return effective.length;
    if (effective.length === 0) return 0;
    const time = new Date(this.wallClock()).toISOString();
    const changes: QuotaChange[] = [];
    const audit: AuditRecord[] = [];
    for (const a of effective) {
      const { ref, key, shadow } = a;
      const entity = entityToWire(ref);
      const old = this.table.getValue(ref, key);
      const wire = canonicalValue(a);
      changes.push(shadow ? { entity, quota_key: key, quota_value: wire, shadow: true } : { entity, quota_key: key, quota_value: wire });
      const record: AuditRecord = { time, principal, client, entity, quota_key: key, old: old ?? null, new: wire };
      audit.push(shadow ? { ...record, shadow: true } : record);
    }
    try {
      await this.store.apply(changes, audit);
    } catch (err) {
      throw new RivvenError('STORAGE_ERROR', `could not persist the alteration: ${(err as Error).message}`);
    }
    this.alterationsApplied += effective.length;
    return effective.length;
  }
}

/** A stored value checked as an alteration's is (the one validation of quota values); throws when it is not one. */
function storedValue(q: StoredQuota, resources: Resources): AlterValue {
  if (typeof q !== 'object' || q === null) throw new Error('not a quota');
  if (!resources.isAlterKey(q.quota_key)) {
    if (typeof q.quota_key === 'string' && resourceKeyShape(q.quota_key)) {
      throw new QuotaValueError(q.quota_key, 'no such resource in quotas.resources; declare it, or remove the stored value');
    }
    throw new Error('not a quota');
  }
  const v = q.quota_value;
  if (q.quota_key === 'tier' || q.quota_key === 'blocked') {
    if (typeof v === 'string' && v.length > 0) return v;
    throw new Error('not a name');
  }
  return fromLimit(parseLimit(q.quota_key, v));
}

/** Component filters as set lookups: O(1) per entity whatever the number of filters; null matches all. */
function filterMatcher(filters: ComponentFilter[]): ((ref: EntityRef) => boolean) | null {
  if (filters.length === 0) return null;
  const names = { user: new Set<string>(), 'client-id': new Set<string>(), 'consumer-group': new Set<string>(), tier: new Set<string>() };
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
      case 'tier':
        return names.tier.has(ref.tier);
    }
  };
}
