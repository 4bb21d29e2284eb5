import type { BucketColumns } from '../quota/bucket-keeper.js';

/**
 * The fleet's state per bucket, beside the bucket tables and by the same ids: usage recorded here and not yet
 * pushed (milli-units), and 1 while the bucket waits in the sync queue. The bucket keeper sizes, starts, moves and
 * resets these with each bucket; they grow as its table does, so a fleet bucket costs 9 bytes more.
 */
export class SyncColumns implements BucketColumns<SyncColumns> {
  unsynced: Float64Array;
  queued: Uint8Array;
  private allocated: number;

  constructor(size: number) {
    this.allocated = Math.max(1, size);
    this.unsynced = new Float64Array(this.allocated);
    this.queued = new Uint8Array(this.allocated);
  }

  ensure(capacity: number): void {
    if (this.allocated >= capacity) return;
    let n = this.allocated;
    while (n < capacity) n *= 2;
    const unsynced = new Float64Array(n);
    unsynced.set(this.unsynced);
    const queued = new Uint8Array(n);
    queued.set(this.queued);
    this.unsynced = unsynced;
    this.queued = queued;
    this.allocated = n;
  }

  init(id: number): void {
    this.unsynced[id] = 0;
    this.queued[id] = 0;
  }

  /** ResetUsage drops the usage not yet pushed (the fleet's fill is emptied with the next sync). */
  reset(id: number): void {
    this.unsynced[id] = 0;
  }

  copyFrom(source: SyncColumns, from: number, to: number): void {
    this.unsynced[to] = source.unsynced[from]!;
    this.queued[to] = source.queued[from]!;
  }

  /** Takes the usage not yet pushed (it is being pushed), leaving 0. */
  take(id: number): number {
    const u = this.unsynced[id]!;
    this.unsynced[id] = 0;
    return u;
  }
}
