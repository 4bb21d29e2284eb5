// DescribeQuotas { entities?: Component[] } -> QuotasDescribed { entries: QuotaEntry[] }
//   Component  = [entity_type, entity_name | null]
//   QuotaEntry = { entity: Component[], quotas: { [QuotaKey]: int | "unlimited" } }
// No or empty entities: every configured entity (the global default included); otherwise each configured
// entity that contains any listed component.
import { RivvenError } from '../error-codes.js';
import { ENTITY_TYPES, type EntityError, parseName, type EntityType } from '../../quota/entity.js';
import type { Component, Entity } from '../../quota/entity.js';
import type { AlterKey, AlterValue, LimitKey, ResourceKey } from '../../quota/quota-key.js';
import { ListReplyBuilder } from '../list-reply.js';
import { list, type Body } from './fields.js';
import type { Message, ReplyLimit } from './message.js';
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

/** What DescribeQuotas needs of the server. */
export interface DescribeQuotasServer extends ReplyLimit {
  readonly admin: { describe(filters: ComponentFilter[], add: (entry: QuotaEntry) => void): Promise<void> };
}

export const message: Message<DescribeQuotas, DescribeQuotasServer, Component[], QuotaEntry[]> = {
  type: 'DescribeQuotas',
  role: 'describe',
  decode,
  handle(r, server, call) {
    const reply = new ListReplyBuilder(REPLY_TYPE, REPLY_LIST_FIELD, server.maxReplyBytes);
    return server.admin.describe(r.filters, (e) => reply.add(e)).then(() => reply.frame(call.id));
  },
  encode: encodeRequest,
  decodeReply,
};
