import { LocalBucketKeeper, type LocalBucketKeeperOptions } from '../quota/local-bucket-keeper.js';
import { FleetState } from '../quota/fleet-state.js';
import { SyncColumns } from './sync-columns.js';

/** Bucket names (kind, a, b), as parallel lists. */
export interface Names {
  kinds: number[];
  as: (string | null)[];
  bs: (string | null)[];
}

/** The buckets of one sync call: what each pushes, its quota and ceiling. */
export interface SyncBatch extends Names {
  /** Usage pushed, milli-units (whole): all of the bucket's series so far (see `series`). */
  pushes: number[];
  /** The push series of each: a new one per round, or the one of a push still in doubt (sent, never answered). */
  series: number[];
  /** Quota of each (units per second = milli-units per ms) and its ceiling (capacity + max debt), milli-units. */
  rates: number[];
  ceilings: number[];
  /** The fleet fill is to be emptied before the push (ResetUsage). */
  resets: boolean[];
  /** Each bucket's Redis key, filled in by the sync (it knows the prefix). */
  keys: string[];
}

export const emptyBatch = (): SyncBatch => ({
  kinds: [],
  as: [],
  bs: [],
  pushes: [],
  series: [],
  rates: [],
  ceilings: [],
  resets: [],
  keys: [],
});

/** A push whose outcome is unknown (its call failed or timed out): resent under its series until answered. */
interface InDoubt {
  series: number;
  /** Milli-units of the series so far. */
  pushed: number;
  /** When it was first sent (clock ms): a series older than the script keeps its record is given up. */
  since: number;
}

const nameKey = (kind: number, a: string | null, b: string | null): string => JSON.stringify([kind, a, b]);

/**
 * The buckets of a fleet sidecar: local decisions at local speed (no Redis on a record call), over a fill that
 * is the fleet's as of the last sync plus what this sidecar recorded since (docs/algorithm.md, fleet buckets).
 *
 * A bucket recorded into joins the sync queue (once: its queued flag, kept with its unsynced usage in the
 * fleet's own columns beside the tables, SyncColumns); the bucket sync (bucket-sync.ts) takes queued buckets in
 * batches, pushes their unsynced usage, and adopts the fleet's fill back into them. A bucket recorded into
 * within `followMs` stays queued with nothing to push, so it keeps learning the others' usage while this
 * sidecar sees calls for it. The queue holds bucket names, not ids: a sweep or compaction may move or drop a
 * bucket between syncs, and a name is looked up again.
 *
 * `fleet` is the fleet's fallback state, which FleetSync writes: while Redis is out of reach each unit counts
 * `fleet.divisor` (the live sidecars) times against the whole quota, which decides exactly as quota / divisor.
 */
export class FleetBucketKeeper extends LocalBucketKeeper<SyncColumns> {
  private queue: Names = { kinds: [], as: [], bs: [] };
  /** Buckets ResetUsage reset here, whose fleet fill the next sync empties (bounded by the buckets). */
  private readonly resets = new Set<string>();
  /** Buckets whose last push is in doubt, by name (bounded by the buckets; empty while Redis answers). */
  private readonly inDoubt = new Map<string, InDoubt>();
  /** The series of this round's new pushes (the bucket sync sets it before collecting). */
  series = 0;

  constructor(
    options: LocalBucketKeeperOptions,
    /** A bucket recorded into this recently keeps being synced. */
    readonly followMs: number,
    /** The fleet's fallback state, shared with the leases. */
    readonly fleet: FleetState = new FleetState(),
  ) {
    super(options, (size) => new SyncColumns(size));
  }

  /** The fleet state's divisor: 1, or the live sidecars while this sidecar decides alone. */
  override get divisor(): number {
    return this.fleet.divisor;
  }

  /** Buckets waiting for the next sync (an upper bound: some may be gone by then). */
  get queued(): number {
    return this.queue.kinds.length;
  }

  override record(id: number, amount: number, now: number): void {
    this.arrays.record(id, amount, now, this.fleet.divisor);
    const c = this.columns!;
    c.unsynced[id] = c.unsynced[id]! + amount * 1000;
    if (c.queued[id] === 0) this.enqueue(id);
  }

  /** The queued bucket names, leaving an empty queue for the calls that come while they sync. */
  swapQueue(): Names {
    const q = this.queue;
    this.queue = { kinds: [], as: [], bs: [] };
    return q;
  }

  /** Puts names [from, end) back in the queue: a sync stopped before it took them (their usage is still in them). */
  requeue(names: Names, from: number): void {
    for (let i = from; i < names.kinds.length; i++) this.queueName(names.kinds[i]!, names.as[i]!, names.bs[i]!);
  }

  /**
   * Adds buckets [from, to) of `names` to `out`, each with its unsynced usage (which leaves the bucket: it is
   * being pushed). `forgiveMs` > 0 after a fallback: each push is reduced by what this sidecar's share of the
   * quota (quota / `divisor`) drained in that time, since the fleet fill in Redis could not be drained by usage
   * it never saw (docs/algorithm.md, reconciliation).
   */
  collect(names: Names, from: number, to: number, out: SyncBatch, forgiveMs = 0, divisor = 1): void {
    const t = this.arrays;
    const c = this.columns!;
    for (let i = from; i < to; i++) {
      const id = this.find(names.kinds[i]!, names.as[i]!, names.bs[i]!);
      const reset = this.resets.size > 0 && this.resets.delete(nameKey(names.kinds[i]!, names.as[i]!, names.bs[i]!));
      // Gone (swept), or named twice (dropped and made again): the bucket itself says whether it waits.
      if (id < 0 || !(c.queued[id] === 1 || reset)) continue;
      c.queued[id] = 0;
      const rate = t.rate(id);
      const unsynced = c.take(id);
      let push = unsynced;
      let series = this.series;
      // A push in doubt goes again under its own series, with what was recorded since: Redis adds only the part
      // of it that it has not applied.
      const doubt = this.inDoubt.size > 0 ? this.inDoubt.get(nameKey(names.kinds[i]!, names.as[i]!, names.bs[i]!)) : undefined;
      if (doubt !== undefined) {
        push += doubt.pushed;
        series = doubt.series;
      }
      // Less what was forgiven (the series total may shrink: Redis never takes back what it applied, and adds
      // only what exceeds it).
      if (forgiveMs > 0) push = Math.max(0, push - (rate * forgiveMs) / divisor);
      push = Math.round(push);
      out.kinds.push(names.kinds[i]!);
      out.as.push(names.as[i]!);
      out.bs.push(names.bs[i]!);
      out.pushes.push(push);
      out.series.push(series);
      out.rates.push(rate);
      out.ceilings.push(t.ceiling(id));
      out.resets.push(reset);
    }
  }

  /**
   * Redis answered: each bucket's fill becomes the fleet's plus what was recorded here meanwhile, and a bucket
   * still in use stays queued to follow the fleet. Its push is no longer in doubt (`skip`: buckets not applied).
   */
  adopt(batch: SyncBatch, fills: number[], now: number, skip?: ReadonlySet<number>): void {
    const t = this.arrays;
    const c = this.columns!;
    for (let i = 0; i < batch.kinds.length; i++) {
      if (skip?.has(i)) continue;
      if (this.inDoubt.size > 0) this.inDoubt.delete(nameKey(batch.kinds[i]!, batch.as[i]!, batch.bs[i]!));
      const id = this.find(batch.kinds[i]!, batch.as[i]!, batch.bs[i]!);
      // No fill for it (a bad reply): it stays as this sidecar knows it.
      if (id < 0 || !(fills[i]! >= 0)) continue;
      t.setFill(id, fills[i]! + c.unsynced[id]! * this.fleet.divisor, now);
      if (c.queued[id] === 0 && now - t.lastSeen(id) < this.followMs) this.enqueue(id);
    }
  }

  /**
   * The push failed or timed out, so Redis may or may not have applied it: each bucket's push stays in doubt,
   * resent by a later sync under the same series (`only` limits this to those buckets of the batch).
   */
  restore(batch: SyncBatch, now: number, only?: ReadonlySet<number>): void {
    for (let i = 0; i < batch.kinds.length; i++) {
      if (only !== undefined && !only.has(i)) continue;
      const key = nameKey(batch.kinds[i]!, batch.as[i]!, batch.bs[i]!);
      if (batch.pushes[i]! > 0) {
        const doubt = this.inDoubt.get(key);
        if (doubt !== undefined && doubt.series === batch.series[i]) doubt.pushed = batch.pushes[i]!;
        else this.inDoubt.set(key, { series: batch.series[i]!, pushed: batch.pushes[i]!, since: now });
      }
      if (batch.resets[i]) this.resets.add(key);
      const id = this.find(batch.kinds[i]!, batch.as[i]!, batch.bs[i]!);
      if (id >= 0 && this.columns!.queued[id] === 0) this.enqueue(id);
    }
  }

  /** Pushes in doubt (tests, fleet status). */
  get pushesInDoubt(): number {
    return this.inDoubt.size;
  }

  /**
   * Gives up the pushes in doubt since before `cutoff`: Redis keeps a series' record for a limited time, so one
   * resent later could count twice. Their usage is older than that by then (and a sidecar cut off that long
   * forgives the outage's usage anyway: docs/algorithm.md). Returns how many were given up.
   */
  dropInDoubt(cutoff: number): number {
    let dropped = 0;
    for (const [key, d] of this.inDoubt) {
      if (d.since >= cutoff) continue;
      this.inDoubt.delete(key);
      dropped++;
    }
    return dropped;
  }

  /** ResetUsage here resets the fleet's fill too, with the next sync (docs/algorithm.md, section 6). */
  protected override wasReset(kind: number, a: string | null, b: string | null): void {
    const key = nameKey(kind, a, b);
    if (this.resets.has(key)) return;
    this.resets.add(key);
    this.queueName(kind, a, b);
  }

  private enqueue(id: number): void {
    this.columns!.queued[id] = 1;
    this.queueName(this.ids.kind(id), this.ids.a(id), this.ids.b(id));
  }

  private queueName(kind: number, a: string | null, b: string | null): void {
    const q = this.queue;
    q.kinds.push(kind);
    q.as.push(a);
    q.bs.push(b);
  }
}
