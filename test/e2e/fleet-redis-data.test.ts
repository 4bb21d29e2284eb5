import t from 'tap';
import { Redis } from 'ioredis';
import { freeze, startRedis, type Proc } from '../helpers/procs.js';
import { fleetStatusText } from '../../src/cli/fleet.js';
import { FleetBucketKeeper } from '../../src/fleet/fleet-bucket-keeper.js';
import { bucketKey } from '../../src/fleet/bucket-sync.js';
import { FleetSync } from '../../src/fleet/fleet-sync.js';
import { DEFAULT_FLEET_SYNC_OPTIONS } from '../../src/fleet/options.js';
import { ManualClock } from '../../src/quota/clock.js';
import { LeaseManager } from '../../src/quota/lease-manager.js';
import { IN_FLIGHT, PRODUCE } from '../../src/quota/quota-key.js';
import { QuotaTable } from '../../src/quota/quota-table.js';
import type { QuotaChange } from '../../src/store/quota-store.js';
import { RedisBackend } from '../../src/store/redis-backend.js';
import { RedisQuotaStore } from '../../src/store/redis-quota-store.js';
import { hasUnprintable } from '../../src/util/printable.js';
import { waitUntil } from '../helpers/wait.js';

// DESIGN.md section 15: the fleet trusts Redis' data no more than a client's. Every test here fails on a version
// that trusts it. One private redis-server; each test its own key prefix.
let redis: Proc;
let r: Redis;
t.before(async () => {
  redis = await startRedis();
  r = new Redis(redis.port);
});
t.teardown(async () => {
  r.disconnect();
  await redis.stop();
});

let n = 0;
const RATE = 1; // B/s, with a deep debt: a fill drains by at most a few bytes while a test runs

function fleetSync(t: { teardown(fn: () => unknown): void }, leases?: LeaseManager) {
  const clock = new ManualClock(1_000_000);
  const store = new FleetBucketKeeper({ windowMs: 1000, windowBuckets: 10, maxDebtMs: 1e9, maxBuckets: 1000 }, 1100);
  const backend = new RedisBackend({ url: `redis://127.0.0.1:${redis.port}/0` }, 100);
  const logged: string[] = [];
  backend.log = (fields, msg) => void logged.push(`${msg} ${JSON.stringify(fields)}`);
  t.teardown(() => backend.close());
  const prefix = `data-${++n}-${process.pid}:`;
  const sync = new FleetSync(
    backend,
    store,
    clock,
    {
      ...DEFAULT_FLEET_SYNC_OPTIONS,
      keyPrefix: prefix,
      nodeId: `me-${n}`,
    },
    () => 0,
    leases,
  );
  const record = (user: string, bytes: number) => {
    const id = store.findOrCreate(PRODUCE, user, null, clock.now());
    store.touch(id, RATE, clock.now(), undefined, false);
    store.record(id, bytes, clock.now());
  };
  const key = (user: string) => bucketKey(prefix, PRODUCE, user, null);
  /** A bucket's fill in Redis, in bytes (rounded: it drains by under a byte a second). */
  const fill = async (user: string) => Math.round(Number(((await r.get(key(user))) ?? '0:0').split(':')[0]) / 1000);
  return { clock, store, backend, sync, prefix, record, key, fill, logged };
}

const until = (cond: () => boolean | Promise<boolean>): Promise<void> => waitUntil(cond, 'a fleet state', { everyMs: 10 });

t.test('a bad bucket key affects only itself: replaced, logged once, counted; the buckets before it are pushed once', async (t) => {
  const f = fleetSync(t);
  await f.backend.connect();
  f.record('before', 500);
  f.record('list', 1);
  f.record('garbage', 1);
  f.record('future', 1);
  f.record('series', 1);
  f.record('after', 20);
  await r.rpush(f.key('list'), 'x'); // another type
  await r.set(f.key('garbage'), 'not a fill'); // a string that does not parse
  await r.set(f.key('series'), '5000:1|zz=1:2|not a series'); // a series part that does not parse
  const [sec] = await r.time();
  await r.set(f.key('future'), `999000:${Number(sec) * 1000 + 3_600_000}`); // stamped an hour ahead
  for (let i = 0; i < 3; i++) {
    f.record('before', 0); // keep it queued
    await f.sync.syncNow();
  }
  t.equal(f.sync.lastError, null, 'no sync failed');
  t.equal(f.sync.breaker.state, 'closed');
  t.equal(await f.fill('before'), 500, 'the bucket before the bad ones: 500 B recorded, 500 B in Redis');
  t.equal(await f.fill('after'), 20, 'the bucket after them reached Redis');
  t.equal(await r.type(f.key('list')), 'string', 'the list was replaced by a bucket');
  t.equal(await f.fill('list'), 1);
  t.equal(await f.fill('garbage'), 1, 'the unparsable fill was replaced');
  t.ok((await f.fill('future')) <= 1000, 'a fill stamped ahead drains again');
  t.equal(await f.fill('series'), 1, 'its fill drained (stamped at time 1), then 1 B pushed');
  t.notMatch(await r.get(f.key('series')), /not a series/, 'the unparsable part is dropped');
  t.equal(f.backend.badValues.bucket, 4, 'four bad keys counted');
  t.equal(f.logged.length, 4, 'each logged once');
  t.match(f.logged[0], /not valid/);
});

t.test('a push whose reply comes after command_timeout_ms is not counted twice when it is resent', async (t) => {
  const f = fleetSync(t);
  await f.backend.connect();
  // The reply of the first sync is held back until the sidecar has given up on it (a condition, not a sleep).
  const client = f.backend.client as unknown as { rivvenSync: (...a: unknown[]) => Promise<number[]> };
  const real = client.rivvenSync.bind(client);
  let hold = true;
  client.rivvenSync = async (...args: unknown[]) => {
    const failures = f.backend.failures;
    const reply = await real(...args);
    if (hold) {
      hold = false;
      await until(() => f.backend.failures > failures);
    }
    return reply;
  };
  f.record('late', 300);
  await f.sync.syncNow();
  t.match(f.sync.lastError, /did not answer within 100 ms/, 'the sync timed out');
  t.equal(await f.fill('late'), 300, 'Redis applied it all the same');
  t.equal(f.store.pushesInDoubt, 1, 'the push is in doubt');
  f.record('late', 50);
  await f.sync.syncNow();
  t.equal(f.sync.lastError, null);
  t.equal(await f.fill('late'), 350, '300 + 50 recorded, 350 in Redis: the resent 300 counted once');
  t.equal(f.sync.duplicatePushes, 0, 'part of the resend was new, so it is no duplicate');
  t.equal(f.store.pushesInDoubt, 0);
});

t.test('Redis stopped past command_timeout_ms: a push queued meanwhile runs after its deadline and is resent once', async (t) => {
  const f = fleetSync(t);
  await f.backend.connect();
  f.record('paused', 400);
  const client = f.backend.client as unknown as { rivvenSync: (...a: unknown[]) => Promise<number[]> };
  const real = client.rivvenSync.bind(client);
  let stopped = false;
  client.rivvenSync = (...args: unknown[]) => {
    // Stopped before the script is sent: it waits in Redis' socket until after the sidecar gave up.
    if (!stopped) {
      stopped = true;
      freeze(redis.child);
    }
    return real(...args);
  };
  const failures = f.backend.failures;
  const first = f.sync.syncNow();
  await until(() => f.backend.failures > failures);
  redis.child.kill('SIGCONT');
  await first;
  t.match(f.sync.lastError, /did not answer/);
  await f.sync.syncNow();
  await f.sync.syncNow();
  t.equal(await f.fill('paused'), 400, '400 B recorded, 400 B in Redis');
});

t.test('a push resent whole after its first try was applied is recognised and not added again', async (t) => {
  const f = fleetSync(t);
  await f.backend.connect();
  const client = f.backend.client as unknown as { rivvenSync: (...a: unknown[]) => Promise<number[]> };
  const real = client.rivvenSync.bind(client);
  let fail = true;
  client.rivvenSync = async (...args: unknown[]) => {
    const reply = await real(...args);
    if (!fail) return reply;
    fail = false;
    throw new Error('connection lost after the script ran');
  };
  f.record('twice', 200);
  await f.sync.syncNow();
  t.equal(await f.fill('twice'), 200);
  await f.sync.syncNow();
  t.equal(await f.fill('twice'), 200, 'still 200: the resend of the same series applied nothing');
  t.equal(f.sync.duplicatePushes, 1, 'counted as a duplicate');
});

t.test('a heartbeat entry from the future (or one that does not parse) is removed, counted, and not live', async (t) => {
  const f = fleetSync(t);
  await f.backend.connect();
  const [sec] = await r.time();
  const entry = (node: string, seen: number) =>
    JSON.stringify({
      node_id: node,
      sync_lag_ms: 0,
      breaker: 'closed',
      buckets: 0,
      queued: 0,
      config_version: 0,
      sync_interval_ms: 100,
      settings: '',
      instance: 'x',
      seen,
    });
  const key = `${f.prefix}{fleet}:sidecars`;
  await r.hset(key, 'ghost', entry('ghost', Number(sec) * 1000 + 3_600_000), 'live', entry('live', Number(sec) * 1000));
  f.record('hb', 1);
  await f.sync.syncNow();
  t.equal(f.sync.live, 2, 'this sidecar and the live one; not the ghost');
  t.same(
    f.sync.sidecars.map((s) => s.node_id),
    ['live', f.sync.options.nodeId],
  );
  t.equal(await r.hexists(key, 'ghost'), 0, 'the ghost is removed');
  t.equal(f.backend.badValues.heartbeat, 1);
});

t.test('a lease count stamped in the future holds no leases', async (t) => {
  const table = new QuotaTable({});
  table.set({ kind: 'user', user: 'held' }, IN_FLIGHT, 2);
  const leases = new LeaseManager(table, new ManualClock(0), {});
  const f = fleetSync(t, leases);
  await f.backend.connect();
  const key = `${f.prefix}{leases}:user:held`;
  const [sec] = await r.time();
  await r.hset(key, 'ghost', `2:${Number(sec) * 1000 + 3_600_000}`, 'huge', `99999999999:${Number(sec) * 1000}`);
  t.equal(leases.acquire('held', null, undefined, 1).granted, true);
  await f.sync.syncNow();
  t.equal(leases.fleet!.others.get('user:held'), undefined, 'neither the future nor the oversized count holds a lease');
  t.equal(leases.acquire('held', null, undefined, 1).granted, true, 'so the second lease is granted');
  t.equal(f.backend.badValues.lease, 1, 'one call found them');
});

t.test('Redis lost the heartbeat list (flushed): detected, counted, logged as an error', async (t) => {
  const f = fleetSync(t);
  await f.backend.connect();
  f.record('x', 1);
  await f.sync.syncNow();
  f.clock.advance(1000);
  await f.sync.syncNow();
  t.equal(f.backend.resets, 0, 'a heartbeat that finds its entry is no loss');
  await r.del(`${f.prefix}{fleet}:sidecars`);
  f.clock.advance(1000);
  await f.sync.syncNow();
  t.equal(f.backend.resets, 1);
  t.match(f.logged.join('\n'), /lost the fleet data/);
});

function stores(t: { teardown(fn: () => unknown): void }) {
  const prefix = `data-store-${++n}-${process.pid}:`;
  const url = `redis://127.0.0.1:${redis.port}/0`;
  const a = new RedisQuotaStore({ url, keyPrefix: prefix, pollIntervalMs: 20 });
  const b = new RedisQuotaStore({ url, keyPrefix: prefix, pollIntervalMs: 20 });
  const logged: string[] = [];
  b.backend.log = (fields, msg) => void logged.push(`${msg} ${JSON.stringify(fields)}`);
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  return { a, b, prefix, logged };
}

t.test('an unparsable entry of the changes stream is skipped, logged and counted; later alterations still apply', async (t) => {
  const { a, b, prefix, logged } = stores(t);
  await a.load();
  await b.load();
  const heard: QuotaChange[][] = [];
  b.onChange((c) => void heard.push(c));
  const v = await r.incr(`${prefix}{quotas}:version`);
  await r.xadd(`${prefix}{quotas}:changes`, `${v}-0`, 'c', '{not json');
  // A bad change of valid JSON too: a quota_key no version knows.
  await a.apply([{ entity: [['user', 'later']], quota_key: 'request_rate', quota_value: 7 }], []);
  await until(() => heard.some((c) => c.some((x) => x.entity[0]?.[1] === 'later')));
  t.equal(b.appliedVersion, v + 1, 'b is at the version after the bad one');
  t.ok(b.backend.badValues.change >= 1, 'counted');
  t.match(logged[0], /not valid.*"source":"change".*not JSON/);
  const v2 = await r.incr(`${prefix}{quotas}:version`);
  await r.xadd(
    `${prefix}{quotas}:changes`,
    `${v2}-0`,
    'c',
    JSON.stringify([{ entity: [['user', 'x']], quota_key: 'nope', quota_value: 1 }]),
  );
  await a.apply([{ entity: [['user', 'later-still']], quota_key: 'request_rate', quota_value: 8 }], []);
  await until(() => heard.some((c) => c.some((x) => x.entity[0]?.[1] === 'later-still')));
  t.ok(!heard.some((c) => c.some((x) => (x.quota_key as string) === 'nope')), 'the invalid change never reached a listener');
});

t.test('a stored config that does not validate is skipped at load, the rest loads', async (t) => {
  const { a, prefix, b } = stores(t);
  await a.load();
  await a.apply([{ entity: [['user', 'good']], quota_key: 'request_rate', quota_value: 3 }], []);
  await r.hset(`${prefix}{quotas}:configs`, 'bad', JSON.stringify({ entity: [['user', 'x']], quota_key: 'request_rate', quota_value: -1 }));
  await r.hset(`${prefix}{quotas}:configs`, 'worse', '{');
  const loaded = await b.load();
  t.same(
    loaded.map((q) => q.entity),
    [[['user', 'good']]],
  );
  t.equal(b.backend.badValues.config, 2);
});

t.test('a key of another type in the configs makes AlterQuotas fail and apply nothing', async (t) => {
  const { a, prefix } = stores(t);
  await a.load();
  await a.apply([{ entity: [['user', 'one']], quota_key: 'request_rate', quota_value: 3 }], []);
  await r.del(`${prefix}{quotas}:changes`);
  await r.set(`${prefix}{quotas}:changes`, 'x');
  await t.rejects(a.apply([{ entity: [['user', 'two']], quota_key: 'request_rate', quota_value: 3 }], []), /another type/);
  t.equal(await r.get(`${prefix}{quotas}:version`), '1', 'the version did not move');
  t.equal(await r.hexists(`${prefix}{quotas}:configs`, JSON.stringify([[['user', 'two']], 'request_rate'])), 0, 'nothing written');
});

t.test('the shared configs flushed (the version went back): detected, counted, logged as an error', async (t) => {
  const { a, b, prefix, logged } = stores(t);
  await a.load();
  await b.load();
  await a.apply([{ entity: [['user', 'x']], quota_key: 'request_rate', quota_value: 5 }], []);
  await until(() => b.appliedVersion === 1);
  await r.del(`${prefix}{quotas}:version`, `${prefix}{quotas}:configs`, `${prefix}{quotas}:changes`);
  await until(() => b.backend.resets > 0);
  t.equal(b.backend.resets, 1);
  t.match(logged.join('\n'), /lost the fleet data.*went back from 1 to 0/);
});

t.test('rivven fleet status escapes every text that came from Redis', async (t) => {
  const out = fleetStatusText({
    enabled: true,
    node_id: 'me',
    backend: 'redis://x prefix \u001b[2J',
    breaker: 'closed',
    live: 1,
    sync_lag_ms: 5,
    last_error: 'WRONGTYPE \u001b]0;owned\u0007',
    sidecars: [
      {
        node_id: 'n\u001b[31m',
        seen_ms_ago: 3,
        sync_lag_ms: 1,
        breaker: 'closed\u001b[1A' as 'closed',
        buckets: 1,
        queued: 0,
        config_version: 1,
        sync_interval_ms: 100,
        settings: '\u202eabc\r\nforged row',
        instance: 'i',
      },
    ],
  });
  t.notOk(hasUnprintable(out.replaceAll('\n', '')), 'no control character reaches the terminal');
  t.equal(out.split('\n').filter((l) => l.includes('forged row')).length, 1);
  t.notOk(/\nforged row/.test(out), 'a newline in a field cannot start a table row');
});

t.test('a push series of this sidecar stamped far ahead (planted) is dropped: it cannot make Redis ignore every push', async (t) => {
  const f = fleetSync(t);
  await f.backend.connect();
  const instance = (f.sync as unknown as { instance: string }).instance;
  const [sec] = await r.time();
  const ahead = Number(sec) * 1000 + 3_600_000;
  // No TTL: left alone, the part would stay, and every push of this process to the bucket would read as an older
  // series arriving late (applied nothing, "a duplicate").
  await r.set(f.key('planted'), `0:${Number(sec) * 1000}|${instance}=${ahead}:0`);
  f.record('planted', 300);
  await f.sync.syncNow();
  f.record('planted', 50);
  await f.sync.syncNow();
  t.equal(await f.fill('planted'), 350, '350 B recorded, 350 B in Redis');
  t.notMatch(await r.get(f.key('planted')), new RegExp(`=${ahead}:`), 'the planted series is gone');
  t.equal(f.sync.duplicatePushes, 0, 'no push taken for a duplicate');
  t.equal(f.backend.badValues.bucket, 1, 'counted as a bad value');
});
