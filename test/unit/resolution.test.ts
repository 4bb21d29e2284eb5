import t from 'tap';
import { ManualClock } from '../../src/quota/clock.js';
import type { EntityRef } from '../../src/quota/entity.js';
import { QuotaManager } from '../../src/quota/quota-manager.js';
import { PRODUCE, CONSUME, REQUEST, type QuotaKeyIndex } from '../../src/quota/quota-key.js';
import { QuotaTable, type Resolution } from '../../src/quota/quota-table.js';

const D = ''; // <default>

// One row per resolution level (docs/algorithm.md, section 1): the entity that sets it, and the bucket identity it implies.
const levels: { level: number; ref: EntityRef; bucket: [string | null, string | null] }[] = [
  { level: 1, ref: { kind: 'user+client-id', user: 'alice', client: 'app' }, bucket: ['alice', 'app'] },
  { level: 2, ref: { kind: 'user+client-id', user: 'alice', client: D }, bucket: ['alice', 'app'] },
  { level: 3, ref: { kind: 'user', user: 'alice' }, bucket: ['alice', null] },
  { level: 4, ref: { kind: 'user+client-id', user: D, client: 'app' }, bucket: ['alice', 'app'] },
  { level: 5, ref: { kind: 'client-id', client: 'app' }, bucket: [null, 'app'] },
  { level: 6, ref: { kind: 'user+client-id', user: D, client: D }, bucket: ['alice', 'app'] },
  { level: 7, ref: { kind: 'user', user: D }, bucket: ['alice', null] },
  { level: 8, ref: { kind: 'client-id', client: D }, bucket: [null, 'app'] },
  { level: 9, ref: { kind: 'default' }, bucket: ['alice', 'app'] },
];

const resolve = (table: QuotaTable, user: string | null, client: string | null, key: QuotaKeyIndex = PRODUCE): Resolution => {
  const r: Resolution = { level: 9, limit: 0, burst: undefined, shadow: false, bucketUser: null, bucketClient: null };
  table.resolve(key, user, client, r);
  return r;
};

t.test('each level alone decides the limit and the bucket', async (t) => {
  for (const row of levels) {
    const table = new QuotaTable();
    table.set(row.ref, PRODUCE, 1000 + row.level);
    const r = resolve(table, 'alice', 'app');
    t.same([r.level, r.limit, r.bucketUser, r.bucketClient], [row.level, 1000 + row.level, ...row.bucket], `level ${row.level}`);
  }
});

t.test('with every level set, removing them from the top walks down the order', async (t) => {
  const table = new QuotaTable();
  for (const row of levels) table.set(row.ref, PRODUCE, 1000 + row.level);
  for (const row of levels) {
    t.equal(resolve(table, 'alice', 'app').level, row.level, `level ${row.level} wins`);
    if (row.level < 9) table.set(row.ref, PRODUCE, undefined);
  }
});

t.test('levels that need a user or a client-id are skipped when the call has none', async (t) => {
  const table = new QuotaTable({ produce_bytes_rate: 9 });
  for (const row of levels.slice(0, 8)) table.set(row.ref, PRODUCE, 1000 + row.level);
  t.equal(resolve(table, 'alice', null).level, 3, 'user only: user=alice');
  t.equal(resolve(table, 'bob', null).level, 7, 'user only: user=<default>');
  t.equal(resolve(table, null, 'app').level, 5, 'client only: client-id=app');
  t.equal(resolve(table, null, 'other').level, 8, 'client only: client-id=<default>');
  const anon = resolve(table, null, null);
  t.same([anon.level, anon.limit, anon.bucketUser, anon.bucketClient], [9, 9, null, null], 'anonymous: global default');
});

t.test('resolution is per quota key', async (t) => {
  const table = new QuotaTable({ produce_bytes_rate: 1, consume_bytes_rate: 2, request_rate: 3 });
  table.set({ kind: 'user', user: 'alice' }, CONSUME, 50);
  t.equal(resolve(table, 'alice', 'app', PRODUCE).level, 9);
  t.equal(resolve(table, 'alice', 'app', CONSUME).level, 3);
  t.equal(resolve(table, 'alice', 'app', REQUEST).limit, 3);
});

t.test('global default: run-time value, else rivven.yaml, else unlimited', async (t) => {
  const table = new QuotaTable({ produce_bytes_rate: 500 });
  t.equal(resolve(table, 'a', 'b').limit, 500, 'yaml');
  table.set({ kind: 'default' }, PRODUCE, 700);
  t.equal(resolve(table, 'a', 'b').limit, 700, 'run-time wins');
  table.set({ kind: 'default' }, PRODUCE, undefined);
  t.equal(resolve(table, 'a', 'b').limit, 500, 'removing it falls back to yaml');
  t.equal(resolve(table, 'a', 'b', REQUEST).limit, Infinity, 'nothing set: unlimited');
});

t.test('"unlimited" at a level means no limit and no bucket', async (t) => {
  const table = new QuotaTable({ produce_bytes_rate: 10 });
  table.set({ kind: 'user', user: 'vip' }, PRODUCE, Infinity);
  const m = new QuotaManager(table, {}, new ManualClock());
  t.equal(m.bucketIdOf(PRODUCE, 'vip', 'x'), -1);
  for (let i = 0; i < 100; i++) t.equal(m.recordProduce('vip', 'x', 1e9, false).throttleMs, 0);
  t.equal(m.bucketCount, 0);
});

t.test('who shares a bucket follows the level that matched', async (t) => {
  const sharing = (set: (table: QuotaTable) => void, a: [string | null, string | null], b: [string | null, string | null]) => {
    const table = new QuotaTable({ produce_bytes_rate: 10 });
    set(table);
    const m = new QuotaManager(table, {}, new ManualClock());
    return m.bucketIdOf(PRODUCE, ...a) === m.bucketIdOf(PRODUCE, ...b);
  };
  const userDefault = (tb: QuotaTable) => tb.set({ kind: 'user', user: D }, PRODUCE, 100);
  t.notOk(sharing(userDefault, ['alice', 'app'], ['bob', 'app']), 'two users under users/<default> do not share');
  t.ok(sharing(userDefault, ['alice', 'app'], ['alice', 'other']), "one user's clients share under users/<default>");
  const client = (tb: QuotaTable) => tb.set({ kind: 'client-id', client: 'app' }, PRODUCE, 100);
  t.ok(sharing(client, ['alice', 'app'], ['bob', 'app']), 'two users of one client-id share under clients/<c>');
  t.ok(sharing(client, [null, 'app'], ['bob', 'app']), 'with or without a user');
  const clientDefault = (tb: QuotaTable) => tb.set({ kind: 'client-id', client: D }, PRODUCE, 100);
  t.ok(sharing(clientDefault, ['alice', 'app'], ['bob', 'app']), 'clients/<default>: per client-id across users');
  t.notOk(sharing(clientDefault, ['alice', 'app'], ['alice', 'web']), 'clients/<default>: two client-ids do not share');
  const user = (tb: QuotaTable) => tb.set({ kind: 'user', user: 'alice' }, PRODUCE, 100);
  t.ok(sharing(user, ['alice', 'app'], ['alice', 'web']), 'users/alice: all her clients share');
  t.notOk(
    sharing(() => undefined, ['alice', 'app'], ['alice', 'web']),
    'global default: per (user, client-id) pair',
  );
  t.notOk(
    sharing(() => undefined, ['alice', 'app'], ['bob', 'app']),
    'global default: per pair across users',
  );
  const pair = (tb: QuotaTable) => tb.set({ kind: 'user+client-id', user: 'alice', client: 'app' }, PRODUCE, 100);
  t.notOk(sharing(pair, ['alice', 'app'], ['alice', 'web']), 'alice/app does not share with alice/web');
});

t.test('consumer groups: own limit, else the group default; never the global default', async (t) => {
  const table = new QuotaTable({ consume_bytes_rate: 1_000_000 });
  const clock = new ManualClock(0);
  const m = new QuotaManager(table, {}, clock);
  const group = (g: string) => table.resolveGroup(g, resolve(table, null, null)).limit;
  t.equal(group('etl'), Infinity, 'no group limit by default');
  table.set({ kind: 'consumer-group', group: D }, CONSUME, 100);
  t.equal(group('etl'), 100);
  table.set({ kind: 'consumer-group', group: 'etl' }, CONSUME, 200);
  t.equal(group('etl'), 200);
  // The group bucket (200/s) throttles before the principal's (1 MB/s); the reply names the group.
  const v = m.recordConsume('alice', 'app', 'etl', 500, false);
  t.same([v.throttleMs, v.entity, v.quotaType], [1500, 'consumer-group:etl', 'consume_bytes_rate']);
  const other = m.recordConsume('bob', 'app', 'etl', 0, false);
  t.equal(other.entity, 'consumer-group:etl', 'members of one group share its bucket');
  t.ok(other.throttleMs > 0);
});

t.test('an alteration takes effect on the next call', async (t) => {
  const table = new QuotaTable({ request_rate: 1 });
  const m = new QuotaManager(table, {}, new ManualClock());
  t.equal(m.recordRequest('u', 'c', 1, true).throttleMs, 0);
  t.ok(m.recordRequest('u', 'c', 1, true).throttleMs > 0, 'the second call in the window is refused');
  table.set({ kind: 'user', user: 'u' }, REQUEST, 100);
  t.equal(m.recordRequest('u', 'c', 1, true).throttleMs, 0, 'the new limit applies at once');
});

t.test("Kafka's precedence cases (ClientQuotaManagerTest.testQuotaConfigPrecedence) under both orders", async (t) => {
  // The configuration of Kafka's test; each check is (user, client-id, Kafka's expected bound, ours).
  const table = { kafka: new QuotaTable({}, 'kafka'), rivven: new QuotaTable({}, 'rivven') };
  const set = (ref: EntityRef, v: number | undefined) =>
    Object.values(table).forEach((tb) => {
      tb.set(ref, PRODUCE, v);
    });
  set({ kind: 'user', user: D }, 1000);
  set({ kind: 'client-id', client: D }, 2000);
  set({ kind: 'user+client-id', user: D, client: D }, 3000);
  set({ kind: 'user', user: 'userA' }, 4000);
  set({ kind: 'user+client-id', user: 'userA', client: 'client1' }, 5000);
  set({ kind: 'user', user: 'userB' }, 6000);
  set({ kind: 'user+client-id', user: 'userB', client: 'client1' }, 7000);
  set({ kind: 'user+client-id', user: 'userB', client: D }, 8000);
  set({ kind: 'user', user: 'userC' }, 10000);
  set({ kind: 'client-id', client: 'client1' }, 9000);
  const check = (user: string, client: string, kafka: number, rivven: number) => {
    t.equal(resolve(table.kafka, user, client).limit, kafka, `kafka order: ${user}/${client} -> ${kafka}`);
    t.equal(resolve(table.rivven, user, client).limit, rivven, `rivven order: ${user}/${client} -> ${rivven}`);
  };
  check('userA', 'client1', 5000, 5000);
  check('userA', 'client2', 4000, 4000);
  check('userA', 'client3', 4000, 4000);
  check('userB', 'client1', 7000, 7000);
  check('userB', 'client2', 8000, 8000);
  check('userB', 'client3', 8000, 8000);
  check('userD', 'client1', 3000, 9000); // rivven: the specific client-id beats <default>/<default>
  check('userD', 'client2', 3000, 3000);
  check('userE', 'client1', 3000, 9000);
  set({ kind: 'user+client-id', user: D, client: D }, undefined);
  check('userD', 'client1', 1000, 9000); // rivven: ... and beats the <default> user
  check('userE', 'client4', 1000, 1000);
  check('userF', 'client4', 1000, 1000);
  set({ kind: 'user', user: D }, undefined);
  check('userF', 'client4', 2000, 2000);
  check('userF', 'client5', 2000, 2000);
  check('userG', 'client5', 2000, 2000);
  set({ kind: 'user', user: 'userA' }, 8000);
  set({ kind: 'user+client-id', user: 'userA', client: 'client1' }, 10000);
  check('userA', 'client2', 8000, 8000);
  check('userA', 'client1', 10000, 10000);
  set({ kind: 'user+client-id', user: 'userA', client: 'client1' }, undefined);
  check('userA', 'client6', 8000, 8000);
  set({ kind: 'user+client-id', user: 'userA', client: 'client6' }, 11000);
  check('userA', 'client6', 11000, 11000);
  set({ kind: 'user+client-id', user: 'userA', client: D }, 12000);
  set({ kind: 'user+client-id', user: 'userA', client: 'client6' }, undefined);
  check('userA', 'client6', 12000, 12000);
});
