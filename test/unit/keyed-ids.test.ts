import fc from 'fast-check';
import t from 'tap';
import { KeyedIds, keyHash } from '../../src/quota/keyed-ids.js';

const name = fc.oneof(fc.constant(null), fc.constantFrom('a', 'b', 'alice', 'bob', ''), fc.string({ maxLength: 3 }));
const op = fc.tuple(fc.constantFrom('add', 'remove', 'find'), fc.integer({ min: 0, max: 3 }), name, name);

t.test('KeyedIds behaves like a Map of keys to ids under any sequence of adds and removes', async (t) => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
      const index = new KeyedIds(16);
      const model = new Map<string, number>();
      const keyOf = (k: number, a: string | null, b: string | null) => JSON.stringify([k, a, b]);
      for (const [what, k, a, b] of ops) {
        const key = keyOf(k, a, b);
        const have = model.get(key);
        if (what === 'add' && have === undefined) {
          const id = index.add(k, a, b);
          if ([...model.values()].includes(id)) return false; // ids are unique among live keys
          model.set(key, id);
        } else if (what === 'remove' && have !== undefined) {
          index.remove(have);
          model.delete(key);
        }
        if (index.find(k, a, b) !== (model.get(key) ?? -1)) return false;
      }
      for (const [key, id] of model) {
        const [k, a, b] = JSON.parse(key) as [number, string | null, string | null];
        if (index.find(k, a, b) !== id || index.kind(id) !== k || index.a(id) !== a || index.b(id) !== b) return false;
      }
      return index.size === model.size;
    }),
    { numRuns: 300 },
  );
  t.pass('matches the model');
});

t.test('grows past its initial capacity and reuses freed ids', async (t) => {
  const index = new KeyedIds(16);
  const ids = Array.from({ length: 5000 }, (_, i) => index.add(0, `u${i}`, null));
  t.equal(index.size, 5000);
  t.ok(index.capacity >= 5000);
  t.same(
    ids.map((id, i) => index.find(0, `u${i}`, null) === id).filter((ok) => !ok),
    [],
  );
  for (let i = 0; i < 5000; i += 2) index.remove(ids[i]!);
  t.equal(index.size, 2500);
  const reused = index.add(1, 'new', 'key');
  t.ok(reused < 5000, 'a freed id is reused');
  t.equal(index.find(0, 'u1', null), ids[1]);
  t.equal(index.find(0, 'u0', null), -1);
});

t.test('any initial capacity works, as compaction asks for live x 2', async (t) => {
  for (const initial of [17, 1000, 3000]) {
    const index = new KeyedIds(initial);
    const ids = Array.from({ length: 4000 }, (_, i) => index.add(1, `n${i}`, 'c'));
    t.same(
      ids.filter((id, i) => index.find(1, `n${i}`, 'c') !== id),
      [],
      `initial ${initial}: every key found`,
    );
    for (let i = 0; i < 4000; i += 3) index.remove(ids[i]!);
    t.same(
      ids.filter((id, i) => index.find(1, `n${i}`, 'c') !== (i % 3 === 0 ? -1 : id)),
      [],
      `initial ${initial}: after removals`,
    );
  }
});

t.test('names built to share one home under one seed spread under another (no hash flooding by chosen names)', async (t) => {
  // An attacker who could compute the hash would pick names with one home: 64 of them under seed 1, for a
  // table of 1024 cells, found by trying names in turn.
  const mask = 1023;
  const target = keyHash(1, 0, 'flood-0', 'app') & mask;
  const crafted: string[] = [];
  for (let i = 0; crafted.length < 64; i++) if ((keyHash(1, 0, `flood-${i}`, 'app') & mask) === target) crafted.push(`flood-${i}`);
  const homes = (seed: number) => {
    const count = new Map<number, number>();
    for (const name of crafted) {
      const h = keyHash(seed, 0, name, 'app') & mask;
      count.set(h, (count.get(h) ?? 0) + 1);
    }
    return Math.max(...count.values());
  };
  t.equal(homes(1), 64, 'under the seed they were built for, one home');
  for (const seed of [2, 0x7fffffff, -12345]) t.ok(homes(seed) <= 4, `under seed ${seed}, at most 4 share a home (${homes(seed)})`);
  // And two tables of this process agree (one seed per process), so ids found in one are found again.
  const a = new KeyedIds(16);
  const b = new KeyedIds(16);
  for (const name of crafted) {
    a.add(0, name, 'app');
    b.add(0, name, 'app');
  }
  t.ok(
    crafted.every((n) => a.find(0, n, 'app') === b.find(0, n, 'app') && a.find(0, n, 'app') >= 0),
    'every crafted name is found',
  );
});

t.test('keys that differ only in where a ends and b begins, or in kind and a first character, spread (any seed)', async (t) => {
  // Both names come from the client (user and client-id): were the hash one pass over a's characters then b's,
  // every way of cutting one string in two would share a home under every seed, and so would kind k with first
  // character c and kind k ^ d with c ^ d: 1024 cuts x 4 kinds, one chain, whatever the seed.
  const s = 'x'.repeat(1025);
  const keys: [number, string | null, string | null][] = [];
  for (const kind of [0, 1, 2, 3]) {
    const t2 = String.fromCharCode(s.charCodeAt(0) ^ kind) + s.slice(1);
    for (let i = 1; i < t2.length; i++) keys.push([kind, t2.slice(0, i), t2.slice(i)]);
  }
  const mask = 8191;
  for (const seed of [1, 0x7fffffff, -12345]) {
    const count = new Map<number, number>();
    for (const [kind, a, b] of keys) {
      const h = keyHash(seed, kind, a, b) & mask;
      count.set(h, (count.get(h) ?? 0) + 1);
    }
    const most = Math.max(...count.values());
    t.ok(most <= 8, `under seed ${seed}, at most 8 of ${keys.length} cut keys share a home (${most})`);
  }
  t.not(keyHash(1, 0, '', null), keyHash(1, 0, null, ''), "('', null) and (null, '') hash apart");
  t.not(keyHash(1, 0, 'ab', 'c'), keyHash(1, 0, 'a', 'bc'), "('ab', 'c') and ('a', 'bc') hash apart");
});
