import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runInProcess, serve } from '../helpers/cli.js';
import { serverWithClient } from '../helpers/server.js';

t.test('a sustained throttle of 10 s is one episode: one start, one end with the total', async (t) => {
  const { s, c } = await serverWithClient(t, { quotas: { defaults: { request_rate: 10 } } });
  const log = s.app.violations;
  // A greedy caller honouring every throttle for 10 s (injected clock, no sleeping).
  const start = s.clock.now();
  let calls = 0;
  while (s.clock.now() - start < 10_000) {
    const r = await c.recordRequest({ user: 'greedy', count: 2 });
    calls++;
    s.clock.advance(Math.max(1, r.throttleTimeMs));
  }
  log.tick();
  t.equal((await log.query({ limit: 100 })).events.length, 1, 'during the episode: only its start');
  s.clock.advance(31_000); // max_throttle_ms + window_ms with no throttle
  log.tick();
  const { events, summary } = await log.query({ limit: 100 });
  t.match(events, [
    {
      type: 'RATE_LIMIT_EXCEEDED',
      entity: 'user:greedy',
      quota_type: 'request_rate',
      count: 1,
      detail: /^started: throttled/,
    },
    { type: 'RATE_LIMIT_EXCEEDED', entity: 'user:greedy', count: Number, detail: /^ended after \d+ ms: \d+ violation/ },
  ]);
  t.equal(events.length, 2, `exactly two events for ${calls} calls`);
  t.ok(events[1]!.count > 40, `the end carries the total (${events[1]!.count})`);
  t.same(summary.by_type, { RATE_LIMIT_EXCEEDED: 2 });
});

t.test('every violation type reaches the log; filters by type, entity and time', async (t) => {
  const { s, c } = await serverWithClient(t, { quotas: { defaults: { request_rate: 1 } } });
  await c.alterQuotas([
    { entity: [['user', 'mallory']], quota_key: 'blocked', quota_value: 'ticket 1' },
    { entity: [['user', 'svc']], quota_key: 'max_in_flight', quota_value: 1 },
    { entity: [['client-id', 'canary']], quota_key: 'request_rate', quota_value: 1, shadow: true },
  ]);
  await c.recordRequest({ user: 'mallory' });
  await c.acquireLease({ user: 'svc' });
  await c.acquireLease({ user: 'svc' });
  await c.recordRequest({ clientId: 'canary', count: 5 });
  await c.recordRequest({ user: 'alice', count: 5 });
  const all = await c.describeViolations();
  t.same(all.events.map((e) => e.type).sort(), ['BLOCKED', 'CONCURRENT_LIMIT_EXCEEDED', 'RATE_LIMIT_EXCEEDED', 'SHADOW_VIOLATION']);
  t.same(
    (await c.describeViolations({ types: ['BLOCKED'] })).events.map((e) => e.entity),
    ['user:mallory'],
  );
  t.same(
    (await c.describeViolations({ entities: [['user', 'svc']] })).events.map((e) => e.type),
    ['CONCURRENT_LIMIT_EXCEEDED'],
  );
  t.same(
    (await c.describeViolations({ entities: [['client-id', null]] })).events.map((e) => e.type),
    ['SHADOW_VIOLATION'],
  );
  t.equal((await c.describeViolations({ sinceMs: Date.now() + 60_000 })).summary.total, 0, 'since the future: none');
  t.match(await c.request({ type: 'DescribeViolations', types: ['NOPE'] }).catch((e: unknown) => e), { code: 'INVALID_REQUEST' });
  t.match(await c.request({ type: 'DescribeViolations', limit: 0 }).catch((e: unknown) => e), { code: 'INVALID_REQUEST' });
  t.equal(s.app.violations.openEpisodes, 4);
});

t.test('violations survive a restart (violations.log), and rivven quota violations shows them', async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'rivven-violations-cli-'));
  const dataDir = join(cwd, 'data');
  let s = await serve(['--data-dir', dataDir], cwd, { env: { RIVVEN_QUOTAS_DEFAULTS_REQUEST_RATE: '1' } });
  t.teardown(() => s.child.kill('SIGKILL'));
  const q = (...args: string[]) => runInProcess([...args, '--server', `127.0.0.1:${s.port}`]);
  t.equal((await q('quota', 'block', '--user', 'mallory', '--reason', 'ticket 9')).code, 0);
  const { QuotaClient } = await import('../../src/client/quota-client.js');
  const c = await QuotaClient.connect({ port: s.port });
  await c.recordRequest({ user: 'mallory' });
  await c.recordRequest({ user: 'alice', count: 3 });
  await c.close();
  s.child.kill('SIGTERM');
  await s.exited;
  t.match(readFileSync(join(dataDir, 'violations.log'), 'utf8'), /"type":"BLOCKED"/);
  s = await serve(['--data-dir', dataDir], cwd, { env: { RIVVEN_QUOTAS_DEFAULTS_REQUEST_RATE: '1' } });
  const table = await q('quota', 'violations', '--since', '1h');
  t.equal(table.code, 0, table.stderr);
  t.match(table.stdout, /^TIME +TYPE +ENTITY +QUOTA +COUNT +DETAIL\n/);
  t.match(table.stdout, /BLOCKED +user:mallory +- +1 +started: denied: ticket 9/);
  t.match(table.stdout, /\n2 event\(s\): (BLOCKED 1, RATE_LIMIT_EXCEEDED 1|RATE_LIMIT_EXCEEDED 1, BLOCKED 1)\n/);
  const json = JSON.parse((await q('quota', 'violations', '--user', 'alice', '--type', 'RATE_LIMIT_EXCEEDED', '--json')).stdout);
  t.match(json, { events: [{ entity: 'user:alice', type: 'RATE_LIMIT_EXCEEDED' }], summary: { total: 1 } });
  t.equal((await q('quota', 'violations', '--since', 'yesterday')).code, 2);
});
