// DescribeQuotas { entities?: Component[] } -> QuotasDescribed { entries: QuotaEntry[] }
//   Component  = [entity_type, entity_name | null]
//   QuotaEntry = { entity: Component[], quotas: { [QuotaKey]: int | "unlimited" } }
// No or empty entities: every configured entity (the global default included); otherwise each configured
// entity that contains any listed component.
import { RivvenError } from '../error-codes.js';
import { ENTITY_TYPES, type EntityError, parseName, type EntityType } from '../../quota/entity.js';
import { list, type Body } from './fields.js';

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
