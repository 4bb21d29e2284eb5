// Named resources (quotas.resources, DESIGN section 16): their keys in the table and the manager with every value
// form, tiers, both resolution orders, shadow past the 32nd key and bursts; their bucket kinds; the config; and
// RecordUsage on the wire through QuotaClient and BrokerQuotas.
import t from 'tap';
import { roleFor, ROLE_RECORD } from '../../src/auth/roles.js';
import { BrokerQuotas, DENIED } from '../../src/client/broker-quotas.js';
import { configSchema } from '../../src/config/schema.js';
import { bucketKey } from '../../src/fleet/bucket-sync.js';
import { REQUEST_TYPES } from '../../src/observability/request-stats.js';
import { decodeReply } from '../../src/protocol/messages/record/index.js';
import * as recordUsage from '../../src/protocol/messages/record/usage.js';
import { baseKind, GROUP, KIND_STRIDE, keyOfKind, PERIODS, periodKind, periodOfKind, resourceKind } from '../../src/quota/bucket-keeper.js';
import { ManualClock } from '../../src/quota/clock.js';
import { DEFAULT_NAME, type EntityRef } from '../../src/quota/entity.js';
import { QuotaManager } from '../../src/quota/quota-manager.js';
import { MAX_RESOURCES, QUOTA_KEYS, REQUEST, Resources, resourceNameError } from '../../src/quota/quota-key.js';
import { isShadow, QuotaTable, toLimit, withShadow } from '../../src/quota/quota-table.js';
import { MemoryQuotaStore } from '../../src/store/quota-store.js';
import { serverWithClient, startServer } from '../helpers/server.js';

const user = (name: string): EntityRef => ({ kind: 'user', user: name });
const sixteen = Array.from({ length: MAX_RESOURCES }, (_, i) => `r${i}`);

function setup(names: string[], order: 'rivven' | 'kafka' = 'rivven', tiers = {}) {
  const resources = new Resources(names);
  const table = new QuotaTable({}, order, tiers, resources);
  const clock = new ManualClock(1_000_000);
  const m = new QuotaManager(table, { maxThrottleMs: 3_600_000 }, clock);
  const use = (name: string, u: string | null = 'u', c: string | null = 'app', amount = 1, admit = false) => {
    const v = m.recordUsage(resources.indexOf(name), u, c, amount, admit);
    return { ms: v.throttleMs, type: v.throttleMs > 0 ? v.quotaType : null, period: v.throttleMs > 0 ? v.period : null };
  };
  return { resources, table, clock, m, use };
}

t.test('resource names: validated, at most 16, no duplicates, no built-in stem', async (t) => {
  t.equal(resourceNameError('orders'), undefined);
  t.equal(resourceNameError('api_calls2'), undefined);
  for (const bad of ['', 'Orders', '1orders', 'or-ders', 'a'.repeat(33), 'request', 'produce_bytes', 'consume_bytes', 7, null]) {
    t.type(resourceNameError(bad), 'string', `${JSON.stringify(bad)} refused`);
  }
  t.equal(resourceNameError('a'.repeat(32)), undefined, '32 characters is the most');
  t.throws(() => new Resources([...sixteen, 'r16']), /at most 16/);
  t.throws(() => new Resources(['orders', 'orders']), /twice/);
  t.throws(() => new Resources(['request']), /built-in/);
  const r = new Resources(['orders', 'services']);
  t.same(r.rateKeys, [...QUOTA_KEYS, 'orders_rate', 'services_rate']);
  t.equal(r.limitIndex('orders_rate'), 7);
  t.equal(r.limitIndex('services_burst'), 10);
  t.equal(r.limitIndex('events_rate'), -1, 'an undeclared resource has no key');
  t.ok(r.isAlterKey('services_burst'));
  t.notOk(r.isAlterKey('events_rate'));
});

t.test('bucket kinds: every resource slot and period has a kind of its own, below 255 (KeyedIds stores a byte)', async (t) => {
  const seen = new Set<number>();
  const bases = [0, 1, 2, GROUP, ...sixteen.map((_, s) => resourceKind(s))];
  for (const base of bases) {
    for (let p = 0; p < PERIODS.length; p++) {
      const kind = periodKind(base, p);
      t.notOk(seen.has(kind), `kind ${kind} is unique`);
      seen.add(kind);
      t.ok(kind < 255, `kind ${kind} fits a byte`);
      t.equal(baseKind(kind), base);
      t.equal(periodOfKind(kind), PERIODS[p]);
    }
  }
  t.equal(KIND_STRIDE, 4 + MAX_RESOURCES);
  t.equal(keyOfKind(resourceKind(0)), 3, 'resource slot 0 counts as rate key 3');
  t.equal(keyOfKind(periodKind(resourceKind(15), 3)), 18);
  t.equal(keyOfKind(periodKind(GROUP, 2)), 1, 'a group counts as consume');
  t.equal(
    bucketKey('p:', resourceKind(1), 'u', null, new Resources(['orders', 'services']).rateKeys),
    'p:bucket:{["services_rate","u",null]}',
  );
  t.equal(bucketKey('p:', REQUEST, 'u', null), 'p:bucket:{["request_rate","u",null]}', 'the built-in keys keep their Redis keys');
  const rateKeys = new Resources(['orders', 'services']).rateKeys;
  t.equal(
    bucketKey('p:', periodKind(resourceKind(1), PERIODS.indexOf('d')), 'u', 'c', rateKeys),
    'p:bucket:{["services_rate","u","c","d"]}',
    "a resource's longer period: its name, then the period",
  );
  t.equal(bucketKey('p:', periodKind(REQUEST, PERIODS.indexOf('min')), 'u', null, rateKeys), 'p:bucket:{["request_rate","u",null,"min"]}');
  t.equal(bucketKey('p:', periodKind(GROUP, PERIODS.indexOf('h')), 'g', null, rateKeys), 'p:bucket:{["group","g",null,"h"]}');
});

t.test('a resource rate in any form decides like a built-in one: 10/min admits 10 then throttles, naming the resource', async (t) => {
  const { table, use, clock, m } = setup(['orders', 'services']);
  table.setValue(user('u'), 'orders_rate', '10/min');
  for (let i = 0; i < 10; i++) t.equal(use('orders').ms, 0, `order ${i + 1} is Ok`);
  const v = use('orders');
  t.same(v, { ms: 6000, type: 'orders_rate', period: 'min' }, 'the 11th waits one order at 10/min: 6 s');
  t.equal(use('services').ms, 0, 'another resource is not touched');
  t.equal(m.recordRequest('u', 'app', 1, false).throttleMs, 0, 'nor request_rate');
  t.equal(m.violations[3], 1, 'the violation is counted on the resource');
  clock.advance(60_000);
  t.equal(use('orders', 'u', 'app', 1, true).ms, 0, 'a minute later there is room again');
  table.setValue(user('u'), 'services_rate', ['2/s', '5/h']);
  for (let i = 0; i < 5; i++) {
    clock.advance(1000);
    t.equal(use('services').ms, 0);
  }
  clock.advance(1000);
  t.match(use('services'), { type: 'services_rate', period: 'h' }, 'a list: the hour binds');
});

t.test("a resource's burst sets its bucket's capacity; unlimited tracks nothing", async (t) => {
  const { table, use, m, resources } = setup(['orders']);
  table.setValue(user('u'), 'orders_rate', 1);
  table.setValue(user('u'), 'orders_burst', 3);
  for (let i = 0; i < 3; i++) t.equal(use('orders').ms, 0);
  t.ok(use('orders').ms > 0, 'the 4th is over the burst of 3');
  table.setValue(user('v'), 'orders_rate', 'unlimited');
  t.equal(use('orders', 'v', 'app', 1e9).ms, 0);
  t.equal(m.bucketIdOf(resourceKind(resources.indexOf('orders')) as 0, 'v', 'app'), -1, 'no bucket');
});

t.test('tiers and both resolution orders resolve a resource key like a built-in one', async (t) => {
  const s = setup(['orders'], 'rivven', { free: { orders_rate: '1/min' }, pro: { orders_rate: '100/min' } });
  s.table.setValue(user('alice'), 'tier', 'free');
  t.equal(s.use('orders', 'alice').ms, 0);
  t.match(s.use('orders', 'alice'), { type: 'orders_rate', period: 'min' }, "free's 1/min binds");
  s.table.setValue(user('alice'), 'tier', 'pro');
  t.equal(s.use('orders', 'alice').ms, 0, "pro's 100/min does not");
  s.table.setValue({ kind: 'tier', tier: 'pro' }, 'orders_rate', '1/h');
  t.equal(s.use('orders', 'alice').ms, 0);
  t.match(s.use('orders', 'alice'), { period: 'h' }, "the tier's run-time value wins over rivven.yaml's");
  for (const [order, expected] of [
    ['rivven', 0],
    ['kafka', 1],
  ] as const) {
    const o = setup(['orders'], order);
    o.table.setValue({ kind: 'client-id', client: 'app' }, 'orders_rate', 1000);
    o.table.setValue({ kind: 'user', user: DEFAULT_NAME }, 'orders_rate', '1/min');
    o.use('orders', 'bob');
    o.use('orders', 'bob');
    t.equal(o.use('orders', 'bob').ms > 0 ? 1 : 0, expected, `${order} order: ${expected ? '<default> user' : 'client-id'} decides`);
  }
});

t.test('shadow past the 32nd key: the 16th resource shadowed neither enforces nor leaks onto another key', async (t) => {
  const { table, use, m, resources } = setup(sixteen);
  const last = resources.limitIndex('r15_burst');
  t.ok(last > 31, `r15_burst is key ${last}`);
  t.ok(isShadow(withShadow(0, last, true), last));
  t.notOk(isShadow(withShadow(0, last, true), last % 32), 'no 32-bit wrap-around');
  t.equal(withShadow(withShadow(0, last, true), last, false), 0);
  table.setValue(user('u'), 'r15_rate', 1, true);
  table.setValue(user('u'), 'request_burst', 1);
  table.setValue(user('u'), 'request_rate', 1);
  t.equal(use('r15', 'u', 'app', 50).ms, 0, 'shadow: answered Ok');
  t.equal(m.shadowViolations[3 + 15], 1, 'and counted on r15_rate');
  m.recordRequest('u', 'app', 1, false);
  t.ok(m.recordRequest('u', 'app', 1, false).throttleMs > 0, 'request_rate stays enforced');
  t.same(
    [...table.config(user('u'))!.limits.keys()].filter((k) => isShadow(table.config(user('u'))!.shadow, k)),
    [resources.limitIndex('r15_rate')],
    'only r15_rate is marked shadow',
  );
});

t.test('rivven.yaml: quotas.resources and their keys in defaults and tiers, every value form, canonical out', async (t) => {
  const c = configSchema.parse({
    quotas: { resources: ['orders'], defaults: { orders_rate: '10/min' } },
    tiers: { pro: { orders_rate: '60/min, 1000/d', orders_burst: 10, request_rate: 60 } },
  });
  t.same(c.quotas.resources, ['orders']);
  t.equal(c.quotas.defaults.orders_rate, '10/min');
  t.same(c.tiers.pro!.orders_rate, ['60/min', '1000/d']);
  const refused = (input: unknown, pattern: RegExp, what: string) => {
    const r = configSchema.safeParse(input);
    t.notOk(r.success, what);
    if (!r.success) t.match(JSON.stringify(r.error.issues), pattern, what);
  };
  refused({ quotas: { resources: [...sixteen, 'r16'] } }, /16/, 'a 17th resource');
  refused({ quotas: { resources: ['Orders'] } }, /a-z/, 'a bad name');
  refused({ quotas: { resources: ['request'] } }, /built-in/, 'a built-in stem');
  refused({ quotas: { resources: ['a', 'a'] } }, /twice/, 'a duplicate');
  refused(
    { quotas: { defaults: { orders_rate: 1 } } },
    /not a built-in key nor a resource.*none are declared/,
    'an undeclared resource key',
  );
  refused({ quotas: { resources: ['orders'] }, tiers: { pro: { services_rate: 1 } } }, /declared: orders/, 'an undeclared key in a tier');
  refused({ quotas: { resources: ['orders'], defaults: { orders_rate: '10/fortnight' } } }, /fortnight/, 'a bad value');
  refused({ quotas: { defaults: { request_burst: 5 } } }, /request_burst/, 'defaults still take only the rates');
});

t.test('RecordUsage on the wire: Ok, Throttled naming the resource and its period, Denied, and every bad request', async (t) => {
  const { s, c } = await serverWithClient(t, { quotas: { resources: ['orders', 'services'] } });
  t.equal(
    await c.alterQuotas([{ entity: [['user', 'alice']], quota_key: 'orders_rate', quota_value: '2/min' }]),
    1,
    'AlterQuotas takes a declared resource key',
  );
  const [alice] = await c.describeQuotas([['user', 'alice']]);
  t.same(alice!.quotas, { orders_rate: '2/min' }, 'DescribeQuotas lists it in canonical form');
  t.same(await c.recordUsage({ user: 'alice', resource: 'orders' }), { throttleTimeMs: 0, recorded: true });
  t.same(await c.recordUsage({ user: 'alice', resource: 'orders' }), { throttleTimeMs: 0, recorded: true });
  t.match(await c.recordUsage({ user: 'alice', resource: 'orders', admit: true }), {
    throttleTimeMs: 30_000,
    quotaType: 'orders_rate',
    period: 'min',
    recorded: false,
  });
  const rows = await c.describeUsage({ entities: [['user', 'alice']] });
  t.match(
    rows.find((r) => r.quota_type === 'orders_rate'),
    { entity: 'user:alice', period: 'min', limit_per_period: 2, used: 2 },
    "DescribeUsage: the resource's row, per period",
  );
  // A deadline no loaded machine misses: past the default 25 ms a call answers 0 (fail open), not the server's answer.
  const broker = new BrokerQuotas(c, { recordDeadlineMs: 10_000 });
  t.equal(await broker.usage('alice', null, 'orders'), 30_000, 'BrokerQuotas.usage: the throttle');
  t.equal(await broker.usage('alice', null, 'services', 5), 0, 'another resource is unlimited by default');
  s.clock.advance(60_000);
  t.equal((await c.recordUsage({ user: 'alice', resource: 'orders' })).throttleTimeMs, 0, 'a minute later: room again');

  await c.alterQuotas([{ entity: [['user', 'mallory']], quota_key: 'blocked', quota_value: 'fraud' }]);
  t.same((await c.recordUsage({ user: 'mallory', resource: 'orders' })).denied, { entity: 'user:mallory', reason: 'fraud' });
  t.equal(await broker.usage('mallory', null, 'orders'), DENIED);

  await t.rejects(c.recordUsage({ user: 'alice', resource: 'events' }), {
    code: 'INVALID_REQUEST',
    message: /resource events is not in quotas.resources \(declared: orders, services\)/,
  });
  await t.rejects(c.request({ type: 'RecordUsage', user: 'alice' }), { code: 'INVALID_REQUEST', message: /resource must be a string/ });
  await t.rejects(c.request({ type: 'RecordUsage', resource: 'Bad-Name' }), { code: 'INVALID_REQUEST', message: /a-z/ });
  await t.rejects(c.request({ type: 'RecordUsage', resource: 'x'.repeat(100_000) }), { code: 'INVALID_REQUEST' });
  for (const amount of [0, -1, 1.5, 'x']) {
    await t.rejects(
      c.request({ type: 'RecordUsage', resource: 'orders', amount }),
      { code: 'INVALID_REQUEST', message: 'amount must be an integer from 1 to 2^53-1' },
      `amount ${amount}: one message for every bad amount`,
    );
  }
  await t.rejects(c.request({ type: 'RecordUsage', resource: 'orders', amount: 2 ** 53 }), { code: 'INVALID_REQUEST' });
  await t.rejects(c.request({ type: 'RecordUsage', resource: 'orders', admit: 'yes' }), { code: 'INVALID_REQUEST' });
  await t.rejects(c.request({ type: 'RecordUsage', resource: 'orders', user: 5 }), { code: 'INVALID_REQUEST' });
  await t.rejects(
    c.alterQuotas([{ entity: [['user', 'alice']], quota_key: 'events_rate', quota_value: 1 }]),
    { code: 'INVALID_QUOTA_KEY', message: /"events_rate": no such resource in quotas.resources \(declared: orders, services\)/ },
    'AlterQuotas refuses an undeclared resource key',
  );
  await t.rejects(c.alterQuotas([{ entity: [['user', 'alice']], quota_key: 'orders_rate', quota_value: '1/fortnight' }]), {
    code: 'INVALID_QUOTA_VALUE',
  });
  t.ok(REQUEST_TYPES.includes('RecordUsage'), 'request stats count it');
  t.equal(roleFor('RecordUsage'), ROLE_RECORD, 'on the record role');
});

t.test('the Record reply takes what the call expects: the resource rate for RecordUsage, the built-in keys for the others', async (t) => {
  const throttled = (quota_type: string) => ({ type: 'Throttled', throttle_time_ms: 5, quota_type, entity: 'user:u', recorded: true });
  const orders = recordUsage.decodeReplyFor('orders');
  t.match(orders(throttled('orders_rate')), { quotaType: 'orders_rate' });
  for (const q of ['Orders_rate', 'orders_burst', 'services_rate', 'request_rate'])
    t.throws(() => orders(throttled(q)), { code: 'UNEXPECTED_REPLY' }, `RecordUsage of orders: ${q}`);
  t.match(decodeReply(throttled('request_rate')), { quotaType: 'request_rate' });
  for (const q of ['orders_rate', 'bogus_rate'])
    t.throws(() => decodeReply(throttled(q)), { code: 'UNEXPECTED_REPLY' }, `a built-in Record call: ${q}`);
  t.match(recordUsage.decodeAnyReply(throttled('services_rate')), { quotaType: 'services_rate' }, 'any resource, its name unknown');
  t.throws(() => recordUsage.decodeAnyReply(throttled('request_rate')), { code: 'UNEXPECTED_REPLY' }, 'never a built-in key');
  t.same(recordUsage.encodeRequest({ user: 'u', resource: 'orders' }), { type: 'RecordUsage', resource: 'orders', user: 'u' });
  t.same(recordUsage.encodeRequest({ resource: 'orders', amount: 3, admit: true }), {
    type: 'RecordUsage',
    resource: 'orders',
    amount: 3,
    admit: true,
  });
});

t.test('metrics: a resource label only from the declared set; RecordUsage counted by result', async (t) => {
  const { s, c } = await serverWithClient(t, { quotas: { resources: ['orders'] } });
  await c.alterQuotas([{ entity: [['user', 'u']], quota_key: 'orders_rate', quota_value: '1/min' }]);
  await c.recordUsage({ user: 'u', resource: 'orders' });
  await c.recordUsage({ user: 'u', resource: 'orders' });
  await t.rejects(c.recordUsage({ user: 'u', resource: 'events' }), { code: 'INVALID_REQUEST' });
  const text = await s.app.metrics.metrics();
  // 1/min is a per-minute rate: its bucket's series carry period="min" (the per-second series stay 0).
  t.match(text, /rivven_quota_resource_violations_total\{resource="orders",period="min"\} 1\n/);
  t.match(text, /rivven_quota_resource_violations_total\{resource="orders"\} 0\n/);
  t.notMatch(text, /resource="events"/, 'an undeclared name never becomes a label');
  t.match(
    text,
    /rivven_quota_max_utilization\{quota_type="orders_rate",period="min"\} 2\n/,
    'utilization of the resource: 2 of a capacity of 1',
  );
  t.match(text, /rivven_requests_total\{type="RecordUsage",result="throttled"\} 1\n/);
  t.match(text, /rivven_requests_total\{type="RecordUsage",result="error"\} 1\n/);
  t.notMatch(text, /quota_type="events_rate"/);
});

t.test('a stored value of an undeclared resource stops the start, naming it; a shared store change of one is ignored', async (t) => {
  const store = new MemoryQuotaStore();
  await store.apply([{ entity: [['user', 'alice']], quota_key: 'orders_rate', quota_value: '10/min' }], []);
  await t.rejects(startServer({}, store), /entry 0 is not a valid quota \(orders_rate: no such resource in quotas.resources/);
  const shared = new MemoryQuotaStore(true);
  const a = await startServer({ quotas: { resources: ['orders'] } }, shared);
  const b = await startServer({}, shared);
  t.teardown(async () => {
    await a.stop();
    await b.stop();
  });
  await a.app.admin.alter(
    [{ ref: { kind: 'user', user: 'alice' }, key: 'orders_rate', value: toLimit('orders_rate', '10/min'), shadow: false }],
    false,
    'test',
  );
  t.equal(a.app.table.getValue({ kind: 'user', user: 'alice' }, 'orders_rate'), '10/min', 'the declaring sidecar holds it');
  t.notOk(b.app.table.has({ kind: 'user', user: 'alice' }), 'the other ignores it');
  // A sidecar without the resource started after the value was written: it starts (it stopped, naming the
  // value, and so would every such sidecar at its next restart), and ignores the value.
  const c = await startServer({}, shared);
  t.teardown(() => c.stop());
  t.notOk(c.app.table.has({ kind: 'user', user: 'alice' }), 'a sidecar started later ignores it too');
});
