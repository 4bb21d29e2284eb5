import { hostname } from 'node:os';
import t from 'tap';
import { privateRedisUrl } from '../helpers/private-redis.js';
import { freeze, startRedis, startRedisCluster, type Proc } from '../helpers/procs.js';
import calculateSlot from 'cluster-key-slot';
import { Cluster } from 'ioredis';
import { bucketKey } from '../../src/fleet/bucket-sync.js';
import { REQUEST } from '../../src/quota/quota-key.js';
import { serverWithClient } from '../helpers/server.js';
import { run as runCli, runInProcess } from '../helpers/cli.js';
import { holdBucketKeys, holdRedisBuckets, inProcessFleet, redisAt, type Sidecar, tick } from '../helpers/fleet.js';
import { tcpProxy } from '../helpers/tcp-proxy.js';
import { waitUntil } from '../helpers/wait.js';

// A private Redis for this file; every test still uses its own random key prefix.
const SHARED = await privateRedisUrl();

/** `n` fleet sidecars in this process (test/helpers/fleet.ts); the tests run each sync themselves with `tick()`. */
const fleet = (
  t: { teardown(fn: () => unknown): void },
  url: string | string[],
  n: number,
  overrides: Record<string, Record<string, unknown>> = {},
  quotasOf?: (i: number) => Record<string, unknown>,
) => inProcessFleet(t, url, n, { overrides, ...(quotasOf ? { quotasOf } : {}) });

t.test('usage recorded on one sidecar throttles the same principal on another after one sync', async (t) => {
  const { sidecars, prefix } = await fleet(t, SHARED, 2);
  const [a, b] = sidecars as [Sidecar, Sidecar];
  // The sidecars' clocks stand still; Redis's buckets are held to them before each sync (no drain by the real
  // time the test takes, which on a loaded machine could drain the one unit these sums have to spare).
  const r = redisAt(t, SHARED);
  const sync = async (x: Sidecar) => {
    await holdRedisBuckets(r, prefix, 0, () => 10);
    await tick(x);
  };
  // request_rate 10, window 1 s: a bucket holds 10 requests.
  t.equal((await a.c.recordRequest({ user: 'synced', count: 8 })).throttleTimeMs, 0);
  await sync(a); // a's 8 reach Redis
  await sync(b);
  // b has never seen `synced`: its first call creates the bucket here at fill 0 and queues it.
  t.equal((await b.c.recordRequest({ user: 'synced', count: 1 })).throttleTimeMs, 0, 'b alone: 1 of 10');
  await sync(b);
  const after = await b.c.recordRequest({ user: 'synced', count: 2 });
  t.ok(after.throttleTimeMs > 0, `after b's sync it knows a's 8: 8 + 1 + 2 > 10 (throttled ${after.throttleTimeMs} ms)`);
  t.equal(after.entity, 'user:synced');
  // Without a sync in between, a sidecar decides on what it knows.
  t.equal((await b.c.recordRequest({ user: 'fresh', count: 9 })).throttleTimeMs, 0);
  t.equal((await a.c.recordRequest({ user: 'fresh', count: 9 })).throttleTimeMs, 0, 'a has not synced `fresh` yet');
  await sync(a);
  await sync(b);
  await sync(a);
  const fresh = await a.c.recordRequest({ user: 'fresh', count: 1 });
  t.ok(fresh.throttleTimeMs > 0, 'once both synced, the fleet holds 18 of 10: throttled');
  t.ok(fresh.throttleTimeMs >= 700, `and for the fleet's debt: ${fresh.throttleTimeMs} ms`);
});

t.test('the fleet fill lives in Redis, drained by Redis time', async (t) => {
  const { sidecars, prefix } = await fleet(t, SHARED, 1);
  const [a] = sidecars as [Sidecar];
  const r = redisAt(t, SHARED);
  const redisNow = async () => {
    const [sec, usec] = await r.time();
    return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  };
  await a.c.recordRequest({ user: 'drain', count: 10 });
  const before = await redisNow();
  await tick(a);
  const key = bucketKey(prefix, REQUEST, 'drain', null);
  const [, fill, at] = /^(\d+):(\d+)/.exec((await r.get(key))!)!.map(Number);
  t.equal(fill, 10_000, 'fill in milli-units');
  const ttl = await r.pttl(key);
  const after = await redisNow();
  t.ok(at! >= before && at! <= after, `stamped with Redis time, read before (${before}) and after (${after}) the sync: ${at}`);
  // Set to 1 s (10 at 10/s) plus a minute, then counting down in Redis time since (1 ms for rounding).
  t.ok(ttl <= 61_000 && ttl >= 61_000 - (after - before) - 1, `expires once drained, plus a minute (${ttl} ms)`);
});

t.test(
  'Redis stopped, killed, restarted: record calls never ask Redis, the breaker opens and closes, usage from the outage is pushed',
  async (t) => {
    let redis: Proc = await startRedis();
    let down = false;
    // The sidecars reach Redis through a port of the test's own: the restarted Redis gets a fresh port.
    const proxy = await tcpProxy(() => (down ? undefined : redis.port));
    t.teardown(async () => {
      redis.child.kill('SIGCONT');
      await redis.stop();
      await proxy.close();
    });
    const url = `redis://127.0.0.1:${proxy.port}/0`;
    const { sidecars, prefix } = await inProcessFleet(t, url, 2, {
      overrides: { fleet: { breaker: { failure_threshold: 3, reset_timeout_ms: 2000 } } },
      // No version poll: every call to Redis below is one the test makes (a tick), or one a record call made.
      store: { pollIntervalMs: 3_600_000 },
    });
    const [a, b] = sidecars as [Sidecar, Sidecar];
    // a's first heartbeat (at its start) saw only itself; the next, a second later, sees b's too.
    a.s.clock.advance(1000);
    await tick(a);
    t.equal(a.s.app.fleet!.live, 2, 'two live sidecars, from heartbeats');
    t.equal(a.s.app.fleet!.breaker.state, 'closed');

    await a.c.alterQuotas([{ entity: [['user', 'outage-lease']], quota_key: 'max_in_flight', quota_value: 4 }]);
    freeze(redis.child);
    const fails = a.s.app.fleet!.options.breaker.failureThreshold;
    for (let i = 0; i < fails; i++) {
      a.s.clock.advance(1000); // heartbeats are due: each tick calls Redis and times out
      await tick(a);
    }
    t.equal(a.s.app.fleet!.breaker.state, 'open', `open after ${fails} failed calls`);
    t.equal(a.s.app.fleet!.degraded, true);
    const ready = await fetch(`http://127.0.0.1:${a.s.app.http!.address()!.port}/readyz`);
    t.equal(ready.status, 200, '/readyz stays 200');
    t.equal(await ready.text(), 'degraded\n');
    const metrics = await (await fetch(`http://127.0.0.1:${a.s.app.http!.address()!.port}/metrics`)).text();
    t.match(metrics, /^rivven_quota_backend_state 1$/m);
    t.match(metrics, /^rivven_quota_fleet_sidecars 2$/m);
    t.match(metrics, /^rivven_quota_sync_duration_seconds_count [1-9]\d*$/m, 'syncs are timed');
    t.match(metrics, /^rivven_violation_log_write_failures_total 0$/m);
    t.match(metrics, /^rivven_quota_backend_failures_total ([3-9]|\d{2,})$/m);

    // Fallback: quota / 2 live sidecars = 5 requests of capacity here.
    t.equal((await a.c.recordRequest({ user: 'outage', count: 5 })).throttleTimeMs, 0, '5 of 5');
    t.ok((await a.c.recordRequest({ user: 'outage', count: 1 })).throttleTimeMs > 0, 'the 6th is over quota / 2');
    // Record mode records a throttled call too (its client pays by waiting): 206 units in all.
    t.ok((await a.c.recordRequest({ user: 'outage', count: 200 })).throttleTimeMs > 0);
    // Leases too: max_in_flight 4 / 2 live sidecars.
    t.equal((await a.c.acquireLease({ user: 'outage-lease' })).granted, true);
    t.equal((await a.c.acquireLease({ user: 'outage-lease' })).granted, true);
    t.equal((await a.c.acquireLease({ user: 'outage-lease' })).granted, false, 'the 3rd lease is over max_in_flight / 2');
    // Record calls while Redis is stopped: never wait for it. A record call that asked the stopped Redis would
    // count a backend failure (its command timeout) on its sidecar; none may. (Their latency is a measurement:
    // bench/outage.ts.)
    const failuresBefore = [a, b].map((x) => x.store.backend.failures);
    for (let i = 0; i < 500; i++) await (i % 2 === 0 ? a : b).c.recordRequest({ user: `many-${i % 50}`, count: 1 });
    t.same(
      [a, b].map((x) => x.store.backend.failures),
      failuresBefore,
      'record calls on both sidecars with Redis stopped: not one asked Redis',
    );
    const alter = await a.c.alterQuotas([{ entity: [['user', 'during']], quota_key: 'request_rate', quota_value: 1 }]).then(
      () => 'applied',
      (e: { code?: string }) => e.code,
    );
    t.equal(alter, 'STORAGE_ERROR', 'AlterQuotas fails meanwhile');

    // Killed while stopped, then a new (empty) Redis, at the same address for the sidecars (the proxy's).
    down = true;
    redis.child.kill('SIGKILL');
    await redis.stop();
    redis = await startRedis();
    down = false;
    t.equal(a.s.app.table.get({ kind: 'user', user: 'during' }, REQUEST), undefined, 'the failed alteration changed nothing here');

    // Probe after reset_timeout_ms; its success closes the breaker, and the sync that follows pushes the outage.
    a.s.clock.advance(2000);
    const state = () => a.s.app.fleet!.breaker.state;
    // The client reconnects in the background: the first probes may still fail, each opening the breaker again.
    await waitUntil(
      async () => {
        await tick(a);
        if (state() === 'closed') return true;
        a.s.clock.advance(2000);
        return false;
      },
      'the breaker to close after the restart',
      { everyMs: 50 },
    );
    t.equal(state(), 'closed', 'closed after the restart');
    t.equal(a.s.app.fleet!.degraded, false);
    const r = redisAt(t, url);
    const fill = Number((await r.get(bucketKey(prefix, REQUEST, 'outage', null)))!.split(':')[0]);
    // 206 requests recorded in the outage, less what quota / 2 drained in the time spent in fallback.
    const fallbackMs = a.s.app.fleet!.reconciled!.ms;
    t.equal(a.s.app.fleet!.reconciled!.divisor, 2);
    const expected = 206_000 - (10 * fallbackMs) / 2;
    t.ok(expected > 0, 'the test leaves something to push');
    t.ok(Math.abs(fill - expected) <= 100, `usage from the outage pushed: fill ${fill}, expected ${expected} (fallback ${fallbackMs} ms)`);
    // b learns of it with its next sync of the bucket.
    t.equal((await b.c.recordRequest({ user: 'outage', count: 1 })).throttleTimeMs, 0, 'b has not synced it yet');
    // b's next successful sync; its client too reconnects in the background, and failed syncs may open its breaker.
    const syncedBefore = b.s.app.fleet!.syncs;
    await waitUntil(
      async () => {
        await tick(b);
        if (b.s.app.fleet!.syncs > syncedBefore) return true;
        b.s.clock.advance(2000);
        return false;
      },
      "b's next sync",
      { everyMs: 50 },
    );
    t.ok((await b.c.recordRequest({ user: 'outage', count: 1 })).throttleTimeMs > 0, 'b throttles it after a sync');
  },
);

t.test('on a Redis Cluster: one script call per slot per sync, and the fleet fill is shared', async (t) => {
  const cluster = await startRedisCluster();
  t.teardown(() => cluster.stop());
  const { sidecars, prefix } = await fleet(t, cluster.seeds, 2);
  const [a, b] = sidecars as [Sidecar, Sidecar];
  const users = Array.from({ length: 40 }, (_, i) => `spread-${i}`);
  for (const user of users) t.equal((await a.c.recordRequest({ user, count: 8 })).throttleTimeMs, 0);
  const slots = new Set(users.map((u) => calculateSlot(bucketKey(prefix, REQUEST, u, null))));
  t.ok(slots.size > 30, `the buckets spread over ${slots.size} slots`);
  const before = a.s.app.fleet!.calls;
  await tick(a);
  t.equal(a.s.app.fleet!.calls - before, slots.size, 'one script call per slot');
  t.equal(a.s.app.fleet!.bucketsSynced, users.length, 'every bucket pushed');
  t.equal(a.s.app.fleet!.breaker.state, 'closed');
  for (const user of users) await b.c.recordRequest({ user, count: 1 });
  // Redis's buckets held to the sidecars' standing clocks: not drained by the real time the 40 calls took.
  const r = new Cluster(cluster.seeds.map((s) => ({ host: '127.0.0.1', port: Number(s.split(':')[1]) })));
  t.teardown(() => r.disconnect());
  await holdBucketKeys(
    r,
    users.map((u) => bucketKey(prefix, REQUEST, u, null)),
    0,
    () => 10,
  );
  await tick(b);
  t.equal(b.s.app.fleet!.lastError, null, 'no call failed');
  let throttled = 0;
  for (const user of users) if ((await b.c.recordRequest({ user, count: 2 })).throttleTimeMs > 0) throttled++;
  t.equal(throttled, users.length, "every bucket on b knows a's usage: 8 + 1 + 2 > 10");
});

t.test('rivven fleet status: the sidecars seen, their sync lag and breaker state', async (t) => {
  const { sidecars } = await fleet(t, SHARED, 2);
  const [a, b] = sidecars as [Sidecar, Sidecar];
  a.s.clock.advance(1000);
  await tick(a);
  const f = await b.c.describeFleet();
  t.equal(f.enabled, true);
  t.equal(f.node_id, 'node-1');
  t.equal(f.breaker, 'closed');
  t.ok(f.backend?.startsWith(`${SHARED} prefix rivven-test-`), String(f.backend));
  const cli = await runInProcess(['fleet', 'status', '--server', `127.0.0.1:${a.s.port}`]);
  t.equal(cli.code, 0, cli.stderr);
  const lines = cli.stdout.split('\n');
  t.equal(lines[0], 'this sidecar: node-0, breaker closed, last sync 0ms ago');
  t.equal(lines[2], 'live sidecars: 2');
  t.match(lines[4], /^NODE\s+SEEN\s+SYNC LAG\s+BREAKER\s+BUCKETS\s+QUEUED\s+CONFIG VERSION\s+SETTINGS$/);
  t.match(lines[5], /^node-0\s+\d+ms ago\s+0ms\s+closed\s+0\s+0\s+0\s+[0-9a-f]{8}$/);
  t.match(lines[6], /^node-1\s+\d+ms ago\s+(never synced|\d+ms)\s+closed/);
  t.notMatch(cli.stdout, /warning/, 'same settings everywhere: no warning');
  const json = JSON.parse((await runInProcess(['fleet', 'status', '--json', '--server', `127.0.0.1:${a.s.port}`])).stdout);
  t.equal(json.sidecars.length, 2);
});

t.test('rivven fleet status on a sidecar without fleet mode says so', async (t) => {
  const { s } = await serverWithClient(t);
  const cli = await runCli(['fleet', 'status', '--server', `127.0.0.1:${s.port}`]);
  t.equal(cli.code, 0);
  t.equal(cli.stdout, 'fleet mode is off on this sidecar (fleet.enabled: false): its buckets are its own\n');
});

t.test('ResetUsage on one sidecar empties the fleet fill: the others see it after their next sync', async (t) => {
  const { sidecars, prefix } = await fleet(t, SHARED, 2);
  const [a, b] = sidecars as [Sidecar, Sidecar];
  const r = redisAt(t, SHARED);
  // Held to the standing clocks before each sync, as above: 10 of 10 has no unit to spare for real time.
  const sync = async (x: Sidecar) => {
    await holdRedisBuckets(r, prefix, 0, () => 10);
    await tick(x);
  };
  await a.c.recordRequest({ user: 'reset-me', count: 9 });
  await b.c.recordRequest({ user: 'reset-me', count: 1 });
  await sync(a);
  await sync(b);
  t.ok((await b.c.recordRequest({ user: 'reset-me', count: 1 })).throttleTimeMs > 0, 'b knows the fleet is at 10 of 10');
  t.equal(await a.c.resetUsage([['user', 'reset-me']]), 1);
  await sync(a);
  // The fill is emptied; the key stays, with the sidecars' push series (a retry must still be recognised).
  t.equal(Number((await r.get(bucketKey(prefix, REQUEST, 'reset-me', null)))?.split(':')[0]), 0, 'the fleet fill is empty in Redis');
  await sync(b);
  t.equal((await b.c.recordRequest({ user: 'reset-me', count: 5 })).throttleTimeMs, 0, "b's next sync brought the empty fill");
});

t.test('leases count fleet-wide: max_in_flight holds across sidecars, and a release frees a slot elsewhere', async (t) => {
  const { sidecars, prefix } = await fleet(t, SHARED, 2);
  const [a, b] = sidecars as [Sidecar, Sidecar];
  await a.c.alterQuotas([{ entity: [['user', 'leaser']], quota_key: 'max_in_flight', quota_value: 2 }]);
  await waitUntil(() => b.s.app.table.get({ kind: 'user', user: 'leaser' }, 6) === 2, 'b to apply the max_in_flight');
  const first = await a.c.acquireLease({ user: 'leaser' });
  const second = await a.c.acquireLease({ user: 'leaser' });
  t.ok('leaseId' in first && 'leaseId' in second, 'a holds both');
  await tick(a);
  // b has never been asked for this group: its first ask is decided on what it knows (docs/operations.md).
  const early = await b.c.acquireLease({ user: 'leaser' });
  t.ok('leaseId' in early, "b's first ask, before it synced the group, is granted");
  await b.c.releaseLease((early as { leaseId: string }).leaseId);
  await tick(b);
  const refused = await b.c.acquireLease({ user: 'leaser' });
  t.notOk('leaseId' in refused, "b counts a's two leases");
  t.match(refused, { granted: false, entity: 'user:leaser' });
  // Every lease is held elsewhere: try again after the next sync (60 s here), capped by max_throttle_ms.
  t.ok(!refused.granted && refused.throttleTimeMs === 30_000, 'and says to try again after the next sync');
  await a.c.releaseLease((first as { leaseId: string }).leaseId);
  await tick(a);
  await tick(b);
  t.ok('leaseId' in (await b.c.acquireLease({ user: 'leaser' })), 'after the release is synced, b grants one');
  t.notOk('leaseId' in (await b.c.acquireLease({ user: 'leaser' })), 'and only one: 1 on a, 1 on b');
  await tick(b);
  const r = redisAt(t, SHARED);
  const held = await r.hgetall(`${prefix}{leases}:user:leaser`);
  t.same(Object.keys(held).sort(), ['node-0', 'node-1'], 'each sidecar has its count in Redis');
});

t.test('a heartbeat entry this version did not write is left out of the fleet status, not printed', async (t) => {
  const { sidecars, prefix } = await fleet(t, SHARED, 1);
  const [a] = sidecars as [Sidecar];
  const r = redisAt(t, SHARED);
  const key = `${prefix}{fleet}:sidecars`;
  const [sec] = await r.time();
  const now = Number(sec) * 1000;
  // Each ends as a live entry must (the script drops anything else at once): only the reader can refuse them.
  await r.hset(
    key,
    'not-json',
    `{"node_id":"a",,"seen":${now}}`,
    'no-settings',
    `{"node_id":"z","breaker":"open","sync_lag_ms":0,"buckets":0,"queued":0,"config_version":0,"sync_interval_ms":1,"instance":"i","seen":${now}}`,
    'wrong-type',
    `{"node_id":7,"breaker":"closed","sync_lag_ms":0,"buckets":0,"queued":0,"config_version":0,"sync_interval_ms":1,"settings":"x","instance":"i","seen":${now}}`,
    'no-breaker',
    `{"node_id":"x","breaker":"sideways","sync_lag_ms":0,"buckets":0,"queued":0,"config_version":0,"sync_interval_ms":1,"settings":"x","instance":"i","seen":${now}}`,
    'missing-number',
    `{"node_id":"y","breaker":"open","sync_lag_ms":0,"buckets":"many","queued":0,"config_version":0,"sync_interval_ms":1,"settings":"x","instance":"i","seen":${now}}`,
  );
  a.s.clock.advance(1000);
  await tick(a);
  const f = await a.c.describeFleet();
  t.same(
    f.sidecars.map((s) => s.node_id),
    ['node-0'],
    'only well-formed entries',
  );
});

t.test('a sidecar that stops pushes what it recorded last and leaves the heartbeat list', async (t) => {
  const { sidecars, prefix } = await fleet(t, SHARED, 2);
  const [a, b] = sidecars as [Sidecar, Sidecar];
  b.s.clock.advance(1000);
  await tick(b);
  t.equal(b.s.app.fleet!.live, 2);
  await a.c.recordRequest({ user: 'last-words', count: 7 });
  await a.c.close();
  await a.s.stop();
  const r = redisAt(t, SHARED);
  t.equal(Number((await r.get(bucketKey(prefix, REQUEST, 'last-words', null)))?.split(':')[0]), 7000, 'pushed at stop');
  t.same(Object.keys(await r.hgetall(`${prefix}{fleet}:sidecars`)), ['node-1'], 'gone from the list');
  b.s.clock.advance(1000);
  await tick(b);
  t.equal(b.s.app.fleet!.live, 1, 'the other counts one live sidecar');
});

t.test('rivven fleet status warns when the sidecars differ in the settings that shape buckets', async (t) => {
  const { sidecars } = await fleet(t, SHARED, 2, {}, (i) => (i === 1 ? { window_ms: 2000 } : {}));
  const [a] = sidecars as [Sidecar, Sidecar];
  a.s.clock.advance(1000);
  await tick(a);
  const f = await a.c.describeFleet();
  t.equal(new Set(f.sidecars.map((s) => s.settings)).size, 2, 'two digests');
  const cli = await runInProcess(['fleet', 'status', '--server', `127.0.0.1:${a.s.port}`]);
  t.match(cli.stdout, /\nwarning: the sidecars differ in the rivven\.yaml settings that shape buckets/);
});

t.test('two sidecars under one node_id: each notices the other, says so, and names the fix', async (t) => {
  const { sidecars } = await fleet(t, SHARED, 2, { fleet: { node_id: 'same-name' } });
  const [a, b] = sidecars as [Sidecar, Sidecar];
  // Told on change (the log line), not at every heartbeat that sees the other's entry.
  const told: boolean[] = [];
  a.s.app.fleet!.onNodeIdClash = (_nodeId, clashing) => told.push(clashing);
  for (let i = 0; i < 3; i++) {
    a.s.clock.advance(1000);
    await tick(a);
    b.s.clock.advance(1000);
    await tick(b);
  }
  t.ok(a.s.app.fleet!.nodeIdClashes > 1 && b.s.app.fleet!.nodeIdClashes > 0, 'both noticed, at more than one heartbeat');
  t.same(told, [true], 'told once while it lasts');
  const f = await a.c.describeFleet();
  t.equal(f.last_error, 'node_id "same-name" is used by another sidecar too: set fleet.node_id');
  // b stops heartbeating: its last write is seen once more, then the clash is over, and said so once.
  for (let i = 0; i < 6; i++) {
    a.s.clock.advance(1000);
    await tick(a);
  }
  t.same(told, [true, false], 'told once that it ended');
});

t.test('the default node_id is the host name and the protocol port', async (t) => {
  const { sidecars } = await fleet(t, SHARED, 1, { fleet: { node_id: null } });
  const [a] = sidecars as [Sidecar];
  t.equal((await a.c.describeFleet()).node_id, `${hostname()}:${a.s.port}`);
});
