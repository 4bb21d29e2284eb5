import t from 'tap';
import { loadConfig } from '../../src/config/load.js';
import { ManualClock } from '../../src/quota/clock.js';
import { DEFAULT_NAME } from '../../src/quota/entity.js';
import { LeaseManager } from '../../src/quota/lease-manager.js';
import { IN_FLIGHT } from '../../src/quota/quota-key.js';
import { QuotaTable } from '../../src/quota/quota-table.js';
import { IndexedHeap } from '../../src/util/indexed-heap.js';

t.test('one principal holds at most its share of quotas.max_leases; the refusal names the bound', async (t) => {
  const leases = new LeaseManager(new QuotaTable({}), new ManualClock(0), { maxLeases: 10, maxLeasesPerPrincipal: 3 });
  const answers = Array.from({ length: 5 }, (_, i) => leases.acquire('hog', `client-${i}`, undefined, 1));
  t.equal(answers.filter((a) => a.granted).length, 3, 'the share, across all its client-ids');
  t.match(answers[3], { granted: false, overloaded: 'quotas.max_leases_per_principal', principal: 'user:hog', held: 3, bound: 3 });
  t.match(leases.acquire('other', null, undefined, 1), { granted: true }, "another user's first acquire");
  t.match(leases.acquire(null, 'svc', undefined, 1), { granted: true }, 'a client-id without a user is its own principal');
  t.equal(leases.refusedShare, 2);
});

t.test('the share defaults to a tenth of max_leases; the global bound still refuses, naming itself', async (t) => {
  const leases = new LeaseManager(new QuotaTable({}), new ManualClock(0), { maxLeases: 20 });
  t.equal(leases.options.maxLeasesPerPrincipal, 2);
  for (let i = 0; i < 20; i++) t.match(leases.acquire(`u${i}`, null, undefined, 1), { granted: true });
  t.match(leases.acquire('late', null, undefined, 1), { granted: false, overloaded: 'quotas.max_leases', held: 20, bound: 20 });
  t.equal(leases.refusedFull, 1);
});

t.test('a refusal keeps nothing: refused acquires of distinct users leave no group and no count behind', async (t) => {
  const table = new QuotaTable({});
  table.set({ kind: 'user', user: DEFAULT_NAME }, IN_FLIGHT, 1); // one group per user
  const leases = new LeaseManager(table, new ManualClock(0), { maxLeases: 5 });
  for (let i = 0; i < 5; i++) leases.acquire(`holder-${i}`, null, undefined, 1);
  let refused = 0;
  for (let i = 0; i < 1000; i++) refused += Number(!leases.acquire(`refused-${i}`, null, undefined, 1).granted);
  t.equal(refused, 1000);
  t.equal([...leases.heldGroups()].length, 5, 'only the holders have groups');
  t.equal(leases.heldByPrincipal('refused-7'), 0);
  // And refused at max_in_flight (not the server bound): no group either.
  for (let i = 0; i < 1000; i++) leases.acquire('holder-0', `c${i}`, undefined, 1);
  t.equal([...leases.heldGroups()].length, 5);
});

t.test('expiry by heap: leases end in ttl order and the refusal waits for the earliest of the group', async (t) => {
  const clock = new ManualClock(0);
  const table = new QuotaTable({});
  table.set({ kind: 'user', user: 'w' }, IN_FLIGHT, 50);
  const leases = new LeaseManager(table, clock, { maxLeases: 1000, maxLeasesPerPrincipal: 1000 });
  const ttls = Array.from({ length: 50 }, (_, i) => 1 + ((i * 7919) % 997));
  const ids = ttls.map((ttl) => leases.acquire('w', null, ttl, 1)).map((a) => (a.granted ? a.leaseId : ''));
  // Releasing some from the middle of the heap keeps it ordered.
  for (const i of [3, 17, 31]) leases.release(ids[i]!);
  const left = ttls.filter((_, i) => ![3, 17, 31].includes(i)).sort((a, b) => a - b);
  for (let i = 0; i < 3; i++) leases.acquire('w', null, 5000, 1);
  t.match(leases.acquire('w', null, undefined, 1), { granted: false, waitMs: left[0] });
  for (const [k, ttl] of left.entries()) {
    clock.advance(ttl - clock.now());
    leases.sweep();
    t.equal(leases.heldBy('user:w'), 50 - k - 1, `after ${ttl} ms`);
  }
  t.equal(leases.heldByPrincipal('w'), 3, 'the per-principal count follows expiry');
});

t.test('an IndexedHeap removes any item and keeps the least on top', async (t) => {
  type Item = { k: number; at: number };
  const heap = new IndexedHeap<Item>(
    (x) => x.k,
    (x) => x.at,
    (x, i) => {
      x.at = i;
    },
  );
  const items = Array.from({ length: 500 }, (_, i) => ({ k: (i * 7919) % 1009, at: -1 }));
  for (const x of items) heap.push(x);
  for (const x of items.filter((_, i) => i % 3 === 0)) heap.remove(x);
  const out: number[] = [];
  for (let x = heap.peek(); x !== undefined; x = heap.peek()) {
    out.push(x.k);
    heap.remove(x);
  }
  const expected = items
    .filter((_, i) => i % 3 !== 0)
    .map((x) => x.k)
    .sort((a, b) => a - b);
  t.same(out, expected);
});

t.test('quotas.max_leases_per_principal may not exceed quotas.max_leases', async (t) => {
  t.throws(() => loadConfig({ env: {}, cwd: '/nonexistent', flags: { quotas: { max_leases: 10, max_leases_per_principal: 11 } } }));
});
