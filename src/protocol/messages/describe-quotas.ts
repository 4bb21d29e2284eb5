// DescribeQuotas { entities?: Component[] } -> QuotasDescribed { entries: QuotaEntry[] }
//   Component  = [entity_type, entity_name | null]
//   QuotaEntry = { entity: Component[], quotas: { [QuotaKey]: int | "unlimited" } }
// No or empty entities: every configured entity (the global default included); otherwise each configured
// entity that contains any listed component.
import { RivvenError } from '../error-codes.js';
import { ENTITY_TYPES, type EntityError, parseName, type EntityType } from '../../quota/entity.js';
import type { Component, Entity } from '../../quota/entity.js';
import type { AlterKey, AlterValue, LimitKey, ResourceKey } from '../../quota/quota-key.js';
import { list, type Body } from './fields.js';
import { expectType, listField } from './reply.js';

export const MAX_FILTER_COMPONENTS = 1000;

export interface ComponentFilter {
  type: EntityType;
  name: string;
}

export interface DescribeQuotas {
  filters: ComponentFilter[];
}

export function decode(body: Body): DescribeQuotas {
  const raw = list(body, 'entities', MAX_FILTER_COMPONENTS) ?? [];
  const filters = raw.map((c, index): ComponentFilter => {
    if (!Array.isArray(c) || c.length !== 2 || !(ENTITY_TYPES as readonly unknown[]).includes(c[0])) {
      throw new RivvenError('INVALID_ENTITY', 'each component must be [entity_type, entity_name | null]', index);
    }
    const type = c[0] as EntityType;
    try {
      return { type, name: type === 'default' ? '' : parseName(c[1], type) };
    } catch (err) {
      throw new RivvenError('INVALID_ENTITY', (err as EntityError).message, index);
    }
  });
  return { filters };
}

/** One configured entity and its values, as the reply carries it. */
export interface QuotaEntry {
  entity: Entity;
  /** Limits are numbers or "unlimited"; tier is a tier name, blocked a reason. */
  quotas: Partial<Record<AlterKey, AlterValue>>;
  /** The keys whose values are shadow ones (measured, counted, not enforced); absent when none. */
  shadow?: (LimitKey | ResourceKey)[];
}

export const REPLY_TYPE = 'QuotasDescribed';
/** The server builds the reply with a ListReplyBuilder (its entries field), so its size is known as it grows. */
export const REPLY_LIST_FIELD = 'entries';

export const encodeRequest = (entities: Component[]): Body => ({ type: 'DescribeQuotas', entities });

export function decodeReply(body: Body): QuotaEntry[] {
  expectType(body, REPLY_TYPE);
  return listField(body, REPLY_LIST_FIELD) as QuotaEntry[];
}
