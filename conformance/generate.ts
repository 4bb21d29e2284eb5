// Writes conformance/vectors/*.json from the TypeScript implementation: every request as the Node client
// encodes it, every reply as the server encodes it, each as an object and as the exact frame bytes.
//   node --import tsx conformance/generate.ts           writes the files
//   node --import tsx conformance/generate.ts --check   exits 1 if the files on disk differ (test/unit/conformance-vectors.test.ts)
// The format is documented in conformance/README.md. Everything here is deterministic: fixed names, ids and
// values, no clock, no randomness, so a regeneration only differs when the code's encoding changed.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeBody, encodeFrame } from '../src/protocol/codec.js';
import { ERROR_CODES, type ErrorCode, isRetriable } from '../src/protocol/error-codes.js';
import { FrameWriter } from '../src/protocol/frame-writer.js';
import { ListReplyBuilder } from '../src/protocol/list-reply.js';
import * as acquireLease from '../src/protocol/messages/acquire-lease.js';
import * as alterQuotas from '../src/protocol/messages/alter-quotas.js';
import type { QuotaAlteration } from '../src/protocol/messages/alter-quotas.js';
import * as describeFleet from '../src/protocol/messages/describe-fleet.js';
import * as describeQuotas from '../src/protocol/messages/describe-quotas.js';
import * as describeUsage from '../src/protocol/messages/describe-usage.js';
import * as describeViolations from '../src/protocol/messages/describe-violations.js';
import * as hello from '../src/protocol/messages/hello.js';
import * as ping from '../src/protocol/messages/ping.js';
import * as recordReply from '../src/protocol/messages/record/index.js';
import * as resetUsage from '../src/protocol/messages/reset-usage.js';
import { RECORD_CONSUME, RECORD_PRODUCE, RECORD_REQUEST, writeRecord } from '../src/protocol/messages/record/index.js';
import { errorFrame } from '../src/protocol/responses.js';
import { OK_BODY, PONG_BODY } from '../src/protocol/responses.js';
import { frame } from '../src/protocol/codec.js';
import type { Component } from '../src/quota/entity.js';
import type { PeriodUnit } from '../src/quota/rate-value.js';

export const VECTORS_DIR = new URL('./vectors/', import.meta.url).pathname;
export const FORMAT = 1;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export interface Vector {
  name: string;
  /** request: a client writes it; reply: a client reads it. */
  direction: 'request' | 'reply';
  /** The body's `type`. */
  type: string;
  correlation_id: number;
  /** requests: the client call that writes this frame (method and arguments, wire field names). */
  call?: { method: string; args: Record<string, Json> };
  /** requests: true when the Node client's bytes are the ones every client should write (the record requests). */
  exact?: boolean;
  /** replies: the request type it answers (how a client decodes it). */
  for?: string;
  object: Json;
  /** The whole frame: length, correlation id, msgpack body; lowercase hex. */
  frame: string;
  /** replies: what a client makes of it (see conformance/README.md). */
  expect?: Record<string, Json>;
}

export interface VectorFile {
  format: number;
  description: string;
  vectors: Vector[];
}

// Largest values the protocol allows, and names of multi-byte UTF-8 at the 1024-byte limit.
const MAX_INT = Number.MAX_SAFE_INTEGER; // 2^53-1
const MAX_ID = 0xffffffff;
/** 1024 bytes: 341 three-byte characters and one ASCII letter. */
const NAME_3BYTE = `${'€'.repeat(341)}x`;
/** 1024 bytes of four-byte characters (outside the BMP: surrogate pairs in UTF-16 languages). */
const NAME_4BYTE = '🦀'.repeat(256);
/** Two-byte, three-byte and four-byte characters mixed. */
const NAME_MIXED = 'ünïcødé-名前-🚀';

const hex = (b: Buffer): string => b.toString('hex');
/** The object a frame carries, as JSON: decoded from the frame itself, so object and bytes cannot disagree. */
const objectOf = (f: Buffer): Json => decodeBody(f.subarray(8)) as Json;

function recordFrame(
  id: number,
  kind: number,
  user: string | null,
  clientId: string | null,
  group: string | null,
  amount: number,
  admit: boolean,
): Buffer {
  const w = new FrameWriter();
  writeRecord(w, id, kind, user, clientId, group, amount, admit);
  return w.take()!;
}

function request(name: string, id: number, method: string, args: Record<string, Json>, f: Buffer, exact = false): Vector {
  const object = objectOf(f);
  const v: Vector = {
    name,
    direction: 'request',
    type: (object as { type: string }).type,
    correlation_id: id,
    call: { method, args },
    object,
    frame: hex(f),
  };
  if (exact) v.exact = true;
  return v;
}

function reply(name: string, id: number, forType: string, f: Buffer, expect?: Record<string, Json>): Vector {
  const object = objectOf(f);
  const v: Vector = {
    name,
    direction: 'reply',
    type: (object as { type: string }).type,
    correlation_id: id,
    for: forType,
    object,
    frame: hex(f),
  };
  if (expect !== undefined) v.expect = expect;
  return v;
}

/** The Node client's generic request path: the module's encoder, absent fields dropped, msgpackr. */
const generic = (id: number, body: Record<string, unknown>): Buffer => {
  const out: Record<string, unknown> = {};
  for (const k in body) if (body[k] !== undefined) out[k] = body[k];
  return encodeFrame(id, out);
};

function requests(): Vector[] {
  const v: Vector[] = [];
  const rec = (
    name: string,
    id: number,
    method: string,
    kind: number,
    p: { user?: string; client_id?: string; consumer_group?: string; amount: number; admit?: boolean },
  ) => {
    const args: Record<string, Json> = {};
    if (p.user !== undefined) args.user = p.user;
    if (p.client_id !== undefined) args.client_id = p.client_id;
    if (p.consumer_group !== undefined) args.consumer_group = p.consumer_group;
    args[kind === RECORD_REQUEST ? 'count' : 'bytes'] = p.amount;
    if (p.admit) args.admit = true;
    const f = recordFrame(id, kind, p.user ?? null, p.client_id ?? null, p.consumer_group ?? null, p.amount, p.admit === true);
    v.push(request(name, id, method, args, f, true));
  };
  v.push(request('hello-minimal', 1, 'hello', {}, generic(1, hello.encodeRequest(undefined, undefined))));
  v.push(
    request(
      'hello-name-and-token',
      1,
      'hello',
      { client_name: 'broker-1', token: 'rvn_0123456789abcdef' },
      generic(1, hello.encodeRequest('broker-1', 'rvn_0123456789abcdef')),
    ),
  );
  const longToken = 't'.repeat(hello.MAX_TOKEN_CHARS);
  v.push(
    request(
      'hello-largest',
      MAX_ID,
      'hello',
      { client_name: NAME_3BYTE, token: longToken },
      generic(MAX_ID, hello.encodeRequest(NAME_3BYTE, longToken)),
    ),
  );
  v.push(request('ping', 7, 'ping', {}, generic(7, ping.encodeRequest())));

  rec('record-produce', 42, 'recordProduce', RECORD_PRODUCE, { user: 'alice', client_id: 'app-1', amount: 1024 });
  rec('record-produce-user-only', 43, 'recordProduce', RECORD_PRODUCE, { user: 'alice', amount: 1 });
  rec('record-produce-client-only', 44, 'recordProduce', RECORD_PRODUCE, { client_id: 'app-1', amount: 200 });
  rec('record-produce-anonymous', 45, 'recordProduce', RECORD_PRODUCE, { amount: 0 });
  rec('record-produce-admit', 46, 'recordProduce', RECORD_PRODUCE, { user: 'alice', client_id: 'app-1', amount: 65536, admit: true });
  rec('record-produce-largest', MAX_ID, 'recordProduce', RECORD_PRODUCE, { user: NAME_3BYTE, client_id: NAME_4BYTE, amount: MAX_INT });
  rec('record-produce-utf8', 47, 'recordProduce', RECORD_PRODUCE, { user: NAME_MIXED, client_id: 'ü', amount: 4294967296 });
  rec('record-produce-name-31-bytes', 48, 'recordProduce', RECORD_PRODUCE, {
    user: 'a'.repeat(31),
    client_id: 'b'.repeat(32),
    amount: 255,
  });
  rec('record-produce-name-255-bytes', 49, 'recordProduce', RECORD_PRODUCE, {
    user: 'c'.repeat(255),
    client_id: 'd'.repeat(256),
    amount: 65535,
  });
  rec('record-consume', 50, 'recordConsume', RECORD_CONSUME, { user: 'bob', client_id: 'etl-7', consumer_group: 'etl', amount: 4096 });
  rec('record-consume-no-group', 51, 'recordConsume', RECORD_CONSUME, { user: 'bob', amount: 128 });
  rec('record-consume-largest', 52, 'recordConsume', RECORD_CONSUME, {
    user: NAME_4BYTE,
    client_id: NAME_3BYTE,
    consumer_group: NAME_MIXED,
    amount: MAX_INT,
    admit: true,
  });
  rec('record-request', 53, 'recordRequest', RECORD_REQUEST, { user: 'carol', client_id: 'svc', amount: 1 });
  rec('record-request-count', 54, 'recordRequest', RECORD_REQUEST, { client_id: 'svc', amount: 5, admit: true });
  rec('record-request-largest', 55, 'recordRequest', RECORD_REQUEST, { user: 'carol', amount: MAX_INT });

  // RecordUsage (a named resource, DESIGN section 16): not on the record fast path, so not `exact`. Written as the
  // Node client writes it (src/protocol/messages/record/usage.ts): type, resource, user, client_id, amount (left
  // out when 1, the default), admit (only when true); absent names left out.
  const usage = (
    name: string,
    id: number,
    p: { user?: string; client_id?: string; resource: string; amount?: number; admit?: boolean },
  ) => {
    const args: Record<string, Json> = {};
    if (p.user !== undefined) args.user = p.user;
    if (p.client_id !== undefined) args.client_id = p.client_id;
    args.resource = p.resource;
    if (p.amount !== undefined) args.amount = p.amount;
    if (p.admit) args.admit = true;
    const body = {
      type: 'RecordUsage',
      resource: p.resource,
      user: p.user,
      client_id: p.client_id,
      amount: p.amount === undefined || p.amount === 1 ? undefined : p.amount,
      admit: p.admit === true ? true : undefined,
    };
    v.push(request(name, id, 'recordUsage', args, generic(id, body)));
  };
  usage('record-usage', 56, { user: 'alice', client_id: 'app-1', resource: 'orders', amount: 3 });
  usage('record-usage-default-amount', 57, { user: 'alice', resource: 'orders' });
  usage('record-usage-admit', 58, { client_id: 'app-1', resource: 'services', amount: 1, admit: true });
  usage('record-usage-largest', 59, {
    user: NAME_4BYTE,
    client_id: NAME_MIXED,
    resource: 'orders_per_customer_and_merchant',
    amount: MAX_INT,
  });

  const entities: Component[] = [
    ['user', 'alice'],
    ['client-id', null],
  ];
  v.push(request('describe-quotas-all', 60, 'describeQuotas', { entities: [] }, generic(60, describeQuotas.encodeRequest([]))));
  v.push(request('describe-quotas-filtered', 61, 'describeQuotas', { entities }, generic(61, describeQuotas.encodeRequest(entities))));
  const many: Component[] = Array.from({ length: describeQuotas.MAX_FILTER_COMPONENTS }, (_, i) => ['user', `u${i}`]);
  v.push(request('describe-quotas-largest', 62, 'describeQuotas', { entities: many }, generic(62, describeQuotas.encodeRequest(many))));

  const alterations: QuotaAlteration[] = [
    { entity: [['user', 'alice']], quota_key: 'produce_bytes_rate', quota_value: 1048576 },
    {
      entity: [
        ['user', 'alice'],
        ['client-id', 'app-1'],
      ],
      quota_key: 'request_rate',
      quota_value: 'unlimited',
    },
    { entity: [['client-id', null]], quota_key: 'consume_bytes_rate', quota_value: null },
    { entity: [['consumer-group', 'etl']], quota_key: 'consume_bytes_rate', quota_value: 2048, shadow: true },
    { entity: [['default', null]], quota_key: 'request_rate', quota_value: MAX_INT },
    { entity: [['tier', 'pro']], quota_key: 'produce_bytes_burst', quota_value: 10485760 },
    { entity: [['user', NAME_MIXED]], quota_key: 'tier', quota_value: 'pro' },
    { entity: [['user', 'mallory']], quota_key: 'blocked', quota_value: `abuse: ${'ß'.repeat(240)}` },
    { entity: [['user', 'alice']], quota_key: 'max_in_flight', quota_value: 8 },
  ];
  v.push(
    request(
      'alter-quotas',
      63,
      'alterQuotas',
      { alterations: alterations as unknown as Json, validate_only: false },
      generic(63, alterQuotas.encodeRequest(alterations, false)),
    ),
  );
  const unblock: QuotaAlteration[] = [{ entity: [['user', 'mallory']], quota_key: 'blocked', quota_value: null }];
  v.push(
    request(
      'alter-quotas-validate-only',
      64,
      'alterQuotas',
      { alterations: unblock as unknown as Json, validate_only: true },
      generic(64, alterQuotas.encodeRequest(unblock, true)),
    ),
  );

  v.push(request('describe-usage', 65, 'describeUsage', {}, generic(65, describeUsage.encodeRequest({}))));
  v.push(
    request(
      'describe-usage-largest',
      66,
      'describeUsage',
      { entities, top: describeUsage.MAX_TOP, sort_by: 'rate' },
      generic(66, describeUsage.encodeRequest({ entities, top: describeUsage.MAX_TOP, sortBy: 'rate' })),
    ),
  );
  v.push(
    request(
      'reset-usage',
      67,
      'resetUsage',
      { entities: [['user', NAME_MIXED]] },
      generic(67, resetUsage.encodeRequest([['user', NAME_MIXED]])),
    ),
  );
  v.push(request('acquire-lease', 68, 'acquireLease', { user: 'alice' }, generic(68, acquireLease.encodeRequest({ user: 'alice' }))));
  v.push(
    request(
      'acquire-lease-largest',
      69,
      'acquireLease',
      { user: NAME_4BYTE, client_id: 'app-1', ttl_ms: acquireLease.MAX_TTL_MS },
      generic(69, acquireLease.encodeRequest({ user: NAME_4BYTE, clientId: 'app-1', ttlMs: acquireLease.MAX_TTL_MS })),
    ),
  );
  v.push(
    request(
      'release-lease',
      70,
      'releaseLease',
      { lease_id: 'l-0123456789abcdef' },
      generic(70, acquireLease.encodeRelease('l-0123456789abcdef')),
    ),
  );
  v.push(request('describe-violations', 71, 'describeViolations', {}, generic(71, describeViolations.encodeRequest({}))));
  const dv = {
    sinceMs: MAX_INT,
    entities,
    types: ['RATE_LIMIT_EXCEEDED', 'BLOCKED'] as describeViolations.ViolationType[],
    limit: describeViolations.MAX_LIMIT,
  };
  v.push(
    request(
      'describe-violations-largest',
      72,
      'describeViolations',
      { since_ms: MAX_INT, entities, types: dv.types, limit: dv.limit },
      generic(72, describeViolations.encodeRequest(dv)),
    ),
  );
  v.push(request('describe-fleet', 73, 'describeFleet', {}, generic(73, describeFleet.encodeRequest())));
  return v;
}

function listReply(id: number, type: string, field: string, items: unknown[]): Buffer {
  const b = new ListReplyBuilder(type, field, 16 * 1024 * 1024);
  for (const item of items) b.add(item);
  return b.frame(id);
}

function replies(): Vector[] {
  const v: Vector[] = [];
  const enc = (id: number, body: Record<string, unknown>) => encodeFrame(id, body);
  v.push(reply('hello-ok', 1, 'Hello', enc(1, hello.encodeReply({ protocolVersion: 1, serverVersion: '0.1.0' }))));
  v.push(reply('pong', 7, 'Ping', frame(7, PONG_BODY)));
  v.push(reply('ok', 42, 'RecordProduce', frame(42, OK_BODY), { broker: 0, record: { throttle_time_ms: 0 } }));
  v.push(reply('ok-largest-id', MAX_ID, 'RecordRequest', frame(MAX_ID, OK_BODY), { broker: 0, record: { throttle_time_ms: 0 } }));
  const throttled = (
    id: number,
    ms: number,
    key: recordReply.RecordResult['quotaType'] & string,
    entity: string,
    recorded: boolean,
    period: PeriodUnit = 's',
  ) => enc(id, recordReply.encodeThrottled(ms, key, entity, recorded, period));
  // `period` is in every Throttled expectation: absent on the wire means 's', and a client says so.
  const rt = (ms: number, key: string, entity: string, recorded: boolean, period: PeriodUnit = 's') => ({
    broker: ms,
    record: { throttle_time_ms: ms, quota_type: key, entity, recorded, period },
  });
  v.push(
    reply(
      'throttled',
      43,
      'RecordProduce',
      throttled(43, 250, 'produce_bytes_rate', 'user:alice', true),
      rt(250, 'produce_bytes_rate', 'user:alice', true),
    ),
  );
  v.push(
    reply(
      'throttled-admit-refused',
      46,
      'RecordProduce',
      throttled(46, 1000, 'produce_bytes_rate', 'user:alice/client-id:app-1', false),
      rt(1000, 'produce_bytes_rate', 'user:alice/client-id:app-1', false),
    ),
  );
  v.push(
    reply(
      'throttled-consumer-group',
      50,
      'RecordConsume',
      throttled(50, 65535, 'consume_bytes_rate', 'consumer-group:etl', true),
      rt(65535, 'consume_bytes_rate', 'consumer-group:etl', true),
    ),
  );
  const bigEntity = `user:${NAME_4BYTE}/client-id:${NAME_3BYTE}`;
  v.push(
    reply(
      'throttled-largest',
      53,
      'RecordRequest',
      throttled(53, 4294967295, 'request_rate', bigEntity, true),
      rt(4294967295, 'request_rate', bigEntity, true),
    ),
  );
  // Several rates on one key (DESIGN section 16): `period` names the one that binds.
  v.push(
    reply(
      'throttled-period-d',
      54,
      'RecordRequest',
      throttled(54, 43200000, 'request_rate', 'user:carol', true, 'd'),
      rt(43200000, 'request_rate', 'user:carol', true, 'd'),
    ),
  );
  v.push(
    reply(
      'throttled-period-h-admit-refused',
      55,
      'RecordProduce',
      throttled(55, 1800000, 'produce_bytes_rate', 'user:alice', false, 'h'),
      rt(1800000, 'produce_bytes_rate', 'user:alice', false, 'h'),
    ),
  );
  // 's' written out is what an absent period means; a reader takes it (the server leaves it out).
  v.push(
    reply(
      'throttled-period-s-explicit',
      57,
      'RecordRequest',
      enc(57, { type: 'Throttled', throttle_time_ms: 20, quota_type: 'request_rate', entity: 'user:carol', recorded: true, period: 's' }),
      rt(20, 'request_rate', 'user:carol', true),
    ),
  );
  // RecordUsage is answered like the Record requests, quota_type "<resource>_rate". A client's reply check calls
  // recordUsage with resource `orders` (conformance/README.md).
  v.push(reply('ok-usage', 56, 'RecordUsage', frame(56, OK_BODY), { broker: 0, record: { throttle_time_ms: 0 } }));
  v.push(
    reply(
      'throttled-usage',
      58,
      'RecordUsage',
      throttled(58, 6000, 'orders_rate' as never, 'user:alice/client-id:app-1', true, 'min'),
      rt(6000, 'orders_rate', 'user:alice/client-id:app-1', true, 'min'),
    ),
  );
  const denied = (id: number, entity: string, reason: string) => enc(id, recordReply.encodeDenied(entity, reason));
  v.push(
    reply('denied', 44, 'RecordProduce', denied(44, 'user:mallory', 'abuse'), {
      broker: -1,
      record: { denied: { entity: 'user:mallory', reason: 'abuse' } },
    }),
  );
  v.push(
    reply('denied-usage', 59, 'RecordUsage', denied(59, 'user:mallory', 'abuse'), {
      broker: -1,
      record: { denied: { entity: 'user:mallory', reason: 'abuse' } },
    }),
  );
  const reason = `blocked by ops: ${'ß'.repeat(240)}`;
  v.push(
    reply('denied-utf8', 51, 'RecordConsume', denied(51, `user:${NAME_MIXED}`, reason), {
      broker: -1,
      record: { denied: { entity: `user:${NAME_MIXED}`, reason } },
    }),
  );
  // Replies a client must refuse as UNEXPECTED_REPLY (BrokerQuotas: answer 0, count a failure).
  v.push(
    reply('unexpected-reply-type', 45, 'RecordProduce', frame(45, PONG_BODY), {
      broker: 0,
      error: { code: 'UNEXPECTED_REPLY', retriable: false },
    }),
  );
  v.push(
    reply(
      'unexpected-quota-type',
      47,
      'RecordProduce',
      enc(47, { type: 'Throttled', throttle_time_ms: 5, quota_type: 'bogus_rate', entity: 'user:a', recorded: true }),
      { broker: 0, error: { code: 'UNEXPECTED_REPLY', retriable: false } },
    ),
  );
  v.push(
    reply(
      'unexpected-period',
      48,
      'RecordRequest',
      enc(48, { type: 'Throttled', throttle_time_ms: 5, quota_type: 'request_rate', entity: 'user:a', recorded: true, period: 'w' }),
      { broker: 0, error: { code: 'UNEXPECTED_REPLY', retriable: false } },
    ),
  );
  v.push(
    reply(
      'unexpected-usage-quota-type',
      49,
      'RecordUsage',
      enc(49, { type: 'Throttled', throttle_time_ms: 5, quota_type: 'request_rate', entity: 'user:a', recorded: true }),
      { broker: 0, error: { code: 'UNEXPECTED_REPLY', retriable: false } },
    ),
  );

  const entries: describeQuotas.QuotaEntry[] = [
    { entity: [['default', null]], quotas: { produce_bytes_rate: 'unlimited', consume_bytes_rate: 'unlimited', request_rate: MAX_INT } },
    {
      entity: [
        ['user', 'alice'],
        ['client-id', 'app-1'],
      ],
      quotas: { request_rate: 100, tier: 'pro' },
      shadow: ['request_rate'],
    },
    { entity: [['user', NAME_MIXED]], quotas: { blocked: 'abuse' } },
    { entity: [['tier', 'pro']], quotas: { produce_bytes_rate: 10485760, produce_bytes_burst: 20971520 } },
  ];
  v.push(
    reply('quotas-described', 60, 'DescribeQuotas', listReply(60, describeQuotas.REPLY_TYPE, describeQuotas.REPLY_LIST_FIELD, entries)),
  );
  v.push(
    reply('quotas-described-empty', 61, 'DescribeQuotas', listReply(61, describeQuotas.REPLY_TYPE, describeQuotas.REPLY_LIST_FIELD, [])),
  );
  const many = Array.from({ length: 20 }, (_, i) => ({ entity: [['user', `u${i}`]], quotas: { request_rate: i + 1 } }));
  v.push(
    reply(
      'quotas-described-array32',
      62,
      'DescribeQuotas',
      listReply(62, describeQuotas.REPLY_TYPE, describeQuotas.REPLY_LIST_FIELD, many),
    ),
  );
  v.push(reply('quotas-altered', 63, 'AlterQuotas', enc(63, alterQuotas.encodeReply(9))));
  const usage: describeUsage.BucketUsage[] = [
    {
      entity: 'user:alice/client-id:app-1',
      user: 'alice',
      client_id: 'app-1',
      consumer_group: null,
      quota_type: 'produce_bytes_rate',
      rate: 1536.5,
      limit: 1048576,
      utilization: 1.25,
      throttled_total: 17,
      // Epoch ms: past 2^32, which msgpackr writes as a float64 holding an integer (readers must take both).
      last_seen_ms: 1767225600123,
    },
    {
      entity: 'max_in_flight:user:alice',
      quota_type: 'max_in_flight',
      rate: 3,
      limit: 8,
      utilization: 0.375,
      throttled_total: 0,
      last_seen_ms: 1767225600000,
    },
  ];
  v.push(reply('usage-described', 65, 'DescribeUsage', listReply(65, describeUsage.REPLY_TYPE, describeUsage.REPLY_LIST_FIELD, usage)));
  v.push(reply('usage-reset', 67, 'ResetUsage', enc(67, resetUsage.encodeReply(12))));
  v.push(reply('lease-granted', 68, 'AcquireLease', enc(68, acquireLease.encodeGranted('l-0123456789abcdef', 30000))));
  v.push(
    reply('lease-refused', 69, 'AcquireLease', throttled(69, 1200, 'max_in_flight' as never, 'user:alice', false), {
      lease: { granted: false, throttle_time_ms: 1200, entity: 'user:alice' },
    }),
  );
  v.push(reply('lease-released', 70, 'ReleaseLease', frame(70, OK_BODY)));
  const events: describeViolations.ViolationEvent[] = [
    {
      time: '2026-01-01T00:00:00.000Z',
      type: 'RATE_LIMIT_EXCEEDED',
      entity: 'user:alice',
      quota_type: 'produce_bytes_rate',
      detail: 'throttled 250 ms',
      count: 1,
      reported_by: 'broker-1',
    },
    {
      time: '2026-01-01T00:00:01.500Z',
      type: 'BLOCKED',
      entity: `user:${NAME_MIXED}`,
      quota_type: null,
      detail: 'abuse',
      count: 3,
      reported_by: 'anonymous',
    },
  ];
  const summary = {
    total: 4,
    by_type: { RATE_LIMIT_EXCEEDED: 1, BLOCKED: 3 },
    top_entities: [
      { entity: `user:${NAME_MIXED}`, count: 3 },
      { entity: 'user:alice', count: 1 },
    ],
  };
  v.push(reply('violations-described', 71, 'DescribeViolations', enc(71, describeViolations.encodeReply({ events, summary }))));
  v.push(reply('fleet-described-disabled', 73, 'DescribeFleet', enc(73, describeFleet.encodeReply({ ...describeFleet.DISABLED }))));
  v.push(
    reply(
      'fleet-described',
      74,
      'DescribeFleet',
      enc(
        74,
        describeFleet.encodeReply({
          enabled: true,
          node_id: 'node-a',
          backend: 'redis://127.0.0.1:6379 (prefix rivven:)',
          breaker: 'closed',
          live: 2,
          sync_lag_ms: 40,
          last_error: null,
          sidecars: [
            {
              node_id: 'node-a',
              seen_ms_ago: 0,
              sync_lag_ms: 40,
              breaker: 'closed',
              buckets: 12,
              queued: 0,
              config_version: 3,
              sync_interval_ms: 100,
              settings: '0a1b2c3d',
              instance: 'f00dfeed',
            },
            {
              node_id: 'node-b',
              seen_ms_ago: 900,
              sync_lag_ms: -1,
              breaker: 'half-open',
              buckets: 0,
              queued: 5,
              config_version: 3,
              sync_interval_ms: 100,
              settings: '0a1b2c3d',
              instance: 'beefcafe',
            },
          ],
        }),
      ),
    ),
  );
  return v;
}

function errors(): Vector[] {
  const v: Vector[] = [];
  const codes = Object.keys(ERROR_CODES) as ErrorCode[];
  codes.forEach((code, i) => {
    const id = 100 + i;
    v.push(
      reply(`error-${code.toLowerCase().replaceAll('_', '-')}`, id, 'Ping', errorFrame(id, code, ERROR_CODES[code]), {
        error: { code, retriable: isRetriable(code) },
      }),
    );
  });
  v.push(
    reply(
      'error-with-index',
      63,
      'AlterQuotas',
      errorFrame(63, 'INVALID_QUOTA_VALUE', 'request_rate: "10/fortnight": unknown unit "fortnight"; use s, min, h or d', 3),
      { error: { code: 'INVALID_QUOTA_VALUE', retriable: false, index: 3 } },
    ),
  );
  v.push(
    reply('error-utf8-message', 64, 'AlterQuotas', errorFrame(64, 'INVALID_ENTITY', `user name "${NAME_MIXED}" is not valid`, 0), {
      error: { code: 'INVALID_ENTITY', retriable: false, index: 0 },
    }),
  );
  // A record call answered with an Error: BrokerQuotas answers 0 (fail open) and counts a failure.
  v.push(
    reply('error-on-record', 42, 'RecordProduce', errorFrame(42, 'OVERLOADED', 'too many connections'), {
      broker: 0,
      error: { code: 'OVERLOADED', retriable: true },
    }),
  );
  // Connection-level errors: correlation id 0, after which the server closes the connection. Every call in flight
  // on that connection fails with this error.
  v.push(
    reply('error-connection-frame-too-large', 0, '*', errorFrame(0, 'FRAME_TOO_LARGE', 'frame of 2147483647 bytes exceeds 1048576'), {
      error: { code: 'FRAME_TOO_LARGE', retriable: false, connection: true },
    }),
  );
  v.push(
    reply('error-connection-invalid-frame', 0, '*', errorFrame(0, 'INVALID_FRAME', 'frame length 2 is below 4'), {
      error: { code: 'INVALID_FRAME', retriable: false, connection: true },
    }),
  );
  // A code this client does not know (a newer server): kept as INTERNAL_ERROR, not a crash.
  v.push(
    reply(
      'error-unknown-code',
      110,
      'Ping',
      encodeFrame(110, { type: 'Error', code: 'SOME_FUTURE_CODE', message: 'from a newer server' }),
      { error: { code: 'INTERNAL_ERROR', retriable: false } },
    ),
  );
  return v;
}

export function buildVectors(): Record<string, VectorFile | { format: number; description: string; codes: Json[] }> {
  return {
    'requests.json': {
      format: FORMAT,
      description:
        'Every request as the Node client writes it. A client must write a frame with this header and a body equal to object (exact: these bytes).',
      vectors: requests(),
    },
    'replies.json': {
      format: FORMAT,
      description: 'Every reply as the server writes it. A client must read frame as object, and as expect says.',
      vectors: replies(),
    },
    'errors.json': {
      format: FORMAT,
      description:
        'Error replies: one per code of the table, with index, on a record call, connection-level (correlation id 0), unknown code.',
      vectors: errors(),
    },
    'error-codes.json': {
      format: FORMAT,
      description: 'The one error table (src/protocol/error-codes.ts): each code, whether it is retriable, what it means.',
      codes: (Object.keys(ERROR_CODES) as ErrorCode[]).map((code) => ({ code, retriable: isRetriable(code), meaning: ERROR_CODES[code] })),
    },
  };
}

/** The files' text, exactly as written to disk. */
export function renderVectors(): Map<string, string> {
  const out = new Map<string, string>();
  // One vector (or code) per line: diffs name what changed, and the files stay small.
  for (const [file, content] of Object.entries(buildVectors())) {
    const { format, description, ...rest } = content;
    const [[key, items]] = Object.entries(rest) as [[string, unknown[]]];
    const lines = items.map((item) => JSON.stringify(item)).join(',\n');
    out.set(file, `{"format":${format},"description":${JSON.stringify(description)},"${key}":[\n${lines}\n]}\n`);
  }
  return out;
}

function main(): void {
  const check = process.argv.includes('--check');
  let drift = 0;
  for (const [file, text] of renderVectors()) {
    const path = join(VECTORS_DIR, file);
    if (check) {
      let current = '';
      try {
        current = readFileSync(path, 'utf8');
      } catch {}
      if (current !== text) {
        process.stderr.write(`${path} differs from what the code generates: run node --import tsx conformance/generate.ts\n`);
        drift++;
      }
    } else writeFileSync(path, text);
  }
  process.exitCode = drift === 0 ? 0 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) main();
