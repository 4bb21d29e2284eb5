// Attacks on the listener hardening of issue 18 that got through: token guessing on fresh connections (the
// failure delay slowed refusals, not guesses) and a one-address socket flood evicting a broker's handshake.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startServer, type TestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';
import { WirePeer } from '../helpers/wire.js';

const RECORD = `rvn_rec_${randomBytes(8).toString('hex')}`;
const digest = (s: string) => createHash('sha256').update(s).digest('hex');

function tokensFile(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'rivven-tokens-')), 'tokens.yaml');
  writeFileSync(file, `tokens:\n  - { name: broker, sha256: ${digest(RECORD)}, roles: [record] }\n`);
  chmodSync(file, 0o600);
  return file;
}

const hello = (token?: string) => ({ type: 'Hello', protocol_version: 1, ...(token ? { token } : {}) });

async function server(t: { teardown(fn: () => unknown): void }, overrides: Record<string, Record<string, unknown>>): Promise<TestServer> {
  const s = await startServer({ ...overrides, auth: { tokens_file: tokensFile(), ...overrides.auth } });
  t.teardown(() => s.stop());
  return s;
}

/** A raw socket from `localAddress` (any of 127.0.0.0/8 on Linux), connected. */
const connectFrom = (port: number, localAddress: string) =>
  new Promise<net.Socket>((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress }, () => resolve(socket));
    socket.once('error', reject);
  });

t.test('guessing tokens on fresh connections costs failure_delay_ms a guess: tokens are checked in their slot', async (t) => {
  const s = await server(t, { auth: { failure_delay_ms: 200 } });
  const guesses: WirePeer[] = [];
  for (let i = 0; i < 10; i++) {
    const p = await WirePeer.connect(s.port);
    p.send(1, hello(`rvn_guess_${i}`));
    guesses.push(p);
  }
  const right = await WirePeer.connect(s.port);
  right.send(1, hello(RECORD));
  await guesses[0]!.waitFor(1);
  t.equal(guesses[0]!.replies[0]!.body.code, 'AUTHENTICATION_FAILED');
  t.ok(s.app.guard.failures <= 2, `tokens checked by the first refusal: ${s.app.guard.failures} of 10 (one a delay)`);
  t.equal(right.replies.length, 0, 'the right token is not answered ahead of the queue: a HelloOk would end the guessing');
  t.equal((await right.waitFor(1))[0]!.body.type, 'HelloOk', 'and it is accepted in its turn');
  for (const p of guesses) p.close();
  right.close();
});

t.test('a Hello refused in its slot closes the connection; what was pipelined behind it is not answered', async (t) => {
  const s = await server(t, { auth: { failure_delay_ms: 100 } });
  const first = await WirePeer.connect(s.port);
  first.send(1, hello('rvn_wrong_1'));
  const queued = await WirePeer.connect(s.port);
  queued.send(1, hello('rvn_wrong_2'));
  queued.send(2, { type: 'Ping' });
  await queued.closed();
  t.equal(queued.replies.length, 1, 'only the refusal');
  t.equal(queued.replies[0]!.body.code, 'AUTHENTICATION_FAILED');
  first.close();
});

t.test('a socket flood from one address evicts its own sockets, not a broker handshaking from another', async (t) => {
  const s = await server(t, { server: { max_connections: 10 } });
  const broker = await connectFrom(s.port, '127.0.0.1');
  broker.on('error', () => undefined);
  const flood: net.Socket[] = [];
  t.teardown(() => {
    for (const f of flood) f.destroy();
    broker.destroy();
  });
  for (let i = 0; i < 40; i++) {
    const f = await connectFrom(s.port, '127.0.0.2');
    f.on('error', () => undefined);
    flood.push(f);
  }
  await waitUntil(() => s.app.server.evictedUnauthenticated >= 30, '30 evictions');
  t.notOk(broker.destroyed, "the broker's socket is still open");
  const reply = new Promise<string>((resolve) => {
    if (broker.destroyed) resolve('closed');
    broker.once('data', (d: Buffer) => resolve(d.toString('latin1')));
    broker.once('close', () => resolve('closed'));
  });
  const { encodeFrame } = await import('../../src/protocol/codec.js');
  broker.write(encodeFrame(1, hello(RECORD)));
  t.match(await reply, /HelloOk/, 'and its Hello is answered');
  t.ok(s.app.server.unauthenticatedCount <= 10, 'the flood stays within max_connections');
});

t.test('metrics listener: a peer trickling header lines is closed after idle_timeout_ms, not after 30 s', async (t) => {
  const { HealthServer } = await import('../../src/observability/http.js');
  const { Registry } = await import('prom-client');
  const h = new HealthServer(new Registry(), () => true, { idleTimeoutMs: 300 });
  const { port } = await h.listen('127.0.0.1', 0);
  t.teardown(() => h.close());
  // Reading, so that the server's close is seen as an end (a paused socket never ends).
  const socket = net.connect(port, '127.0.0.1').resume();
  socket.on('error', () => undefined);
  socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
  const trickle = setInterval(() => socket.write('X-A: b\r\n'), 100);
  t.teardown(() => clearInterval(trickle));
  await waitUntil(() => socket.destroyed, 'the server to close the trickling socket');
  t.ok(socket.destroyed, 'closed by its headers timeout, though it never stopped sending');
});
