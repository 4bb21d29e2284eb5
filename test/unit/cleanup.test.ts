import t from 'tap';
import type { LocalBucketKeeper } from '../../src/quota/local-bucket-keeper.js';
import { ManualClock } from '../../src/quota/clock.js';
import { QuotaManager } from '../../src/quota/quota-manager.js';
import { REQUEST } from '../../src/quota/quota-key.js';
import { QuotaTable } from '../../src/quota/quota-table.js';
import { waitUntil } from '../helpers/wait.js';

const setup = (options: Record<string, number> = {}) => {
  const clock = new ManualClock(1_000_000);
  const m = new QuotaManager(new QuotaTable({ request_rate: 10 }), { idleTimeoutMs: 60_000, ...options }, clock);
  return { clock, m };
};

t.test('idle buckets are dropped after idle_timeout_ms, active ones kept', async (t) => {
  const { clock, m } = setup();
  m.recordRequest('idle', 'a', 1, false);
  m.recordRequest('active', 'a', 1, false);
  clock.advance(59_000);
  m.recordRequest('active', 'a', 1, false);
  t.equal(await m.sweep(), 0, 'nothing idle long enough yet');
  clock.advance(1_000);
  t.equal(await m.sweep(), 1, 'the idle one goes');
  t.equal(m.bucketCount, 1);
  t.same(
    (await m.usage({ top: 10, sortBy: 'utilization' })).map((u) => u.entity),
    ['user:active/client-id:a'],
  );
});

t.test('a principal that returns after being swept starts with a fresh bucket', async (t) => {
  const { clock, m } = setup({ maxThrottleMs: 1e9 });
  t.ok(m.recordRequest('u', 'c', 1000, false).throttleMs > 60_000, 'deep in debt');
  clock.advance(60_000);
  await m.sweep();
  t.equal(m.bucketCount, 0);
  t.equal(m.recordRequest('u', 'c', 1, false).throttleMs, 0, 'the swept debt is forgiven (documented)');
});

t.test('compaction after a flood keeps the survivors, debt included, and returns the room', async (t) => {
  const { clock, m } = setup({ maxThrottleMs: 1e9 });
  const survivor = m.recordRequest('survivor', 'c', 1000, false).throttleMs;
  t.equal(survivor, 99_000, '1000 requests at 10/s: 99 s of debt beyond the burst');
  for (let i = 0; i < 20_000; i++) m.recordRequest(`flood-${i}`, 'c', 1, false);
  t.equal(m.bucketCount, 20_001);
  clock.advance(30_000);
  m.recordRequest('survivor', 'c', 0, false); // stays active
  clock.advance(30_000);
  t.equal(await m.sweep(), 20_000);
  t.equal(m.bucketCount, 1);
  const id = m.bucketIdOf(REQUEST, 'survivor', 'c');
  t.equal(m.buckets.throttleCount(id), 2, 'its throttle count came through');
  t.equal(m.recordRequest('survivor', 'c', 0, false).throttleMs, 39_000, 'and its debt: 99 s less the 60 s that passed');
  t.equal(m.recordRequest('flood-1', 'c', 1, false).throttleMs, 0, 'new principals work after compaction');
});

t.test('max_buckets: past the bound new principals are answered Ok untracked, and counted', async (t) => {
  const { clock, m } = setup({ maxBuckets: 3 });
  for (const u of ['a', 'b', 'c']) m.recordRequest(u, 'x', 10, false);
  t.equal(m.bucketCount, 3);
  for (let i = 0; i < 5; i++) t.equal(m.recordRequest('d', 'x', 100, false).throttleMs, 0, 'fail open');
  t.equal(m.bucketCount, 3, 'the bound holds');
  t.equal(m.untracked, 5);
  t.ok(m.recordRequest('a', 'x', 1, false).throttleMs > 0, 'existing buckets keep working');
  clock.advance(61_000);
  m.recordRequest('a', 'x', 0, false);
  await m.sweep();
  t.equal(m.bucketCount, 1);
  t.ok(m.recordRequest('d', 'x', 100, false).throttleMs > 0, 'once room is free, the new principal is tracked');
});

t.test('compaction to a size that is not a power of two keeps every survivor findable', async (t) => {
  const { clock, m } = setup();
  for (let i = 0; i < 5000; i++) m.recordRequest(`p-${i}`, 'c', 20, false); // each 10 over the burst: throttled once
  clock.advance(30_000);
  for (let i = 0; i < 600; i++) m.recordRequest(`p-${i}`, 'c', 0, false);
  clock.advance(30_000);
  t.equal(await m.sweep(), 4400);
  t.equal(m.bucketCount, 600);
  const lost = Array.from({ length: 600 }, (_, i) => i).filter((i) => m.buckets.throttleCount(m.bucketIdOf(REQUEST, `p-${i}`, 'c')) !== 1);
  t.same(lost, [], 'each survivor is found with its own state');
  for (let i = 0; i < 2000; i++) m.recordRequest(`new-${i}`, 'c', 1, false);
  t.equal(m.bucketCount, 2600, 'and the index keeps growing from there');
});

t.test('compaction moves buckets in the background: lookups meanwhile find every survivor, then it finishes alone', async (t) => {
  const { clock, m } = setup({ maxThrottleMs: 1e9 });
  for (let i = 0; i < 50_000; i++) m.recordRequest(`flood-${i}`, 'c', i < 5000 ? 15 : 1, false);
  clock.advance(30_000);
  for (let i = 0; i < 5000; i++) m.recordRequest(`flood-${i}`, 'c', 0, false);
  clock.advance(30_000);
  t.equal(await m.sweep(), 45_000);
  t.ok((m.buckets as LocalBucketKeeper).compacting, 'the move is still going on after the sweep returned');
  t.equal(m.bucketCount, 5000, 'moved and not yet moved buckets are all counted');
  t.equal(
    m.buckets.throttleCount(m.bucketIdOf(REQUEST, 'flood-4999', 'c')),
    1,
    'a bucket looked up before its turn is moved with its state',
  );
  await waitUntil(() => !(m.buckets as LocalBucketKeeper).compacting, 'the background move to finish');
  t.notOk((m.buckets as LocalBucketKeeper).compacting, 'the background move finished by itself');
  t.equal(m.bucketCount, 5000);
  const lost = Array.from({ length: 5000 }, (_, i) => i).filter(
    (i) => m.buckets.throttleCount(m.bucketIdOf(REQUEST, `flood-${i}`, 'c')) !== 1,
  );
  t.same(lost, [], 'every survivor kept its own state');
});
