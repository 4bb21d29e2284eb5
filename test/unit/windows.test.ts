// Several rates per key (docs/algorithm.md, section 7), through the domain API with an injected clock: one
// bucket per rate, the longest wait binds and names its period, admit is all-or-nothing, P1 for a rate below
// one call per period, the burst on the shortest bucket, shadow, tiers and both resolution orders.
import t from 'tap';
import { decodeReply, encodeThrottled } from '../../src/protocol/messages/record/index.js';
import { ManualClock } from '../../src/quota/clock.js';
import type { EntityRef } from '../../src/quota/entity.js';
import type { QuotaManagerOptions } from '../../src/quota/options.js';
import { QuotaManager } from '../../src/quota/quota-manager.js';
import { CONSUME, REQUEST } from '../../src/quota/quota-key.js';
import { emptyResolution, fromLimit, QuotaTable, toLimit } from '../../src/quota/quota-table.js';
import type { RateList } from '../../src/quota/rate-value.js';

const user = (name: string): EntityRef => ({ kind: 'user', user: name });
const rates = (...items: [number, 's' | 'min' | 'h' | 'd'][]): RateList => items.map(([amount, unit]) => ({ amount, unit }));

function setup(value: RateList | number, options: Partial<QuotaManagerOptions> = {}) {
  const table = new QuotaTable({ request_rate: 1e9 });
  table.setValue(user('u'), 'request_rate', value);
  const clock = new ManualClock(1_000_000);
  const m = new QuotaManager(table, { maxThrottleMs: 3_600_000, ...options }, clock);
  const call = (admit = false, count = 1) => {
    const v = m.recordRequest('u', 'app', count, admit);
    return { ms: v.throttleMs, period: v.throttleMs > 0 ? v.period : null, recorded: v.recorded };
  };
  const fills = () => m.bucketIdsOf(REQUEST, 'u', 'app').map((id) => m.buckets.outstanding(id));
  return { table, clock, m, call, fills };
}

t.test('a per-second rate given as a list is the number it always was: same value, same bucket, same answers', async (t) => {
  t.equal(toLimit('request_rate', rates([10, 's'])), 10, 'one per-second rate is held as a plain number');
  t.equal(fromLimit(toLimit('request_rate', rates([10, 's']))), 10, 'and read back as one');
  const a = setup(10);
  const b = setup(rates([10, 's']));
  const answers = (s: ReturnType<typeof setup>) => Array.from({ length: 15 }, () => s.call().ms);
  t.same(answers(b), answers(a), 'identical throttles');
  t.equal(b.m.bucketIdsOf(REQUEST, 'u', 'app').length, 1, 'one bucket');
  t.equal(b.m.buckets.kind(b.m.bucketIdOf(REQUEST, 'u', 'app')), REQUEST, "the per-second bucket keeps the key's own kind");
});

t.test('P1: a rate below one call per period still admits one whole call, and a caller within it is never throttled', async (t) => {
  for (const [value, every, label] of [
    [0.17, 5_900, '0.17/s'],
    [rates([0.5, 'min']), 120_000, '0.5/min'],
    [rates([0.2, 'h']), 5 * 3_600_000, '0.2/h'],
  ] as const) {
    const s = setup(value);
    t.equal(s.call(true).ms, 0, `${label}: a fresh bucket admits one call (admit mode)`);
    s.clock.advance(every);
    let throttled = 0;
    for (let i = 0; i < 50; i++) {
      if (s.call(i % 2 === 0).ms > 0) throttled++;
      s.clock.advance(every);
    }
    t.equal(throttled, 0, `${label}: one call every ${every} ms is never throttled`);
    s.call();
    t.ok(s.call().ms > 0, `${label}: a second call at once is throttled`);
  }
  const s = setup(0.17);
  s.call();
  t.equal(s.call(true).ms, 5882, '0.17/s: the next call waits 1/0.17 s (floor), admit mode');
});

t.test('10/min: ten calls at once, the eleventh waits 6 s and names the period; P3 holds', async (t) => {
  const s = setup(rates([10, 'min']));
  for (let i = 0; i < 10; i++) t.equal(s.call().ms, 0, `call ${i + 1} fits`);
  t.same(s.call(), { ms: 6000, period: 'min', recorded: true }, 'the 11th waits one call at 10/min');
  s.clock.advance(6000 - 1);
  t.ok(s.call(false, 0).ms > 0, 'not 1 ms before');
  s.clock.advance(1);
  t.equal(s.call(false, 0).ms, 0, 'P3: after the throttle a zero-size call passes');
});

t.test('P3 for fractional rates: after waiting the throttle a zero-size call passes, 1 ms before it does not', async (t) => {
  let checked = 0;
  for (const value of [0.17, 1.5, 2 / 3, 7.3, rates([7, 'min']), rates([1000, 'h']), rates([10000, 'd']), rates([3.7, 'h'])]) {
    const s = setup(value);
    for (let i = 0; i < 40; i++) {
      const { ms } = s.call(false, 1 + (i % 3));
      if (ms === 0 || ms > 1_000_000) continue;
      s.clock.advance(ms - 1);
      if (s.call(false, 0).ms === 0) t.fail(`${JSON.stringify(value)}: passed 1 ms early (throttle ${ms})`);
      s.clock.advance(1);
      const after = s.call(false, 0).ms;
      if (after !== 0) t.fail(`${JSON.stringify(value)}: still throttled ${after} ms after waiting ${ms}`);
      checked++;
    }
  }
  t.ok(checked > 100, `${checked} throttles checked`);
});

t.test('the longest wait among the buckets wins, and the verdict names its period', async (t) => {
  const a = setup(rates([1, 's'], [2, 'min']));
  a.call();
  a.call();
  // s bucket: fill 3, capacity 1, 1/s: 2000 ms. min bucket: fill 3, capacity 2, 1/30 s: 30000 ms.
  const near = a.m.nearLimit[REQUEST]!;
  t.same(a.call(), { ms: 30_000, period: 'min', recorded: true }, 'the minute bucket waits longer and binds');
  t.equal(a.m.nearLimit[REQUEST], near + 1, 'a call past 80% of both buckets is one near-limit call');
  t.same(
    a.m.bucketIdsOf(REQUEST, 'u', 'app').map((id) => a.m.buckets.throttleCount(id)),
    [2, 1],
    'each bucket over its capacity counts the throttle (the second bucket also throttled call 2)',
  );
  const b = setup(rates([1, 's'], [100, 'min']));
  b.call();
  b.call();
  t.same(b.call(), { ms: 2000, period: 's', recorded: true }, 'the second bucket binds when the minute one has room');
  const c = setup(rates([1, 's'], [2, 'min']), { maxThrottleMs: 10_000 });
  c.call();
  c.call();
  t.same(c.call(), { ms: 10_000, period: 'min', recorded: true }, 'P4: capped by max_throttle_ms, still naming its period');
  t.same(c.fills(), [3000, 3000], 'record mode recorded the call in every bucket');
});

t.test('admit mode: admitted only if it fits every bucket, then recorded in all; refused, recorded in none', async (t) => {
  const s = setup(rates([10, 's'], [15, 'min']));
  for (let i = 0; i < 10; i++) t.equal(s.call(true).ms, 0, `call ${i + 1} admitted`);
  const full = s.fills();
  t.same(full, [10_000, 10_000], 'both buckets hold the 10 calls');
  const refused = s.call(true);
  t.same([refused.period, refused.recorded], ['s', false], 'the 11th is refused by the second bucket');
  t.equal(refused.ms, 100, 'the time until it fits');
  t.same(s.fills(), full, 'nothing recorded in the minute bucket, which had room');
  s.clock.advance(1000);
  for (let i = 0; i < 5; i++) t.equal(s.call(true).ms, 0, `after 1 s, call ${i + 1} of 5 admitted`);
  const before = s.fills();
  const byMinute = s.call(true);
  t.same([byMinute.period, byMinute.recorded], ['min', false], 'the next is refused by the minute bucket');
  // Minute fill 15000 - 250 (1 s at 15/min) + 1000 = 15750 milli-units, 750 over at 0.25/s: 3000 ms.
  t.equal(byMinute.ms, 3000, 'the time until it fits the minute bucket');
  t.same(s.fills(), before, 'nothing recorded in the second bucket, which had room');
  s.clock.advance(3000);
  t.equal(s.call(true).ms, 0, 'P3: after that wait the same call is admitted');
});

t.test('a call larger than a bucket is admitted once that bucket is empty, still all or nothing', async (t) => {
  const s = setup(rates([5, 's'], [100, 'min']));
  t.equal(s.call(true, 8).ms, 0, 'a fresh key admits a call above the second bucket (empty), recorded in both');
  const refused = s.call(true, 8);
  t.same([refused.period, refused.recorded, refused.ms], ['s', false, 1600], 'the next waits until the second bucket is empty');
  s.clock.advance(1600);
  t.equal(s.call(true, 8).ms, 0, 'then it is admitted');
  const [sec, min] = s.fills();
  t.equal(sec, 8000, 'recorded in the second bucket (emptied meanwhile)');
  t.ok(Math.abs(min! - (16_000 - (1600 * 100) / 60)) < 1e-6, 'and in the minute bucket');
});

t.test('the burst sets the capacity of the shortest bucket only', async (t) => {
  const s = setup(rates([10, 's'], [100, 'min']));
  s.table.setValue(user('u'), 'request_burst', 30);
  for (let i = 0; i < 30; i++) t.equal(s.call().ms, 0, `call ${i + 1} within the burst`);
  t.same(s.call(), { ms: 100, period: 's', recorded: true }, 'the 31st waits one call at 10/s');
  const m = setup(rates([10, 's'], [20, 'min']));
  m.table.setValue(user('u'), 'request_burst', 30);
  for (let i = 0; i < 20; i++) m.call();
  t.equal(m.call().period, 'min', 'the minute bucket keeps its capacity of 20: the burst does not raise it');
  const one = setup(rates([10, 'min']));
  one.table.setValue(user('u'), 'request_burst', 3);
  for (let i = 0; i < 3; i++) t.equal(one.call().ms, 0, `10/min with burst 3: call ${i + 1}`);
  t.same(one.call(), { ms: 6000, period: 'min', recorded: true }, 'the 4th waits: the burst is the capacity of its only bucket');
});

t.test('100/s and 10000/d over simulated days: a greedy caller gets 10000 a day, a caller within both is never throttled', async (t) => {
  const s = setup(rates([100, 's'], [10_000, 'd']), { maxThrottleMs: 30_000 });
  const day = 86_400_000;
  const start = s.clock.now();
  const perDay = [0, 0, 0];
  const periods = new Set<string>();
  let firstDay = 0;
  let maxThrottle = 0;
  while (s.clock.now() - start < 3 * day) {
    perDay[Math.floor((s.clock.now() - start) / day)]!++;
    const { ms, period } = s.call();
    if (ms > 0) {
      periods.add(period!);
      if (period === 'd' && firstDay === 0) firstDay = perDay[0]!;
      maxThrottle = Math.max(maxThrottle, ms);
      s.clock.advance(ms);
    }
  }
  t.ok(periods.has('s') && periods.has('d'), 'both buckets bound at some point');
  // The first 10000 go at up to 100/s, about 100 s, while the day bucket drains 100 s of 10000/d (11.6 calls).
  t.ok(firstDay > 10_000 && firstDay <= 10_013, `the day bucket binds once its 10000 (and its drain) are used: call ${firstDay}`);
  t.ok(perDay[0]! <= 20_001, `day 1: ${perDay[0]} (capacity plus a day's drain at most)`);
  for (const d of [1, 2]) t.ok(Math.abs(perDay[d]! / 10_000 - 1) < 0.005, `day ${d + 1}: ${perDay[d]} calls, the daily rate`);
  t.ok(maxThrottle <= 30_000, 'P4');

  const p1 = setup(rates([100, 's'], [10_000, 'd']));
  let throttled = 0;
  // 10000 a day in bursts of 50 (within 100/s): one burst every 432 s.
  for (let burst = 0; burst < 2 * 200; burst++) {
    for (let i = 0; i < 50; i++) if (p1.call().ms > 0) throttled++;
    p1.clock.advance(432_000);
  }
  t.equal(throttled, 0, 'P1: within both rates for two days, never throttled');
});

t.test('shadow on a key with several rates: measured in every bucket, counted once a call, answered Ok', async (t) => {
  const s = setup(1e9);
  s.table.setValue(user('u'), 'request_rate', rates([5, 's'], [10, 'min']), true);
  for (let i = 0; i < 20; i++) t.equal(s.call().ms, 0, `call ${i + 1} answered Ok`);
  t.equal(s.m.shadowViolations[REQUEST], 15, 'the 15 calls past the second bucket counted once each');
  t.same(s.fills(), [20_000, 20_000], 'recorded in both buckets');
  s.table.setValue(user('u'), 'request_rate', rates([5, 's'], [10, 'min']));
  t.equal(s.call().period, 'min', 'enforced once set without shadow, the minute bucket binding');
});

t.test('resolution: lists through tiers, shadow, blocks and both orders; the manager gets the list', async (t) => {
  const daily = rates([100, 's'], [10_000, 'd']);
  for (const order of ['rivven', 'kafka'] as const) {
    const table = new QuotaTable({}, order, { pro: { request_rate: daily } });
    table.setValue({ kind: 'client-id', client: 'app' }, 'request_rate', rates([10, 'min']));
    table.setValue({ kind: 'user', user: '' }, 'request_rate', rates([1, 's'], [5, 'h']));
    const r = table.resolve(REQUEST, 'alice', 'app', emptyResolution());
    t.same(
      [r.level, r.rates],
      order === 'rivven' ? [5, rates([10, 'min'])] : [7, rates([1, 's'], [5, 'h'])],
      `${order}: the level and its list`,
    );
    t.equal(r.limit, order === 'rivven' ? 10 / 60 : 1, `${order}: limit is the shortest rate per second`);
    table.setValue(user('bob'), 'tier', 'pro');
    const b = table.resolve(REQUEST, 'bob', 'app', emptyResolution());
    t.same([b.level, b.rates, b.bucketUser, b.bucketClient], [3, daily, 'bob', null], `${order}: a tier's list at the tier's level`);
    t.same(fromLimit(table.get(user(''), REQUEST)!), ['1', '5/h'], 'the wire form is canonical');
  }
  const table = new QuotaTable({ request_rate: rates([2, 's'], [3, 'min']) });
  const m = new QuotaManager(table, {}, new ManualClock(0));
  t.equal(m.bucketIdsOf(REQUEST, 'x', null).length, 2, 'a default list: two buckets');
  table.setValue(user('x'), 'blocked', 'abuse');
  t.equal(m.recordRequest('x', null, 1, false).denied, true, 'a blocked principal is denied before any bucket');
  table.setValue({ kind: 'consumer-group', group: 'etl' }, 'consume_bytes_rate', rates([100, 's'], [150, 'min']));
  m.recordConsume('y', null, 'etl', 100, false);
  const v = m.recordConsume('y', null, 'etl', 100, false);
  t.same([v.throttleMs, v.period, v.entity], [20_000, 'min', 'consumer-group:etl'], "a group's list: the group's minute bucket binds");
});

t.test('groups of buckets stay apart and survive a new generation; a caller the cache has no room for still decides right', async (t) => {
  const table = new QuotaTable({ request_rate: rates([2, 's'], [3, 'min']) });
  const clock = new ManualClock(0);
  const m = new QuotaManager(table, { maxThrottleMs: 3_600_000 }, clock);
  const fourth = (name: string) => {
    for (let i = 0; i < 3; i++) m.recordRequest(name, null, 1, false);
    const v = m.recordRequest(name, null, 1, false);
    return `${v.throttleMs}/${v.period}`;
  };
  const answers = Array.from({ length: 200 }, (_, i) => fourth(`user-${i}`));
  t.same(new Set(answers), new Set(['20000/min']), '200 callers (past the initial pool): each its own buckets');
  table.setValue(user('unrelated'), 'request_rate', 1);
  const v = m.recordRequest('user-7', null, 1, false);
  t.same([v.throttleMs, v.period], [40_000, 'min'], 'after an alteration the caller finds its buckets and their level again');

  // A cache full of unlimited callers leaves no slot: the caller resolves every call into a scratch group.
  const small = new QuotaTable({ request_rate: rates([2, 's'], [3, 'min']) });
  const n = new QuotaManager(small, { maxBuckets: 4 }, new ManualClock(0));
  for (let i = 0; i < 4; i++) n.recordProduce(`p-${i}`, null, 1, false);
  t.same(
    Array.from({ length: 4 }, () => n.recordRequest('late', null, 1, false).throttleMs),
    [0, 0, 500, 20_000],
    'uncached, still both buckets',
  );
});

t.test('the usage report has one row per rate, with its period', async (t) => {
  const s = setup(rates([10, 's'], [10_000, 'd']));
  s.call();
  const rows = await s.m.usage({ top: 10, sortBy: 'utilization' });
  t.same(
    rows.map((r) => [r.period, r.quotaType, r.entity]).sort(),
    [
      ['d', 'request_rate', 'user:u'],
      ['s', 'request_rate', 'user:u'],
    ],
    'two rows',
  );
  t.equal(rows.find((r) => r.period === 'd')!.limit, 10_000 / 86_400, 'limit per second');
});

t.test('Throttled.period on the wire: absent for a per-second throttle (the bytes of before), named otherwise', async (t) => {
  t.same(encodeThrottled(250, 'produce_bytes_rate', 'user:alice', true), {
    type: 'Throttled',
    throttle_time_ms: 250,
    quota_type: 'produce_bytes_rate',
    entity: 'user:alice',
    recorded: true,
  });
  const body = encodeThrottled(250, 'request_rate', 'user:alice', false, 'd');
  t.equal(body.period, 'd');
  t.same(decodeReply(body), { throttleTimeMs: 250, quotaType: 'request_rate', entity: 'user:alice', recorded: false, period: 'd' });
  t.notOk('period' in decodeReply({ ...body, period: 's' }), "an explicit 's' reads as absent");
  t.throws(() => decodeReply({ ...body, period: 'week' }), { code: 'UNEXPECTED_REPLY' });
  t.throws(() => decodeReply({ ...body, period: 7 }), { code: 'UNEXPECTED_REPLY' });
  t.equal(CONSUME, 1);
});

t.test('a burst below one unit still admits one whole call (P1), on one rate and on a list', async (t) => {
  for (const value of [10, rates([10, 's'], [1000, 'd'])]) {
    const s = setup(value);
    s.table.setValue(user('u'), 'request_burst', 0.5);
    for (let i = 0; i < 10; i++) {
      t.equal(s.call().ms, 0, `${JSON.stringify(value)}, burst 0.5: call ${i + 1}, one a second, is within every rate`);
      s.clock.advance(1000);
    }
  }
});
