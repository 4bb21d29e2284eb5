// Everything that reports buckets works per bucket (issue 20, item 4; docs/protocol.md, DescribeUsage and
// DescribeViolations; docs/operations.md, metrics): a key with rates per second and per minute, through a real
// server on port 0 with a manual clock. The values are set on the server's quota table: until the gate of
// quota-value.ts goes, AlterQuotas refuses "20/min" (the surfaces accept it once it does).
import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import Fastify from 'fastify';
import type { App } from '../../src/app.js';
import { QuotaClient } from '../../src/client/quota-client.js';
import { rivvenRateLimit } from '../../src/http/fastify-rate-limit.js';
import { ViolationLog } from '../../src/observability/violation-log.js';
import { ManualClock } from '../../src/quota/clock.js';
import type { EntityRef } from '../../src/quota/entity.js';
import type { RateList } from '../../src/quota/rate-value.js';
import { run } from '../helpers/cli.js';
import { serverWithClient, startServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

const user = (name: string): EntityRef => ({ kind: 'user', user: name });
const rates = (...items: [number, 's' | 'min' | 'h' | 'd'][]): RateList => items.map(([amount, unit]) => ({ amount, unit }));

const metrics = async (app: App): Promise<string> => {
  const address = await app.httpListening;
  return (await fetch(`http://127.0.0.1:${address!.port}/metrics`)).text();
};
const sample = (text: string, name: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.slice(name.length + 1));
};

/** The fields of a usage row before periods existed, in their order: a per-second row has exactly these. */
const PER_SECOND_FIELDS = [
  'entity',
  'user',
  'client_id',
  'consumer_group',
  'quota_type',
  'rate',
  'limit',
  'utilization',
  'throttled_total',
  'last_seen_ms',
];

t.test('a ["5/s", "20/min"] key: usage rows, quota top, the violation log and the metrics name the minute bucket', async (t) => {
  const { s, c } = await serverWithClient(t, { quotas: { defaults: { request_rate: 1000 } } });
  s.app.table.setValue(user('alice'), 'request_rate', rates([5, 's'], [20, 'min']));
  const before = await metrics(s.app);

  // Five calls a second: within 5/s, past 20/min in the fifth second. The minute bucket (capacity 20, draining
  // 1/3 a second) holds 5k - (k-1)/3 after k seconds: 19 after four, so the fifth second's second call is over.
  const answers: { ms: number; period: string | undefined }[] = [];
  for (let second = 0; second < 5; second++) {
    for (let i = 0; i < 5; i++) {
      const r = await c.recordRequest({ user: 'alice' });
      if (r.throttleTimeMs > 0) answers.push({ ms: r.throttleTimeMs, period: r.period });
    }
    if (second < 4) s.clock.advance(1000);
  }
  t.equal(answers.length, 4, 'calls 2 to 5 of the fifth second are throttled');
  t.same(
    answers.map((a) => a.period),
    ['min', 'min', 'min', 'min'],
    'by the minute bucket',
  );
  t.equal(answers[0]!.ms, 2000, '2/3 of a call over, draining 1/3 a second');

  // DescribeUsage: one row per period, the per-second one as it always was.
  const rows = await c.describeUsage({ entities: [['user', 'alice']] });
  t.equal(rows.length, 2, 'one row per bucket');
  const perMinute = rows.find((r) => r.period === 'min');
  const perSecond = rows.find((r) => r.period === undefined);
  t.match(perMinute, {
    entity: 'user:alice',
    quota_type: 'request_rate',
    period: 'min',
    limit_per_period: 20,
    throttled_total: 4,
  });
  t.ok(Math.abs(perMinute!.used! - (25 - 4 / 3)) < 1e-9, `used: 25 recorded, 4/3 drained (${perMinute!.used})`);
  t.ok(Math.abs(perMinute!.limit - 20 / 60) < 1e-12, `limit is per second: ${perMinute!.limit}`);
  t.ok(perMinute!.utilization > 1, 'in debt: its callers are throttled');
  t.equal(rows[0], perMinute, 'the fuller bucket first');
  t.same(Object.keys(perSecond!), PER_SECOND_FIELDS, 'a per-second row has the fields (and bytes) of before periods');
  t.match(perSecond, { entity: 'user:alice', quota_type: 'request_rate', limit: 5, rate: 5, throttled_total: 0 });

  // quota top and quota usage: a row per period, the limit in the unit it was given.
  const env = { RIVVEN_SERVER: `127.0.0.1:${s.port}` };
  const top = await run(['quota', 'top', '--once', '--user', 'alice'], { env });
  t.equal(top.code, 0, top.stderr);
  const lines = top.stdout.split('\n');
  t.match(lines[2], /^ENTITY +QUOTA +RATE +LIMIT +UTIL +THROTTLED +SEEN$/);
  t.match(lines[3], /^user:alice +request_rate +5\/s +20\/min +1\d\d% +4 /, 'the minute bucket, its limit as 20/min');
  t.match(lines[4], /^user:alice +request_rate +5\/s +5\/s +\d+% +0 /, 'the second bucket as before');
  const usage = await run(['quota', 'usage', '--json', '--user', 'alice'], { env });
  t.match(JSON.parse(usage.stdout), [{ period: 'min', limit_per_period: 20 }, { limit: 5 }], '--json has the wire rows');

  // The violation log: the episode names the period; DescribeViolations and quota violations show it.
  const { events } = await c.describeViolations({ entities: [['user', 'alice']] });
  t.match(events, [
    {
      type: 'RATE_LIMIT_EXCEEDED',
      entity: 'user:alice',
      quota_type: 'request_rate',
      period: 'min',
      detail: 'started: throttled 2000 ms (the per-min rate)',
      count: 1,
    },
  ]);
  const table = await run(['quota', 'violations', '--user', 'alice'], { env });
  t.equal(table.code, 0, table.stderr);
  t.match(table.stdout, /RATE_LIMIT_EXCEEDED +user:alice +request_rate\/min +1 +started: throttled 2000 ms/);

  // Metrics: the throttles are counted under period="min"; the per-second series, unlabelled, did not move.
  const after = await metrics(s.app);
  const moved = (name: string) => sample(after, name) - sample(before, name);
  t.equal(moved('rivven_quota_request_violations_total{period="min"}'), 4);
  t.equal(moved('rivven_quota_request_violations_total'), 0, 'no per-second throttle');
  t.ok(moved('rivven_quota_near_limit_total{quota_type="request_rate",period="min"}') > 0, 'near the minute limit');
  t.ok(sample(after, 'rivven_quota_max_utilization{quota_type="request_rate",period="min"}') > 1, 'the minute bucket in debt');
  t.ok(sample(after, 'rivven_quota_max_utilization{quota_type="request_rate"}') <= 1, 'the second bucket not');
});

t.test('a shadow ["5/s", "20/min"] is measured per bucket: shadow violations name the minute', async (t) => {
  const { s, c } = await serverWithClient(t, { quotas: { defaults: { request_rate: 1000 } } });
  s.app.table.setValue(user('carol'), 'request_rate', rates([5, 's'], [20, 'min']), true);
  for (let second = 0; second < 5; second++) {
    for (let i = 0; i < 5; i++) t.equal((await c.recordRequest({ user: 'carol' })).throttleTimeMs, 0);
    s.clock.advance(1000);
  }
  const { events } = await c.describeViolations({ entities: [['user', 'carol']] });
  t.match(events, [{ type: 'SHADOW_VIOLATION', period: 'min', detail: /\(the per-min rate\)$/ }]);
  const text = await metrics(s.app);
  t.equal(sample(text, 'rivven_quota_shadow_violations_total{quota_type="request_rate",period="min"}'), 4);
  t.equal(sample(text, 'rivven_quota_shadow_violations_total{quota_type="request_rate"}'), 0);
});

t.test('a byte key per day: the row gives the amount per day exactly, and quota top prints it in its unit', async (t) => {
  const { s, c } = await serverWithClient(t, { quotas: { defaults: { produce_bytes_rate: 1e12 } } });
  const day = 11 * 2 ** 30; // 11GiB / 86400 x 86400 is 11811160063.999998 in doubles
  s.app.table.setValue(user('dave'), 'produce_bytes_rate', rates([10 * 2 ** 20, 's'], [day, 'd']));
  await c.recordProduce({ user: 'dave', bytes: 2 ** 20 });
  const rows = await c.describeUsage({ entities: [['user', 'dave']] });
  t.match(
    rows.find((r) => r.period === 'd'),
    { limit_per_period: day, used: 2 ** 20 },
    '11GiB/d per day to the byte: its per-second rate times a day, snapped',
  );
  const top = await run(['quota', 'top', '--once', '--user', 'dave', '--sort', 'rate'], { env: { RIVVEN_SERVER: `127.0.0.1:${s.port}` } });
  t.equal(top.code, 0, top.stderr);
  t.match(top.stdout, /user:dave +produce_bytes_rate +1MiB\/s +11GiB\/d /);
  t.match(top.stdout, /user:dave +produce_bytes_rate +1MiB\/s +10MiB\/s /);
});

t.test('the violation log: a period is its own episode, and a per-second event is the line it always was', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rivven-usage-periods-'));
  const file = join(dir, 'violations.log');
  const clock = new ManualClock(1_000_000);
  const log = new ViolationLog(clock, { file, maxFileBytes: 1 << 20, maxEvents: 100, episodeGapMs: 1000, maxEpisodes: 100 });
  log.violation('RATE_LIMIT_EXCEEDED', 'user:a', 'request_rate', 'throttled 5 ms');
  log.violation('RATE_LIMIT_EXCEEDED', 'user:a', 'request_rate', 'throttled 5 ms (the per-min rate)', 'min');
  log.violation('RATE_LIMIT_EXCEEDED', 'user:a', 'request_rate', 'throttled 9 ms (the per-min rate)', 'min');
  log.violation('RATE_LIMIT_EXCEEDED', 'user:a', 'request_rate', 'throttled 5 ms', 's');
  t.equal(log.openEpisodes, 2, 'one episode per period; an explicit "s" is the per-second one');
  clock.advance(1000);
  await log.tick();
  await log.flushed();
  const lines = readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  t.same(
    lines.map((e) => [e.period, e.count]),
    [
      [undefined, 1],
      ['min', 1],
      [undefined, 2],
      ['min', 2],
    ],
    'starts and ends, each with its period (none for per-second)',
  );
  t.same(Object.keys(lines[0]!), ['time', 'type', 'entity', 'quota_type', 'detail', 'count', 'reported_by']);
  t.same(Object.keys(lines[1]!), ['time', 'type', 'entity', 'quota_type', 'period', 'detail', 'count', 'reported_by']);
  const reloaded = new ViolationLog(clock, { file, maxFileBytes: 1 << 20, maxEvents: 100, episodeGapMs: 1000, maxEpisodes: 100 });
  await reloaded.load();
  t.match((await reloaded.query({ limit: 10 })).events[1], { period: 'min' }, 'the period survives a restart');
});

t.test("the HTTP plugin's X-RateLimit-Limit is the per-second row's, whichever period's row is fuller", async (t) => {
  const s = await startServer();
  s.app.table.setValue(user('acme'), 'request_rate', rates([5, 's'], [3, 'min']));
  const client = await QuotaClient.connect({ port: s.port });
  const app = Fastify();
  await app.register(rivvenRateLimit, { client, tenant: 'x-tenant', recordDeadlineMs: 1000 });
  app.get('/', async () => ({ ok: true }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.teardown(async () => {
    await app.close();
    await client.close();
    await s.stop();
  });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/`;
  const get = () => fetch(url, { headers: { 'x-tenant': 'acme' } });
  await get();
  await get();
  // The minute bucket (2 of 3) sorts before the second's (2 of 5); its limit per second would read as 0.
  const rows = await client.describeUsage({ entities: [['user', 'acme']] });
  t.equal(rows[0]!.period, 'min', 'the fuller row is the minute');
  let limit: string | null = null;
  await waitUntil(async () => {
    limit = (await get()).headers.get('x-ratelimit-limit');
    return limit !== null;
  }, 'the usage snapshot');
  t.equal(limit, '5', 'the per-second rate');
});
