// DescribeUsage { entities?: Component[], top?: int (default 100, 1..10000), sort_by?: "utilization" | "rate" }
//   -> UsageDescribed { buckets: [{ entity, quota_type, rate, limit, utilization, throttled_total, last_seen_ms }] }
// Reads the live buckets: who is using how much of which quota right now, highest first. A component
// [type, name] keeps buckets of that user, client-id or consumer group; [type, null] any bucket that has one.
import { RivvenError } from '../error-codes.js';
import { ENTITY_TYPES, type EntityError, parseName } from '../../quota/entity.js';
import { list, uint, type Body } from './fields.js';
import { MAX_FILTER_COMPONENTS } from './describe-quotas.js';

export const DEFAULT_TOP = 100;
export const MAX_TOP = 10_000;

export interface DescribeUsage {
  components: [string, string | null][];
  top: number;
  sortBy: 'utilization' | 'rate';
}

export function decode(body: Body): DescribeUsage {
  const raw = list(body, 'entities', MAX_FILTER_COMPONENTS) ?? [];
  const components = raw.map((c, index): [string, string | null] => {
    if (!Array.isArray(c) || c.length !== 2 || !(ENTITY_TYPES as readonly unknown[]).includes(c[0]) || c[0] === 'default') {
      throw new RivvenError('INVALID_ENTITY', 'each component must be [user | client-id | consumer-group, name | null]', index);
    }
    try {
      return [c[0] as string, c[1] === null ? null : parseName(c[1], c[0] as string)];
    } catch (err) {
      throw new RivvenError('INVALID_ENTITY', (err as EntityError).message, index);
    }
  });
  const top = uint(body, 'top', DEFAULT_TOP);
  if (top < 1 || top > MAX_TOP) throw new RivvenError('INVALID_REQUEST', `top must be from 1 to ${MAX_TOP}`);
  const sortBy = body.sort_by ?? 'utilization';
  if (sortBy !== 'utilization' && sortBy !== 'rate') throw new RivvenError('INVALID_REQUEST', 'sort_by must be "utilization" or "rate"');
  return { components, top, sortBy };
}
