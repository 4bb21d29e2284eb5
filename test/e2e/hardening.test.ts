import net from 'node:net';
import t from 'tap';
import { App } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { encodeBody } from '../../src/protocol/codec.js';
import { silentLogger } from '../../src/observability/logger.js';
import { systemClock } from '../../src/quota/clock.js';
import { MemoryQuotaStore } from '../../src/store/quota-store.js';
import { setSliceMs } from '../../src/util/slices.js';
import { startServer } from '../helpers/server.js';
import { rawFrame, WirePeer } from '../helpers/wire.js';
import { waitUntil } from '../helpers/wait.js';

const frameOf = (id: number, body: unknown): Buffer => {
  const b = encodeBody(body);
  return rawFrame(b.length + 4, id, b);
};

const until = (cond: () => boolean, what: string): Promise<void> => waitUntil(cond, what);

t.test('reply amplification: a peer that never reads holds at most max_connection_bytes of replies', async (t) => {
  const s = await startServer({ server: { max_connection_bytes: 64 * 1024 } });
  t.teardown(() => s.stop());
  const alter = await WirePeer.connect(s.port);
  t.teardown(() => alter.close());
  const alterations = Array.from({ length: 200 }, (_, i) => ({
    entity: [['user', `user-${i}-${'x'.repeat(40)}`]],
    quota_key: 'request_rate',
    quota_value: i + 1,
  }));
  t.match(await alter.request({ type: 'AlterQuotas', alterations }), { type: 'QuotasAltered', altered_count: 200 });

  const socket = net.connect(s.port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  socket.pause(); // never reads
  t.teardown(() => socket.destroy());
  const requests = 5000; // ~75 KB of requests asking for ~60 MB of replies
  socket.write(Buffer.concat(Array.from({ length: requests }, (_, i) => frameOf(i + 1, { type: 'DescribeQuotas' }))));
  const find = () => s.app.server.connectionStats().find((c) => c.id !== 1 && c.bytesRead > 0);
  const stats = () => find()!;
  await until(() => find()?.readingPaused === true && !find()?.pendingReply, 'reading to pause');
  const oneReply = 200 * 80;
  t.ok(stats().unsentReplyBytes <= 64 * 1024 + oneReply, `unsent replies stay bounded: ${stats().unsentReplyBytes} bytes`);
  t.ok(s.app.requests.counts.reduce((a, b) => a + b, 0) < requests, 'the server stopped answering: not every request was built');

  // Once the peer reads, every reply arrives, in order.
  let got = 0;
  let inOrder = true;
  const peer = new WirePeerReader(socket, (id) => {
    if (id !== ++got) inOrder = false;
  });
  socket.resume();
  await until(() => got === requests, 'all replies');
  t.ok(inOrder, `all ${requests} replies, in order`);
  peer.stop();
});

/** Counts reply frames on a raw socket without keeping them. */
class WirePeerReader {
  private buf = Buffer.alloc(0);
  private readonly onData = (chunk: Buffer): void => {
    this.buf = Buffer.concat([this.buf, chunk]);
    while (this.buf.length >= 8 && this.buf.length >= 4 + this.buf.readUInt32BE(0)) {
      this.onReply(this.buf.readUInt32BE(4));
      this.buf = this.buf.subarray(4 + this.buf.readUInt32BE(0));
    }
  };
  constructor(
    private readonly socket: net.Socket,
    private readonly onReply: (id: number) => void,
  ) {
    socket.on('data', this.onData);
  }
  stop(): void {
    this.socket.off('data', this.onData);
  }
}

t.test('a reply larger than max_reply_bytes is REPLY_TOO_LARGE, and the connection stays', async (t) => {
  const s = await startServer({ server: { max_reply_bytes: 2048 } });
  t.teardown(() => s.stop());
  const c = await WirePeer.connect(s.port);
  t.teardown(() => c.close());
  const alterations = Array.from({ length: 100 }, (_, i) => ({ entity: [['user', `u${i}`]], quota_key: 'request_rate', quota_value: 5 }));
  await c.request({ type: 'AlterQuotas', alterations });
  t.match(await c.request({ type: 'DescribeQuotas' }, 2), { type: 'Error', code: 'REPLY_TOO_LARGE' });
  t.match(
    await c.request({ type: 'DescribeQuotas', entities: [['user', 'u7']] }, 3),
    { type: 'QuotasDescribed', entries: [{ entity: [['user', 'u7']] }] },
    'a narrower request works',
  );
});

t.test('Hello names are bounded: a 512 KiB client_name is refused, 1024 bytes accepted', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  const peers = await Promise.all(Array.from({ length: 50 }, () => WirePeer.connect(s.port)));
  t.teardown(() =>
    peers.forEach((p) => {
      p.close();
    }),
  );
  const big = 'n'.repeat(512 * 1024);
  const replies = await Promise.all(peers.map((p) => p.request({ type: 'Hello', protocol_version: 1, client_name: big })));
  t.ok(
    replies.every((r) => (r.type === 'Error' && r.code === 'INVALID_REQUEST') || r.code === 'INVALID_ENTITY'),
    'every one refused',
  );
  t.ok(
    replies.every((r) => String(r.message).length < 200),
    'the error does not echo the name',
  );
  t.match(await peers[0]!.request({ type: 'Hello', protocol_version: 1, client_name: 'b'.repeat(1024) }, 2), { type: 'HelloOk' });
  const held = s.app.server.connectionStats().length;
  t.equal(held, 50, 'connections stay open');
  t.match(await peers[1]!.request({ type: 'Hello', protocol_version: 1, client_name: 'b'.repeat(1025) }, 3), {
    type: 'Error',
    code: 'INVALID_ENTITY',
  });
});

t.test('1000 connections with the largest Hello name accepted hold at most 1024 bytes of name each', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  const peers = await Promise.all(Array.from({ length: 1000 }, () => WirePeer.connect(s.port)));
  t.teardown(() => {
    for (const p of peers) p.close();
  });
  const name = (i: number) => `${i}`.padEnd(1024, 'n');
  const replies = await Promise.all(peers.map((p, i) => p.request({ type: 'Hello', protocol_version: 1, client_name: name(i) })));
  t.ok(
    replies.every((r) => r.type === 'HelloOk'),
    'all 1000 accepted',
  );
  // What the server keeps per connection for the name: the bound, whatever a client sends.
  const held = s.app.server.connectionNames();
  t.equal(held.length, 1000);
  t.ok(
    held.every((n) => n !== undefined && Buffer.byteLength(n) <= 1024),
    'no name over 1024 bytes is held',
  );
});

t.test('names must be valid UTF-8: two invalid byte strings do not become one principal', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  const c = await WirePeer.connect(s.port);
  t.teardown(() => c.close());
  // { type: "RecordRequest", user: <0xff 0xfe> } written by hand: msgpackr would refuse to encode it.
  const body = Buffer.concat([
    Buffer.from([0x82]),
    encodeBody('type'),
    encodeBody('RecordRequest'),
    encodeBody('user'),
    Buffer.from([0xa2, 0xff, 0xfe]),
  ]);
  c.sendRaw(rawFrame(body.length + 4, 9, body));
  const [reply] = await c.waitFor(1);
  t.match(reply!.body, { type: 'Error', code: 'INVALID_ENTITY', message: /not valid UTF-8/ });
  t.match(
    await c.request({ type: 'RecordRequest', user: 'a\uFFFDb' }, 10),
    { type: 'Error', code: 'INVALID_ENTITY' },
    'U+FFFD is refused too',
  );
  t.match(await c.request({ type: 'RecordRequest', user: 'ünïcödé' }, 11), { type: 'Ok' }, 'valid UTF-8 passes');
});

t.test('an unknown type of 1 MiB is answered with a short message', async (t) => {
  const s = await startServer({ server: { max_frame_bytes: 2 * 1024 * 1024 } });
  t.teardown(() => s.stop());
  const c = await WirePeer.connect(s.port);
  t.teardown(() => c.close());
  const reply = await c.request({ type: `\u001b[2J${'t'.repeat(1024 * 1024)}` });
  t.match(reply, { type: 'Error', code: 'UNKNOWN_REQUEST_TYPE' });
  t.ok(String(reply.message).length < 120, `message is ${String(reply.message).length} characters`);
  t.notMatch(String(reply.message), /\u001b/, 'no control character');
});

t.test("a heavy DescribeUsage or DescribeQuotas lets another connection's Ping through before it finishes", async (t) => {
  const s = await startServer({ quotas: { defaults: { request_rate: 1000 } } });
  t.teardown(() => s.stop());
  setSliceMs(0); // yield every 256 buckets, so the interleaving below does not depend on this machine's speed
  t.teardown(() => setSliceMs(8));
  for (let i = 0; i < 100_000; i++) s.app.manager.recordRequest(`user-${i}`, 'c', 1, false);
  const entities = Array.from({ length: 300 }, (_, i) => ({ entity: [['user', `cfg-${i}`]], quota_key: 'request_rate', quota_value: 1 }));
  const admin = await WirePeer.connect(s.port);
  t.teardown(() => admin.close());
  await admin.request({ type: 'AlterQuotas', alterations: entities });
  const heavy = await WirePeer.connect(s.port);
  const other = await WirePeer.connect(s.port);
  t.teardown(() => {
    heavy.close();
    other.close();
  });
  const components = Array.from({ length: 1000 }, (_, i) => ['user', `user-${i * 7}`]);
  for (const request of [
    { type: 'DescribeUsage', top: 10_000 },
    { type: 'DescribeUsage', top: 10_000, entities: components },
  ]) {
    const order: string[] = [];
    const done = heavy.request(request).then((r) => order.push(`heavy:${String(r.type)}`));
    await new Promise((r) => setImmediate(r));
    const ping = other.request({ type: 'Ping' }).then(() => order.push('ping'));
    await Promise.all([done, ping]);
    t.same(
      order,
      ['ping', 'heavy:UsageDescribed'],
      `${request.type} (${request.entities ? 'filtered' : 'all'}): the Ping was answered first`,
    );
    heavy.replies.length = 0;
    other.replies.length = 0;
  }
});

t.test('frame_timeout_ms closes a peer that starts a frame and never finishes it', async (t) => {
  const s = await startServer({ server: { frame_timeout_ms: 50 } });
  t.teardown(() => s.stop());
  const slow = await WirePeer.connect(s.port);
  const idle = await WirePeer.connect(s.port);
  t.teardown(() => idle.close());
  slow.sendRaw(rawFrame(100, 7, Buffer.alloc(10)));
  await slow.closed();
  t.match(slow.replies, [{ correlationId: 0, body: { type: 'Error', code: 'FRAME_TIMEOUT' } }]);
  t.equal(s.app.server.timedOutFrames, 1);
  t.same(await idle.request({ type: 'Ping' }), { type: 'Pong' }, 'an idle connection (no frame started) stays');
});

t.test('unfinished frames across connections share one budget; past it the connection is refused', async (t) => {
  const s = await startServer({ server: { max_partial_frame_bytes: 8192 } });
  t.teardown(() => s.stop());
  const a = await WirePeer.connect(s.port);
  const b = await WirePeer.connect(s.port);
  t.teardown(() => a.close());
  a.sendRaw(rawFrame(20_000, 1, Buffer.alloc(6000)));
  await until(() => s.app.server.partialFrames.used >= 6000, 'the first partial frame');
  b.sendRaw(rawFrame(20_000, 1, Buffer.alloc(6000)));
  await b.closed();
  t.match(b.replies, [{ correlationId: 0, body: { type: 'Error', code: 'OVERLOADED' } }]);
  t.equal(s.app.server.partialFrames.refused, 1);
  a.sendRaw(Buffer.alloc(20_000 - 4 - 6000));
  const [reply] = await a.waitFor(1);
  t.match(reply!.body, { type: 'Error', code: 'INVALID_REQUEST' }, 'the first frame completes (a body of zeros is not a map)');
  await until(() => s.app.server.partialFrames.used === 0, 'the budget to be given back');
  t.equal(s.app.server.partialFrames.used, 0);
});

t.test('a wall-clock step back an hour throttles nobody: buckets drain by the monotonic clock', async (t) => {
  const { config } = loadConfig({
    env: {},
    cwd: '/nonexistent',
    flags: { server: { port: 0 }, metrics: { enabled: false }, quotas: { defaults: { request_rate: 100 } } },
  });
  const app = new App(config, { logger: silentLogger(), store: new MemoryQuotaStore(), clock: systemClock });
  await app.start();
  t.teardown(() => app.stop(1000));
  const realDate = Date.now;
  const realPerf = performance.now.bind(performance);
  t.teardown(() => {
    Date.now = realDate;
    performance.now = realPerf;
  });
  const m = app.manager;
  const round = () => Array.from({ length: 100 }, () => m.recordRequest('stepped', 'c', 1, false).throttleMs).filter((ms) => ms > 0).length;
  t.equal(round(), 0, 'a full window at quota');
  // One second passes (monotonic) while the wall clock is stepped back an hour.
  performance.now = () => realPerf() + 1000;
  Date.now = () => realDate() - 3_600_000;
  t.equal(round(), 0, 'the next window at quota: nobody throttled');
  t.ok(systemClock.wall() < realDate() - 3_000_000, 'the wall clock did step');
});

t.test('one huge call cannot put a principal into years of debt: max_debt_ms bounds it', async (t) => {
  const s = await startServer({ quotas: { max_debt_ms: 10_000, defaults: { produce_bytes_rate: 1000 } } });
  t.teardown(() => s.stop());
  const m = s.app.manager;
  t.equal(m.recordProduce('poison', 'c', Number.MAX_SAFE_INTEGER, false).throttleMs, 10_000, 'throttled for max_debt_ms, not ~285 years');
  s.clock.advance(10_000);
  t.equal(m.recordProduce('poison', 'c', 0, false).throttleMs, 0, 'free again once that much time passed');
});

t.test('max_entities bounds configured entities with a clear error; removals still work', async (t) => {
  const s = await startServer({ storage: { max_entities: 3 } });
  t.teardown(() => s.stop());
  const c = await WirePeer.connect(s.port);
  t.teardown(() => c.close());
  const set = (user: string, v: number | null) => ({ entity: [['user', user]], quota_key: 'request_rate', quota_value: v });
  t.match(await c.request({ type: 'AlterQuotas', alterations: [set('a', 1), set('b', 1), set('c', 1)] }), { altered_count: 3 });
  t.match(await c.request({ type: 'AlterQuotas', alterations: [set('d', 1)] }, 2), {
    type: 'Error',
    code: 'TOO_MANY_ENTITIES',
    message: /max_entities is 3/,
  });
  t.match(
    await c.request({ type: 'AlterQuotas', alterations: [set('d', 1)], validate_only: true }, 2),
    { type: 'Error', code: 'TOO_MANY_ENTITIES' },
    'a dry run says so too',
  );
  t.match(
    await c.request({ type: 'AlterQuotas', alterations: [set('a', 7)] }, 3),
    { altered_count: 1 },
    'changing an existing entity is fine',
  );
  t.match(
    await c.request({ type: 'AlterQuotas', alterations: [set('a', null), set('d', 1)] }, 4),
    { altered_count: 2 },
    'a removal makes room... within the same request too',
  );
});

t.test('removing a value that is not set changes nothing: altered_count 0, no audit line', async (t) => {
  const store = new MemoryQuotaStore();
  const s = await startServer({}, store);
  t.teardown(() => s.stop());
  const c = await WirePeer.connect(s.port);
  t.teardown(() => c.close());
  t.match(
    await c.request({
      type: 'AlterQuotas',
      alterations: [{ entity: [['user', 'nosuchuser']], quota_key: 'produce_bytes_rate', quota_value: null }],
    }),
    { altered_count: 0 },
  );
  t.equal(store.audit.length, 0);
});
