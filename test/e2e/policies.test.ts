import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { BrokerQuotas, DENIED } from '../../src/client/broker-quotas.js';
import { QuotaClient } from '../../src/client/quota-client.js';
import { ManualClock } from '../../src/quota/clock.js';
import type { EntityRef } from '../../src/quota/entity.js';
import { QuotaManager } from '../../src/quota/quota-manager.js';
import { REQUEST, PRODUCE } from '../../src/quota/quota-key.js';
import { QuotaTable, type Resolution } from '../../src/quota/quota-table.js';
import { run, serve } from '../helpers/cli.js';
import { serverWithClient } from '../helpers/server.js';

const D = '';
const resolve = (table: QuotaTable, user: string | null, client: string | null, key = REQUEST): Resolution =>
  table.resolve(key as 0 | 1 | 2, user, client, {
    level: 9,
    limit: 0,
    burst: undefined,
    shadow: false,
    bucketUser: null,
    bucketClient: null,
  });
const tierRef = (tier: string): EntityRef => ({ kind: 'tier', tier });

t.test('tiers: an entity takes its tier values where it sets none; its own values win, at the same level', async (t) => {
  const table = new QuotaTable({ request_rate: 1000 }, 'rivven', { free: { request_rate: 10, request_burst: 20 } });
  table.setValue(tierRef('pro'), 'request_rate', 600);
  table.setValue(tierRef('pro'), 'produce_bytes_rate', 5_000_000);
  table.setValue({ kind: 'user', user: 'alice' }, 'tier', 'pro');
  t.match(resolve(table, 'alice', 'app'), { level: 3, limit: 600, bucketUser: 'alice', bucketClient: null }, "the user's tier at level 3");
  t.match(resolve(table, 'alice', 'app', PRODUCE), { level: 3, limit: 5_000_000 });
  table.setValue({ kind: 'user', user: 'alice' }, 'request_rate', 50);
  t.match(resolve(table, 'alice', 'app'), { level: 3, limit: 50 }, 'her own value beats the tier, same level');
  t.match(resolve(table, 'alice', 'app', PRODUCE), { level: 3, limit: 5_000_000 }, 'keys she does not set still come from the tier');
  table.setValue({ kind: 'user+client-id', user: 'alice', client: 'batch' }, 'request_rate', 7);
  t.match(resolve(table, 'alice', 'batch'), { level: 1, limit: 7 }, 'a more specific level still wins over the tier');
  table.setValue({ kind: 'user', user: D }, 'tier', 'free');
  t.match(
    resolve(table, 'bob', 'x'),
    { level: 7, limit: 10, burst: 20 },
    '<default> user on the free tier (from rivven.yaml), with its burst',
  );
  t.match(resolve(table, null, 'x'), { level: 9, limit: 1000 }, 'no user: the tier of <default> user does not apply');
  table.setValue(tierRef('pro'), 'request_rate', undefined);
  t.match(resolve(table, 'carol', 'x'), { level: 7, limit: 10 });
  table.setValue({ kind: 'user', user: 'carol' }, 'tier', 'pro');
  t.match(resolve(table, 'carol', 'x'), { level: 7, limit: 10 }, 'a tier that does not set the key: the next level decides');
});

t.test('burst: capacity is the burst, not quota x window; P1 and P2 hold with it (injected clock)', async (t) => {
  const table = new QuotaTable({ request_rate: 10 });
  table.setValue({ kind: 'user', user: 'u' }, 'request_burst', 50);
  const clock = new ManualClock(0);
  const m = new QuotaManager(table, {}, clock);
  const call = () => m.recordRequest('u', 'c', 1, false).throttleMs;
  const first = Array.from({ length: 50 }, call);
  t.same(
    first.filter((ms) => ms > 0),
    [],
    'P1: a fresh bucket accepts the burst (50) at once, not quota x window (10)',
  );
  t.equal(call(), 100, 'the 51st waits one request at 10/s');
  // P1 over time: a caller at its rate, in bursts no larger than B, is never throttled.
  clock.advance(10_000);
  let throttled = 0;
  for (let s = 0; s < 20; s++) {
    for (let i = 0; i < 50; i++) if (call() > 0) throttled++;
    clock.advance(5000);
  }
  t.equal(throttled, 0, 'P1: 50 every 5 s at 10/s is never throttled');
  // P2: a greedy caller honouring every throttle gets the quota over the span, within (W' + 1 ms)/span.
  clock.advance(60_000);
  const start = clock.now();
  let recorded = 0;
  while (clock.now() - start < 100_000) {
    recorded++;
    const ms = call();
    if (ms > 0) clock.advance(ms);
  }
  const achieved = recorded / ((clock.now() - start) / 1000);
  const bound = (5000 + 1) / 100_000; // W' = B/Q = 5 s
  t.ok(Math.abs(achieved / 10 - 1) <= bound, `P2: achieved ${achieved.toFixed(3)}/s against 10/s (bound ${(bound * 100).toFixed(1)}%)`);
});

t.test('shadow: measured and counted, never throttled; enforced once it is set without shadow', async (t) => {
  const table = new QuotaTable({ request_rate: 1_000_000 });
  table.setValue({ kind: 'user', user: 's' }, 'request_rate', 5, true);
  const m = new QuotaManager(table, {}, new ManualClock(0));
  const answers = Array.from({ length: 20 }, () => m.recordRequest('s', 'c', 1, false).throttleMs);
  t.same(
    answers.filter((ms) => ms > 0),
    [],
    'record mode: every call Ok',
  );
  t.equal(m.recordRequest('s', 'c', 1, true).throttleMs, 0, 'admit mode: admitted too');
  t.equal(m.shadowViolations[REQUEST], 16, 'the 16 calls past the quota are counted as shadow violations');
  t.equal(m.violations[REQUEST], 0, 'and not as violations');
  const [report] = await m.usage({ top: 1, sortBy: 'utilization' });
  t.ok(report!.utilization > 1, `the bucket shows the utilization the limit would see (${report!.utilization.toFixed(1)})`);
  table.setValue({ kind: 'user', user: 's' }, 'request_rate', 5, false);
  t.ok(m.recordRequest('s', 'c', 1, false).throttleMs > 0, 'set for real: throttled');
});

t.test('block: Denied on every record type and in admit mode, nothing recorded; unblock restores', async (t) => {
  const { s, c } = await serverWithClient(t, { quotas: { defaults: { request_rate: 100 } } });
  await c.alterQuotas([{ entity: [['user', 'mallory']], quota_key: 'blocked', quota_value: 'abuse ticket 4711' }]);
  const denied = { throttleTimeMs: 0, recorded: false, denied: { entity: 'user:mallory', reason: 'abuse ticket 4711' } };
  t.same(await c.recordProduce({ user: 'mallory', clientId: 'a', bytes: 1 }), denied);
  t.same(await c.recordConsume({ user: 'mallory', clientId: 'a', consumerGroup: 'g', bytes: 1 }), denied);
  t.same(await c.recordRequest({ user: 'mallory', clientId: 'b' }), denied);
  t.same(await c.recordRequest({ user: 'mallory', admit: true }), denied, 'admit mode too');
  t.same(await c.recordRequest({ user: 'alice' }), { throttleTimeMs: 0, recorded: true }, 'others are not affected');
  t.equal(s.app.manager.bucketCount, 1, "nothing was recorded for mallory (only alice's bucket)");
  const broker = new BrokerQuotas(c, { onDenied: (entity, reason) => t.equal(`${entity}: ${reason}`, 'user:mallory: abuse ticket 4711') });
  t.equal(await broker.request('mallory', 'x'), DENIED, 'BrokerQuotas says DENIED: reject, do not delay');
  await c.alterQuotas([{ entity: [['user', 'mallory']], quota_key: 'blocked', quota_value: null }]);
  t.same(await c.recordRequest({ user: 'mallory' }), { throttleTimeMs: 0, recorded: true }, 'unblocked');
  const err = await c.alterQuotas([{ entity: [['consumer-group', 'g']], quota_key: 'blocked', quota_value: 'x' }]).catch((e: unknown) => e);
  t.match(err, { code: 'INVALID_QUOTA_KEY' }, 'a consumer group cannot be blocked');
  const long = await c
    .alterQuotas([{ entity: [['user', 'm']], quota_key: 'blocked', quota_value: 'r'.repeat(257) }])
    .catch((e: unknown) => e);
  t.match(long, { code: 'INVALID_QUOTA_VALUE' }, 'a reason is at most 256 characters');
  t.match(await s.app.metrics.getSingleMetricAsString('rivven_quota_denied_total'), /rivven_quota_denied_total 5/);
});

t.test('ResetUsage clears the level and debt of the matching buckets, and needs entities', async (t) => {
  const { s, c } = await serverWithClient(t, { quotas: { defaults: { request_rate: 10 }, max_throttle_ms: 1_000_000 } });
  t.ok((await c.recordRequest({ user: 'debtor', count: 100 })).throttleTimeMs > 5000, 'deep in debt');
  await c.recordRequest({ user: 'other', count: 100 });
  t.equal(await c.resetUsage([['user', 'debtor']]), 1, 'one bucket reset');
  t.same(await c.recordRequest({ user: 'debtor' }), { throttleTimeMs: 0, recorded: true }, 'free again at once');
  t.ok((await c.recordRequest({ user: 'other' })).throttleTimeMs > 0, 'the other principal keeps its debt');
  t.match(
    await c.request({ type: 'ResetUsage', entities: [] }).catch((e: unknown) => e),
    { code: 'INVALID_REQUEST' },
    'an empty list is refused',
  );
  t.match(await c.request({ type: 'ResetUsage', entities: 'x' }).catch((e: unknown) => e), { code: 'INVALID_REQUEST' });
  t.equal(s.app.manager.bucketCount, 2);
});

t.test('tier guards: an unknown tier cannot be assigned; a tier in use cannot be deleted', async (t) => {
  const { c } = await serverWithClient(t, {});
  const assign = (tier: string | null) => c.alterQuotas([{ entity: [['user', 'alice']], quota_key: 'tier', quota_value: tier }]);
  t.match(await assign('gold').catch((e: unknown) => e), { code: 'UNKNOWN_TIER', index: 0 });
  t.equal(
    await c.alterQuotas([
      { entity: [['tier', 'gold']], quota_key: 'request_rate', quota_value: 5 },
      { entity: [['user', 'alice']], quota_key: 'tier', quota_value: 'gold' },
    ]),
    2,
    'created and assigned in one request',
  );
  const del = await c.alterQuotas([{ entity: [['tier', 'gold']], quota_key: 'request_rate', quota_value: null }]).catch((e: unknown) => e);
  t.match(del, { code: 'TIER_IN_USE', message: /assigned to 1 entities \(user:alice\)/ });
  t.equal(
    await c.alterQuotas([
      { entity: [['user', 'alice']], quota_key: 'tier', quota_value: null },
      { entity: [['tier', 'gold']], quota_key: 'request_rate', quota_value: null },
    ]),
    2,
    'unassigned and deleted in one request',
  );
  t.match(await c.alterQuotas([{ entity: [['tier', 'x']], quota_key: 'tier', quota_value: 'gold' }]).catch((e: unknown) => e), {
    code: 'INVALID_QUOTA_KEY',
  });
  t.match(
    await c.alterQuotas([{ entity: [['tier', null]], quota_key: 'request_rate', quota_value: 1 }]).catch((e: unknown) => e),
    { code: 'INVALID_ENTITY' },
    'no <default> tier',
  );
  t.match(
    await c.alterQuotas([{ entity: [['user', 'a']], quota_key: 'request_rate', quota_value: null, shadow: true }]).catch((e: unknown) => e),
    { code: 'INVALID_REQUEST' },
    'shadow on a removal',
  );
});

t.test('the CLI, and every policy surviving a restart of a real server', async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'rivven-policies-'));
  const dataDir = join(cwd, 'data');
  let s = await serve(['--data-dir', dataDir], cwd);
  t.teardown(() => s.child.kill('SIGKILL'));
  const q = (...args: string[]) => run([...args, '--server', `127.0.0.1:${s.port}`]);
  for (const args of [
    ['tier', 'set', 'pro', '--request-rate', '60', '--produce-bytes-rate', '10MB', '--request-burst', '120'],
    ['quota', 'set', '--user', 'alice', '--tier', 'pro'],
    ['quota', 'set', '--client-id', 'web', '--produce-bytes-rate', '1MB', '--shadow'],
    ['quota', 'set', '--user', 'bob', '--request-rate', '5', '--request-burst', '50'],
    ['quota', 'block', '--user', 'mallory', '--reason', 'abuse ticket 4711'],
  ]) {
    const r = await q(...args);
    t.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  }
  const list = await q('quota', 'list');
  t.match(list.stdout, /^ENTITY +PRODUCE +CONSUME +REQUESTS +POLICY\n/, 'a POLICY column');
  t.match(list.stdout, /client-id:web +1MB\/s \(shadow\)/, 'shadow values are marked');
  t.match(list.stdout, /user:alice +- +- +- +tier pro/);
  t.match(list.stdout, /user:bob +- +- +5\/s +burst request=50/);
  t.match(list.stdout, /user:mallory .*BLOCKED: "abuse ticket 4711"/);
  t.match((await q('tier', 'list')).stdout, /tier:pro +10MB\/s +- +60\/s +burst request=120/);
  t.match((await q('tier', 'delete', 'pro')).stderr, /TIER_IN_USE/);
  const before = JSON.parse((await q('quota', 'list', '--json')).stdout) as unknown[];
  s.child.kill('SIGTERM');
  await s.exited;
  s = await serve(['--data-dir', dataDir], cwd);
  t.same(JSON.parse((await q('quota', 'list', '--json')).stdout), before, 'every policy survives the restart');
  const c = await QuotaClient.connect({ port: s.port });
  t.match(await c.recordRequest({ user: 'mallory' }), { denied: { reason: 'abuse ticket 4711' } }, 'the block too');
  await c.close();
  t.equal((await q('quota', 'unblock', '--user', 'mallory')).code, 0);
  t.equal((await q('quota', 'reset', '--user', 'bob')).stdout, 'reset 0 bucket(s) of user:bob\n');
  t.equal((await q('quota', 'set', '--user', 'alice', '--tier', 'nope')).code, 1);
});
