import { RivvenError } from '../protocol/error-codes.js';
import type { Alteration } from '../protocol/messages/alter-quotas.js';
import { describeEntity, entityKey, type EntityRef } from '../quota/entity.js';
import { ALTER_KEYS, RESOURCE_LIMIT_BASE, type AlterKey } from '../quota/quota-key.js';
import type { QuotaTable } from '../quota/quota-table.js';
import { preview } from '../util/printable.js';

// The checks of an AlterQuotas against the configuration, run by QuotaAdmin before anything is written (a dry run
// runs them too): each throws the RivvenError the request is answered with.

/** A resource's key is taken only when rivven.yaml declares the resource (quotas.resources). */
export function checkResources(table: QuotaTable, alterations: Alteration[]): void {
  const resources = table.resources;
  for (const [index, { key }] of alterations.entries()) {
    if (resources.isAlterKey(key)) continue;
    const declared = resources.names.length === 0 ? 'none are declared' : `declared: ${resources.names.join(', ')}`;
    throw new RivvenError('INVALID_QUOTA_KEY', `${preview(key)}: no such resource in quotas.resources (${declared})`, index);
  }
}

/**
 * A tier assigned must exist (run-time values or rivven.yaml), so a typo cannot silently mean "no tier"; and a
 * tier still assigned to an entity cannot lose its last value (deleting a tier in use is refused).
 */
export function checkTiers(table: QuotaTable, alterations: Alteration[]): void {
  const created = new Set<string>();
  // What each altered tier keeps once the whole request applies, and the alteration that last touched it.
  const remaining = new Map<string, { keys: Set<string>; index: number }>();
  for (const [index, { ref, key, value }] of alterations.entries()) {
    if (ref.kind !== 'tier') continue;
    if (value !== undefined) created.add(ref.tier);
    let r = remaining.get(ref.tier);
    if (r === undefined) {
      const keys = new Set<string>(table.resources.limitKeys.filter((_, k) => table.config(ref)?.limits[k] !== undefined));
      r = { keys, index };
      remaining.set(ref.tier, r);
    }
    if (value === undefined) r.keys.delete(key);
    else r.keys.add(key);
    r.index = index;
  }
  const emptied = new Map(
    [...remaining].filter(([tier, r]) => r.keys.size === 0 && !table.hasBootTier(tier)).map(([tier, r]) => [tier, r.index] as const),
  );
  for (const [index, { ref, key, value }] of alterations.entries()) {
    if (key !== 'tier' || value === undefined) continue;
    if (!table.hasTier(value as string) && !created.has(value as string)) {
      throw new RivvenError('UNKNOWN_TIER', `tier ${preview(value as string)} does not exist; create it first (rivven tier set)`, index);
    }
    if (ref.kind === 'tier') throw new RivvenError('INVALID_QUOTA_KEY', 'a tier cannot itself be assigned a tier', index);
  }
  // The tier each entity this request (re)assigns ends with (the last alteration wins); undefined: none.
  const assigned = new Map<string, { ref: EntityRef; tier: string | undefined }>();
  for (const a of alterations) if (a.key === 'tier') assigned.set(entityKey(a.ref), { ref: a.ref, tier: a.value as string | undefined });
  for (const [tier, index] of emptied) {
    // Indexed (QuotaTable.tierMembers): the cost grows with the tier's own members and this request, never
    // with the table.
    const members = table.tierMembers(tier);
    const staying = (key: string): boolean => !assigned.has(key) || assigned.get(key)!.tier === tier;
    let count = members.size;
    const shown: string[] = [];
    for (const [key, a] of assigned) {
      if (members.has(key) && a.tier !== tier) count--;
      if (!members.has(key) && a.tier === tier) {
        count++;
        if (shown.length < 3) shown.push(describeEntity(a.ref));
      }
    }
    if (count > 0) {
      for (const [key, ref] of members) {
        if (shown.length === 3) break;
        if (staying(key)) shown.push(describeEntity(ref));
      }
      throw new RivvenError(
        'TIER_IN_USE',
        `tier ${preview(tier)} is assigned to ${count} entities (${shown.join(', ')}${count > 3 ? ', ...' : ''}); reassign them first`,
        index,
      );
    }
  }
}

/**
 * Refuses a change that would leave more than maxEntities entities configured (checked before anything is
 * written; a request that removes some entities and adds others counts both).
 */
export function checkEntityLimit(table: QuotaTable, maxEntities: number, alterations: Alteration[]): void {
  const after = new Map<string, { before: boolean; keys: Set<string> }>();
  for (const { ref, key, value } of alterations) {
    const id = entityKey(ref);
    let e = after.get(id);
    if (e === undefined) {
      const keys = new Set<string>();
      for (const k of [...ALTER_KEYS, ...table.resources.limitKeys.slice(RESOURCE_LIMIT_BASE)] as AlterKey[]) {
        if (table.getValue(ref, k) !== undefined) keys.add(k);
      }
      e = { before: keys.size > 0, keys };
      after.set(id, e);
    }
    if (value === undefined) e.keys.delete(key);
    else e.keys.add(key);
  }
  let delta = 0;
  for (const e of after.values()) delta += Number(e.keys.size > 0) - Number(e.before);
  if (delta > 0 && table.entityCount + delta > maxEntities) {
    throw new RivvenError(
      'TOO_MANY_ENTITIES',
      `${table.entityCount} entities are configured and storage.max_entities is ${maxEntities}; remove some or raise the limit`,
    );
  }
}
