import { encodeBody, encodeFrame } from './codec.js';
import type { ErrorCode } from './error-codes.js';
import * as error from './messages/error.js';

// The constant replies' bodies, encoded once: the FrameWriter copies them and writes only the correlation id.
export const OK_BODY = encodeBody({ type: 'Ok', throttle_time_ms: 0 });
export const PONG_BODY = encodeBody({ type: 'Pong' });

export const errorFrame = (correlationId: number, code: ErrorCode, message: string, index?: number): Buffer =>
  encodeFrame(correlationId, error.encode(code, message, index));
