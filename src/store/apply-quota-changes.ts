import { readFileSync } from 'node:fs';
import type { RedisBackend, RedisClient } from './redis-backend.js';
import type { AuditRecord, QuotaChange, StoredQuota } from './quota-store.js';
import { valueKey } from '../quota/entity.js';

// The caller of lua/apply-quota-changes-4.lua (its header: KEYS, ARGV, returns): RedisQuotaStore's one write.

const APPLY_SCRIPT = readFileSync(new URL('./lua/apply-quota-changes-4.lua', import.meta.url), 'utf8');

export type ScriptClient = RedisClient & {
  rivvenApply(configs: string, version: string, changes: string, audit: string, ...argv: (string | number)[]): Promise<number>;
};

/** The keys of the shared configs, all under one hash tag (one Redis Cluster slot), and the channel of new versions. */
export interface QuotaKeys {
  configs: string;
  version: string;
  changes: string;
  audit: string;
  channel: string;
}

/** The client, with the script defined on it as `rivvenApply`. */
export function withApplyScript(client: RedisClient): ScriptClient {
  const redis = client as ScriptClient;
  redis.defineCommand('rivvenApply', { numberOfKeys: 4, lua: APPLY_SCRIPT });
  return redis;
}

/**
 * Applies an AlterQuotas all-or-nothing: the configs hash, the version, the changes stream, the audit stream,
 * and the channel told. Throws when nothing was applied (past the deadline, or a key of another type).
 */
export async function applyQuotaChanges(
  backend: RedisBackend,
  redis: ScriptClient,
  k: QuotaKeys,
  options: { commandTimeoutMs: number; maxChanges: number; maxAudit: number },
  changes: QuotaChange[],
  audit: AuditRecord[],
): Promise<void> {
  const ops = changes.map((c) => [valueKey(c.entity, c.quota_key), c.quota_value === null ? false : JSON.stringify(toStored(c))]);
  const deadline = backend.deadline();
  const call = redis.rivvenApply(
    k.configs,
    k.version,
    k.changes,
    k.audit,
    deadline,
    JSON.stringify(ops),
    JSON.stringify(changes),
    options.maxChanges,
    options.maxAudit,
    k.channel,
    ...audit.map((r) => JSON.stringify(r)),
  );
  const version = await backend.timed(call);
  if (version === -1) throw new Error(`Redis ran the change after its deadline (${options.commandTimeoutMs} ms); nothing was applied`);
  if (typeof version !== 'number' || version < 0) {
    // A key of the wrong type: the script checked before writing anything (a failed script is not rolled back).
    const key = [k.configs, k.version, k.changes, k.audit][-2 - Number(version)] ?? 'a key';
    backend.badValue(key === k.version ? 'version' : key === k.configs ? 'config' : 'change', key, 'holds a value of another type');
    throw new Error(`Redis key ${key} holds a value of another type; nothing was applied (an operator must remove it)`);
  }
}

function toStored(c: QuotaChange): StoredQuota {
  const q: StoredQuota = { entity: c.entity, quota_key: c.quota_key, quota_value: c.quota_value! };
  if (c.shadow) q.shadow = true;
  return q;
}
