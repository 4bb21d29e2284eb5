import t from 'tap';
import { ManualClock } from '../../src/quota/clock.js';
import type { EntityRef } from '../../src/quota/entity.js';
import { QuotaManager } from '../../src/quota/quota-manager.js';
import { REQUEST, PRODUCE } from '../../src/quota/quota-key.js';
import { QuotaTable, type Resolution } from '../../src/quota/quota-table.js';

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
