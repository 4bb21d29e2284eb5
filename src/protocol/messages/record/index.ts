// RecordProduce { user?: string|null, client_id?: string|null, bytes: int, admit?: bool }
// RecordConsume { user?, client_id?, consumer_group?: string|null, bytes: int, admit?: bool }
// RecordRequest { user?, client_id?, count?: int (default 1, >= 1), admit?: bool }
//   -> Ok        { throttle_time_ms: 0 }
//   -> Throttled { throttle_time_ms: int > 0, quota_type: QuotaKey, entity: string, recorded: bool, period?: Period }
//             -- quota_type is the call's own key: produce_bytes_rate, consume_bytes_rate or request_rate here,
//                "<resource>_rate" for RecordUsage (usage.ts, answered through answerVerdict)
//             -- period ('min', 'h', 'd') names the rate that binds; absent means 's', so a per-second
//                throttle keeps the bytes it had before rates had periods
//   -> Denied    { entity: string, reason: string }     -- the principal is blocked: reject the request
// RecordConsume's throttle is the larger of the principal's and the group's bucket.
// The client writes the requests with write.ts and the server reads them in place with read.ts; a body read.ts
// declines comes here through msgpackr (decode), so both are recorded by one function (answer). The server
// writes Ok from a template (responses.ts, OK_BODY) and the client recognises those bytes without decoding them.
import type { QuotaManager, Verdict } from '../../../quota/quota-manager.js';
import { QUOTA_KEYS, type RateKey } from '../../../quota/quota-key.js';
import { PERIOD_SECONDS, type PeriodUnit } from '../../../quota/rate-value.js';
import { encodeFrame } from '../../codec.js';
import { RivvenError } from '../../error-codes.js';
import type { FrameWriter } from '../../frame-writer.js';
import { bool, principalName, uint, type Body } from '../fields.js';
import { type Call, type Message, RESULT_DENIED, RESULT_OK, RESULT_THROTTLED } from '../message.js';
import { numberField, stringField } from '../reply.js';
import { RECORD_CONSUME, RECORD_PRODUCE, RECORD_REQUEST, RecordCall } from './names.js';

export { RECORD_CONSUME, RECORD_PRODUCE, RECORD_REQUEST, RecordCall } from './names.js';
export { RecordReader } from './read.js';
export { writeRecord } from './write.js';

/** What recording needs of the server: the quotas, and the clock reading of the current batch. */
export interface RecordServer {
  readonly quotas: Pick<QuotaManager, 'recordProduce' | 'recordConsume' | 'recordRequest'>;
  readonly now: number;
}

/** Records `r` and writes its verdict; returns the request's RESULT_*. The one place Record requests are answered. */
export function answer(quotas: RecordServer['quotas'], r: RecordCall, now: number, out: FrameWriter, id: number): number {
  let v: Verdict;
  if (r.kind === RECORD_PRODUCE) v = quotas.recordProduce(r.user, r.clientId, r.amount, r.admit, now);
  else if (r.kind === RECORD_CONSUME) v = quotas.recordConsume(r.user, r.clientId, r.consumerGroup, r.amount, r.admit, now);
  else v = quotas.recordRequest(r.user, r.clientId, r.amount, r.admit, now);
  return answerVerdict(v, out, id);
}

/** Writes a verdict as the Record reply (Ok, Throttled with its period, or Denied); returns the RESULT_*. */
export function answerVerdict(v: Verdict, out: FrameWriter, id: number): number {
  if (v.denied) {
    out.frame(encodeFrame(id, encodeDenied(v.entity, v.reason)));
    return RESULT_DENIED;
  }
  if (v.throttleMs === 0) {
    out.ok(id);
    return RESULT_OK;
  }
  out.frame(encodeFrame(id, encodeThrottled(v.throttleMs, v.quotaType, v.entity, v.recorded, v.period)));
  return RESULT_THROTTLED;
}

/** Ok is throttleTimeMs 0; otherwise the broker delays (record mode) or rejects (admit mode) the client. */
export interface RecordResult {
  throttleTimeMs: number;
  /** The rate key that binds: a built-in one, or the called resource's `<resource>_rate` (RecordUsage). */
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

/**
 * A Record call's reply. `quotaTypes` are the keys its Throttled may name: the three built-in ones for
 * RecordProduce, RecordConsume and RecordRequest; only `<resource>_rate` for a RecordUsage of that resource.
 * Any other quota_type is UNEXPECTED_REPLY.
 */
export function decodeReply(body: Body, quotaTypes: readonly string[] = QUOTA_KEYS): RecordResult {
  if (body.type === 'Ok') return OK_RESULT;
  if (body.type === 'Denied') {
    return { throttleTimeMs: 0, recorded: false, denied: { entity: stringField(body, 'entity'), reason: stringField(body, 'reason') } };
  }
  if (body.type !== 'Throttled')
    throw new RivvenError('UNEXPECTED_REPLY', `expected Ok or Throttled, got ${String(body.type).slice(0, 64)}`);
  const quotaType = stringField(body, 'quota_type');
  if (!quotaTypes.includes(quotaType)) throw new RivvenError('UNEXPECTED_REPLY', `unexpected quota_type ${quotaType.slice(0, 64)}`);
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

/** A Record call's parameters, as the client takes them. */
export interface RecordParams {
  user?: string | null;
  clientId?: string | null;
  consumerGroup?: string | null;
  /** bytes for RecordProduce and RecordConsume, count for RecordRequest. */
  amount: number;
  admit?: boolean;
}

function recordCall(kind: number, user: string | null, clientId: string | null, group: string | null, amount: number, admit: boolean) {
  const r = new RecordCall();
  r.kind = kind;
  r.user = user;
  r.clientId = clientId;
  r.consumerGroup = group;
  r.amount = amount;
  r.admit = admit;
  return r;
}

/** The body msgpackr would carry (the client writes the same with write.ts). */
function encode(type: string, amountField: 'bytes' | 'count', p: RecordParams): Body {
  const body: Body = { type };
  if (p.user != null) body.user = p.user;
  if (p.clientId != null) body.client_id = p.clientId;
  if (p.consumerGroup != null && type === 'RecordConsume') body.consumer_group = p.consumerGroup;
  body[amountField] = p.amount;
  if (p.admit) body.admit = true;
  return body;
}

type RecordMessage = Message<RecordCall, RecordServer, RecordParams, RecordResult>;

const handle = (r: RecordCall, server: RecordServer, call: Call): undefined => {
  call.result = answer(server.quotas, r, server.now, call.out, call.id);
  return undefined;
};

export const recordProduce: RecordMessage = {
  type: 'RecordProduce',
  role: 'record',
  decode: (body) =>
    recordCall(
      RECORD_PRODUCE,
      principalName(body, 'user'),
      principalName(body, 'client_id'),
      null,
      uint(body, 'bytes'),
      bool(body, 'admit'),
    ),
  handle,
  encode: (p) => encode('RecordProduce', 'bytes', p),
  decodeReply: (body) => decodeReply(body),
};

export const recordConsume: RecordMessage = {
  type: 'RecordConsume',
  role: 'record',
  decode: (body) =>
    recordCall(
      RECORD_CONSUME,
      principalName(body, 'user'),
      principalName(body, 'client_id'),
      principalName(body, 'consumer_group'),
      uint(body, 'bytes'),
      bool(body, 'admit'),
    ),
  handle,
  encode: (p) => encode('RecordConsume', 'bytes', p),
  decodeReply: (body) => decodeReply(body),
};

export const recordRequest: RecordMessage = {
  type: 'RecordRequest',
  role: 'record',
  decode(body) {
    const count = uint(body, 'count', 1);
    if (count < 1) throw new RivvenError('INVALID_REQUEST', 'count must be at least 1');
    return recordCall(RECORD_REQUEST, principalName(body, 'user'), principalName(body, 'client_id'), null, count, bool(body, 'admit'));
  },
  handle,
  encode: (p) => encode('RecordRequest', 'count', p),
  decodeReply: (body) => decodeReply(body),
};
