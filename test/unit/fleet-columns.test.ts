import t from 'tap';
import { emptyBatch, FleetBucketKeeper } from '../../src/fleet/fleet-bucket-keeper.js';
import { REQUEST } from '../../src/quota/quota-key.js';

// The fleet's per-bucket state (unsynced usage, queued flag) lives in its own columns beside the bucket tables,
// by the same ids: it must follow each bucket through growth, a compaction and a reset.
t.test("a fleet bucket's unsynced usage follows it through growth, a compaction and a reset in the old tables", async (t) => {
  const store = new FleetBucketKeeper({ windowMs: 1000, windowBuckets: 10, maxDebtMs: 1e9, maxBuckets: 100_000 }, 1100);
  const record = (user: string, units: number, now: number) => {
    const id = store.findOrCreate(REQUEST, user, null, now);
    store.touch(id, 1, now, undefined, false);
    store.record(id, units, now);
  };
  // 5000 buckets: the tables (1024 to start) grow three times.
  for (let i = 0; i < 5000; i++) record(`u-${i}`, 1 + (i % 7), 0);
  store.swapQueue(); // queued flags stay set: these buckets wait for the next sync
  // 40 of them are used again later; the sweep drops the rest, which leaves the room mostly unused: a compaction.
  const kept = Array.from({ length: 40 }, (_, i) => `u-${i * 97}`);
  for (const u of kept) record(u, 10, 5000);
  t.equal(await store.sweep(1000), 5000 - kept.length, 'the others swept');
  t.ok(store.compacting, 'a compaction is moving the buckets');
  // ResetUsage on a bucket still in the old tables: its unsynced usage goes with the reset.
  t.equal(await store.resetWhere((_g, a) => a === kept[39], 5000), 1);
  const expected = (u: string) => (1 + (Number(u.slice(2)) % 7) + 10) * 1000;
  const collect = (names: string[]) => {
    const batch = emptyBatch();
    const n = { kinds: names.map(() => REQUEST), as: names, bs: names.map(() => null) };
    store.collect(n, 0, names.length, batch);
    return batch;
  };
  // Half moved by their lookup, the rest by the compaction's end.
  const first = collect(kept.slice(0, 20));
  store.finishCompaction();
  const rest = collect(kept.slice(20));
  t.same(first.pushes, kept.slice(0, 20).map(expected), 'moved on lookup: each push is its own usage');
  t.same(rest.pushes, [...kept.slice(20, 39).map(expected), 0], 'moved by the compaction; the reset one pushes nothing');
  t.same(rest.resets.at(-1), true, 'and empties the fleet fill');
  t.same(collect(kept).pushes, [], 'taken once: nothing waits any more');
});
