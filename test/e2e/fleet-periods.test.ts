// Fleet sync per bucket (docs/algorithm.md, section 6 and "Several rates in the fleet"): each period of each key is
// a Redis key of its own, a per-second bucket keeps the key it always had, and the script drains each bucket at
// its own rate, fractions included. Sidecars in this process, each a QuotaManager over a FleetBucketKeeper with a
// manual clock, on one private redis-server; each test its own key prefix.
import t from 'tap';
import { Redis } from 'ioredis';
import { holdRedisBuckets } from '../helpers/fleet.js';
import { privateRedisUrl } from '../helpers/private-redis.js';
import { FleetBucketKeeper } from '../../src/fleet/fleet-bucket-keeper.js';
import { FleetSync } from '../../src/fleet/fleet-sync.js';
import { DEFAULT_FLEET_SYNC_OPTIONS } from '../../src/fleet/options.js';
import { ManualClock } from '../../src/quota/clock.js';
import type { EntityRef } from '../../src/quota/entity.js';
import { QuotaManager } from '../../src/quota/quota-manager.js';
import { REQUEST } from '../../src/quota/quota-key.js';
import { QuotaTable } from '../../src/quota/quota-table.js';
import type { RateList } from '../../src/quota/rate-value.js';
import { RedisBackend } from '../../src/store/redis-backend.js';

const URL = await privateRedisUrl();
const r = new Redis(URL);
t.teardown(() => r.disconnect());

const user = (name: string): EntityRef => ({ kind: 'user', user: name });
const rates = (...items: [number, 's' | 'min' | 'h' | 'd'][]): RateList => items.map(([amount, unit]) => ({ amount, unit }));
let seq = 0;

/** `n` sidecars on one key prefix, each its own table (set alike by `configure`), manager, store and sync. */
async function fleet(t: { teardown(fn: () => unknown): void }, n: number, configure: (table: QuotaTable) => void) {
  const prefix = `periods-${process.pid}-${++seq}:`;
  const sidecars = [];
  for (let i = 0; i < n; i++) {
    const clock = new ManualClock(1_000_000);
    const store = new FleetBucketKeeper({ windowMs: 1000, windowBuckets: 10, maxDebtMs: 300_000, maxBuckets: 10_000 }, 1100);
    const backend = new RedisBackend({ url: URL }, 1000);
    await backend.connect();
    t.teardown(() => backend.close());
    const sync = new FleetSync(backend, store, clock, {
      ...DEFAULT_FLEET_SYNC_OPTIONS,
      keyPrefix: prefix,
      nodeId: `node-${i}`,
    });
    const table = new QuotaTable({ request_rate: 1e9 });
    configure(table);
    const m = new QuotaManager(table, {}, clock, store);
    sidecars.push({ clock, store, sync, m, backend });
  }
  return { prefix, sidecars };
}

/** A bucket key's fill (milli-units) and stamp as Redis holds them. */
async function stored(key: string): Promise<{ fill: number; at: number; rest: string; raw: string }> {
  const raw = (await r.get(key)) ?? '';
  const m = /^([^:]+):(\d+)(.*)$/.exec(raw);
  if (m === null) throw new Error(`not a bucket value: ${raw}`);
  return { fill: Number(m[1]), at: Number(m[2]), rest: m[3]!, raw };
}

/**
 * Moves Redis's clock `ms` forward for the fleet's buckets under `prefix`, as the sidecars' manual clocks move:
 * each fill is stamped `ms` earlier, so the script drains it by that much more (Redis drains by its own clock).
 */
async function advanceRedis(prefix: string, ms: number): Promise<void> {
  const keys = await r.keys(`${prefix}bucket:*`);
  if (keys.length === 0) return;
  await r.eval(
    `for _, k in ipairs(KEYS) do
       local l, a, rest = string.match(redis.call('GET', k) or '', '^([^:]+):(%d+)(.*)$')
       if l then redis.call('SET', k, l .. ':' .. string.format('%.0f', tonumber(a) - tonumber(ARGV[1])) .. rest, 'KEEPTTL') end
     end`,
    keys.length,
    ...keys,
    ms,
  );
}

t.test("each period of each key is a Redis key of its own; a per-second bucket keeps today's key", async (t) => {
  const { prefix, sidecars } = await fleet(t, 1, (table) => {
    table.setValue(user('u'), 'request_rate', rates([100, 's'], [10000, 'd']));
    table.setValue(user('u'), 'produce_bytes_rate', rates([10000, 'd']));
    table.setValue({ kind: 'consumer-group', group: 'g' }, 'consume_bytes_rate', rates([1000, 's'], [100000, 'h']));
  });
  const [a] = sidecars;
  a!.m.recordRequest('u', 'app', 1, false);
  a!.m.recordProduce('u', 'app', 500, false);
  a!.m.recordConsume('u', 'app', 'g', 300, false);
  await a!.sync.syncNow();
  t.equal(a!.sync.lastError, null, 'the sync succeeded');
  const fills: Record<string, number> = {};
  for (const key of await r.keys(`${prefix}bucket:*`)) fills[key.slice(prefix.length)] = (await stored(key)).fill;
  t.same(
    fills,
    {
      'bucket:{["request_rate","u",null]}': 1000,
      'bucket:{["request_rate","u",null,"d"]}': 1000,
      'bucket:{["produce_bytes_rate","u",null,"d"]}': 500_000,
      'bucket:{["group","g",null]}': 300_000,
      'bucket:{["group","g",null,"h"]}': 300_000,
    },
    "one key per bucket, each holding only its own usage; the per-second ones are today's keys, byte for byte",
  );
});

t.test('a ["100/s", "10000/d"] key shared by two sidecars holds the daily amount across both', async (t) => {
  const { prefix, sidecars } = await fleet(t, 2, (table) =>
    table.setValue(user('greedy'), 'request_rate', rates([100, 's'], [10000, 'd'])),
  );
  let total = 0;
  let late = 0;
  // Every 100 ms of the sidecars' (and Redis's) clocks the greedy caller takes all it is admitted on each, then
  // both sync. Both buckets are the fleet's: 100/s across both, so the day's 10000 are used after about 98 s;
  // 22 s more show the day bucket keeps binding. Redis's buckets drain by those clocks alone (holdRedisBuckets).
  const rateOf = (key: string) => (key.endsWith(',"d"]}') ? 10000 / 86400 : 100);
  for (let step = 0; step < 1200; step++) {
    for (const s of sidecars) {
      let admitted = 0;
      while (admitted < 1000 && s.m.recordRequest('greedy', 'app', 1, true).throttleMs === 0) admitted++;
      total += admitted;
      if (step >= 1000) late += admitted;
    }
    for (const s of sidecars) s.clock.advance(100);
    for (const [i, s] of sidecars.entries()) {
      await holdRedisBuckets(r, prefix, i === 0 ? 100 : 0, rateOf);
      await s.sync.syncNow();
    }
  }
  // What 10000/d drains in the 120 s the clocks moved.
  const drained = Math.ceil((10000 / 86400) * 120);
  // docs/algorithm.md, several rates in the fleet: (N - 1) x min(C_d, C_s + Q_s x (S + d)) + N x s, with
  // N = 2, C_s = 100, Q_s = 100/s, S = 100 ms, d = 0 on the manual clock, s = 1.
  const bound = 1 * Math.min(10000, 100 + 100 * 0.1) + 2 * 1;
  t.ok(total <= 10000 + bound + drained, `both sidecars together admitted ${total}: at most 10000 + ${bound} + ${drained} drained`);
  t.ok(total >= 10000, `and the day's amount was used (${total}): the day bucket binds, not something tighter`);
  t.ok(late <= drained + bound, `after the day's amount, ${late} admitted in 20 s where 100/s alone would admit 2000`);
});

t.test('a 10/min key holds across two sidecars, and Redis drains it at 1/6 a second', async (t) => {
  const { prefix, sidecars } = await fleet(t, 2, (table) => table.setValue(user('m'), 'request_rate', rates([10, 'min'])));
  const [a, b] = sidecars as [(typeof sidecars)[0], (typeof sidecars)[0]];
  // Both sidecars know the bucket (a call of 0) before the caller spends it: the new-bucket case is apart.
  for (const s of sidecars) s.m.recordRequest('m', 'app', 0, false);
  for (const s of sidecars) await s.sync.syncNow();
  let onA = 0;
  while (onA < 100 && a.m.recordRequest('m', 'app', 1, true).throttleMs === 0) onA++;
  t.equal(onA, 10, 'a admits the minute amount at once');
  await a.sync.syncNow();
  await b.sync.syncNow();
  const refused = b.m.recordRequest('m', 'app', 1, true);
  t.ok(refused.throttleMs > 5000, `b, after one sync, refuses: the fleet's bucket is full (${refused.throttleMs} ms)`);
  t.equal(refused.period, 'min', 'and names the period');
  const key = `${prefix}bucket:{["request_rate","m",null,"min"]}`;
  const before = await stored(key);
  t.equal(before.fill, 10_000, 'the minute bucket in Redis holds 10 units');
  // Redis's clock moves 6 s: the fill is stamped 6 s earlier, and the fleet has room for one call again.
  await advanceRedis(prefix, 6000);
  for (const s of sidecars) s.m.recordRequest('m', 'app', 0, false);
  await a.sync.syncNow();
  await b.sync.syncNow();
  t.equal(a.m.recordRequest('m', 'app', 1, true).throttleMs, 0, 'a admits one more call after 6 s of Redis time');
  await a.sync.syncNow();
  await b.sync.syncNow();
  t.ok(b.m.recordRequest('m', 'app', 1, true).throttleMs > 0, 'and b, after one sync, refuses the next: one per 6 s across both');
});

t.test("a fractional rate's fill reaches Redis and comes back to the sidecar exactly as it drains locally", async (t) => {
  const { prefix, sidecars } = await fleet(t, 1, (table) => table.setValue(user('f'), 'request_rate', rates([10, 'min'])));
  const [a] = sidecars;
  const key = `${prefix}bucket:{["request_rate","f",null,"min"]}`;
  a!.m.recordRequest('f', 'app', 10, false);
  await a!.sync.syncNow();
  const id = a!.m.bucketIdOf(REQUEST, 'f', 'app');
  let fractional = 0;
  // Stamped 1001, 1002, ... ms earlier, each sync drains a number of ms Redis's clock decides; 5 in 6 of them are
  // not a multiple of 6 ms, so the fill has a fraction of a milli-unit (10/min drains 1/6 a ms).
  for (let shift = 1001; shift <= 1006; shift++) {
    const before = await stored(key);
    const stamp = before.at - shift;
    await r.set(key, `${before.fill}:${stamp}${before.rest}`, 'PX', 120_000);
    a!.m.recordRequest('f', 'app', 1, false);
    await a!.sync.syncNow();
    const after = await stored(key);
    // The script's arithmetic, in the same doubles: drained at 10/60 milli-units a ms, then the push added.
    const expected = Math.max(0, before.fill - (after.at - stamp) * (10 / 60)) + 1000;
    if (!Number.isInteger(expected)) fractional++;
    t.equal(after.fill, expected, `stored: ${after.raw.split('|')[0]} after ${after.at - stamp} ms`);
    t.equal(a!.m.buckets.outstanding(id), expected, 'and the sidecar takes back that same fill');
  }
  t.ok(fractional > 0, `${fractional} of the fills had a fraction of a milli-unit, kept whole`);
});

t.test('a fill read from Redis is still not trusted now that it may have a fraction', async (t) => {
  const planted = ['-5000', '1e400', '0x10', '1.5.5', 'nan', ''];
  const { prefix, sidecars } = await fleet(t, 1, (table) => {
    for (const i of planted.keys()) table.setValue(user(`x${i}`), 'request_rate', rates([10, 'min']));
  });
  const [a] = sidecars;
  a!.backend.log = () => undefined;
  const [sec] = await r.time();
  const now = Number(sec) * 1000;
  for (const [i, fill] of planted.entries()) {
    await r.set(`${prefix}bucket:{["request_rate","x${i}",null,"min"]}`, `${fill}:${now}`);
    a!.m.recordRequest(`x${i}`, 'app', 1, false);
  }
  await a!.sync.syncNow();
  t.equal(a!.sync.lastError, null, 'the sync succeeded');
  for (const i of planted.keys()) {
    const { fill } = await stored(`${prefix}bucket:{["request_rate","x${i}",null,"min"]}`);
    t.equal(fill, 1000, `"${planted[i]}:<now>" was replaced by an empty bucket, then the push of 1 call`);
  }
  t.equal(a!.backend.badValues.bucket, planted.length, 'each counted as a bad value');
});
