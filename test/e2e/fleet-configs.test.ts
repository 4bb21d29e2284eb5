import t from 'tap';
import { privateRedisUrl } from '../helpers/private-redis.js';
import type { Redis } from 'ioredis';
import { freeze, startRedis, startSentinel } from '../helpers/procs.js';
import type { QuotaClient } from '../../src/client/quota-client.js';
import { RedisQuotaStore } from '../../src/store/redis-quota-store.js';
import { inProcessFleet, newPrefix, redisAt } from '../helpers/fleet.js';
import { waitUntil } from '../helpers/wait.js';

// A private Redis for this file; every test still uses its own random key prefix.
const SHARED = await privateRedisUrl();

/** `n` sidecars in this process sharing configs through the Redis store (no fleet mode): test/helpers/fleet.ts. */
async function sidecars(t: { teardown(fn: () => unknown): void }, url: string, n: number, pollIntervalMs = 200) {
  return (await inProcessFleet(t, url, n, { fleet: false, store: { pollIntervalMs } })).sidecars;
}

/** Waits until `cond` holds (how long it took is bench/outage.ts' measurement, not an assertion). */
const within = (cond: () => Promise<boolean>): Promise<void> => waitUntil(cond, 'the sidecars to agree', { everyMs: 10 });

/** Scripts Redis has run (EVALSHA and EVAL): how a test sees that a call it gave up on ran late. */
async function scriptRuns(r: Redis): Promise<number> {
  const stats = await r.info('commandstats');
  return [...stats.matchAll(/^cmdstat_eval(?:sha)?:calls=(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

const rateOf = async (c: QuotaClient, user: string) => (await c.describeQuotas([['user', user]]))[0]?.quotas.request_rate;

t.test('an alteration on one sidecar is applied by the others within 1 s', async (t) => {
  const [a, b, c] = await sidecars(t, SHARED, 3);
  await a!.c.alterQuotas([{ entity: [['user', 'shared']], quota_key: 'request_rate', quota_value: 7 }]);
  await within(async () => (await rateOf(b!.c, 'shared')) === 7 && (await rateOf(c!.c, 'shared')) === 7);
  t.equal(c!.s.app.table.get({ kind: 'user', user: 'shared' }, 2), 7, 'seen by both others: c');
  t.equal(b!.s.app.table.get({ kind: 'user', user: 'shared' }, 2), 7, 'in the table that decides, not only in a listing');
  await b!.c.alterQuotas([{ entity: [['user', 'shared']], quota_key: 'request_rate', quota_value: null }]);
  await within(async () => (await rateOf(a!.c, 'shared')) === undefined);
  t.equal(a!.store.appliedVersion, b!.store.appliedVersion, 'every sidecar at the same version');
});

t.test('a lost notification (the subscriber connection killed) is still applied, by the version poll', async (t) => {
  const [a, b] = await sidecars(t, SHARED, 2, 300);
  const admin = redisAt(t, SHARED);
  // b's subscriber is told to hold off its reconnect, then its connection is killed: the notification of the
  // next alteration goes nowhere, and only the poll can find it.
  (b!.store as unknown as { subscriber: Redis }).subscriber.options.retryStrategy = () => 2000;
  await admin.call('CLIENT', 'KILL', 'ID', String(b!.store.subscriberId));
  const polledBefore = b!.store.foundByPoll;
  await a!.c.alterQuotas([{ entity: [['user', 'polled']], quota_key: 'request_rate', quota_value: 3 }]);
  await within(async () => (await rateOf(b!.c, 'polled')) === 3);
  t.equal(b!.s.app.table.get({ kind: 'user', user: 'polled' }, 2), 3, 'applied');
  t.equal(b!.store.foundByPoll, polledBefore + 1, 'found by the version poll');
});

t.test('Redis hung: AlterQuotas is STORAGE_ERROR and changes nothing anywhere; record calls and reads carry on', async (t) => {
  const redis = await startRedis();
  t.teardown(async () => {
    redis.child.kill('SIGCONT');
    await redis.stop();
  });
  // No version poll (its clock reading is a timed call too): the one call to time out below is the alteration.
  const [a, b] = await sidecars(t, `redis://127.0.0.1:${redis.port}/0`, 2, 3_600_000);
  await a!.c.alterQuotas([{ entity: [['user', 'before']], quota_key: 'request_rate', quota_value: 5 }]);
  await within(async () => (await rateOf(b!.c, 'before')) === 5);
  const r = redisAt(t, `redis://127.0.0.1:${redis.port}/0`);
  const failuresBefore = a!.store.backend.failures;
  const scriptsBefore = await scriptRuns(r);
  freeze(redis.child);
  const err = await a!.c
    .alterQuotas([{ entity: [['user', 'during']], quota_key: 'request_rate', quota_value: 9 }])
    .catch((e: unknown) => e);
  t.match(err, { code: 'STORAGE_ERROR' }, 'refused');
  t.equal(a!.store.backend.failures, failuresBefore + 1, 'by command_timeout_ms, not a hang (how long: bench/outage.ts)');
  t.same(await a!.c.recordRequest({ user: 'before' }), { throttleTimeMs: 0, recorded: true }, 'record calls carry on');
  t.equal(await rateOf(a!.c, 'before'), 5, 'DescribeQuotas answers from the last known configs');
  t.equal(await rateOf(a!.c, 'during'), undefined, 'nothing applied here');
  redis.child.kill('SIGCONT');
  // The late script runs once Redis resumes (it must refuse: past its deadline); wait for that run.
  await waitUntil(async () => (await scriptRuns(r)) > scriptsBefore, 'Redis to run the late script', { everyMs: 10 });
  t.equal(await rateOf(b!.c, 'during'), undefined, 'nor on the other sidecar, even after Redis resumed');
  t.equal(await r.hlen(`${a!.store.options.keyPrefix}{quotas}:configs`), 1, 'nor in Redis');
  t.equal(
    await a!.c.alterQuotas([{ entity: [['user', 'after']], quota_key: 'request_rate', quota_value: 2 }]),
    1,
    'alterations work again',
  );
});

t.test('through Sentinel: the store finds the primary by name and shares configs through it', async (t) => {
  const primary = await startRedis();
  const sentinel = await startSentinel(primary.port, 'rivven-test');
  t.teardown(async () => {
    await sentinel.stop();
    await primary.stop();
  });
  const prefix = newPrefix();
  const target = { sentinel: { name: 'rivven-test', nodes: [`127.0.0.1:${sentinel.port}`] } };
  const a = new RedisQuotaStore({ target, keyPrefix: prefix });
  const b = new RedisQuotaStore({ target, keyPrefix: prefix });
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  await a.load();
  await b.load();
  t.equal(a.description, `redis sentinel rivven-test@127.0.0.1:${sentinel.port} prefix ${prefix}`);
  const heard: unknown[] = [];
  b.onChange((c) => heard.push(c));
  await a.apply([{ entity: [['user', 'via-sentinel']], quota_key: 'request_rate', quota_value: 4 }], []);
  await within(async () => heard.length === 1);
  const direct = redisAt(t, `redis://127.0.0.1:${primary.port}/0`);
  t.equal(await direct.hlen(`${prefix}{quotas}:configs`), 1, 'written to the primary the sentinel named');
});

t.test('Redis emptied (restarted without persistence): every sidecar follows it back, and agrees again', async (t) => {
  const [a, b] = await sidecars(t, SHARED, 2);
  await a!.c.alterQuotas([{ entity: [['user', 'volatile']], quota_key: 'request_rate', quota_value: 6 }]);
  await within(async () => (await rateOf(b!.c, 'volatile')) === 6);
  const admin = redisAt(t, SHARED);
  const keys = await admin.keys(`${a!.store.options.keyPrefix}*`);
  await admin.del(...keys);
  await within(async () => (await rateOf(a!.c, 'volatile')) === undefined && (await rateOf(b!.c, 'volatile')) === undefined);
  t.equal(a!.store.reloads + b!.store.reloads, 2, 'each reloaded once');
  t.equal(a!.store.appliedVersion, 0);
  await b!.c.alterQuotas([{ entity: [['user', 'again']], quota_key: 'request_rate', quota_value: 2 }]);
  await within(async () => (await rateOf(a!.c, 'again')) === 2);
  t.equal(a!.store.appliedVersion, 1, 'versions count again from 1, everywhere');
});

t.test('through Sentinel, the primary killed: a replica is promoted and alterations go on through it', async (t) => {
  // No 5 s wait for more replicas before the first (diskless) full sync.
  const primary = await startRedis(undefined, ['--repl-diskless-sync-delay', '0']);
  const replica = await startRedis(undefined, ['--replicaof', '127.0.0.1', String(primary.port)]);
  const sentinel = await startSentinel(primary.port, 'rivven-failover');
  t.teardown(async () => {
    await sentinel.stop();
    await replica.stop();
    await primary.stop();
  });
  const prefix = newPrefix();
  const store = new RedisQuotaStore({
    target: { sentinel: { name: 'rivven-failover', nodes: [`127.0.0.1:${sentinel.port}`] } },
    keyPrefix: prefix,
  });
  t.teardown(() => store.close());
  await store.load();
  const direct = redisAt(t, replica.port);
  await store.apply([{ entity: [['user', 'before']], quota_key: 'request_rate', quota_value: 1 }], []);
  await within(async () => (await direct.hlen(`${prefix}{quotas}:configs`)) === 1); // replicated
  primary.child.kill('SIGKILL');
  // Sentinel notices in 500 ms and promotes the replica; ioredis asks it for the new primary on reconnect.
  await waitUntil(
    async () =>
      store.apply([{ entity: [['user', 'after']], quota_key: 'request_rate', quota_value: 2 }], []).then(
        () => true,
        () => false,
      ),
    'an alteration through the promoted replica',
    { timeoutMs: 15_000, everyMs: 10 },
  );
  t.pass('an alteration applied through the promoted replica');
  t.equal(await direct.hlen(`${prefix}{quotas}:configs`), 2, 'both on the new primary');
  t.equal(await direct.role().then((r) => r[0]), 'master');
});
