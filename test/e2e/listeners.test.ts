// What a peer must earn before the server holds anything for it (DESIGN 15, docs/security.md): a fixed
// identity, a bounded time and number of unauthenticated sockets, slowed failures, checked secrets files.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { checkSecretsFile } from '../../src/auth/security-files.js';
import { makeCerts } from '../helpers/certs.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';
import { WirePeer } from '../helpers/wire.js';

const certs = makeCerts();
const RECORD = `rvn_rec_${randomBytes(8).toString('hex')}`;
const ALTER = `rvn_alt_${randomBytes(8).toString('hex')}`;
const digest = (s: string) => createHash('sha256').update(s).digest('hex');

function tokensFile(mode = 0o600, extra = ''): string {
  const file = join(mkdtempSync(join(tmpdir(), 'rivven-tokens-')), 'tokens.yaml');
  writeFileSync(
    file,
    `tokens:\n  - { name: broker, sha256: ${digest(RECORD)}, roles: [record] }\n  - { name: ops, sha256: ${digest(ALTER)}, roles: [describe, alter] }\n${extra}`,
  );
  chmodSync(file, mode);
  return file;
}

const hello = (token?: string) => ({ type: 'Hello', protocol_version: 1, ...(token ? { token } : {}) });

async function server(
  t: { teardown(fn: () => unknown): void },
  overrides: Record<string, Record<string, unknown>> = {},
): Promise<TestServer> {
  const s = await startServer({ ...overrides, auth: { tokens_file: tokensFile(), ...overrides.auth } });
  t.teardown(() => s.stop());
  return s;
}

/**
 * A plain TCP socket that reads (and drops) what it gets: a paused socket never sees the server's FIN as an end,
 * so it would never close (that made the metrics tests hang one run in three).
 */
const rawSocket = (port: number): net.Socket =>
  net
    .connect(port, '127.0.0.1')
    .on('error', () => undefined)
    .resume();

/** Resolves when the server has closed `socket`. */
const closedByServer = (socket: net.Socket) =>
  new Promise<void>((resolve) => {
    if (socket.destroyed) return resolve();
    socket.once('close', () => resolve());
  });

t.test('identity is fixed per connection: a second Hello as another principal closes it', async (t) => {
  const s = await server(t);
  const p = await WirePeer.connect(s.port);
  t.equal((await p.request(hello(RECORD))).type, 'HelloOk');
  t.equal((await p.request(hello(RECORD), 2)).type, 'HelloOk', 'the same identity again is fine');
  const second = await p.request(hello(ALTER), 3);
  t.equal(second.code, 'AUTHENTICATION_FAILED', 'an alter token on a record connection is refused');
  t.match(second.message, /authenticated as broker/);
  p.send(4, { type: 'DescribeQuotas' });
  await p.closed();
  t.equal(p.replies.length, 3, 'nothing after the refused Hello is answered: DescribeQuotas never ran');
});

t.test('a certificate identity cannot be replaced by a token either', async (t) => {
  const file = tokensFile(0o600, '  - { name: broker-1-cert, cn: broker-1, roles: [record] }\n');
  const s = await startServer({
    auth: { tokens_file: file },
    server: { tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, client_auth: 'require' } },
  });
  t.teardown(() => s.stop());
  const socket = tls.connect({
    port: s.port,
    host: '127.0.0.1',
    ca: certs.read(certs.ca),
    cert: certs.read(certs.clientCert),
    key: certs.read(certs.clientKey),
  });
  await new Promise((resolve) => socket.once('secureConnect', resolve));
  const replies: Buffer[] = [];
  socket.on('data', (c: Buffer) => replies.push(c));
  const { encodeFrame } = await import('../../src/protocol/codec.js');
  socket.write(encodeFrame(1, hello(ALTER)));
  await closedByServer(socket);
  t.match(Buffer.concat(replies).toString('latin1'), /AUTHENTICATION_FAILED/, 'refused, and the connection closed');
});

t.test('unauthenticated sockets cannot keep a broker out: the oldest makes room', async (t) => {
  const s = await server(t, { server: { max_connections: 5 } });
  const idle = await Promise.all(Array.from({ length: 5 }, () => WirePeer.connect(s.port)));
  const broker = await WirePeer.connect(s.port);
  t.equal((await broker.request(hello(RECORD))).type, 'HelloOk', 'the broker got in with every slot taken by idle sockets');
  t.equal((await broker.request({ type: 'Ping' }, 2)).type, 'Pong');
  await idle[0]!.closed();
  t.equal(s.app.server.evictedUnauthenticated, 1, 'the oldest idle socket was closed to make room, and counted');
  t.notOk(idle[1]!.ended, 'the others were left alone');
  t.equal(s.app.server.unauthenticatedCount, 4, 'the broker is no longer counted as unauthenticated');
  for (const p of idle) p.close();
});

t.test('authenticated connections fill max_connections: then a new socket is refused, no one is evicted', async (t) => {
  const s = await server(t, { server: { max_connections: 2 } });
  const a = await WirePeer.connect(s.port);
  const b = await WirePeer.connect(s.port);
  await a.request(hello(RECORD));
  await b.request(hello(RECORD));
  const c = await WirePeer.connect(s.port);
  const [refusal] = await c.waitFor(1).catch(() => c.replies);
  t.equal(refusal?.body.code, 'OVERLOADED');
  t.equal((await a.request({ type: 'Ping' }, 2)).type, 'Pong', 'authenticated brokers keep their connections');
  a.close();
  b.close();
});

t.test('max_unauthenticated_connections bounds the sockets still authenticating', async (t) => {
  const s = await server(t, { server: { max_unauthenticated_connections: 3 } });
  const idle = await Promise.all(Array.from({ length: 5 }, () => WirePeer.connect(s.port)));
  await idle[0]!.closed();
  await idle[1]!.closed();
  t.equal(s.app.server.unauthenticatedCount, 3);
  t.equal(s.app.server.evictedUnauthenticated, 2);
  for (const p of idle) p.close();
});

t.test('a socket that does not authenticate within auth_timeout_ms is closed and counted', async (t) => {
  const s = await server(t, { server: { auth_timeout_ms: 200 } });
  const idle = await WirePeer.connect(s.port);
  const broker = await WirePeer.connect(s.port);
  await broker.request(hello(RECORD));
  t.equal(s.app.server.unauthenticatedCount, 1, 'only the idle socket is on the clock');
  await idle.closed();
  t.equal(s.app.server.authTimeouts, 1);
  t.equal((await broker.request({ type: 'Ping' }, 2)).type, 'Pong', 'the authenticated broker is not');
  const text = await s.app.metrics.metrics();
  t.match(text, /^rivven_auth_timeouts_total 1$/m);
  broker.close();
});

t.test('TLS: a socket that never sends a ClientHello counts from accept and is closed in time', async (t) => {
  const s = await startServer({
    server: { tls: { cert: certs.serverCert, key: certs.serverKey }, auth_timeout_ms: 300, max_connections: 3 },
  });
  t.teardown(() => s.stop());
  const raw = Array.from({ length: 6 }, () => rawSocket(s.port));
  // Six handshakes on three slots: each new one closed the oldest; the last three run out of time.
  await Promise.all(raw.map(closedByServer));
  t.equal(s.app.server.evictedUnauthenticated, 3, 'three made room for newer ones');
  t.equal(s.app.server.authTimeouts + s.app.server.failedHandshakes > 0, true, 'the rest were closed by the timeout');
  await waitUntil(() => s.app.server.unauthenticatedCount === 0, 'the server to see every socket closed');
  t.equal(s.app.server.unauthenticatedCount, 0);
});

t.test('shutdown closes handshakes that never finished at once', async (t) => {
  const s = await startServer({ server: { tls: { cert: certs.serverCert, key: certs.serverKey } } });
  const raw = Array.from({ length: 3 }, () => rawSocket(s.port));
  await Promise.all(raw.map((k) => new Promise((r) => k.once('connect', r))));
  // A drain bound of a minute: only closing the handshakes lets stop() return before tap's timeout.
  await s.app.stop(60_000);
  await Promise.all(raw.map(closedByServer));
  t.pass('stopped with three handshakes open');
});

t.test('failed authentications from one address are each answered AUTHENTICATION_FAILED over real sockets', async (t) => {
  // Their spacing (150, 300, 450, 600 ms) is held exactly on a manual clock in test/unit/hello-auth.test.ts, and
  // measured in real time by bench/attacks/connections.ts (refusals a second from one address).
  const s = await server(t, { auth: { failure_delay_ms: 150 } });
  const peers = await Promise.all(Array.from({ length: 4 }, () => WirePeer.connect(s.port)));
  const replies = await Promise.all(peers.map((p) => p.request(hello('wrong'))));
  t.same(
    replies.map((r) => r.code),
    ['AUTHENTICATION_FAILED', 'AUTHENTICATION_FAILED', 'AUTHENTICATION_FAILED', 'AUTHENTICATION_FAILED'],
  );
  await Promise.all(peers.map((p) => p.closed()));
  t.pass('and each connection was closed after its refusal');
});

t.test('secrets files: writable by group or others refused, readable by others warned', async (t) => {
  const warnings: string[] = [];
  const warn = (m: string) => warnings.push(m);
  const file = tokensFile(0o666);
  t.throws(() => checkSecretsFile('auth.tokens_file', file, warn), /auth\.tokens_file .* writable by others \(mode 666\).*chmod go-w/);
  chmodSync(file, 0o620);
  t.throws(() => checkSecretsFile('auth.tokens_file', file, warn), /writable by its group/);
  chmodSync(file, 0o644);
  checkSecretsFile('auth.tokens_file', file, warn);
  t.match(warnings, [/readable by others \(mode 644\)/]);
  chmodSync(file, 0o600);
  checkSecretsFile('auth.tokens_file', file, warn);
  t.equal(warnings.length, 1, 'a private file says nothing');
  t.rejects(startServer({ auth: { tokens_file: tokensFile(0o666) } }), /writable by others/, 'refused at start');
  // Its directory writable by others without the sticky bit: they could rename another file over it.
  const open = tokensFile(0o600);
  chmodSync(dirname(open), 0o777);
  t.throws(() => checkSecretsFile('auth.tokens_file', open, warn), /which others can write \(mode 777, no sticky bit\)/);
  chmodSync(dirname(open), 0o1777);
  t.doesNotThrow(() => checkSecretsFile('auth.tokens_file', open, warn), 'with the sticky bit (as /tmp) it is fine');
  // Owned by another user, who could rewrite it (the tests run as root, who may chown).
  if (process.getuid?.() === 0) {
    const theirs = tokensFile(0o600);
    chownSync(theirs, 65534, 65534);
    t.throws(() => checkSecretsFile('auth.tokens_file', theirs, warn), /owned by uid 65534/);
  }
});

t.test('SIGHUP keeps the old tokens when the new file is writable by others', async (t) => {
  const file = tokensFile();
  const s = await startServer({ auth: { tokens_file: file } });
  t.teardown(() => s.stop());
  const planted = `rvn_planted_${randomBytes(8).toString('hex')}`;
  writeFileSync(file, `tokens:\n  - { name: intruder, sha256: ${digest(planted)}, roles: [alter] }\n`);
  chmodSync(file, 0o666);
  await t.rejects(s.app.reload(), /auth\.tokens_file .* writable by others/);
  const p = await WirePeer.connect(s.port);
  t.equal((await p.request(hello(planted))).code, 'AUTHENTICATION_FAILED', 'the planted token is not in force');
  const q = await WirePeer.connect(s.port);
  t.equal((await q.request(hello(RECORD))).type, 'HelloOk', 'the old tokens are');
  q.close();
});

t.test('the metrics listener: a bounded number of sockets, each with a bounded idle time, handshakes included', async (t) => {
  const { Registry } = await import('prom-client');
  const { HealthServer } = await import('../../src/observability/http.js');
  for (const tlsOn of [false, true]) {
    const h = new HealthServer(new Registry(), () => true, {
      maxConnections: 3,
      idleTimeoutMs: 1000,
      ...(tlsOn ? { tls: { cert: certs.read(certs.serverCert), key: certs.read(certs.serverKey) } } : {}),
    });
    const { port } = await h.listen('127.0.0.1', 0);
    const socks = Array.from({ length: 5 }, () => rawSocket(port));
    // Two past the cap are closed at accept, the three others once they have been silent for the idle time.
    await waitUntil(() => socks.filter((k) => k.destroyed).length >= 2, 'two sockets refused at accept');
    t.ok(h.connectionCount <= 3, `at most 3 sockets held (${h.connectionCount})`);
    await Promise.all(socks.map(closedByServer));
    t.pass(`${tlsOn ? 'https' : 'http'}: all five closed by the server`);
    // A socket in its handshake (or before its request) does not hold close() up.
    const late = rawSocket(port);
    await new Promise((r) => late.once('connect', r));
    await h.close();
    await closedByServer(late);
  }
});

t.test('the metrics listener: peers holding keep-alive sockets cannot keep a probe out', async (t) => {
  const { Registry } = await import('prom-client');
  const { HealthServer } = await import('../../src/observability/http.js');
  const h = new HealthServer(new Registry(), () => true, { maxConnections: 3, idleTimeoutMs: 30_000 });
  const { port } = await h.listen('127.0.0.1', 0);
  t.teardown(() => h.close());
  // Three peers that each made a request and keep their connection open, as keep-alive clients do.
  const held = await Promise.all(
    Array.from({ length: 3 }, async () => {
      const k = rawSocket(port);
      k.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      await new Promise((r) => k.once('data', r));
      return k;
    }),
  );
  t.equal(h.connectionCount, 3, 'every slot held');
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  t.equal(res.status, 200, 'a probe still gets in: the oldest idle socket made room');
  await closedByServer(held[0]!);
  for (const k of held) k.destroy();
});

t.test("past an address's queue, a Hello is never answered: the socket waits for auth_timeout_ms and is closed", async (t) => {
  // failure_delay_ms 100 and auth_timeout_ms 400: the queue reaches at most 200 ms ahead.
  const s = await server(t, { auth: { failure_delay_ms: 100 }, server: { auth_timeout_ms: 400 } });
  const peers = await Promise.all(Array.from({ length: 6 }, () => WirePeer.connect(s.port)));
  for (const p of peers) p.send(1, hello('wrong'));
  await Promise.all(peers.map((p) => p.closed()));
  const answered = peers.filter((p) => p.replies.length === 1).length;
  t.ok(answered >= 1 && answered <= 3, `${answered} refusals answered, in their slots`);
  t.ok(
    peers.some((p) => p.replies.length === 0),
    'the rest were never answered: no free refusals',
  );
  t.ok(s.app.server.authTimeouts >= 6 - answered, 'they were closed by the auth timeout');
});
