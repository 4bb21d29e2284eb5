// RecordProduce { user?: string|null, client_id?: string|null, bytes: int, admit?: bool }
//   -> Ok { throttle_time_ms: 0 } | Throttled { throttle_time_ms, quota_type, entity, recorded }
import { bool, principalName, uint, type Body } from './fields.js';

export interface RecordProduce {
  user: string | null;
  clientId: string | null;
  bytes: number;
  admit: boolean;
}

export const decode = (body: Body): RecordProduce => ({
  user: principalName(body, 'user'),
  clientId: principalName(body, 'client_id'),
  bytes: uint(body, 'bytes'),
  admit: bool(body, 'admit'),
});
