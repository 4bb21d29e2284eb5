import t from 'tap';
import { App } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/observability/logger.js';
import { ManualClock } from '../../src/quota/clock.js';
import { GateStore } from '../helpers/gate-store.js';
import { runInProcess } from '../helpers/cli.js';
import { serverWithClient, startServer } from '../helpers/server.js';

const get = async (app: App, path: string): Promise<{ status: number; body: string }> => {
  const address = await app.httpListening;
  const res = await fetch(`http://127.0.0.1:${address!.port}${path}`);
  return { status: res.status, body: await res.text() };
};

const sample = (text: string, name: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.slice(name.length + 1));
};

t.test('the seed counters move by exactly what was throttled over the wire', async (t) => {
  const { s, c } = await serverWithClient(t, {
    quotas: { defaults: { produce_bytes_rate: 1000, consume_bytes_rate: 1000, request_rate: 2 } },
  });
  const before = (await get(s.app, '/metrics')).body;
  const throttles: number[] = [];
  const keep = (r: { throttleTimeMs: number }) => r.throttleTimeMs > 0 && throttles.push(r.throttleTimeMs);
  for (let i = 0; i < 4; i++) keep(await c.recordProduce({ user: 'p', bytes: 600 })); // 1 Ok, then 3 throttled
  for (let i = 0; i < 3; i++) keep(await c.recordConsume({ user: 'q', bytes: 700 })); // 1 Ok, then 2 throttled
  for (let i = 0; i < 3; i++) keep(await c.recordRequest({ user: 'r' })); // 2 Ok, then 1 throttled
  keep(await c.recordRequest({ user: 'r', admit: true })); // refused: counts too
  const after = (await get(s.app, '/metrics')).body;
  const moved = (name: string) => sample(after, name) - (Number.isNaN(sample(before, name)) ? 0 : sample(before, name));
  t.equal(moved('rivven_quota_produce_violations_total'), 3);
  t.equal(moved('rivven_quota_consume_violations_total'), 2);
  t.equal(moved('rivven_quota_request_violations_total'), 2);
  t.equal(
    moved('rivven_quota_throttle_time_ms_total'),
    throttles.reduce((a, b) => a + b, 0),
    'the sum of throttle_time_ms replied',
  );
  t.equal(sample(after, 'rivven_requests_total{type="RecordProduce",result="throttled"}'), 3);
  t.equal(sample(after, 'rivven_requests_total{type="RecordProduce",result="ok"}'), 1);
  t.equal(sample(after, 'rivven_request_duration_seconds_count{type="RecordRequest"}'), 4);
  t.equal(sample(after, 'rivven_connections'), 1);
  t.equal(sample(after, 'rivven_quota_buckets'), 3);
  t.ok(sample(after, 'rivven_quota_max_utilization{quota_type="produce_bytes_rate"}') > 1, 'someone is in debt');
  t.match(after, /^process_cpu_user_seconds_total /m, "Node's default process metrics");
  t.match(after, /^nodejs_eventloop_lag_seconds /m);
});

t.test('no label carries a principal, however many clients there are', async (t) => {
  const { s, c } = await serverWithClient(t);
  await Promise.all(Array.from({ length: 500 }, (_, i) => c.recordProduce({ user: `tenant-${i}`, clientId: `app-${i}`, bytes: 1 })));
  await c.alterQuotas([{ entity: [['user', 'tenant-7']], quota_key: 'request_rate', quota_value: 5 }]);
  const text = (await get(s.app, '/metrics')).body;
  t.notMatch(text, /tenant-|app-\d/, 'no user or client-id in any series');
  t.equal(sample(text, 'rivven_quota_buckets'), 500);
  t.equal(sample(text, 'rivven_quota_alterations_total'), 1);
});

t.test('/readyz is 503 until stored quotas are loaded and the port listens, then 200; /healthz is 200 throughout', async (t) => {
  const store = new GateStore();
  const { config } = loadConfig({ env: {}, cwd: '/nonexistent', flags: { server: { port: 0 }, metrics: { port: 0 } } });
  const app = new App(config, { logger: silentLogger(), store, clock: new ManualClock() });
  store.closeGate();
  const started = app.start();
  t.same(await get(app, '/readyz'), { status: 503, body: 'not ready\n' });
  t.equal((await get(app, '/healthz')).status, 200);
  t.notOk(app.server.isListening, 'not listening yet');
  store.openGate();
  await started;
  t.same(await get(app, '/readyz'), { status: 200, body: 'ready\n' });
  t.equal((await get(app, '/nope')).status, 404);
  await app.stop();
});

t.test('metrics.enabled: false starts no HTTP listener', async (t) => {
  const s = await startServer({ metrics: { enabled: false } });
  t.equal(s.app.http, undefined);
  t.equal(await s.app.httpListening, undefined);
  await s.stop();
});

t.test('requests sent together (one read, one batch on the server) are each counted under their own type and result', async (t) => {
  const { s, c } = await serverWithClient(t, { quotas: { defaults: { produce_bytes_rate: 1000, request_rate: 2 } } });
  // Issued in one tick: the client writes them as one batch, so the server counts them in one batch too.
  await Promise.all([
    ...Array.from({ length: 4 }, () => c.recordProduce({ user: 'p', bytes: 600 })), // 1 Ok, 3 throttled
    ...Array.from({ length: 5 }, () => c.recordRequest({ user: 'r' })), // 2 Ok, 3 throttled
    c.ping(),
  ]);
  const text = (await get(s.app, '/metrics')).body;
  t.equal(sample(text, 'rivven_requests_total{type="RecordProduce",result="ok"}'), 1);
  t.equal(sample(text, 'rivven_requests_total{type="RecordProduce",result="throttled"}'), 3);
  t.equal(sample(text, 'rivven_requests_total{type="RecordRequest",result="ok"}'), 2);
  t.equal(sample(text, 'rivven_requests_total{type="RecordRequest",result="throttled"}'), 3);
  t.equal(sample(text, 'rivven_requests_total{type="Ping",result="ok"}'), 1);
  t.equal(sample(text, 'rivven_request_duration_seconds_count{type="RecordRequest"}'), 5);
});

t.test('DescribeUsage puts the throttled principal first, with utilization above 1', async (t) => {
  const { s, c } = await serverWithClient(t, { quotas: { defaults: { produce_bytes_rate: 1_000_000 } } });
  await c.alterQuotas([{ entity: [['user', 'noisy']], quota_key: 'produce_bytes_rate', quota_value: 1000 }]);
  for (const u of ['a', 'b', 'c']) await c.recordProduce({ user: u, bytes: 1000 * u.charCodeAt(0) });
  for (let i = 0; i < 4; i++) await c.recordProduce({ user: 'noisy', bytes: 1000 });
  const usage = await c.describeUsage();
  t.match(usage[0], {
    entity: 'user:noisy',
    quota_type: 'produce_bytes_rate',
    limit: 1000,
    rate: 4000,
    throttled_total: 3,
    last_seen_ms: s.clock.now(),
  });
  t.ok(usage[0]!.utilization > 1, `utilization ${usage[0]!.utilization}`);
  t.equal(usage.length, 4);
  t.same(
    (await c.describeUsage({ top: 1, sortBy: 'rate' })).map((b) => b.entity),
    ['user:c'],
    'sorted by rate, top 1',
  );
  t.same(
    (await c.describeUsage({ entities: [['user', 'b']] })).map((b) => b.entity),
    ['user:b'],
    'filtered by a component',
  );
  s.clock.advance(3000);
  t.ok((await c.describeUsage({ entities: [['user', 'noisy']] }))[0]!.utilization <= 1, 'paid off after the debt drains');
  const bad = await c.describeUsage({ top: 0 }).catch((e: unknown) => e);
  t.match(bad, { code: 'INVALID_REQUEST' });
});

t.test('rivven quota top --once and rivven quota usage --json against a real server', async (t) => {
  const { s, c } = await serverWithClient(t, { quotas: { defaults: { request_rate: 10 } } });
  for (let i = 0; i < 15; i++) await c.recordRequest({ user: 'busy', clientId: 'cron' });
  await c.recordRequest({ user: 'idle', clientId: 'web' });
  const env = { RIVVEN_SERVER: `127.0.0.1:${s.port}` };
  const top = await runInProcess(['quota', 'top', '--once'], { env });
  t.equal(top.code, 0, top.stderr);
  const lines = top.stdout.split('\n');
  t.match(lines[0], /^rivven top {2}127\.0\.0\.1:\d+ {2}\d\d:\d\d:\d\d {2}sorted by utilization$/);
  t.match(lines[2], /^ENTITY +QUOTA +RATE +LIMIT +UTIL +THROTTLED +SEEN$/);
  t.match(lines[3], /^user:busy\/client-id:cron +request_rate +15\/s +10\/s +150% +5 /);
  t.notMatch(top.stdout, /\x1b/, 'no ANSI escapes when stdout is not a terminal');
  const usage = await runInProcess(['quota', 'usage', '--json', '--user', 'busy'], { env });
  t.equal(usage.code, 0);
  t.match(JSON.parse(usage.stdout), [
    { entity: 'user:busy/client-id:cron', quota_type: 'request_rate', rate: 15, limit: 10, throttled_total: 5 },
  ]);
  t.equal((await runInProcess(['quota', 'top', '--once', '--sort', 'loudness'], { env })).code, 2);
});

t.test('every metric the dashboard and the alert rules use exists', async (t) => {
  const { readFileSync } = await import('node:fs');
  const s = await startServer();
  t.teardown(() => s.stop());
  const exposed = new Set(
    (await get(s.app, '/metrics')).body
      .split('\n')
      .filter((l) => l.startsWith('# TYPE '))
      .flatMap((l) => {
        const [, , name, type] = l.split(' ');
        return type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name!];
      }),
  );
  exposed.add('up'); // Prometheus's own
  const used = (text: string) => new Set([...text.matchAll(/\b((?:rivven|process|nodejs)_[a-z0-9_]+|up)(?=[{[)\s])/g)].map((m) => m[1]!));
  const dashboard = readFileSync(new URL('../../config/grafana/rivven-dashboard.json', import.meta.url), 'utf8');
  JSON.parse(dashboard);
  const rules = readFileSync(new URL('../../config/prometheus/rivven-rules.yml', import.meta.url), 'utf8');
  for (const [file, names] of [
    ['dashboard', used(dashboard)],
    ['rules', used(rules)],
  ] as const) {
    t.ok(names.size > 3, `${file} uses metrics`);
    t.same(
      [...names].filter((n) => !exposed.has(n)),
      [],
      `${file}: every metric exists`,
    );
  }
});

t.test('AlterQuotas results are counted: ok, and a failed write as an error', async (t) => {
  const store = new GateStore();
  const { s, c } = await serverWithClient(t, {}, store);
  const alteration = { entity: [['user', 'm']] as [['user', string]], quota_key: 'request_rate' as const, quota_value: 5 };
  t.equal(await c.alterQuotas([alteration]), 1);
  store.failNext = new Error('disk full');
  t.match(await c.alterQuotas([alteration]).catch((e: unknown) => e), { code: 'STORAGE_ERROR' });
  const text = (await get(s.app, '/metrics')).body;
  t.equal(sample(text, 'rivven_requests_total{type="AlterQuotas",result="ok"}'), 1);
  t.equal(sample(text, 'rivven_requests_total{type="AlterQuotas",result="error"}'), 1);
  t.equal(sample(text, 'rivven_request_duration_seconds_count{type="AlterQuotas"}'), 2);
});
