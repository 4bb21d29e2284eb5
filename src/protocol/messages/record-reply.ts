// The reply of the three Record requests:
//   Ok        { throttle_time_ms: 0 }
//   Throttled { throttle_time_ms: int > 0, quota_type: QuotaKey | "<resource>_rate", entity: string, recorded: bool, period?: Period }
//             -- period ('min', 'h', 'd') names the rate that binds; absent means 's', so a per-second
//                throttle keeps the bytes it had before rates had periods
//   Denied    { entity: string, reason: string }     -- the principal is blocked: reject the request
// The server writes Ok from a template (responses.ts, OK_BODY) and the client recognises those bytes without
// decoding them; Throttled goes through here both ways. The requests themselves are written by
// FrameWriter.record (client) and read by record-fast-path.ts or the record-*.ts modules (server).
import { isQuotaKey, resourceKeyShape, type RateKey } from '../../quota/quota-key.js';
import { PERIOD_SECONDS, type PeriodUnit } from '../../quota/rate-value.js';
import { RivvenError } from '../error-codes.js';
import type { Body } from './fields.js';
import { numberField, stringField } from './reply.js';

/** Ok is throttleTimeMs 0; otherwise the broker delays (record mode) or rejects (admit mode) the client. */
export interface RecordResult {
  throttleTimeMs: number;
  /** A built-in rate key, or a declared resource's `<name>_rate` (RecordUsage). */
  quotaType?: RateKey;
  entity?: string;
  recorded: boolean;
  /** Throttled only: the period of the rate that binds, when it is not 's' (absent on the wire means 's'). */
  period?: PeriodUnit;
  /** Set when the principal is blocked (Denied): the broker rejects the request. */
  denied?: { entity: string; reason: string };
}

/** Shared by every Ok answer on the client: callers must not modify it. */
export const OK_RESULT: RecordResult = Object.freeze({ throttleTimeMs: 0, recorded: true });

export const encodeThrottled = (
  throttleTimeMs: number,
  quotaType: RateKey | 'max_in_flight',
  entity: string,
  recorded: boolean,
  period: PeriodUnit = 's',
): Body =>
  period === 's'
    ? { type: 'Throttled', throttle_time_ms: throttleTimeMs, quota_type: quotaType, entity, recorded }
    : { type: 'Throttled', throttle_time_ms: throttleTimeMs, quota_type: quotaType, entity, recorded, period };

export const encodeDenied = (entity: string, reason: string): Body => ({ type: 'Denied', entity, reason });

export function decodeReply(body: Body): RecordResult {
  if (body.type === 'Ok') return OK_RESULT;
  if (body.type === 'Denied') {
    return { throttleTimeMs: 0, recorded: false, denied: { entity: stringField(body, 'entity'), reason: stringField(body, 'reason') } };
  }
  if (body.type !== 'Throttled')
    throw new RivvenError('UNEXPECTED_REPLY', `expected Ok or Throttled, got ${String(body.type).slice(0, 64)}`);
  const quotaType = stringField(body, 'quota_type');
  if (!isQuotaKey(quotaType) && !(quotaType.endsWith('_rate') && resourceKeyShape(quotaType)))
    throw new RivvenError('UNEXPECTED_REPLY', `unknown quota_type ${quotaType.slice(0, 64)}`);
  const throttleTimeMs = numberField(body, 'throttle_time_ms');
  // A wait of 0 or less is no Throttled; a negative one would reach a broker as DENIED (-1) or worse.
  if (!Number.isSafeInteger(throttleTimeMs) || throttleTimeMs < 1)
    throw new RivvenError('UNEXPECTED_REPLY', `Throttled with throttle_time_ms ${throttleTimeMs}: expected an integer from 1 to 2^53-1`);
  const result: RecordResult = {
    throttleTimeMs,
    quotaType: quotaType as RateKey,
    entity: stringField(body, 'entity'),
    recorded: body.recorded === true,
  };
  if (body.period !== undefined) {
    const period = stringField(body, 'period');
    if (!Object.hasOwn(PERIOD_SECONDS, period)) throw new RivvenError('UNEXPECTED_REPLY', `unknown period ${period.slice(0, 64)}`);
    if (period !== 's') result.period = period as PeriodUnit;
  }
  return result;
}
