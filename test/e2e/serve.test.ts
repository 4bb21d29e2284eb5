import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { run, serve } from '../helpers/cli.js';
import { WirePeer } from '../helpers/wire.js';

t.test('runs on the embedded defaults with no config file, and drains on SIGTERM', async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'rivven-serve-'));
  const s = await serve(['--data-dir', join(cwd, 'data')], cwd);
  t.match(s.logs[0], { level: 'info', msg: 'configuration loaded', config_file: '(none: embedded defaults)' });
  t.match(s.logs[1], { msg: 'rivven listening', address: /^127\.0\.0\.1:\d+$/ });
  const peer = await WirePeer.connect(s.port);
  t.same(await peer.request({ type: 'RecordProduce', user: 'u', bytes: 10 }), { type: 'Ok', throttle_time_ms: 0 });
  // An alteration in flight when SIGTERM arrives is still answered before the process exits.
  peer.send(7, { type: 'AlterQuotas', alterations: [{ entity: [['user', 'u']], quota_key: 'request_rate', quota_value: 3 }] });
  s.child.kill('SIGTERM');
  const replies = await peer.waitFor(2);
  t.same(replies[1], { correlationId: 7, body: { type: 'QuotasAltered', altered_count: 1 } });
  t.equal(await s.exited, 0, 'exit code 0');
  const msgs = s.logs.map((l) => l.msg);
  t.ok(
    msgs.some((m) => String(m).startsWith('shutting down')),
    'logs the shutdown',
  );
  t.ok(msgs.indexOf('quotas altered') < msgs.indexOf('stopped'), 'the in-flight alteration completed before the stop');
  t.equal(msgs.at(-1), 'stopped');
});

t.test('SIGINT also stops it cleanly', async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'rivven-serve-'));
  const s = await serve(['--data-dir', join(cwd, 'data')], cwd);
  s.child.kill('SIGINT');
  t.equal(await s.exited, 0);
});

t.test('a bad configuration exits 2 and names every problem', async (t) => {
  const { code, stderr } = await run(['serve', '--port', 'x', '--log-level', 'loud']);
  t.equal(code, 2);
  t.match(stderr, /--port \(server\.port\): /, 'names the flag that was typed');
  t.match(stderr, /log\.level/);
});

t.test('Redis unreachable at start: exits 1 at once, naming Redis (nothing keeps the process reconnecting)', async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'rivven-serve-'));
  const { code, stdout } = await run(['serve', '--port', '0'], {
    cwd,
    env: { RIVVEN_STORAGE_BACKEND: 'redis', RIVVEN_STORAGE_REDIS_URL: 'redis://127.0.0.1:1/0', RIVVEN_FLEET_ENABLED: 'true' },
  });
  t.equal(code, 1);
  t.match(stdout, /"cannot reach Redis \(redis:\/\/127\.0\.0\.1:1\/0\): [^"]+","msg":"cannot start"/);
  t.equal(stdout.match(/cannot reach Redis/g)?.length, 1, 'one attempt, then the exit (how soon: bench/outage.ts)');
});
