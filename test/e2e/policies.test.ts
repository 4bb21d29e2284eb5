import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { BrokerQuotas, DENIED } from '../../src/client/broker-quotas.js';
import { QuotaClient } from '../../src/client/quota-client.js';
import { runInProcess, serve } from '../helpers/cli.js';
import { serverWithClient } from '../helpers/server.js';

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
  // A deadline no loaded machine misses: past the default 25 ms the call answers 0 (fail open), not DENIED.
  const broker = new BrokerQuotas(c, {
    recordDeadlineMs: 10_000,
    onDenied: (entity, reason) => t.equal(`${entity}: ${reason}`, 'user:mallory: abuse ticket 4711'),
  });
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

t.test('ResetUsage clears the fill and debt of the matching buckets, and needs entities', async (t) => {
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
  const q = (...args: string[]) => runInProcess([...args, '--server', `127.0.0.1:${s.port}`]);
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
