import t from 'tap';
import { encodeBody } from '../src/protocol/codec.js';
import { startServer, type TestServer } from './helpers/server.js';
import { rawFrame, WirePeer } from './helpers/wire.js';

let server: TestServer;
t.before(async () => {
  server = await startServer({ quotas: { defaults: { produce_bytes_rate: 1000, consume_bytes_rate: 1000, request_rate: 10 } } });
});
t.teardown(() => server.stop());

const connect = () => WirePeer.connect(server.port);

t.test('every request type over the wire', async (t) => {
  const c = await connect();
  t.teardown(() => c.close());
  t.match(await c.request({ type: 'Hello', protocol_version: 1, client_name: 'broker-1' }), {
    type: 'HelloOk',
    protocol_version: 1,
    server_version: /^\d+\.\d+\.\d+/,
  });
  t.same(await c.request({ type: 'Ping' }), { type: 'Pong' });
  t.same(await c.request({ type: 'RecordProduce', user: 'p1', client_id: 'app', bytes: 1000 }), { type: 'Ok', throttle_time_ms: 0 });
  t.same(await c.request({ type: 'RecordProduce', user: 'p1', client_id: 'app', bytes: 500 }), {
    type: 'Throttled',
    throttle_time_ms: 500,
    quota_type: 'produce_bytes_rate',
    entity: 'user:p1/client-id:app',
    recorded: true,
  });
  t.same(await c.request({ type: 'RecordConsume', user: 'p1', client_id: 'app', consumer_group: 'etl', bytes: 10 }), {
    type: 'Ok',
    throttle_time_ms: 0,
  });
  t.same(await c.request({ type: 'RecordRequest', client_id: 'only-client' }), { type: 'Ok', throttle_time_ms: 0 });
  t.same(await c.request({ type: 'AlterQuotas', alterations: [{ entity: [['user', 'p2']], quota_key: 'request_rate', quota_value: 2 }] }), {
    type: 'QuotasAltered',
    altered_count: 1,
  });
  t.same(await c.request({ type: 'DescribeQuotas', entities: [['user', 'p2']] }), {
    type: 'QuotasDescribed',
    entries: [{ entity: [['user', 'p2']], quotas: { request_rate: 2 } }],
  });
  const all = (await c.request({ type: 'DescribeQuotas' })) as { entries: { entity: unknown; quotas: unknown }[] };
  t.same(
    all.entries[0],
    { entity: [['default', null]], quotas: { produce_bytes_rate: 1000, consume_bytes_rate: 1000, request_rate: 10 } },
    'the global default comes first',
  );
});

t.test('admit mode over the wire: exactly the quota, then Throttled{recorded: false} until the clock moves', async (t) => {
  const c = await connect();
  t.teardown(() => c.close());
  await c.request({
    type: 'AlterQuotas',
    alterations: [{ entity: [['client-id', 'admit-app']], quota_key: 'request_rate', quota_value: 10 }],
  });
  for (let i = 0; i < 11; i++) c.send(i, { type: 'RecordRequest', client_id: 'admit-app', admit: true });
  const replies = (await c.waitFor(12)).slice(1);
  t.same(
    replies.slice(0, 10).map((r) => r.body.type),
    new Array(10).fill('Ok'),
    '10 admitted',
  );
  t.same(
    replies[10]!.body,
    { type: 'Throttled', throttle_time_ms: 100, quota_type: 'request_rate', entity: 'client-id:admit-app', recorded: false },
    'the 11th refused',
  );
  server.clock.advance(100);
  t.same(await c.request({ type: 'RecordRequest', client_id: 'admit-app', admit: true }), { type: 'Ok', throttle_time_ms: 0 });
});

t.test('1000 pipelined requests in one write are answered in order', async (t) => {
  const c = await connect();
  t.teardown(() => c.close());
  const kinds = [
    { type: 'Ping' },
    { type: 'RecordRequest', user: 'pipeline', count: 1 },
    { type: 'DescribeQuotas', entities: [['user', 'nobody']] },
    { type: 'Nope' },
    { type: 'AlterQuotas', alterations: [{ entity: [['user', 'pipe']], quota_key: 'request_rate', quota_value: 5 }], validate_only: true },
  ];
  const frames = Array.from({ length: 1000 }, (_, i) => {
    const body = encodeBody(kinds[i % kinds.length]);
    return rawFrame(body.length + 4, 5000 + i, body);
  });
  c.sendRaw(Buffer.concat(frames));
  const replies = await c.waitFor(1000);
  t.same(
    replies.map((r) => r.correlationId),
    Array.from({ length: 1000 }, (_, i) => 5000 + i),
    'correlation ids in request order',
  );
  const expected = ['Pong', undefined, 'QuotasDescribed', 'Error', 'QuotasAltered'];
  const mismatches = replies.filter((r, i) => expected[i % 5] !== undefined && r.body.type !== expected[i % 5]);
  t.same(mismatches, [], 'each reply matches its request');
});

/** Cases whose connection must stay open after the Error. */
const requestErrors: { name: string; body: Buffer; code: string; index?: number }[] = [
  { name: 'body not msgpack', body: Buffer.from([0xc1]), code: 'INVALID_REQUEST' },
  { name: 'truncated msgpack', body: Buffer.from([0x82, 0xa4]), code: 'INVALID_REQUEST' },
  { name: 'trailing bytes', body: Buffer.concat([encodeBody({ type: 'Ping' }), Buffer.from([1])]), code: 'INVALID_REQUEST' },
  { name: 'body is a list', body: encodeBody(['Ping']), code: 'INVALID_REQUEST' },
  { name: 'body is a number', body: encodeBody(7), code: 'INVALID_REQUEST' },
  { name: 'empty body', body: Buffer.alloc(0), code: 'INVALID_REQUEST' },
  { name: 'missing type', body: encodeBody({ bytes: 1 }), code: 'INVALID_REQUEST' },
  { name: 'type not a string', body: encodeBody({ type: 1 }), code: 'INVALID_REQUEST' },
  { name: 'unknown type', body: encodeBody({ type: 'RecordEverything' }), code: 'UNKNOWN_REQUEST_TYPE' },
  { name: 'bytes as a string', body: encodeBody({ type: 'RecordProduce', bytes: '10' }), code: 'INVALID_REQUEST' },
  { name: 'bytes missing', body: encodeBody({ type: 'RecordProduce', user: 'u' }), code: 'INVALID_REQUEST' },
  { name: 'negative bytes', body: encodeBody({ type: 'RecordProduce', bytes: -1 }), code: 'INVALID_REQUEST' },
  { name: 'fractional bytes', body: encodeBody({ type: 'RecordConsume', bytes: 1.5 }), code: 'INVALID_REQUEST' },
  {
    name: 'bytes above 2^53-1',
    body: Buffer.from(
      '82a474797065adRecordProducea56279746573cf0020000000000001'.replace('RecordProduce', Buffer.from('RecordProduce').toString('hex')),
      'hex',
    ),
    code: 'INVALID_REQUEST',
  },
  { name: 'count 0', body: encodeBody({ type: 'RecordRequest', count: 0 }), code: 'INVALID_REQUEST' },
  { name: 'user as a number', body: encodeBody({ type: 'RecordRequest', user: 5 }), code: 'INVALID_REQUEST' },
  { name: 'admit as a string', body: encodeBody({ type: 'RecordRequest', admit: 'yes' }), code: 'INVALID_REQUEST' },
  { name: 'user of 0 bytes', body: encodeBody({ type: 'RecordProduce', user: '', bytes: 1 }), code: 'INVALID_ENTITY' },
  {
    name: 'client_id of 1025 bytes',
    body: encodeBody({ type: 'RecordProduce', client_id: 'x'.repeat(1025), bytes: 1 }),
    code: 'INVALID_ENTITY',
  },
  {
    name: 'group of 1026 UTF-8 bytes in 513 characters',
    body: encodeBody({ type: 'RecordConsume', consumer_group: 'é'.repeat(513), bytes: 1 }),
    code: 'INVALID_ENTITY',
  },
  {
    name: 'user of invalid UTF-8',
    body: Buffer.from('82a474797065ad5265636f726452657175657374a475736572a2fffe', 'hex'),
    code: 'INVALID_ENTITY',
  },
  {
    name: 'client_name of 1025 bytes',
    body: encodeBody({ type: 'Hello', protocol_version: 1, client_name: 'n'.repeat(1025) }),
    code: 'INVALID_ENTITY',
  },
  {
    name: 'token of 100k characters',
    body: encodeBody({ type: 'Hello', protocol_version: 1, token: 't'.repeat(100_000) }),
    code: 'INVALID_REQUEST',
  },
  {
    name: 'entity name of 1025 bytes',
    body: encodeBody({
      type: 'AlterQuotas',
      alterations: [{ entity: [['user', 'x'.repeat(1025)]], quota_key: 'request_rate', quota_value: 1 }],
    }),
    code: 'INVALID_ENTITY',
    index: 0,
  },
  { name: '100k alterations', body: encodeBody({ type: 'AlterQuotas', alterations: new Array(100_000).fill(1) }), code: 'TOO_MANY_ITEMS' },
  {
    name: '100k describe components',
    body: encodeBody({ type: 'DescribeQuotas', entities: new Array(100_000).fill(0) }),
    code: 'TOO_MANY_ITEMS',
  },
  { name: 'Hello with protocol_version 2', body: encodeBody({ type: 'Hello', protocol_version: 2 }), code: 'UNSUPPORTED_VERSION' },
];

t.test('malformed requests get their error code; the connection and others keep working', async (t) => {
  const bad = await connect();
  const good = await connect();
  t.teardown(() => {
    bad.close();
    good.close();
  });
  let id = 100;
  for (const c of requestErrors) {
    bad.sendRaw(rawFrame(c.body.length + 4, ++id, c.body));
    const reply = (await bad.waitFor(bad.replies.length + 1)).at(-1)!;
    t.equal(reply.correlationId, id, `${c.name}: same correlation id`);
    t.match(reply.body, { type: 'Error', code: c.code, message: String }, `${c.name}: ${c.code}`);
    t.equal(reply.body.index, c.index, `${c.name}: index`);
    t.same(await good.request({ type: 'Ping' }), { type: 'Pong' }, `${c.name}: another connection is served`);
  }
  t.same(await bad.request({ type: 'Ping' }), { type: 'Pong' }, 'the offending connection is still open');
  t.same(
    await bad.request({ type: 'RecordProduce', user: 'é'.repeat(512), bytes: 1 }),
    { type: 'Ok', throttle_time_ms: 0 },
    'a 1024-byte name is accepted',
  );
});

t.test('framing errors answer on correlation id 0 and close only that connection', async (t) => {
  const cases: { name: string; bytes: Buffer; code: string }[] = [
    { name: 'length 3', bytes: rawFrame(3, 1), code: 'INVALID_FRAME' },
    { name: 'length 0', bytes: Buffer.alloc(8), code: 'INVALID_FRAME' },
    { name: 'length above max_frame_bytes', bytes: rawFrame(1024 * 1024 + 1, 1), code: 'FRAME_TOO_LARGE' },
    { name: 'garbage bytes (an HTTP request)', bytes: Buffer.from('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'), code: 'FRAME_TOO_LARGE' },
  ];
  const good = await connect();
  t.teardown(() => good.close());
  for (const c of cases) {
    const bad = await connect();
    bad.sendRaw(Buffer.concat([rawFrame(encodeBody({ type: 'Ping' }).length + 4, 9, encodeBody({ type: 'Ping' })), c.bytes]));
    await bad.closed();
    t.same(
      bad.replies.map((r) => [r.correlationId, r.body.type, r.body.code]),
      [
        [9, 'Pong', undefined],
        [0, 'Error', c.code],
      ],
      `${c.name}: earlier request answered, then ${c.code}`,
    );
    t.same(await good.request({ type: 'Ping' }), { type: 'Pong' }, `${c.name}: another connection is served`);
  }
});

t.test('AlterQuotas is all-or-nothing and names the bad alteration', async (t) => {
  const c = await connect();
  t.teardown(() => c.close());
  const describe = () => c.request({ type: 'DescribeQuotas', entities: [['user', 'atomic']] });
  const ok = { entity: [['user', 'atomic']], quota_key: 'produce_bytes_rate', quota_value: 100 };
  const cases: [unknown, string][] = [
    [
      {
        entity: [
          ['user', 'atomic'],
          ['consumer-group', 'g'],
        ],
        quota_key: 'request_rate',
        quota_value: 1,
      },
      'INVALID_ENTITY',
    ],
    [{ entity: [['user', 'atomic']], quota_key: 'bogus_rate', quota_value: 1 }, 'INVALID_QUOTA_KEY'],
    [{ entity: [['consumer-group', 'g']], quota_key: 'request_rate', quota_value: 1 }, 'INVALID_QUOTA_KEY'],
    [{ entity: [['user', 'atomic']], quota_key: 'request_rate', quota_value: 0 }, 'INVALID_QUOTA_VALUE'],
    [{ entity: [['user', 'atomic']], quota_key: 'request_rate', quota_value: 'lots' }, 'INVALID_QUOTA_VALUE'],
    [{ entity: [['user', 'atomic']], quota_key: 'request_rate', quota_value: ['1/s', 'unlimited'] }, 'INVALID_QUOTA_VALUE'],
    [ok, 'DUPLICATE_ALTERATION'],
    ['not a map', 'INVALID_REQUEST'],
  ];
  for (const [bad, code] of cases) {
    const reply = await c.request({ type: 'AlterQuotas', alterations: [ok, { ...ok, quota_key: 'request_rate', quota_value: 7 }, bad] });
    t.match(reply, { type: 'Error', code, index: 2 }, `${code} at index 2`);
    t.same(await describe(), { type: 'QuotasDescribed', entries: [] }, `${code}: nothing applied`);
  }
  t.same(
    await c.request({ type: 'AlterQuotas', alterations: [ok], validate_only: true }),
    { type: 'QuotasAltered', altered_count: 1 },
    'validate_only answers',
  );
  t.same(await describe(), { type: 'QuotasDescribed', entries: [] }, 'validate_only changes nothing');
  t.same(
    await c.request({
      type: 'AlterQuotas',
      alterations: [{ entity_type: 'user', entity_name: 'atomic', quota_key: 'request_rate', quota_value: 'unlimited' }],
    }),
    { type: 'QuotasAltered', altered_count: 1 },
    "the seed's flat form is accepted",
  );
  t.same(await describe(), { type: 'QuotasDescribed', entries: [{ entity: [['user', 'atomic']], quotas: { request_rate: 'unlimited' } }] });
  t.same(
    await c.request({ type: 'AlterQuotas', alterations: [{ entity: [['user', 'atomic']], quota_key: 'request_rate', quota_value: null }] }),
    { type: 'QuotasAltered', altered_count: 1 },
    'null removes',
  );
  t.same(await describe(), { type: 'QuotasDescribed', entries: [] });
});

t.test('a client that never reads its replies stops being read from', async (t) => {
  const greedy = await connect();
  greedy.socket.pause();
  const ping = encodeBody({ type: 'Ping' });
  const batch = Buffer.concat(Array.from({ length: 10_000 }, (_, i) => rawFrame(ping.length + 4, i, ping)));
  let written = 0;
  // Keep writing until our own socket buffer backs up: the kernel buffers are full and the server is not reading.
  while (greedy.socket.writableLength < 16 * 1024 * 1024 && written < 400 * 1024 * 1024) {
    greedy.socket.write(batch);
    written += batch.length;
    if (greedy.socket.writableLength > 8 * 1024 * 1024) await new Promise((r) => setImmediate(r));
  }
  // The server pauses once its own send buffer backs up, which can trail our write loop: wait for it (bounded).
  const paused = () => server.app.server.connectionStats().find((s) => s.bytesRead > 0 && s.readingPaused);
  for (let i = 0; i < 500 && paused() === undefined; i++) await new Promise((r) => setTimeout(r, 10));
  const stats = paused();
  t.ok(stats, 'the server paused reading from that connection');
  t.ok(stats!.bytesRead < written / 2, `server read ${stats!.bytesRead} of ${written} bytes written`);
  t.ok(stats!.unsentReplyBytes < 4 * 1024 * 1024, `unsent replies held by the server stay bounded (${stats!.unsentReplyBytes} bytes)`);
  const other = await connect();
  t.same(await other.request({ type: 'Ping' }), { type: 'Pong' }, 'other connections are served meanwhile');
  other.close();
  // Once the client reads, everything it sent is answered, in order.
  const expected = written / (ping.length + 8);
  greedy.socket.resume();
  await greedy.waitFor(expected);
  t.equal(greedy.replies.length, expected, 'every request answered after the client caught up');
  const outOfOrder = greedy.replies.findIndex((r, i) => r.correlationId !== i % 10_000 || r.body.type !== 'Pong');
  t.equal(outOfOrder, -1, 'in order');
  greedy.close();
});

t.test('max_connections refuses the extra connection with OVERLOADED', async (t) => {
  const small = await startServer({ server: { max_connections: 1 } });
  t.teardown(() => small.stop());
  const first = await WirePeer.connect(small.port);
  t.same(await first.request({ type: 'Ping' }), { type: 'Pong' });
  const second = await WirePeer.connect(small.port);
  await second.closed();
  t.match(second.replies, [{ correlationId: 0, body: { type: 'Error', code: 'OVERLOADED' } }]);
  t.same(await first.request({ type: 'Ping' }), { type: 'Pong' }, 'the first is unaffected');
  first.close();
});

t.test('replies held behind a slow AlterQuotas are bounded too: reading stops until it completes', async (t) => {
  const { GateStore } = await import('./helpers/gate-store.js');
  const store = new GateStore();
  const slow = await startServer({}, store);
  t.teardown(() => {
    store.openGate();
    return slow.stop();
  });
  const c = await WirePeer.connect(slow.port);
  t.teardown(() => c.close());
  store.closeGate();
  c.send(1, { type: 'AlterQuotas', alterations: [{ entity: [['user', 'slow']], quota_key: 'request_rate', quota_value: 1 }] });
  const ping = encodeBody({ type: 'Ping' });
  const pings = 40_000;
  for (let sent = 0; sent < pings; sent += 1000) {
    c.sendRaw(Buffer.concat(Array.from({ length: 1000 }, (_, i) => rawFrame(ping.length + 4, 2 + sent + i, ping))));
    await new Promise((r) => setImmediate(r));
  }
  const stats = () => slow.app.server.connectionStats()[0]!;
  for (let i = 0; i < 500 && !stats().readingPaused; i++) await new Promise((r) => setTimeout(r, 10));
  t.ok(stats().readingPaused, 'reading paused');
  t.ok(stats().pendingReply, 'the AlterQuotas is the one request in flight');
  t.ok(slow.app.server.connectionStats()[0]!.unsentReplyBytes === 0, 'nothing was answered past it');
  t.equal(c.replies.length, 0, 'nothing overtook the pending AlterQuotas');
  store.openGate();
  const replies = await c.waitFor(pings + 1);
  t.same(replies[0], { correlationId: 1, body: { type: 'QuotasAltered', altered_count: 1 } });
  t.equal(
    replies.findIndex((r, i) => r.correlationId !== i + 1),
    -1,
    'all answered, in order',
  );
});
