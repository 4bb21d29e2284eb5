// Reading replies on the client side: every module's decodeReply checks the reply is the one its request
// expects and that each field has its type, so a client never casts what a server sent.
import { RivvenError } from '../error-codes.js';
import type { Body } from './fields.js';

const unexpected = (msg: string): RivvenError => new RivvenError('UNEXPECTED_REPLY', msg);

/** Throws UNEXPECTED_REPLY unless the reply's type is `type`. */
export function expectType(body: Body, type: string): void {
  if (body.type !== type) throw unexpected(`expected a ${type} reply, got ${String(body.type).slice(0, 64)}`);
}

export function numberField(body: Body, field: string): number {
  const v = body[field];
  if (typeof v !== 'number') throw unexpected(`the reply's ${field} is not a number`);
  return v;
}

export function stringField(body: Body, field: string): string {
  const v = body[field];
  if (typeof v !== 'string') throw unexpected(`the reply's ${field} is not a string`);
  return v;
}

export function listField(body: Body, field: string): unknown[] {
  const v = body[field];
  if (!Array.isArray(v)) throw unexpected(`the reply's ${field} is not a list`);
  return v;
}
