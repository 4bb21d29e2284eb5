import type { Entity } from '../quota/entity.js';
import type { QuotaKey, QuotaValue } from '../quota/quota-key.js';

/** One run-time quota value as persisted. */
export interface StoredQuota {
  entity: Entity;
  quota_key: QuotaKey;
  quota_value: QuotaValue;
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
 * Where run-time quotas live. Contract: `save` resolves only once the snapshot and its audit records are
 * durable; if it rejects, nothing of that change may be visible after a restart. `load` returns what the last
 * successful `save` stored, or rejects naming what it could not read. Implementations: memory (tests, and
 * servers run without a data dir), file (storage.data_dir); a Redis store is planned behind the same interface.
 */
export interface QuotaStore {
  readonly description: string;
  load(): Promise<StoredQuota[]>;
  save(snapshot: StoredQuota[], audit: AuditRecord[]): Promise<void>;
  close(): Promise<void>;
}

export class MemoryQuotaStore implements QuotaStore {
  readonly description = 'memory (not durable)';
  snapshot: StoredQuota[] = [];
  readonly audit: AuditRecord[] = [];

  async load(): Promise<StoredQuota[]> {
    return structuredClone(this.snapshot);
  }

  async save(snapshot: StoredQuota[], audit: AuditRecord[]): Promise<void> {
    this.snapshot = structuredClone(snapshot);
    this.audit.push(...audit);
  }

  async close(): Promise<void> {}
}
