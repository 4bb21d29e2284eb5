import fc from 'fast-check';
import { Packr } from 'msgpackr';
import t from 'tap';
import { decodeBody, isPlainMap } from '../../src/protocol/codec.js';
import {
  RECORD_CONSUME,
  RECORD_PRODUCE,
  RECORD_REQUEST,
  RecordCall,
  RecordReader,
  recordConsume,
  recordProduce,
  recordRequest,
  writeRecord,
} from '../../src/protocol/messages/record/index.js';

// The in-place reader and the struct it fills, as the dispatcher owns them.
const fast = new RecordCall();
const reader = new RecordReader();
const decodeRecord = (buf: Buffer, start: number, end: number): boolean => reader.read(buf, start, end, fast);

/** What the generic path makes of a body: the request fields, or null for an error. */
function generic(body: Buffer): Record<string, unknown> | null {
  try {
    const v = decodeBody(body);
    if (!isPlainMap(v)) return null;
    const kinds: Record<string, [typeof recordProduce, number]> = {
      RecordProduce: [recordProduce, RECORD_PRODUCE],
      RecordConsume: [recordConsume, RECORD_CONSUME],
      RecordRequest: [recordRequest, RECORD_REQUEST],
    };
    const k = typeof v.type === 'string' ? kinds[v.type] : undefined;
    if (k === undefined || !Object.hasOwn(kinds, v.type as string)) return null;
    const r = k[0].decode(v);
    return { kind: k[1], user: r.user, clientId: r.clientId, consumerGroup: r.consumerGroup, amount: r.amount, admit: r.admit };
  } catch {
    return null;
  }
}

const decoded = () => ({
  kind: fast.kind,
  user: fast.user,
  clientId: fast.clientId,
  consumerGroup: fast.consumerGroup,
  amount: fast.amount,
  admit: fast.admit,
});

const packers = [
  new Packr({ useRecords: false }),
  new Packr({ useRecords: false, variableMapSize: true }),
  new Packr({ useRecords: false, useFloat32: 1 }),
];

// Values chosen to hit every edge: names of 0, 1, 1024, 1025 bytes, non-ASCII, wrong types, big and odd numbers.
const anyValue = fc.oneof(
  fc.constantFrom(
    null,
    undefined,
    true,
    false,
    0,
    1,
    -1,
    1.5,
    2 ** 32,
    2 ** 53 - 1,
    2 ** 53,
    2 ** 64,
    '',
    'a',
    'x'.repeat(1024),
    'x'.repeat(1025),
    'é',
    'tenant-é', // ASCII, then not: the writer's short-name loop gives up half way
    `${'x'.repeat(31)}é`,
    'é'.repeat(512),
    'ü'.repeat(513),
    [],
    {},
    [1],
  ),
  fc.string({ maxLength: 20 }),
  fc.nat(),
  fc.double(),
);
// Mostly plausible values, so that many bodies are valid and the accepting side is exercised too.
const name = fc.oneof(
  { weight: 6, arbitrary: fc.stringMatching(/^[a-z0-9._-]{1,12}$/) },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 2, arbitrary: anyValue },
);
const amount = fc.oneof(
  { weight: 6, arbitrary: fc.nat() },
  { weight: 1, arbitrary: fc.constantFrom(2 ** 40, 2 ** 53 - 1) },
  { weight: 2, arbitrary: anyValue },
);
const body = fc.record(
  {
    type: fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom('RecordProduce', 'RecordConsume', 'RecordRequest') },
      { weight: 1, arbitrary: fc.constantFrom('Ping', 'recordproduce') },
      { weight: 1, arbitrary: anyValue },
    ),
    user: name,
    client_id: name,
    consumer_group: name,
    bytes: amount,
    count: amount,
    admit: fc.oneof({ weight: 4, arbitrary: fc.boolean() }, { weight: 1, arbitrary: anyValue }),
    extra: anyValue,
  },
  { requiredKeys: ['type'] },
);

t.test('the fast path agrees with the generic path on every body it accepts', async (t) => {
  let accepted = 0;
  fc.assert(
    fc.property(body, fc.integer({ min: 0, max: packers.length - 1 }), (value, p) => {
      const bytes = packers[p]!.pack(value);
      const expected = generic(bytes);
      if (!decodeRecord(bytes, 0, bytes.length)) return true; // declined: the generic path decides
      accepted++;
      return expected !== null && JSON.stringify(decoded()) === JSON.stringify(expected);
    }),
    { numRuns: 5000 },
  );
  t.ok(accepted > 100, `the fast path took ${accepted} of 5000 random bodies`);
});

t.test('the fast path takes the ordinary requests', async (t) => {
  const p = new Packr({ useRecords: false });
  const cases: [unknown, Record<string, unknown>][] = [
    [
      { type: 'RecordProduce', user: 'alice', client_id: 'app-1', bytes: 1024 },
      { kind: RECORD_PRODUCE, user: 'alice', clientId: 'app-1', amount: 1024, admit: false },
    ],
    [
      { type: 'RecordConsume', user: 'a', consumer_group: 'etl', bytes: 2 ** 40, admit: true },
      { kind: RECORD_CONSUME, consumerGroup: 'etl', amount: 2 ** 40, admit: true },
    ],
    [
      { type: 'RecordRequest', client_id: 'c' },
      { kind: RECORD_REQUEST, user: null, clientId: 'c', amount: 1 },
    ],
    [
      { type: 'RecordRequest', count: 7, user: null, unknown_field: 'ignored' },
      { kind: RECORD_REQUEST, amount: 7 },
    ],
  ];
  for (const [value, want] of cases) {
    const bytes = p.pack(value);
    t.ok(decodeRecord(bytes, 0, bytes.length), JSON.stringify(value));
    t.match(decoded(), want);
  }
  const u64 = Buffer.from(
    '83a474797065adRecordRequesta4757365 72a175a5636f756e74cf0000000000000005'
      .replace(/ /g, '')
      .replace('RecordRequest', Buffer.from('RecordRequest').toString('hex')),
    'hex',
  );
  t.ok(decodeRecord(u64, 0, u64.length), 'a uint64-encoded count');
  t.same([fast.amount, generic(u64)?.amount], [5, 5], 'both paths read it as 5');
});

t.test("the client's hand-written Record frames mean what msgpackr would say, and take the server's fast path", async (t) => {
  const { FrameWriter } = await import('../../src/protocol/frame-writer.js');
  const name = fc.option(
    fc.oneof(
      fc.string({ minLength: 1, maxLength: 40 }),
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 400 }),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }),
    ),
    { nil: null },
  );
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 3 }),
      name,
      name,
      name,
      fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 2 ** 32 + 5 }), fc.maxSafeNat()),
      fc.boolean(),
      fc.nat(),
      (kind, user, clientId, group, amount, admit, id) => {
        if (kind === RECORD_REQUEST && amount === 0) amount = 1;
        const w = new FrameWriter();
        writeRecord(w, id, kind, user, clientId, group, amount, admit);
        const frame = w.take()!;
        const body = frame.subarray(8);
        if (frame.readUInt32BE(0) !== body.length + 4 || frame.readUInt32BE(4) !== id) return false;
        const valid = [user, clientId, kind === RECORD_CONSUME ? group : null].every(
          (n) => n === null || (Buffer.byteLength(n) <= 1024 && n.isWellFormed() && !n.includes('\uFFFD')),
        );
        if (!valid) return generic(body) === null; // the server refuses the name, as it should
        const expected = { kind, user, clientId, consumerGroup: kind === RECORD_CONSUME ? group : null, amount, admit };
        if (JSON.stringify(generic(body)) !== JSON.stringify(expected)) return false;
        const ascii = [user, clientId, group].every((n) => n === null || /^[\x00-\x7f]*$/.test(n));
        if (!ascii) return true; // non-ASCII names are the generic path's to decide, by design
        if (!decodeRecord(body, 0, body.length)) return false;
        return JSON.stringify(decoded()) === JSON.stringify(expected);
      },
    ),
    { numRuns: 5000 },
  );
  t.pass('5000 random Record frames agree');
});
