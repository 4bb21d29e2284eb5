import t from 'tap';
import { Redis } from 'ioredis';
import { startRedis, type Proc } from '../helpers/procs.js';
import { FleetBucketKeeper } from '../../src/fleet/fleet-bucket-keeper.js';
import { FleetSync, type FleetSyncOptions } from '../../src/fleet/fleet-sync.js';
import { DEFAULT_FLEET_SYNC_OPTIONS } from '../../src/fleet/options.js';
import { ManualClock } from '../../src/quota/clock.js';
import { LeaseManager } from '../../src/quota/lease-manager.js';
import { IN_FLIGHT, REQUEST } from '../../src/quota/quota-key.js';
import { QuotaTable } from '../../src/quota/quota-table.js';
import { RedisBackend } from '../../src/store/redis-backend.js';

// FleetSync on its own, against a private redis-server: the bounds it relies on.
let redis: Proc;
t.before(async () => {
  redis = await startRedis();
});
t.teardown(() => redis.stop());

function syncer(
  t: { teardown(fn: () => unknown): void },
  buckets: number,
  options: Partial<FleetSyncOptions> = {},
  leases?: LeaseManager,
  commandTimeoutMs = 100,
) {
  const clock = new ManualClock(1_000_000);
  const store = new FleetBucketKeeper({ windowMs: 1000, windowBuckets: 10, maxDebtMs: 300_000, maxBuckets: 1_000_000 }, 1100);
  for (let i = 0; i < buckets; i++) {
    const id = store.findOrCreate(REQUEST, `user-${i}`, null, clock.now());
    store.touch(id, 1000, clock.now(), undefined, false);
    store.record(id, 1, clock.now());
  }
  const backend = new RedisBackend({ url: `redis://127.0.0.1:${redis.port}/0` }, commandTimeoutMs);
  t.teardown(() => backend.close());
  const sync = new FleetSync(
    backend,
    store,
    clock,
    {
      ...DEFAULT_FLEET_SYNC_OPTIONS,
      keyPrefix: `bounds-${Math.random().toString(36).slice(2)}:`,
      nodeId: 'me',
      ...options,
    },
    () => 0,
    leases,
  );
  return { sync, backend, store, clock };
}

t.test('a sync is split into script calls of batchSize buckets', async (t) => {
  const { sync, backend } = syncer(t, 35, { batchSize: 10 });
  await backend.connect();
  await sync.syncNow();
  t.equal(sync.bucketsSynced, 35);
  t.equal(sync.calls, 4 + 1, '4 sync calls of at most 10 buckets, and the heartbeat');
});

t.test('a big sync sends at most 4 calls at a time, so none waits on Redis behind the rest of its own sync', async (t) => {
  // Sent all at once, 40 calls of 1000 buckets queue on Redis, and the last ones pass their deadlines.
  const { sync, backend } = syncer(t, 40_000, {}, undefined, 1000);
  await backend.connect();
  let out = 0;
  let peak = 0;
  const timed = backend.timed.bind(backend);
  backend.timed = async <T>(call: Promise<T>): Promise<T> => {
    peak = Math.max(peak, ++out);
    try {
      return await timed(call);
    } finally {
      out--;
    }
  };
  await sync.syncNow();
  t.equal(sync.lastError, null, 'no call failed');
  t.equal(sync.bucketsSynced, 40_000);
  t.ok(peak <= 4, `at most 4 calls out at once (${peak})`);
});

t.test("a stopped sidecar's lease count is ignored and removed once it is 5 heartbeats old", async (t) => {
  const table = new QuotaTable({});
  table.set({ kind: 'user', user: 'held' }, IN_FLIGHT, 3);
  const clock = new ManualClock(0);
  const leases = new LeaseManager(table, clock, {});
  const { sync, backend } = syncer(t, 0, {}, leases);
  await backend.connect();
  const r = new Redis(redis.port);
  t.teardown(() => r.disconnect());
  const key = `${sync.options.keyPrefix}{leases}:user:held`;
  const [sec] = await r.time();
  const now = Number(sec) * 1000;
  await r.hset(key, 'alive', `1:${now}`, 'ghost', `2:${now - 5001}`);
  t.equal(leases.acquire('held', null, undefined, 1).granted, true, 'first ask: decided on what this sidecar knows');
  await sync.syncNow();
  t.equal(leases.fleet!.others.get('user:held'), 1, "the live sidecar's lease counts, the ghost's 2 do not");
  t.same(Object.keys(await r.hgetall(key)).sort(), ['alive', 'me'], 'the ghost is removed');
  t.equal(leases.acquire('held', null, undefined, 1).granted, true, '1 here + 1 there = 2 of 3');
  t.equal(leases.acquire('held', null, undefined, 1).granted, false, 'the third is over');
});
