import fc from 'fast-check';
import t from 'tap';
import { ManualClock } from '../../src/quota/clock.js';
import { QuotaManager } from '../../src/quota/quota-manager.js';
import { PRODUCE } from '../../src/quota/quota-key.js';
import { QuotaTable } from '../../src/quota/quota-table.js';
import { greedy } from '../helpers/greedy.js';

// Window shapes: window_ms a multiple of window_buckets, as the config requires.
const windowShape = fc
  .tuple(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 200 }))
  .map(([buckets, sub]) => ({ buckets, windowMs: buckets * sub }));
const quota = fc.integer({ min: 10, max: 200_000_000 });

function setup(q: number, windowMs: number, buckets: number, maxThrottleMs = 1e12) {
  const clock = new ManualClock(5_000_000);
  const m = new QuotaManager(
    new QuotaTable({ produce_bytes_rate: q, request_rate: q }),
    { windowMs, windowBuckets: buckets, maxThrottleMs },
    clock,
  );
  return { clock, m, capacity: (q * windowMs) / 1000 };
}

t.test('P1: a caller that never exceeds quota x window in any window is never throttled', async (t) => {
  fc.assert(
    fc.property(
      quota,
      windowShape,
      fc.array(fc.tuple(fc.integer({ min: 0, max: 3000 }), fc.double({ min: 0, max: 0.6, noNaN: true })), { minLength: 1, maxLength: 80 }),
      fc.boolean(),
      (q, { windowMs, buckets }, calls, admit) => {
        const { clock, m, capacity } = setup(q, windowMs, buckets);
        const history: [number, number][] = [];
        for (const [gap, frac] of calls) {
          clock.advance(gap);
          const now = clock.now();
          const size = Math.floor(frac * capacity);
          history.push([now, size]);
          // Usage in every window (s - W, s] ending at a call so far, this call included.
          const compliant = history.every(
            ([s]) => history.reduce((sum, [at, n]) => (at > s - windowMs && at <= s ? sum + n : sum), 0) <= capacity,
          );
          if (!compliant) return true;
          if (m.recordProduce('u', 'c', size, admit).throttleMs !== 0) return false;
        }
        return true;
      },
    ),
    { numRuns: 300 },
  );
  t.pass('no compliant caller was throttled');
});

t.test('P1: a fresh bucket accepts a burst of quota x window, and no more', async (t) => {
  const { m } = setup(1000, 1000, 10);
  t.equal(m.recordProduce('u', 'c', 1000, false).throttleMs, 0, 'record mode: the whole burst at once');
  t.ok(m.recordProduce('u', 'c', 2, false).throttleMs > 0, 'record mode: anything more is throttled');
  const admit = setup(10, 1000, 10).m;
  const answers = Array.from({ length: 12 }, () => admit.recordRequest('u', 'c', 1, true).throttleMs);
  t.same(answers.slice(0, 10), new Array(10).fill(0), 'request_rate 10 admits exactly 10 calls in a fresh window');
  t.same(answers.slice(10), [100, 100], 'the 11th waits 1/rate, and is not recorded (the 12th waits the same)');
});

t.test('P2: a greedy caller achieves its quota within 5% from its first throttle on', async (t) => {
  for (const fraction of [0.001, 0.01, 0.1, 0.5, 1, 2.5, 5]) {
    for (const callers of [1, 4]) {
      const quota = 1_000_000;
      const size = Math.round(fraction * quota);
      const r = greedy({ quota, windowMs: 1000, buckets: 10, size, callers, windows: 25 });
      t.ok(r.throttles > 0, `size ${fraction * 100}% of quota x window, ${callers} caller(s): throttled`);
      t.ok(Math.abs(r.ratio - 1) <= 0.05, `size ${fraction * 100}%, ${callers} caller(s): ratio ${r.ratio.toFixed(4)}`);
    }
  }
});

t.test('P2 as a property: random quotas, windows, sizes 0.1%..500%, 1..4 callers', async (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1000, max: 100_000_000 }),
      windowShape.filter(({ windowMs }) => windowMs >= 100),
      fc.double({ min: 0.001, max: 5, noNaN: true }),
      fc.integer({ min: 1, max: 4 }),
      (q, { windowMs, buckets }, fraction, callers) => {
        const size = Math.max(1, Math.round((fraction * q * windowMs) / 1000));
        const r = greedy({ quota: q, windowMs, buckets, size, callers, windows: 25 });
        return Math.abs(r.ratio - 1) <= 0.05;
      },
    ),
    { numRuns: 60 },
  );
  t.pass('achieved rate within 5% in every run');
});

// Admit mode's end effect is the fill at the span's ends, up to max(quota x window, size): over 200 windows
// that is at most 2.5% for calls of 500%.
t.test('long-run accuracy holds in admit mode too (refused calls are retried, not recorded)', async (t) => {
  for (const fraction of [0.001, 0.1, 1, 5]) {
    const r = greedy({ quota: 1_000_000, windowMs: 1000, buckets: 10, size: fraction * 1_000_000, callers: 2, windows: 200, admit: true });
    t.ok(Math.abs(r.ratio - 1) <= 0.05, `size ${fraction * 100}%: ratio ${r.ratio.toFixed(4)}`);
  }
});

t.test('P3: after waiting throttle_time_ms a zero-size call passes, and the refused call is admitted', async (t) => {
  fc.assert(
    fc.property(
      quota,
      windowShape,
      fc.array(fc.tuple(fc.integer({ min: 0, max: 500 }), fc.double({ min: 0, max: 3, noNaN: true }), fc.boolean()), {
        minLength: 1,
        maxLength: 40,
      }),
      (q, { windowMs, buckets }, calls) => {
        const { clock, m, capacity } = setup(q, windowMs, buckets);
        for (const [gap, frac, admit] of calls) {
          clock.advance(gap);
          const size = Math.floor(frac * capacity);
          const wait = m.recordProduce('u', 'c', size, admit).throttleMs;
          if (wait === 0) continue;
          const snapshot = clock.now();
          clock.advance(wait);
          if (admit) {
            if (m.recordProduce('u', 'c', size, true).throttleMs !== 0) return false;
          } else if (m.recordProduce('u', 'c', 0, false).throttleMs !== 0) {
            return false;
          }
          clock.set(snapshot + wait);
        }
        return true;
      },
    ),
    { numRuns: 300 },
  );
  t.pass('never throttled longer than needed');
});

t.test('P3: a throttle is not shorter than needed either', async (t) => {
  const { clock, m } = setup(1000, 1000, 10);
  m.recordProduce('u', 'c', 1000, false);
  const v = m.recordProduce('u', 'c', 500, false);
  t.equal(v.throttleMs, 500);
  clock.advance(499);
  t.ok(m.recordProduce('u', 'c', 0, false).throttleMs > 0, '1 ms early is still throttled');
});

t.test('P4: throttle_time_ms never exceeds max_throttle_ms', async (t) => {
  fc.assert(
    fc.property(
      quota,
      fc.integer({ min: 1, max: 5000 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 100 }), fc.double({ min: 0, max: 50, noNaN: true }), fc.boolean()), {
        minLength: 1,
        maxLength: 30,
      }),
      (q, maxThrottleMs, calls) => {
        const { clock, m, capacity } = setup(q, 1000, 10, maxThrottleMs);
        for (const [gap, frac, admit] of calls) {
          clock.advance(gap);
          const ms = m.recordProduce('u', 'c', Math.floor(frac * capacity), admit).throttleMs;
          if (ms < 0 || ms > maxThrottleMs || !Number.isInteger(ms)) return false;
        }
        return true;
      },
    ),
    { numRuns: 300 },
  );
  t.pass('every throttle within the bound');
});

t.test('the debt beyond max_throttle_ms is kept, not forgiven', async (t) => {
  const { clock, m } = setup(1000, 1000, 10, 2000);
  const v = m.recordProduce('u', 'c', 11_000, false);
  t.equal(v.throttleMs, 2000, 'capped');
  clock.advance(2000);
  t.equal(m.recordProduce('u', 'c', 0, false).throttleMs, 2000, 'still in debt after the capped wait');
  clock.advance(8000);
  t.equal(m.recordProduce('u', 'c', 0, false).throttleMs, 0, 'paid off after 10 s in all');
});

t.test('admit mode never records a refused call', async (t) => {
  fc.assert(
    fc.property(
      quota,
      fc.array(fc.tuple(fc.integer({ min: 0, max: 300 }), fc.double({ min: 0, max: 3, noNaN: true })), { minLength: 1, maxLength: 40 }),
      (q, calls) => {
        const { clock, m, capacity } = setup(q, 1000, 10);
        for (const [gap, frac] of calls) {
          clock.advance(gap);
          const id = m.bucketIdOf(PRODUCE, 'u', 'c');
          const before = [m.buckets.outstanding(id), m.buckets.view().arrays.measuredRate(id, clock.now())];
          const v = m.recordProduce('u', 'c', Math.floor(frac * capacity), true);
          const after = [m.buckets.outstanding(id), m.buckets.view().arrays.measuredRate(id, clock.now())];
          if (v.throttleMs > 0 && (v.recorded || before[0] !== after[0] || before[1] !== after[1])) return false;
        }
        return true;
      },
    ),
    { numRuns: 300 },
  );
  t.pass('refused calls leave the bucket untouched');
});

t.test('admit mode: a call larger than the window waits for an empty bucket, then passes', async (t) => {
  const { clock, m } = setup(1000, 1000, 10);
  t.equal(m.recordProduce('u', 'c', 300, true).throttleMs, 0);
  const v = m.recordProduce('u', 'c', 5000, true);
  t.same([v.throttleMs, v.recorded], [300, false], 'waits until the 300 already there drained');
  clock.advance(300);
  t.equal(m.recordProduce('u', 'c', 5000, true).throttleMs, 0, 'admitted into an empty bucket');
  t.equal(m.recordProduce('u', 'c', 0, true).throttleMs, 4000, 'and the bucket then carries its debt');
});

t.test('consume with a group: admit is all-or-nothing across both buckets', async (t) => {
  const table = new QuotaTable({ consume_bytes_rate: 1000 });
  table.set({ kind: 'consumer-group', group: 'g' }, 1, 100);
  const clock = new ManualClock(0);
  const m = new QuotaManager(table, {}, clock);
  t.equal(m.recordConsume('u', 'c', 'g', 80, true).throttleMs, 0, 'a call that fits both is admitted');
  const principal = m.buckets.outstanding(m.bucketIdOf(1, 'u', 'c'));
  const v = m.recordConsume('u', 'c', 'g', 80, true);
  t.same([v.throttleMs, v.recorded, v.entity], [600, false, 'consumer-group:g'], 'refused by the group bucket alone');
  t.equal(m.buckets.outstanding(m.bucketIdOf(1, 'u', 'c')), principal, 'nothing recorded in the principal bucket either');
});
