import { type Entity, valueKey } from '../quota/entity.js';
import type { AlterKey, AlterValue } from '../quota/quota-key.js';

/** One run-time value as persisted: a limit, a tier name, or a block reason. */
export interface StoredQuota {
  entity: Entity;
  quota_key: AlterKey;
  quota_value: AlterValue;
  /** A shadow limit: measured and counted, never enforced. */
  shadow?: true;
}

/** One change: a value set, or (quota_value null) removed. */
export interface QuotaChange {
  entity: Entity;
  quota_key: AlterKey;
  quota_value: AlterValue | null;
  shadow?: true;
}

/** One applied alteration, as written to the audit log. null means "not set". */
export interface AuditRecord {
  time: string;
  principal: string;
  /** The client_name the connection gave in Hello (the CLI sends "rivven-cli user@host"), or null. */
  client: string | null;
  entity: Entity;
  quota_key: AlterKey;
  old: AlterValue | null;
  new: AlterValue | null;
  /** The new value is a shadow one. */
  shadow?: true;
}

/**
 * An admin action that changes no configured value but forgives usage (ResetUsage), as written to the audit
 * log: who, from which client, and the entities whose buckets it cleared.
 */
export interface ResetAuditRecord {
  time: string;
  principal: string;
  client: string | null;
  action: 'reset_usage';
  entities: [string, string | null][];
}

/** Told of every change the store has made durable: this sidecar's own, and (shared stores) other sidecars'. */
export type ChangeListener = (changes: QuotaChange[]) => void;

/**
 * Where run-time quotas are kept. Contract, checked on every store by test/e2e/store-behaviour.test.ts:
 * - `load` returns what the applied changes add up to, or rejects naming what it could not read;
 * - `apply` resolves only once the changes and their audit records are durable; if it rejects, nothing of
 *   that change is visible, now or after a restart, and no listener hears of it;
 * - every listener hears of each durable change exactly once, in order, before `apply` resolves; a shared store
 *   also reports changes other sidecars made. Listeners are how changes reach the quota table, whoever made them;
 * - changes are applied in the order `apply` is called; callers do not overlap calls.
 * Implementations: memory (tests, and servers run without a data dir), file (storage.data_dir).
 */
export interface QuotaStore {
  readonly description: string;
  /**
   * Other sidecars write here too (Redis): a value of a resource this sidecar does not declare is theirs, skipped
   * at load as at run time, never a reason to refuse to start. Absent: a store of this sidecar alone.
   */
  readonly shared?: boolean;
  load(): Promise<StoredQuota[]>;
  apply(changes: QuotaChange[], audit: AuditRecord[]): Promise<void>;
  /** Appends audit records of actions that change no quota (ResetUsage); resolves once they are durable. */
  recordAudit(records: ResetAuditRecord[]): Promise<void>;
  /** Subscribes to durable changes; returns the unsubscribe function. */
  onChange(listener: ChangeListener): () => void;
  /** Reopens log files (SIGHUP, after logrotate). */
  reopen(): Promise<void>;
  close(): Promise<void>;
  /** Background reads of a shared store that failed (the next one retries); absent for local stores. */
  readonly syncFailures?: number;
}

/** Applies changes to a map of stored values, in order. */
export function applyChanges(state: Map<string, StoredQuota>, changes: QuotaChange[]): void {
  for (const c of changes) {
    const id = valueKey(c.entity, c.quota_key);
    if (c.quota_value === null) state.delete(id);
    else
      state.set(
        id,
        c.shadow
          ? { entity: c.entity, quota_key: c.quota_key, quota_value: c.quota_value, shadow: true }
          : { entity: c.entity, quota_key: c.quota_key, quota_value: c.quota_value },
      );
  }
}

/** The listeners of one store, each told in turn; a throwing listener cannot stop the others. */
export class ChangeListeners {
  private readonly listeners = new Set<ChangeListener>();

  add(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(changes: QuotaChange[]): void {
    for (const l of this.listeners) {
      try {
        l(changes);
      } catch (err) {
        // The change is durable already; a listener's bug must not turn it into a failed apply.
        process.nextTick(() => {
          throw err;
        });
      }
    }
  }
}

export class MemoryQuotaStore implements QuotaStore {
  readonly description: string = 'memory (not durable)';
  /** @param shared as QuotaStore.shared: tests share one between in-process sidecars as Redis is shared. */
  constructor(readonly shared = false) {}
  protected readonly state = new Map<string, StoredQuota>();
  protected readonly listeners = new ChangeListeners();
  readonly audit: (AuditRecord | ResetAuditRecord)[] = [];

  async load(): Promise<StoredQuota[]> {
    return structuredClone([...this.state.values()]);
  }

  async apply(changes: QuotaChange[], audit: AuditRecord[]): Promise<void> {
    const copy = structuredClone(changes);
    applyChanges(this.state, copy);
    this.audit.push(...audit);
    this.listeners.emit(copy);
  }

  async recordAudit(records: ResetAuditRecord[]): Promise<void> {
    this.audit.push(...structuredClone(records));
  }

  onChange(listener: ChangeListener): () => void {
    return this.listeners.add(listener);
  }

  async reopen(): Promise<void> {}

  async close(): Promise<void> {}
}
