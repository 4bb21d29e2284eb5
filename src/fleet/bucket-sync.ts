import calculateSlot from 'cluster-key-slot';
import { baseKind, GROUP, keyOfKind, periodOfKind } from '../quota/bucket-keeper.js';
import type { Clock } from '../quota/clock.js';
import { QUOTA_KEYS } from '../quota/quota-key.js';
import type { RedisBackend } from '../store/redis-backend.js';
import type { CallWindow } from './call-window.js';
import { emptyBatch, type FleetBucketKeeper, type SyncBatch } from './fleet-bucket-keeper.js';

/** What the bucket sync reads of FleetSyncOptions. */
export interface BucketSyncOptions {
  keyPrefix: string;
  batchSize: number;
  /** Each rate key's name, built-in then declared resources (Resources.rateKeys): a resource's buckets are keyed by its name. */
  rateKeys?: readonly string[];
}

/** How long Redis keeps a push series' record (the script's minimum key life): a series in doubt is resent
 * within SERIES_RESEND_MS of its first send, or given up (it could be counted twice after that). */
const SERIES_KEEP_MS = 60_000;
const SERIES_RESEND_MS = 50_000;
/** Series fields one bucket holds before those of long-gone sidecar processes are removed. */
const SERIES_FIELDS = 64;
/** Script codes of a bucket with a problem (lua/sync-buckets-n.lua). */
const BUCKET_PROBLEMS: Record<number, string> = {
  1: 'not a bucket (another type, or unparsable): replaced by an empty bucket',
  2: 'fill unparsable or stamped far ahead of Redis time: replaced',
  3: "a sidecar's push series unparsable or stamped far ahead of Redis time: dropped",
};
const WRITE_FAILED = 4;
const ALREADY_APPLIED = 5;

/**
 * The fleet's buckets through Redis (lua/sync-buckets-n.lua; docs/algorithm.md, fleet buckets): the queued
 * buckets' usage is pushed and the fleet's fills pulled, in one script call per Redis Cluster slot (per
 * batchSize buckets), with Redis draining every bucket by its own clock. A push is idempotent: one in doubt is
 * resent under its series, which the script applies at most once.
 */
export class BucketSync {
  /** Script calls sent. */
  sent = 0;
  /** Buckets pushed or pulled. */
  synced = 0;
  /** Pushes Redis recognised as applied already (a retry after a timeout, a late reply): not counted again. */
  duplicatePushes = 0;
  /** Pushes in doubt for too long, given up rather than risk counting them twice. */
  pushesGivenUp = 0;
  /** The last push series handed out (increasing, like Redis time in ms). */
  private lastSeries = 0;
  /** Fills come back as integers, or as strings when they hold a fraction (lua/sync-buckets-n.lua). */
  private readonly script: (...args: (string | number)[]) => Promise<(number | string)[]>;

  constructor(
    private readonly backend: RedisBackend,
    private readonly store: FleetBucketKeeper,
    private readonly clock: Clock,
    private readonly options: Readonly<BucketSyncOptions>,
    /** This sidecar process's id, its series field in each bucket. */
    private readonly instance: string,
  ) {
    this.script = backend.script('rivvenSync', new URL('./lua/sync-buckets-n.lua', import.meta.url));
  }

  /**
   * Sends the queued buckets through `window`, batch by batch, until it fails. `forgive` after a fallback: its
   * length and divisor, taken off each push (FleetBucketKeeper.collect).
   */
  async push(window: CallWindow, forgive: { ms: number; divisor: number } | null): Promise<void> {
    this.pushesGivenUp += this.store.dropInDoubt(this.clock.now() - SERIES_RESEND_MS);
    // A new series for this round's pushes: increasing per process, and close to Redis time, so the script can
    // tell a long-gone process's series from a live one's.
    this.lastSeries = Math.max(this.lastSeries + 1, Math.floor(Date.now() + this.backend.clockOffset));
    this.store.series = this.lastSeries;
    const names = this.store.swapQueue();
    const size = this.options.batchSize;
    let from = 0;
    for (; from < names.kinds.length && !window.failed; from += size) {
      const batch = emptyBatch();
      this.store.collect(names, from, Math.min(names.kinds.length, from + size), batch, forgive?.ms, forgive?.divisor);
      for (let i = 0; i < batch.kinds.length; i++)
        batch.keys.push(bucketKey(this.options.keyPrefix, batch.kinds[i]!, batch.as[i]!, batch.bs[i]!, this.options.rateKeys));
      for (const part of this.backend.cluster ? bySlot(batch) : [batch]) await window.send(() => this.call(part));
      // Each batch is built in its own turn of the loop, so a big sync never holds it for long.
      await new Promise((r) => setImmediate(r));
    }
    // Stopped by a failure: the buckets not yet taken wait for the next sync, their usage still in them.
    if (from < names.kinds.length) this.store.requeue(names, from);
  }

  /**
   * One script call. On failure or timeout Redis may have applied it or not: the batch's pushes stay in doubt
   * and a later sync resends them under the same series, which the script applies at most once.
   */
  private async call(batch: SyncBatch): Promise<void> {
    if (batch.kinds.length === 0) return;
    const n = batch.kinds.length;
    const head = 4;
    const args: (string | number)[] = new Array(1 + n + head + 5 * n);
    args[0] = n;
    for (let i = 0; i < n; i++) args[1 + i] = batch.keys[i]!;
    args[1 + n] = this.backend.deadline();
    args[2 + n] = this.instance;
    args[3 + n] = SERIES_KEEP_MS;
    args[4 + n] = SERIES_FIELDS;
    for (let i = 0; i < n; i++) {
      const at = 1 + n + head + 5 * i;
      args[at] = batch.pushes[i]!;
      args[at + 1] = batch.series[i]!;
      // Each bucket's own rate and ceiling, fractions and all (10/min drains 1/6 milli-unit a ms): ioredis sends a
      // number as String() does, whose digits read back as the same double in the script's tonumber.
      args[at + 2] = batch.rates[i]!;
      args[at + 3] = batch.ceilings[i]!;
      args[at + 4] = batch.resets[i] ? 1 : 0;
    }
    this.sent++;
    try {
      const reply = await this.backend.timed(this.script(...args));
      if (reply[0] === -1) {
        this.backend.failures++;
        throw new Error(`Redis ran the sync after its deadline (${this.backend.commandTimeoutMs} ms); nothing was pushed`);
      }
      if (!Array.isArray(reply) || reply.length < n + 1 || (reply.length - n - 1) % 2 !== 0)
        throw new Error('the sync script answered in a shape this version does not know');
      // Replies of a big sync arrive together: each batch is adopted in its own turn of the loop.
      await new Promise((r) => setImmediate(r));
      const failed = this.problems(batch, reply);
      if (failed !== undefined) this.store.restore(batch, this.clock.now(), failed);
      const fills = new Array<number>(n);
      for (let i = 0; i < n; i++) fills[i] = Number(reply[1 + i]);
      this.store.adopt(batch, fills, this.clock.now(), failed);
      this.synced += n;
    } catch (err) {
      this.store.restore(batch, this.clock.now());
      throw err;
    }
  }

  /** The script's (bucket, code) pairs after the fills: logged and counted; returns the buckets not applied. */
  private problems(batch: SyncBatch, reply: (number | string)[]): Set<number> | undefined {
    const n = batch.kinds.length;
    let failed: Set<number> | undefined;
    for (let j = n + 1; j + 1 < reply.length; j += 2) {
      const i = Number(reply[j]) - 1;
      const code = Number(reply[j + 1]);
      if (!(i >= 0 && i < n)) continue;
      if (code === ALREADY_APPLIED) this.duplicatePushes++;
      else if (code === WRITE_FAILED) {
        failed ??= new Set();
        failed.add(i);
      } else this.backend.badValue('bucket', batch.keys[i]!, BUCKET_PROBLEMS[code] ?? `code ${code}`);
    }
    return failed;
  }
}

/**
 * A bucket's key: the prefix, then the bucket's name as its hash tag, so each bucket lands in a slot of its own
 * choosing and the fleet's buckets spread over a Cluster. JSON keeps names that contain separators apart. The
 * name is the rate key (a built-in one, a declared resource's `<name>_rate`, or `group`), the user and client-id, then the rate's period when it is not `s`
 * (`["request_rate","u",null,"d"]`): each period of a key is a bucket of its own, and a per-second bucket keeps
 * the key of a sidecar that knows no periods, so a fleet upgraded sidecar by sidecar shares its fills throughout.
 */
export function bucketKey(
  prefix: string,
  kind: number,
  a: string | null,
  b: string | null,
  rateKeys: readonly string[] = QUOTA_KEYS,
): string {
  // A resource is named, not numbered: sidecars that list quotas.resources in another order still share its buckets.
  const name = baseKind(kind) === GROUP ? 'group' : rateKeys[keyOfKind(kind)];
  const period = periodOfKind(kind);
  return `${prefix}bucket:{${JSON.stringify(period === 's' ? [name, a, b] : [name, a, b, period])}}`;
}

/** Splits a batch by Redis Cluster slot: a script's keys must share one. */
function bySlot(batch: SyncBatch): SyncBatch[] {
  const parts = new Map<number, SyncBatch>();
  for (let i = 0; i < batch.kinds.length; i++) {
    const slot = calculateSlot(batch.keys[i]!);
    let part = parts.get(slot);
    if (part === undefined) {
      part = emptyBatch();
      parts.set(slot, part);
    }
    part.kinds.push(batch.kinds[i]!);
    part.as.push(batch.as[i]!);
    part.bs.push(batch.bs[i]!);
    part.pushes.push(batch.pushes[i]!);
    part.series.push(batch.series[i]!);
    part.rates.push(batch.rates[i]!);
    part.ceilings.push(batch.ceilings[i]!);
    part.resets.push(batch.resets[i]!);
    part.keys.push(batch.keys[i]!);
  }
  return [...parts.values()];
}
