// RecordUsage { user?, client_id?, resource: string, amount?: int (default 1, >= 1), admit?: bool } -> Ok | Throttled | Denied
//   resource: a name declared in quotas.resources (1-32 chars of [a-z0-9_], starting with a letter); the
//   server refuses an undeclared one with INVALID_REQUEST. Answered like the Record requests (index.ts,
//   answerVerdict): Throttled.quota_type is "<resource>_rate", with the period of the rate that binds.
// Not on the record fast path (read.ts, write.ts): it goes through msgpackr both ways.
import type { QuotaManager } from '../../../quota/quota-manager.js';
import { resourceNameError, type Resources } from '../../../quota/quota-key.js';
import { preview } from '../../../util/printable.js';
import { RivvenError } from '../../error-codes.js';
import { bool, principalName, type Body } from '../fields.js';
import type { Message } from '../message.js';
import { answerVerdict, decodeReply, type RecordResult } from './index.js';

export const TYPE = 'RecordUsage';

export interface RecordUsage {
  user: string | null;
  clientId: string | null;
  resource: string;
  amount: number;
  admit: boolean;
}

/** A RecordUsage call's parameters, as the client takes them. */
export interface UsageParams {
  user?: string | null;
  clientId?: string | null;
  resource: string;
  /** @default 1 */
  amount?: number;
  admit?: boolean;
}

/** What RecordUsage needs of the server: the declared resources, the quotas, and the batch's clock reading. */
export interface UsageServer {
  readonly quotas: Pick<QuotaManager, 'recordUsage'> & { readonly table: { readonly resources: Resources } };
  readonly now: number;
}

export function decode(body: Body): RecordUsage {
  const resource = body.resource;
  if (typeof resource !== 'string') throw new RivvenError('INVALID_REQUEST', 'resource must be a string: a name in quotas.resources');
  const why = resourceNameError(resource);
  if (why !== undefined) throw new RivvenError('INVALID_REQUEST', `resource ${preview(resource)}: ${why}`);
  // One message for every bad amount: -1 said "from 0" and 0 then said "at least 1".
  const given = body.amount;
  if (given !== undefined && (typeof given !== 'number' || !Number.isSafeInteger(given) || given < 1)) {
    throw new RivvenError('INVALID_REQUEST', 'amount must be an integer from 1 to 2^53-1');
  }
  const amount = given ?? 1;
  return { user: principalName(body, 'user'), clientId: principalName(body, 'client_id'), resource, amount, admit: bool(body, 'admit') };
}

/** The request as a client sends it; absent names are left out, not written as nil, and so is an amount of 1. */
export function encodeRequest(r: UsageParams): Body {
  const body: Body = { type: TYPE, resource: r.resource };
  if (r.user != null) body.user = r.user;
  if (r.clientId != null) body.client_id = r.clientId;
  if (r.amount !== undefined && r.amount !== 1) body.amount = r.amount;
  if (r.admit === true) body.admit = true;
  return body;
}

/** The reply of a RecordUsage of `resource`: a Throttled must name `<resource>_rate`, else UNEXPECTED_REPLY. */
export const decodeReplyFor =
  (resource: string) =>
  (body: Body): RecordResult =>
    decodeReply(body, [`${resource}_rate`]);

/**
 * The reply of some RecordUsage, its resource unknown: a Throttled must name a resource's `<name>_rate` (never a
 * built-in key). The client reads its own calls with decodeReplyFor, which knows the resource.
 */
export function decodeAnyReply(body: Body): RecordResult {
  const quotaType = body.type === 'Throttled' ? body.quota_type : undefined;
  if (typeof quotaType === 'string' && /^[a-z][a-z0-9_]{0,31}_rate$/.test(quotaType)) {
    const why = resourceNameError(quotaType.slice(0, -'_rate'.length));
    if (why === undefined) return decodeReply(body, [quotaType]);
  }
  return decodeReply(body, []);
}

export const message: Message<RecordUsage, UsageServer, UsageParams, RecordResult> = {
  type: TYPE,
  role: 'record',
  decode,
  handle(r, server, call) {
    const resources = server.quotas.table.resources;
    const resource = resources.indexOf(r.resource);
    if (resource < 0) {
      const declared = resources.names.length === 0 ? 'none are declared' : `declared: ${resources.names.join(', ')}`;
      throw new RivvenError('INVALID_REQUEST', `resource ${r.resource} is not in quotas.resources (${declared})`);
    }
    const v = server.quotas.recordUsage(resource, r.user, r.clientId, r.amount, r.admit, server.now);
    call.result = answerVerdict(v, call.out, call.id);
    return undefined;
  },
  encode: encodeRequest,
  decodeReply: decodeAnyReply,
};
