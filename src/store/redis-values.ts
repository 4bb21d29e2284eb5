import { type Alteration, canonicalValue, decode as decodeAlterations } from '../protocol/messages/alter-quotas.js';
import { entityToWire } from '../quota/entity.js';
import type { QuotaChange, StoredQuota } from './quota-store.js';

/**
 * What the shared quota store reads from Redis, checked as a client's AlterQuotas is (DESIGN.md section 15: the
 * fleet trusts Redis' data no more than a client's): anything else, whoever wrote it, is reported and skipped.
 * Each parser returns the value, or a string saying what is wrong with it.
 */

/** One stored value: an entity of two names (1024 bytes each) and a value of at most 4 rates fit many times over. */
export const MAX_STORED_CHARS = 64 * 1024;
/** One entry of the changes stream: an AlterQuotas of at most 1000 alterations. */
export const MAX_CHANGES_CHARS = 8 * 1024 * 1024;

/** The changes of one entry of the changes stream: an AlterQuotas' alterations, validated like one. */
export function parseChanges(json: string | undefined): QuotaChange[] | string {
  if (json === undefined) return 'no field c';
  // Checked before JSON.parse: 16 MB written by hand held the event loop 409 ms in it.
  if (json.length > MAX_CHANGES_CHARS) return `longer than ${MAX_CHANGES_CHARS} characters`;
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return 'not JSON';
  }
  if (!Array.isArray(raw)) return 'not a list of changes';
  try {
    const { alterations } = decodeAlterations({ alterations: raw });
    return alterations.map(clean);
  } catch (err) {
    return (err as Error).message;
  }
}

/** One stored value of the configs hash: a set value (never a removal), validated like an alteration. */
export function parseStored(json: string): StoredQuota | string {
  if (json.length > MAX_STORED_CHARS) return `longer than ${MAX_STORED_CHARS} characters`;
  const changes = parseChanges(`[${json}]`);
  if (typeof changes === 'string') return changes;
  const c = changes[0]!;
  if (changes.length !== 1 || c.quota_value === null) return 'not one stored value';
  return c as StoredQuota;
}

/** The config version: a whole number (a missing key is version 0). */
export function parseVersion(raw: string | null): number | string {
  if (raw === null) return 0;
  if (!/^\d{1,15}$/.test(raw)) return 'not a whole number';
  return Number(raw);
}

/** Only the fields a change has, the entity and the value in their canonical forms. */
function clean(a: Alteration): QuotaChange {
  const c: QuotaChange = { entity: entityToWire(a.ref), quota_key: a.key, quota_value: canonicalValue(a) };
  if (a.shadow) c.shadow = true;
  return c;
}
