// AlterQuotas { alterations: QuotaAlteration[], validate_only?: bool } -> QuotasAltered { altered_count: int }
//   QuotaAlteration = { entity: Component[], quota_key: AlterKey, quota_value: number | string | string[] | null,
//                       shadow?: bool }
//                   | { entity_type, entity_name, quota_key, quota_value }     (the flat form, accepted too)
// All-or-nothing: every alteration is validated before any is applied; an error names the bad one by index.
import { RivvenError } from '../error-codes.js';
import { type EntityError, entityToWire, parseEntity, parseName, type EntityRef, valueKey } from '../../quota/entity.js';
import { ALTER_KEYS, isAlterKey, resourceKeyShape, type AlterKey, type AlterValue } from '../../quota/quota-key.js';
import { fromLimit, type Limit } from '../../quota/quota-table.js';
import { parseLimit } from '../../quota/quota-value.js';
import { QuotaValueError } from '../../quota/rate-value.js';
import { encodeFrame, isPlainMap } from '../codec.js';
import type { Entity } from '../../quota/entity.js';
import { bool, list, type Body } from './fields.js';
import type { Message, ServerLog } from './message.js';
import { expectType, numberField } from './reply.js';

export const MAX_ALTERATIONS = 1000;

/** Longest reason a block may carry (it is shown to operators and put in Denied replies). */
export const MAX_REASON_CHARS = 256;

/**
 * A validated alteration: `value` undefined removes the key's value; a limit is held as the quota table holds it
 * (a number, Infinity for "unlimited", or a list of rates), tier and blocked carry a name. `shadow` marks a rate
 * that is measured and never enforced.
 */
export interface Alteration {
  ref: EntityRef;
  key: AlterKey;
  value: Limit | string | undefined;
  shadow: boolean;
}

/** An alteration's value in its canonical form (docs/protocol.md, "Quota values"): what stores and the audit keep. */
export function canonicalValue(a: Alteration): AlterValue | null {
  if (a.value === undefined) return null;
  return typeof a.value === 'string' ? a.value : fromLimit(a.value);
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
    const id = valueKey(entityToWire(alteration.ref), alteration.key);
    if (seen.has(id)) {
      throw new RivvenError('DUPLICATE_ALTERATION', 'this entity and quota_key were already altered earlier in the request', index);
    }
    seen.add(id);
    return alteration;
  });
  return { alterations, validateOnly: bool(body, 'validate_only') };
}

const PRINCIPAL_KINDS: EntityRef['kind'][] = ['user', 'client-id', 'user+client-id'];

function decodeOne(item: unknown, index: number): Alteration {
  if (!isPlainMap(item)) throw new RivvenError('INVALID_REQUEST', 'each alteration must be a map', index);
  let ref: EntityRef;
  try {
    const entity = item.entity !== undefined ? item.entity : [[item.entity_type, item.entity_name ?? null]];
    ref = parseEntity(entity);
  } catch (err) {
    throw new RivvenError('INVALID_ENTITY', (err as EntityError).message, index);
  }
  const key = item.quota_key;
  // A resource's key (`orders_rate`) passes here by its shape; the server takes it only if quotas.resources declares it.
  if (!isAlterKey(key) && !(typeof key === 'string' && resourceKeyShape(key))) {
    throw new RivvenError(
      'INVALID_QUOTA_KEY',
      `quota_key must be one of ${ALTER_KEYS.join(', ')}, or a declared resource's <name>_rate or <name>_burst`,
      index,
    );
  }
  if (typeof item.shadow !== 'undefined' && typeof item.shadow !== 'boolean') {
    throw new RivvenError('INVALID_REQUEST', 'shadow must be a boolean', index);
  }
  const shadow = item.shadow === true;
  const bad = (msg: string) => new RivvenError('INVALID_QUOTA_KEY', msg, index);
  if (key === 'tier' || key === 'blocked') {
    if (!PRINCIPAL_KINDS.includes(ref.kind)) throw bad(`${key} is set on user and client-id entities only`);
    if (shadow) throw new RivvenError('INVALID_REQUEST', 'shadow applies to rates and bursts, not to tier or blocked', index);
    return { ref, key, value: key === 'tier' ? tierName(item.quota_value, index) : reason(item.quota_value, index), shadow };
  }
  if (ref.kind === 'consumer-group' && key !== 'consume_bytes_rate' && key !== 'consume_bytes_burst') {
    throw bad('consumer-group entities take only consume_bytes_rate and consume_bytes_burst');
  }
  const value = quotaValue(key, item.quota_value, index);
  if (shadow && value === undefined) throw new RivvenError('INVALID_REQUEST', 'shadow marks a value that is set, not a removal', index);
  return { ref, key: key as AlterKey, value, shadow };
}

/** A limit's value in any form of docs/protocol.md ("Quota values"), as the table holds it (Infinity: unlimited). */
function quotaValue(key: string, v: unknown, index: number): Limit | undefined {
  if (v === null || v === undefined) return undefined;
  try {
    return parseLimit(key, v);
  } catch (err) {
    if (!(err instanceof QuotaValueError)) throw err;
    throw new RivvenError('INVALID_QUOTA_VALUE', err.message, index);
  }
}

function tierName(v: unknown, index: number): string | undefined {
  if (v === null || v === undefined) return undefined;
  try {
    return parseName(v, 'tier');
  } catch (err) {
    throw new RivvenError('INVALID_QUOTA_VALUE', (err as EntityError).message, index);
  }
}

function reason(v: unknown, index: number): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_REASON_CHARS || !v.isWellFormed()) {
    throw new RivvenError('INVALID_QUOTA_VALUE', `blocked takes a reason: 1 to ${MAX_REASON_CHARS} characters, or null to unblock`, index);
  }
  return v;
}

/** One alteration as a client sends it. */
export interface QuotaAlteration {
  entity: Entity;
  quota_key: AlterKey;
  /** null removes the value; tier takes a tier name, blocked a reason. */
  quota_value: AlterValue | null;
  /** A rate or burst that is measured and counted but never enforced. */
  shadow?: boolean;
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

/** What AlterQuotas needs of the server. */
export interface AlterQuotasServer {
  readonly admin: { alter(alterations: Alteration[], validateOnly: boolean, principal: string, client: string | null): Promise<number> };
  readonly log: ServerLog;
}

export const message: Message<AlterQuotas, AlterQuotasServer, { alterations: QuotaAlteration[]; validateOnly?: boolean }, number> = {
  type: 'AlterQuotas',
  role: 'alter',
  decode,
  handle(r, server, call) {
    const peer = call.peer;
    return server.admin.alter(r.alterations, r.validateOnly, peer.principal, peer.clientName ?? null).then((n) => {
      if (!r.validateOnly) server.log.info({ conn: peer.id, principal: peer.principal, altered: n }, 'quotas altered');
      return encodeFrame(call.id, encodeReply(n));
    });
  },
  encode: (p) => encodeRequest(p.alterations, p.validateOnly ?? false),
  decodeReply,
};
