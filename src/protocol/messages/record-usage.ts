// RecordUsage { user?, client_id?, resource: string, amount?: int (default 1, >= 1), admit?: bool } -> Ok | Throttled | Denied
//   resource: a name declared in quotas.resources (1-32 chars of [a-z0-9_], starting with a letter); the
//   server refuses an undeclared one with INVALID_REQUEST. Throttled.quota_type is "<resource>_rate".
import { resourceNameError } from '../../quota/quota-key.js';
import { preview } from '../../util/printable.js';
import { RivvenError } from '../error-codes.js';
import { bool, principalName, uint, type Body } from './fields.js';

export const TYPE = 'RecordUsage';

export interface RecordUsage {
  user: string | null;
  clientId: string | null;
  resource: string;
  amount: number;
  admit: boolean;
}

export function decode(body: Body): RecordUsage {
  const resource = body.resource;
  if (typeof resource !== 'string') throw new RivvenError('INVALID_REQUEST', 'resource must be a string: a name in quotas.resources');
  const why = resourceNameError(resource);
  if (why !== undefined) throw new RivvenError('INVALID_REQUEST', `resource ${preview(resource)}: ${why}`);
  const amount = uint(body, 'amount', 1);
  if (amount < 1) throw new RivvenError('INVALID_REQUEST', 'amount must be at least 1');
  return { user: principalName(body, 'user'), clientId: principalName(body, 'client_id'), resource, amount, admit: bool(body, 'admit') };
}

/** The request as a client sends it; absent names are left out, not written as nil. */
export function encodeRequest(r: {
  user?: string | null;
  clientId?: string | null;
  resource: string;
  amount?: number;
  admit?: boolean;
}): Body {
  const body: Body = { type: TYPE, resource: r.resource };
  if (r.user != null) body.user = r.user;
  if (r.clientId != null) body.client_id = r.clientId;
  if (r.amount !== undefined && r.amount !== 1) body.amount = r.amount;
  if (r.admit === true) body.admit = true;
  return body;
}
