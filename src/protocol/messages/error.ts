// Error { code: ErrorCode, message: string, index?: int }: the reply to any request that failed, and (on
// correlation id 0) the report of a connection-level failure before the server closes the connection.
import { isErrorCode, RivvenError, type ErrorCode } from '../error-codes.js';
import type { Body } from './fields.js';

export function encode(code: ErrorCode, message: string, index?: number): Body {
  const body: Body = { type: 'Error', code, message };
  if (index !== undefined) body.index = index;
  return body;
}

/** The error an Error reply stands for; an unknown code is kept as INTERNAL_ERROR with the server's message. */
export function decode(body: Body): RivvenError {
  const code = isErrorCode(body.code) ? body.code : 'INTERNAL_ERROR';
  return new RivvenError(code, String(body.message ?? code).slice(0, 4096), typeof body.index === 'number' ? body.index : undefined);
}
