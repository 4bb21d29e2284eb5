import { encodeBody, encodeFrame, frame } from './codec.js';
import type { ErrorCode } from './error-codes.js';

// Constant replies are encoded once; per reply only the correlation id is written.
export const OK_BODY = encodeBody({ type: 'Ok', throttle_time_ms: 0 });
export const PONG_BODY = encodeBody({ type: 'Pong' });


export const throttledFrame = (
  correlationId: number,
  throttleTimeMs: number,
  quotaType: string,
  entity: string,
  recorded: boolean,
): Buffer =>
  encodeFrame(correlationId, {
    type: 'Throttled',
    throttle_time_ms: throttleTimeMs,
    quota_type: quotaType,
    entity,
    recorded,
  });

export function errorFrame(correlationId: number, code: ErrorCode, message: string, index?: number): Buffer {
  const body: Record<string, unknown> = { type: 'Error', code, message };
  if (index !== undefined) body.index = index;
  return frame(correlationId, encodeBody(body));
}

export { encodeFrame };
