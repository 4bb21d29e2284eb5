// Every form of a quota value (DESIGN.md section 16) through the real surfaces: AlterQuotas on a server on port
// 0, a rivven.yaml file, a RIVVEN_* variable, the file store across a restart, the Redis store between two
// sidecars. Each value is answered in its canonical form and decides throttles at a manual clock. The CLI is in
// quota-value-cli.test.ts.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import t from 'tap';
import { App } from '../../src/app.js';
import { QuotaClient, type QuotaAlteration, type QuotaEntry } from '../../src/client/quota-client.js';
import { loadConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/observability/logger.js';
import { RivvenError } from '../../src/protocol/error-codes.js';
import { ManualClock } from '../../src/quota/clock.js';
import { FileQuotaStore } from '../../src/store/file-quota-store.js';
import { MemoryQuotaStore } from '../../src/store/quota-store.js';
import { RedisQuotaStore } from '../../src/store/redis-quota-store.js';
import { privateRedisUrl } from '../helpers/private-redis.js';
import { serverWithClient, startServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'rivven-values-'));
const rate = (user: string, quota_value: QuotaAlteration['quota_value'], quota_key: QuotaAlteration['quota_key'] = 'request_rate') => ({
  entity: [['user', user]] as QuotaAlteration['entity'],
  quota_key,
  quota_value,
});

/** DescribeQuotas' user entries by name (the built-in default entity left out). */
const usersOf = (entries: QuotaEntry[]) =>
  Object.fromEntries(entries.filter((e) => e.entity[0]![0] === 'user').map((e) => [e.entity[0]![1], e.quotas]));

/** Calls of `user` at once until the first throttle: how many passed, and the throttle. */
async function untilThrottled(c: QuotaClient, user: string, max = 100) {
  for (let passed = 0; passed < max; passed++) {
    const r = await c.recordRequest({ user, clientId: 'app' });
    if (r.throttleTimeMs > 0) return { passed, ms: r.throttleTimeMs, period: r.period ?? 's' };
  }
  return { passed: max, ms: 0, period: undefined };
}

t.test('AlterQuotas takes every form, answers canonical, and the values decide', async (t) => {
  const { s, c } = await serverWithClient(t);
  const n = await c.alterQuotas([
    rate('a', '10/min'),
    rate('b', ['100/s', '10000/d']),
    rate('c', '10MB/s,100GB/d', 'produce_bytes_rate'),
    rate('d', 0.5),
    rate('e', '2.5k/h'),
    rate('f', ['5/s']),
  ]);
  t.equal(n, 6);
  const quotas = usersOf(await c.describeQuotas());
  t.same(quotas, {
    a: { request_rate: '10/min' },
    b: { request_rate: [100, '10000/d'] },
    c: { produce_bytes_rate: [1e7, '100000000000/d'] },
    d: { request_rate: 0.5 },
    e: { request_rate: '2500/h' },
    f: { request_rate: 5 },
  });
  const saved = Object.fromEntries((await s.app.admin.store.load()).map((q) => [q.entity[0]![1], q.quota_value]));
  t.same(
    saved,
    { a: '10/min', b: [100, '10000/d'], c: [1e7, '100000000000/d'], d: 0.5, e: '2500/h', f: 5 },
    'the memory store keeps the canonical form',
  );
  t.same(await untilThrottled(c, 'a'), { passed: 10, ms: 6000, period: 'min' }, '10/min: ten at once, the eleventh waits 6 s');
  const half = await untilThrottled(c, 'd');
  t.same([half.passed, half.period], [1, 's'], '0.5/s: one whole call (P1), then a throttle');
  t.equal(half.ms, 2000, 'a call at 0.5/s waits 2 s');
});

t.test('a batch with one bad alteration applies none, and names it by index', async (t) => {
  const { c } = await serverWithClient(t);
  const bad: [QuotaAlteration, RegExp][] = [
    [rate('x', '10/week'), /unknown unit "week"/],
    [rate('x', 0), /greater than 0/],
    [rate('x', '-1/min'), /greater than 0/],
    [rate('x', '1e400'), /too large/],
    [rate('x', ['10/s', '20/s']), /two rates per s/],
    [rate('x', ['1/s', '1/min', '1/h', '1/d', '2/d']), /5 rates in one value; at most 4/],
    [rate('x', ['10/s', 'unlimited']), /cannot be part of a list/],
    [rate('x', '5/min', 'max_in_flight'), /with no unit of time/],
    [rate('x', 1.5, 'max_in_flight'), /whole number/],
    [rate('x', '5/min', 'request_burst'), /with no unit of time/],
  ];
  for (const [alteration, why] of bad) {
    const err = await c.alterQuotas([rate('good', '10/min'), rate('good2', [1, '100/d']), alteration]).catch((e: unknown) => e);
    t.type(err, RivvenError);
    t.match(err, { code: 'INVALID_QUOTA_VALUE', index: 2, message: why }, `${JSON.stringify(alteration.quota_value)}: ${why}`);
  }
  t.same(usersOf(await c.describeQuotas()), {}, 'nothing applied: the good alterations before the bad one neither');
});

t.test('rivven.yaml: fractional and per-minute defaults and tiers, and a RIVVEN_* variable over them', async (t) => {
  const file = join(dir, 'rivven.yaml');
  writeFileSync(
    file,
    [
      'server: { port: 0 }',
      'metrics: { port: 0 }',
      'quotas:',
      '  defaults:',
      '    request_rate: 0.25',
      '    produce_bytes_rate: [10MB/s, 1GB/d]',
      'tiers:',
      '  free:',
      '    request_rate: 10/min',
      '  basic:',
      '    request_rate: 1.5/s,20/h',
      '',
    ].join('\n'),
  );
  const start = async (env: Record<string, string>) => {
    const { config } = loadConfig({ file, env });
    const clock = new ManualClock(1_000_000);
    const app = new App(config, { logger: silentLogger(), store: new MemoryQuotaStore(), clock });
    const { port } = await app.start();
    const c = await QuotaClient.connect({ port });
    t.teardown(async () => {
      await c.close();
      await app.stop(1000);
    });
    return { config, c, clock };
  };
  const { config, c } = await start({});
  t.same(config.quotas.defaults.request_rate, 0.25, 'a fraction per second is a plain number');
  t.same(config.quotas.defaults.produce_bytes_rate, [1e7, '1000000000/d'], 'a list, canonical');
  t.same(config.tiers.free, { request_rate: '10/min' });
  t.same(config.tiers.basic, { request_rate: [1.5, '20/h'] });
  const d = await untilThrottled(c, 'anyone');
  t.same(d, { passed: 1, ms: 4000, period: 's' }, 'the 0.25/s default: one call, then a 4 s wait');
  await c.alterQuotas([rate('f', 'free', 'tier'), rate('b', 'basic', 'tier')]);
  t.same(await untilThrottled(c, 'f'), { passed: 10, ms: 6000, period: 'min' }, 'tier free decides 10/min');
  const b = await untilThrottled(c, 'b');
  t.equal(b.period, 's', 'tier basic: 1.5/s binds first');
  t.ok(b.passed >= 1 && b.passed <= 2, `tier basic: ${b.passed} call(s) at once under 1.5/s`);

  const min = await start({ RIVVEN_QUOTAS_DEFAULTS_REQUEST_RATE: '3/min' });
  t.same(min.config.quotas.defaults.request_rate, '3/min', 'the variable beats the file');
  t.same(
    await untilThrottled(min.c, 'someone'),
    { passed: 3, ms: 20_000, period: 'min' },
    'RIVVEN_QUOTAS_DEFAULTS_REQUEST_RATE=3/min decides',
  );
  const list = await start({ RIVVEN_QUOTAS_DEFAULTS_REQUEST_RATE: '4/h,2/s' });
  t.same(list.config.quotas.defaults.request_rate, [2, '4/h'], 'a list in a variable, canonical');
  const two = await untilThrottled(list.c, 'someone');
  t.same([two.passed, two.period], [2, 's'], 'the 2/s,4/h default: two calls at once, the per-second bucket binds');
  list.clock.advance(1000);
  // Three calls are in the hour's bucket (a throttled call is still recorded); a second later the fourth fits, and
  // the fifth is over 4/h: the longest wait, capped by max_throttle_ms, names the hour.
  t.same(await untilThrottled(list.c, 'someone'), { passed: 1, ms: 30_000, period: 'h' }, 'then the per-hour one binds');
});

t.test('the file store writes the canonical form and keeps every form across a restart', async (t) => {
  const data = mkdtempSync(join(tmpdir(), 'rivven-values-store-'));
  const first = await startServer({}, new FileQuotaStore(data));
  const c1 = await QuotaClient.connect({ port: first.port });
  await c1.alterQuotas([rate('a', ['100/s', '10000/d']), rate('b', '10MiB/min', 'consume_bytes_rate'), rate('c', 0.5)]);
  await c1.close();
  await first.stop();
  const log = readFileSync(join(data, 'quotas.log'), 'utf8');
  t.match(log, /"quota_value":\[100,"10000\/d"\]/, 'the log holds the canonical list');
  t.match(log, /"quota_value":"10485760\/min"/, 'a byte rate in base units');
  t.match(readFileSync(join(data, 'audit.log'), 'utf8'), /"old":null,"new":\[100,"10000\/d"\]/, 'the audit log too');

  const again = await startServer({}, new FileQuotaStore(data));
  t.teardown(() => again.stop());
  const c2 = await QuotaClient.connect({ port: again.port });
  t.teardown(() => c2.close());
  const quotas = usersOf(await c2.describeQuotas());
  t.same(quotas, { a: { request_rate: [100, '10000/d'] }, b: { consume_bytes_rate: '10485760/min' }, c: { request_rate: 0.5 } });
  t.same(
    again.app.table.get({ kind: 'user', user: 'a' }, 2),
    [
      { amount: 100, unit: 's' },
      { amount: 10000, unit: 'd' },
    ],
    'held as the rates the buckets decide',
  );
  let throttled = 0;
  for (let i = 0; i < 100; i++) {
    again.clock.advance(1000);
    if ((await c2.recordRequest({ user: 'a', count: 100 })).throttleTimeMs > 0) throttled++;
  }
  t.equal(throttled, 0, '100 calls per second for 100 s fit 100/s');
  again.clock.advance(1000);
  const r = await c2.recordRequest({ user: 'a', count: 100 });
  t.same([r.throttleTimeMs > 0, r.period], [true, 'd'], 'the next 100 are over 10000/d: the per-day bucket binds');
});

t.test('the file store snapshot (quotas.json) keeps a list across a restart too', async (t) => {
  const data = mkdtempSync(join(tmpdir(), 'rivven-values-snapshot-'));
  const first = await startServer({}, new FileQuotaStore(data, { compactAfterChanges: 1 }));
  const c1 = await QuotaClient.connect({ port: first.port });
  await c1.alterQuotas([rate('a', ['100/s', '10000/d'])]);
  await c1.alterQuotas([rate('b', '1/h')]);
  await c1.close();
  await first.stop();
  t.match(readFileSync(join(data, 'quotas.json'), 'utf8'), /"quota_value":\[100,"10000\/d"\]/, 'the snapshot holds the canonical list');
  const again = await startServer({}, new FileQuotaStore(data));
  t.teardown(() => again.stop());
  t.same(again.app.table.getValue({ kind: 'user', user: 'a' }, 'request_rate'), [100, '10000/d']);
  t.same(again.app.table.getValue({ kind: 'user', user: 'b' }, 'request_rate'), '1/h');
});

t.test('the Redis store: one sidecar writes canonical, a sidecar started later loads every form', async (t) => {
  const url = await privateRedisUrl();
  const keyPrefix = `rivven-test-${randomBytes(6).toString('hex')}:`;
  const a = await startServer({}, new RedisQuotaStore({ url, keyPrefix }));
  t.teardown(() => a.stop());
  const ca = await QuotaClient.connect({ port: a.port });
  t.teardown(() => ca.close());
  await ca.alterQuotas([rate('p', '10MB/s,100GB/d', 'produce_bytes_rate'), rate('q', '20/min'), rate('r', '0.17')]);
  const redis = new Redis(url);
  t.teardown(() => redis.disconnect());
  const stored = Object.values(await redis.hgetall(`${keyPrefix}{quotas}:configs`)).map((v) => JSON.parse(v).quota_value);
  t.same(stored.sort(), [0.17, '20/min', [1e7, '100000000000/d']].sort(), 'Redis holds the canonical forms');

  const b = await startServer({}, new RedisQuotaStore({ url, keyPrefix }));
  t.teardown(() => b.stop());
  const cb = await QuotaClient.connect({ port: b.port });
  t.teardown(() => cb.close());
  const quotas = usersOf(await cb.describeQuotas());
  t.same(quotas, {
    p: { produce_bytes_rate: [1e7, '100000000000/d'] },
    q: { request_rate: '20/min' },
    r: { request_rate: 0.17 },
  });
  t.same(await untilThrottled(cb, 'q'), { passed: 20, ms: 3000, period: 'min' }, 'the loaded 20/min decides on the second sidecar');
  // A change made while both run reaches the other through the changes stream, validated and canonical there too.
  await ca.alterQuotas([rate('s', '100/s,5/min,10000/d')]);
  const wanted = [100, '5/min', '10000/d'];
  await waitUntil(async () => JSON.stringify(usersOf(await cb.describeQuotas()).s?.request_rate) === JSON.stringify(wanted), 's on b');
  t.same(b.app.table.getValue({ kind: 'user', user: 's' }, 'request_rate'), wanted, 'applied from the stream');
});
