// RecordRequest { user?, client_id?, count?: int (default 1, >= 1), admit?: bool } -> Ok | Throttled
import { RivvenError } from '../error-codes.js';
import { bool, principalName, uint, type Body } from './fields.js';

export interface RecordRequest {
  user: string | null;
  clientId: string | null;
  count: number;
  admit: boolean;
}

export function decode(body: Body): RecordRequest {
  const count = uint(body, 'count', 1);
  if (count < 1) throw new RivvenError('INVALID_REQUEST', 'count must be at least 1');
  return { user: principalName(body, 'user'), clientId: principalName(body, 'client_id'), count, admit: bool(body, 'admit') };
}
