import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { serve, type Served } from '../helpers/cli.js';
import { encodeFrame } from '../../src/protocol/codec.js';
import { WirePeer } from '../helpers/wire.js';
import { logLine } from '../helpers/wait.js';

const cwd = () => mkdtempSync(join(tmpdir(), 'rivven-shutdown-'));

/** A connection the server has accepted that then neither reads, writes nor closes: the worst peer for a drain. */
async function silentPeer(port: number): Promise<net.Socket> {
  // allowHalfOpen: the server's FIN does not make this side close, as it would by default.
  const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  s.on('error', () => undefined);
  await new Promise((r) => s.once('connect', r));
  s.write(encodeFrame(1, { type: 'Ping' }));
  await new Promise((r) => s.once('data', r)); // accepted and answered
  s.pause();
  return s;
}

/** A socket that connects and then never reads (its refusal stays unread). */
async function unreadSocket(port: number): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  await new Promise((r) => s.once('connect', r));
  s.pause();
  s.on('error', () => undefined);
  return s;
}

const metricsPort = (s: Served): number =>
  Number(
    String(s.logs.find((l) => l.msg === 'rivven listening')!.metrics)
      .split(':')
      .pop()!
      .split('/')[0],
  );

t.test('SIGTERM after an OVERLOADED refusal, with metrics on and silent peers, exits 0', async (t) => {
  const s = await serve(['--data-dir', join(cwd(), 'data')], cwd(), { env: { RIVVEN_SERVER_MAX_CONNECTIONS: '1' } });
  const kept = await silentPeer(s.port);
  const refused = await WirePeer.connect(s.port);
  await refused.closed();
  t.match(
    refused.replies,
    [{ correlationId: 0, body: { type: 'Error', code: 'OVERLOADED' } }],
    'the second connection is refused with OVERLOADED',
  );
  const refusedSilent = await unreadSocket(s.port); // refused too, and never reads its refusal
  const keepAlive = new http.Agent({ keepAlive: true });
  await new Promise((r) => http.get({ port: metricsPort(s), path: '/healthz', agent: keepAlive }, (res) => res.resume().on('end', r)));
  s.child.kill('SIGTERM');
  t.equal(await s.exited, 0, 'exits 0 (the drain timeout closes the silent peers)');
  kept.destroy();
  refusedSilent.destroy();
  keepAlive.destroy();
});

t.test('during the drain a new connection gets SHUTTING_DOWN; a second signal exits 1 at once', async (t) => {
  const s = await serve(['--data-dir', join(cwd(), 'data')], cwd());
  const kept = await silentPeer(s.port); // holds the drain open for its 5 s
  s.child.kill('SIGTERM');
  await logLine(s.logs, 'shutting down');
  const late = await WirePeer.connect(s.port);
  await late.closed();
  t.match(late.replies, [{ correlationId: 0, body: { type: 'Error', code: 'SHUTTING_DOWN' } }]);
  s.child.kill('SIGTERM');
  t.equal(await s.exited, 1, 'the second signal exits 1, not 143');
  kept.destroy();
});

t.test('with a small open-file limit, connections past it get OVERLOADED and the store and /healthz keep working', async (t) => {
  const limit = 120; // RESERVED_DESCRIPTORS (64) are kept: about 56 broker connections fit
  const s = await serve(['--data-dir', join(cwd(), 'data')], cwd(), { wrapper: ['prlimit', `--nofile=${limit}:${limit}`] });
  t.teardown(() => s.child.kill('SIGKILL'));
  const warning = s.logs.find((l) => typeof l.msg === 'string' && l.msg.includes('open-file limit'));
  t.match(
    warning,
    { level: 'warn', open_file_limit: limit, accepted_up_to: limit - 64 },
    'the start warns that max_connections does not fit',
  );
  const admin = await WirePeer.connect(s.port);
  const peers: WirePeer[] = [];
  for (let i = 0; i < 80; i++) peers.push(await WirePeer.connect(s.port));
  await Promise.all(peers.map((p) => p.request({ type: 'Ping' }).catch(() => undefined)));
  const refused = peers.filter((p) => p.replies.some((r) => r.body.code === 'OVERLOADED'));
  const served = peers.filter((p) => p.replies.some((r) => r.body.type === 'Pong'));
  t.ok(refused.length > 0, `${refused.length} connections were refused with OVERLOADED`);
  t.equal(refused.length + served.length, peers.length, 'none was dropped silently: each got Pong or OVERLOADED');
  t.match(
    await admin.request({ type: 'AlterQuotas', alterations: [{ entity: [['user', 'fd']], quota_key: 'request_rate', quota_value: 5 }] }, 2),
    { type: 'QuotasAltered', altered_count: 1 },
    'AlterQuotas still reaches the disk',
  );
  const status = await new Promise<number>((resolve) =>
    http.get({ port: metricsPort(s), path: '/healthz' }, (res) => resolve(res.statusCode ?? 0)).on('error', () => resolve(0)),
  );
  t.equal(status, 200, '/healthz answers');
  peers.forEach((p) => {
    p.close();
  });
  admin.close();
});
