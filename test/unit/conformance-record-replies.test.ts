// The Node client reads every record reply vector as its `expect` says: the same typed result (period included:
// absent on the wire is 's') and the same UNEXPECTED_REPLY the other clients give. A reply is read as its call
// expects it: the built-in keys for RecordProduce, RecordConsume and RecordRequest; for RecordUsage (a vector
// `for` RecordUsage answers a call with resource `orders`, conformance/README.md) only `orders_rate`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { VECTORS_DIR, type Vector } from '../../conformance/generate.js';
import { decodeBody } from '../../src/protocol/codec.js';
import { RivvenError } from '../../src/protocol/error-codes.js';
import type { Body } from '../../src/protocol/messages/fields.js';
import { decodeReply as decodeRecordReply, type RecordResult } from '../../src/protocol/messages/record/index.js';
import { decodeReplyFor } from '../../src/protocol/messages/record/usage.js';

const RECORD = new Set(['RecordProduce', 'RecordConsume', 'RecordRequest', 'RecordUsage']);
/** The reply check of the vector's call. */
const readerFor = (type: string): ((body: Body) => RecordResult) =>
  type === 'RecordUsage' ? decodeReplyFor('orders') : (body) => decodeRecordReply(body);
const vectors = (JSON.parse(readFileSync(join(VECTORS_DIR, 'replies.json'), 'utf8')) as { vectors: Vector[] }).vectors.filter(
  (v) => RECORD.has(v.for!) && v.expect !== undefined && ('record' in v.expect || 'error' in v.expect),
);

t.test('the period vectors are there', async (t) => {
  const names = new Set(vectors.map((v) => v.name));
  for (const name of ['throttled-period-d', 'throttled-period-h-admit-refused', 'throttled-period-s-explicit', 'unexpected-period'])
    t.ok(names.has(name), name);
  for (const name of ['ok-usage', 'throttled-usage', 'denied-usage', 'unexpected-usage-quota-type', 'unexpected-quota-type'])
    t.ok(names.has(name), name);
});

for (const v of vectors) {
  t.test(v.name, async (t) => {
    const body = decodeBody(Buffer.from(v.frame, 'hex').subarray(8)) as Body;
    const expect = v.expect!;
    const decodeReply = readerFor(v.for!);
    if ('error' in expect) {
      const want = expect.error as { code: string };
      let thrown: unknown;
      try {
        decodeReply(body);
      } catch (e) {
        thrown = e;
      }
      t.ok(thrown instanceof RivvenError, 'fails with a RivvenError');
      t.equal((thrown as RivvenError).code, want.code);
      return;
    }
    const want = expect.record as Record<string, unknown>;
    const got = decodeReply(body);
    if ('denied' in want) {
      t.same(got.denied, want.denied);
      return;
    }
    t.equal(got.throttleTimeMs, want.throttle_time_ms);
    if ('quota_type' in want) {
      t.equal(got.quotaType, want.quota_type);
      t.equal(got.entity, want.entity);
      t.equal(got.recorded, want.recorded);
      t.equal(got.period ?? 's', want.period, 'period (absent is s)');
    }
  });
}
