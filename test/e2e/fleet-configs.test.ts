import { randomBytes } from 'node:crypto';
import t from 'tap';
import { privateRedisUrl } from '../helpers/private-redis.js';
import { Redis } from 'ioredis';
import { freeze, startRedis, startSentinel } from '../helpers/procs.js';
import { QuotaClient } from '../../src/client/quota-client.js';
import { RedisQuotaStore } from '../../src/store/redis-quota-store.js';
import { startServer, type TestServer } from '../helpers/server.js';

// A private Redis for this file; every test still uses its own random key prefix.
const SHARED = await privateRedisUrl();

async function sidecars(t: { teardown(fn: () => unknown): void }, url: string, n: number, pollIntervalMs = 200) {
  const prefix = `rivven-test-${randomBytes(6).toString('hex')}:`;
  const out: { s: TestServer; c: QuotaClient; store: RedisQuotaStore }[] = [];
  for (let i = 0; i < n; i++) {
    const store = new RedisQuotaStore({ url, keyPrefix: prefix, pollIntervalMs });
    const s = await startServer({}, store);
    const c = await QuotaClient.connect({ port: s.port });
    out.push({ s, c, store });
  }
  t.teardown(async () => {
    for (const { s, c } of out) {
      await c.close();
      await s.stop();
    }
    const r = new Redis(url);
    const keys = await r.keys(`${prefix}*`);
    if (keys.length > 0) await r.del(...keys);
    r.disconnect();
  });
  return out;
}

/** Waits (bounded) until `cond` holds; returns the time it took. */
async function within(ms: number, cond: () => Promise<boolean>): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    if (await cond()) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`not within ${ms} ms`);
}

const rateOf = async (c: QuotaClient, user: string) => (await c.describeQuotas([['user', user]]))[0]?.quotas.request_rate;

t.test('an alteration on one sidecar is applied by the others within 1 s', async (t) => {
  const [a, b, c] = await sidecars(t, SHARED, 3);
  await a!.c.alterQuotas([{ entity: [['user', 'shared']], quota_key: 'request_rate', quota_value: 7 }]);
  const took = await within(1000, async () => (await rateOf(b!.c, 'shared')) === 7 && (await rateOf(c!.c, 'shared')) === 7);
  t.ok(took < 1000, `seen by both others after ${Math.round(took)} ms`);
  t.equal(b!.s.app.table.get({ kind: 'user', user: 'shared' }, 2), 7, 'in the table that decides, not only in a listing');
  await b!.c.alterQuotas([{ entity: [['user', 'shared']], quota_key: 'request_rate', quota_value: null }]);
  await within(1000, async () => (await rateOf(a!.c, 'shared')) === undefined);
  t.equal(a!.store.appliedVersion, b!.store.appliedVersion, 'every sidecar at the same version');
});

t.test('a lost notification (the subscriber connection killed) is still applied, by the version poll', async (t) => {
  const [a, b] = await sidecars(t, SHARED, 2, 300);
  const admin = new Redis(SHARED);
  t.teardown(() => admin.disconnect());
  // b's subscriber is told to hold off its reconnect, then its connection is killed: the notification of the
  // next alteration goes nowhere, and only the poll can find it.
  (b!.store as unknown as { subscriber: Redis }).subscriber.options.retryStrategy = () => 2000;
  await admin.call('CLIENT', 'KILL', 'ID', String(b!.store.subscriberId));
  const polledBefore = b!.store.foundByPoll;
  await a!.c.alterQuotas([{ entity: [['user', 'polled']], quota_key: 'request_rate', quota_value: 3 }]);
  const took = await within(1500, async () => (await rateOf(b!.c, 'polled')) === 3);
  t.ok(took < 1500, `applied after ${Math.round(took)} ms`);
  t.equal(b!.store.foundByPoll, polledBefore + 1, 'found by the version poll');
});

t.test('Redis hung: AlterQuotas is STORAGE_ERROR and changes nothing anywhere; record calls and reads carry on', async (t) => {
  const redis = await startRedis();
  t.teardown(async () => {
    redis.child.kill('SIGCONT');
    await redis.stop();
  });
  const [a, b] = await sidecars(t, `redis://127.0.0.1:${redis.port}/0`, 2);
  await a!.c.alterQuotas([{ entity: [['user', 'before']], quota_key: 'request_rate', quota_value: 5 }]);
  await within(1000, async () => (await rateOf(b!.c, 'before')) === 5);
  freeze(redis.child);
  const t0 = performance.now();
  const err = await a!.c
    .alterQuotas([{ entity: [['user', 'during']], quota_key: 'request_rate', quota_value: 9 }])
    .catch((e: unknown) => e);
  t.match(err, { code: 'STORAGE_ERROR' }, 'refused');
  t.ok(performance.now() - t0 < 1000, 'promptly (command_timeout_ms, not a hang)');
  t.same(await a!.c.recordRequest({ user: 'before' }), { throttleTimeMs: 0, recorded: true }, 'record calls carry on');
  t.equal(await rateOf(a!.c, 'before'), 5, 'DescribeQuotas answers from the last known configs');
  t.equal(await rateOf(a!.c, 'during'), undefined, 'nothing applied here');
  redis.child.kill('SIGCONT');
  await new Promise((r) => setTimeout(r, 300)); // the late script's run (it must refuse: past its deadline)
  t.equal(await rateOf(b!.c, 'during'), undefined, 'nor on the other sidecar, even after Redis resumed');
  const r = new Redis(`redis://127.0.0.1:${redis.port}/0`);
  t.equal(await r.hlen(`${a!.store.options.keyPrefix}{quotas}:configs`), 1, 'nor in Redis');
  r.disconnect();
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
  const prefix = `rivven-test-${randomBytes(6).toString('hex')}:`;
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
  await within(1000, async () => heard.length === 1);
  const direct = new Redis(`redis://127.0.0.1:${primary.port}/0`);
  t.teardown(() => direct.disconnect());
  t.equal(await direct.hlen(`${prefix}{quotas}:configs`), 1, 'written to the primary the sentinel named');
});

t.test('Redis emptied (restarted without persistence): every sidecar follows it back, and agrees again', async (t) => {
  const [a, b] = await sidecars(t, SHARED, 2);
  await a!.c.alterQuotas([{ entity: [['user', 'volatile']], quota_key: 'request_rate', quota_value: 6 }]);
  await within(1000, async () => (await rateOf(b!.c, 'volatile')) === 6);
  const admin = new Redis(SHARED);
  t.teardown(() => admin.disconnect());
  const keys = await admin.keys(`${a!.store.options.keyPrefix}*`);
  await admin.del(...keys);
  await within(1500, async () => (await rateOf(a!.c, 'volatile')) === undefined && (await rateOf(b!.c, 'volatile')) === undefined);
  t.equal(a!.store.reloads + b!.store.reloads, 2, 'each reloaded once');
  t.equal(a!.store.appliedVersion, 0);
  await b!.c.alterQuotas([{ entity: [['user', 'again']], quota_key: 'request_rate', quota_value: 2 }]);
  await within(1000, async () => (await rateOf(a!.c, 'again')) === 2);
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
  const prefix = `rivven-test-${randomBytes(6).toString('hex')}:`;
  const store = new RedisQuotaStore({
    target: { sentinel: { name: 'rivven-failover', nodes: [`127.0.0.1:${sentinel.port}`] } },
    keyPrefix: prefix,
  });
  t.teardown(() => store.close());
  await store.load();
  const direct = new Redis(replica.port);
  t.teardown(() => direct.disconnect());
  await store.apply([{ entity: [['user', 'before']], quota_key: 'request_rate', quota_value: 1 }], []);
  await within(2000, async () => (await direct.hlen(`${prefix}{quotas}:configs`)) === 1); // replicated
  primary.child.kill('SIGKILL');
  // Sentinel notices in 500 ms and promotes the replica; ioredis asks it for the new primary on reconnect.
  const took = await within(15_000, async () =>
    store.apply([{ entity: [['user', 'after']], quota_key: 'request_rate', quota_value: 2 }], []).then(
      () => true,
      () => false,
    ),
  );
  t.pass(`an alteration applied through the promoted replica ${Math.round(took)} ms after the kill`);
  t.equal(await direct.hlen(`${prefix}{quotas}:configs`), 2, 'both on the new primary');
  t.equal(await direct.role().then((r) => r[0]), 'master');
});
