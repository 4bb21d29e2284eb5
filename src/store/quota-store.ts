import type { Entity } from '../quota/entity.js';
import type { QuotaKey, QuotaValue } from '../quota/quota-key.js';

/** One run-time quota value as persisted. */
export interface StoredQuota {
  entity: Entity;
  quota_key: QuotaKey;
  quota_value: QuotaValue;
}

/** One change: a value set, or (quota_value null) removed. */
export interface QuotaChange {
  entity: Entity;
  quota_key: QuotaKey;
  quota_value: QuotaValue | null;
}

/** One applied alteration, as written to the audit log. null means "not set". */
export interface AuditRecord {
  time: string;
  principal: string;
  /** The client_name the connection gave in Hello (the CLI sends "rivven-cli user@host"), or null. */
  client: string | null;
  entity: Entity;
  quota_key: QuotaKey;
  old: QuotaValue | null;
  new: QuotaValue | null;
}

/**
 * Where run-time quotas live. Contract, checked on every store by test/store-behaviour.test.ts:
 * - `load` returns what the applied changes add up to, or rejects naming what it could not read;
 * - `apply` resolves only once the changes and their audit records are durable; if it rejects, nothing of
 *   that change is visible, now or after a restart;
 * - changes are applied in the order `apply` is called; callers do not overlap calls.
 * Implementations: memory (tests, and servers run without a data dir), file (storage.data_dir).
 */
export interface QuotaStore {
  readonly description: string;
  load(): Promise<StoredQuota[]>;
  apply(changes: QuotaChange[], audit: AuditRecord[]): Promise<void>;
  /** Reopens log files (SIGHUP, after logrotate). */
  reopen(): Promise<void>;
  close(): Promise<void>;
}

/** The key a stored value is kept under: one entity and quota key. */
export const storedId = (entity: Entity, key: QuotaKey): string => JSON.stringify([entity, key]);

/** Applies changes to a map of stored values, in order. */
export function applyChanges(state: Map<string, StoredQuota>, changes: QuotaChange[]): void {
  for (const c of changes) {
    const id = storedId(c.entity, c.quota_key);
    if (c.quota_value === null) state.delete(id);
    else state.set(id, { entity: c.entity, quota_key: c.quota_key, quota_value: c.quota_value });
  }
}

export class MemoryQuotaStore implements QuotaStore {
  readonly description: string = 'memory (not durable)';
  protected readonly state = new Map<string, StoredQuota>();
  readonly audit: AuditRecord[] = [];

  async load(): Promise<StoredQuota[]> {
    return structuredClone([...this.state.values()]);
  }

  async apply(changes: QuotaChange[], audit: AuditRecord[]): Promise<void> {
    applyChanges(this.state, structuredClone(changes));
    this.audit.push(...audit);
  }

  async reopen(): Promise<void> {}

  async close(): Promise<void> {}
}
