// RecordConsume { user?, client_id?, consumer_group?: string|null, bytes: int, admit?: bool }
//   -> Ok | Throttled (the larger throttle of the principal's and the group's bucket)
import { bool, principalName, uint, type Body } from './fields.js';

export interface RecordConsume {
  user: string | null;
  clientId: string | null;
  consumerGroup: string | null;
  bytes: number;
  admit: boolean;
}

export const decode = (body: Body): RecordConsume => ({
  user: principalName(body, 'user'),
  clientId: principalName(body, 'client_id'),
  consumerGroup: principalName(body, 'consumer_group'),
  bytes: uint(body, 'bytes'),
  admit: bool(body, 'admit'),
});
