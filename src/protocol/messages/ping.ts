// Ping {} -> Pong {}
import type { Body } from './fields.js';
import type { Message } from './message.js';
import { expectType } from './reply.js';

export type Ping = Record<string, never>;
export const decode = (): Ping => ({});
export const encodeRequest = (): Body => ({ type: 'Ping' });
/** The server writes Pong from a template (responses.ts, PONG_BODY). */
export const decodeReply = (body: Body): void => expectType(body, 'Pong');

export const message: Message<Ping, unknown, void, void> = {
  type: 'Ping',
  role: null,
  decode,
  handle: (_ping, _server, call) => call.out.pong(call.id),
  encode: encodeRequest,
  decodeReply,
};
