// AlterQuotas { alterations: QuotaAlteration[], validate_only?: bool } -> QuotasAltered { altered_count: int }
//   QuotaAlteration = { entity: Component[], quota_key: QuotaKey, quota_value: int | "unlimited" | null }
//                   | { entity_type, entity_name, quota_key, quota_value }     (the flat form, accepted too)
// All-or-nothing: every alteration is validated before any is applied; an error names the bad one by index.
import { RivvenError } from '../error-codes.js';
import { type EntityError, entityToWire, parseEntity, type EntityRef } from '../../quota/entity.js';
import { quotaKeyIndex, type QuotaKeyIndex } from '../../quota/quota-key.js';
import { CONSUME } from '../../quota/quota-key.js';
import { isPlainMap } from '../codec.js';
import type { Entity } from '../../quota/entity.js';
import type { QuotaKey, QuotaValue } from '../../quota/quota-key.js';
import { bool, list, type Body } from './fields.js';
import { expectType, numberField } from './reply.js';

export const MAX_ALTERATIONS = 1000;

/** A validated alteration: limit undefined removes the value, Infinity is "unlimited". */
export interface Alteration {
  ref: EntityRef;
  key: QuotaKeyIndex;
  limit: number | undefined;
}

export interface AlterQuotas {
  alterations: Alteration[];
  validateOnly: boolean;
}

export function decode(body: Body): AlterQuotas {
  const raw = list(body, 'alterations', MAX_ALTERATIONS);
  if (raw === undefined) throw new RivvenError('INVALID_REQUEST', 'alterations must be a list');
  const seen = new Set<string>();
  const alterations = raw.map((item, index) => {
    const alteration = decodeOne(item, index);
    const id = JSON.stringify([entityToWire(alteration.ref), alteration.key]);
    if (seen.has(id)) {
      throw new RivvenError('DUPLICATE_ALTERATION', 'this entity and quota_key were already altered earlier in the request', index);
    }
    seen.add(id);
    return alteration;
  });
  return { alterations, validateOnly: bool(body, 'validate_only') };
}

function decodeOne(item: unknown, index: number): Alteration {
  if (!isPlainMap(item)) throw new RivvenError('INVALID_REQUEST', 'each alteration must be a map', index);
  let ref: EntityRef;
  try {
    const entity = item.entity !== undefined ? item.entity : [[item.entity_type, item.entity_name ?? null]];
    ref = parseEntity(entity);
  } catch (err) {
    throw new RivvenError('INVALID_ENTITY', (err as EntityError).message, index);
  }
  const key = typeof item.quota_key === 'string' ? quotaKeyIndex(item.quota_key) : -1;
  if (key === -1) {
    throw new RivvenError('INVALID_QUOTA_KEY', `quota_key must be produce_bytes_rate, consume_bytes_rate or request_rate`, index);
  }
  if (ref.kind === 'consumer-group' && key !== CONSUME) {
    throw new RivvenError('INVALID_QUOTA_KEY', 'consumer-group entities take only consume_bytes_rate', index);
  }
  return { ref, key, limit: quotaValue(item.quota_value, index) };
}

function quotaValue(v: unknown, index: number): number | undefined {
  if (v === null || v === undefined) return undefined;
  if (v === 'unlimited') return Infinity;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) return v;
  throw new RivvenError('INVALID_QUOTA_VALUE', 'quota_value must be an integer > 0, "unlimited", or null to remove', index);
}

/** One alteration as a client sends it. */
export interface QuotaAlteration {
  entity: Entity;
  quota_key: QuotaKey;
  /** null removes the value. */
  quota_value: QuotaValue | null;
}

export const encodeRequest = (alterations: QuotaAlteration[], validateOnly: boolean): Body => ({
  type: 'AlterQuotas',
  alterations,
  validate_only: validateOnly,
});

export const encodeReply = (alteredCount: number): Body => ({ type: 'QuotasAltered', altered_count: alteredCount });

export function decodeReply(body: Body): number {
  expectType(body, 'QuotasAltered');
  return numberField(body, 'altered_count');
}
