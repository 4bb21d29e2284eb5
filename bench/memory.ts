/**
 * Memory per tracked bucket: 1,000,000 distinct principals each record once (one bucket each), measured after
 * GC as heap + ArrayBuffers (the buckets live in typed arrays), then everything goes idle, is swept, and the
 * memory is measured again. Needs --expose-gc.
 */
import type { LocalBucketKeeper } from '../src/quota/local-bucket-keeper.js';
import { ManualClock } from '../src/quota/clock.js';
import { QuotaManager } from '../src/quota/quota-manager.js';
import { QuotaTable } from '../src/quota/quota-table.js';

declare const gc: () => void;

function used(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

export async function memory(buckets = 1_000_000) {
  const names = Array.from({ length: buckets }, (_, i) => `tenant-${i}`);
  const clock = new ManualClock(1_000_000);
  const manager = new QuotaManager(new QuotaTable({ request_rate: 1000 }), { maxBuckets: buckets * 2, idleTimeoutMs: 60_000 }, clock);
  const before = used();
  for (const name of names) manager.recordRequest(name, 'app', 1, false);
  const loaded = used();
  clock.advance(61_000);
  const dropped = await manager.sweep();
  (manager.buckets as LocalBucketKeeper).finishCompaction();
  const swept = used();
  return {
    buckets: manager.bucketCount + dropped,
    bytes_per_bucket: Math.round((loaded - before) / buckets),
    dropped,
    // Compaction can end below the starting point (the initial tables are replaced too): cap at all of it.
    bytes_per_bucket_after_cleanup: Math.max(0, Math.round((swept - before) / buckets)),
    returned_fraction: Math.min(1, Math.round(((loaded - swept) / (loaded - before)) * 100) / 100),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(JSON.stringify(await memory()));
