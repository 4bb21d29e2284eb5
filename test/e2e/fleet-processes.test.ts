import t from 'tap';
import { privateRedisUrl } from '../helpers/private-redis.js';
import { freeze, startRedis } from '../helpers/procs.js';
import type { QuotaClient } from '../../src/client/quota-client.js';
import { processFleet, redisAt } from '../helpers/fleet.js';
import { tcpProxy } from '../helpers/tcp-proxy.js';
import { waitUntil } from '../helpers/wait.js';

// Three sidecar processes (the built bin/rivven) on one Redis, under a random key prefix.
// A private Redis for this file; every test still uses its own random key prefix.
const SHARED = await privateRedisUrl();
// A greedy principal spread over sidecars is test/e2e/fleet-accuracy.test.ts (in this process, on the clock the
// test moves) and, in real time over three processes, bench/fleet.ts' accuracy.

t.test('three sidecar processes share one alteration', async (t) => {
  const { clients } = await processFleet(t, SHARED, { RIVVEN_FLEET_SYNC_INTERVAL_MS: '20' });
  const [a, b, c] = clients as [QuotaClient, QuotaClient, QuotaClient];
  await a.alterQuotas([{ entity: [['user', 'everywhere']], quota_key: 'request_rate', quota_value: 42 }]);
  const seen = async (x: QuotaClient) => (await x.describeQuotas([['user', 'everywhere']]))[0]?.quotas.request_rate === 42;
  // How long it takes is bench/outage.ts' measurement; here, that it arrives.
  await waitUntil(async () => (await seen(b)) && (await seen(c)), 'both others to apply it', { everyMs: 10 });
  t.ok((await seen(b)) && (await seen(c)), 'both others applied it');
});

t.test(
  'three sidecar processes, Redis stopped then killed then restarted: record calls keep being answered, breakers open and close, the outage is pushed',
  async (t) => {
    const redis = { proc: await startRedis(), down: false };
    // The sidecars reach Redis through a port of the test's own: the restarted Redis gets a fresh port.
    const proxy = await tcpProxy(() => (redis.down ? undefined : redis.proc.port));
    t.teardown(async () => {
      redis.proc.child.kill('SIGCONT');
      await redis.proc.stop();
      await proxy.close();
    });
    const { clients, prefix } = await processFleet(t, `redis://127.0.0.1:${proxy.port}/0`, {
      RIVVEN_FLEET_BREAKER_RESET_TIMEOUT_MS: '500',
      RIVVEN_QUOTAS_DEFAULTS_REQUEST_RATE: '100',
    });
    /** Polls (bounded) until every sidecar's DescribeFleet satisfies `ok`. */
    const until = (what: string, ok: (f: Awaited<ReturnType<QuotaClient['describeFleet']>>) => boolean) =>
      waitUntil(async () => (await Promise.all(clients.map((c) => c.describeFleet()))).every(ok), what, { everyMs: 50 });
    await until('3 live sidecars', (f) => f.live === 3 && f.breaker === 'closed');

    freeze(redis.proc.child);
    // Record calls carry on while Redis is stopped (their latency then is bench/outage.ts' measurement; that a
    // record call never asks Redis is checked in fleet-buckets.test.ts).
    const answers = [];
    for (let i = 0; i < 300; i++) answers.push(await clients[i % 3]!.recordRequest({ user: 'through-the-outage' }));
    t.ok(
      answers.every((r) => r.recorded),
      `every one of ${answers.length} record calls on 3 sidecars with Redis stopped was answered and recorded`,
    );
    await until('every breaker open', (f) => f.breaker === 'open' || f.breaker === 'half-open');
    t.pass('every breaker left closed');
    const alter = await clients[0]!.alterQuotas([{ entity: [['user', 'during']], quota_key: 'request_rate', quota_value: 1 }]).then(
      () => 'applied',
      (e: { code?: string }) => e.code,
    );
    t.equal(alter, 'STORAGE_ERROR');

    redis.down = true;
    redis.proc.child.kill('SIGKILL');
    await redis.proc.stop();
    redis.proc = await startRedis();
    redis.down = false;
    await until('every breaker closed', (f) => f.breaker === 'closed');
    t.pass('every breaker closed after the restart');
    const r = redisAt(t, redis.proc.port);
    const value = await r.get(`${prefix}bucket:{${JSON.stringify(['request_rate', 'through-the-outage', null])}}`);
    t.ok(value !== null && Number(value.split(':')[0]) > 0, `usage from the outage pushed to the new Redis (${value})`);
    const seen = await Promise.all(clients.map(async (c) => (await c.describeQuotas([['user', 'during']])).length));
    t.same(seen, [0, 0, 0], 'the failed alteration is on no sidecar');
  },
);
