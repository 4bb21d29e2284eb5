import { encodeBody, encodeFrame, frame } from './codec.js';
import type { ErrorCode } from './error-codes.js';

// The constant replies' bodies, encoded once: the FrameWriter copies them and writes only the correlation id.
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
