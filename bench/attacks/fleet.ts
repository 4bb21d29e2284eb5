/**
 * The fleet's hardening probes (DESIGN.md section 15: the fleet trusts Redis' data no more than a client's), each
 * against its own private redis-server: a poisoned bucket key, a push whose reply comes after command_timeout_ms,
 * an unparsable entry in the changes stream, a heartbeat from the future, a flushed Redis.
 * Run alone: node --import tsx bench/attacks/fleet.ts
 */
import { Redis } from 'ioredis';
import { freeze, startRedis, type Proc } from '../../test/helpers/procs.js';
import { FleetBucketKeeper } from '../../src/fleet/fleet-bucket-keeper.js';
import { bucketKey } from '../../src/fleet/bucket-sync.js';
import { FleetSync } from '../../src/fleet/fleet-sync.js';
import { DEFAULT_FLEET_SYNC_OPTIONS } from '../../src/fleet/options.js';
import { ManualClock } from '../../src/quota/clock.js';
import { PRODUCE } from '../../src/quota/quota-key.js';
import { RedisBackend } from '../../src/store/redis-backend.js';
import { RedisQuotaStore } from '../../src/store/redis-quota-store.js';
import type { QuotaChange } from '../../src/store/quota-store.js';

export interface Probe {
  name: string;
  held: boolean;
  detail: string;
}

const RATE = 100; // B/s: the quota of every probed bucket
let seq = 0;

/** A FleetSync on a manual clock over one private Redis, its buckets made on demand. */
function fleetOn(port: number, rate = RATE, maxDebtMs = 300_000) {
  const clock = new ManualClock(1_000_000);
  const store = new FleetBucketKeeper({ windowMs: 1000, windowBuckets: 10, maxDebtMs, maxBuckets: 10_000 }, 1100);
  const backend = new RedisBackend({ url: `redis://127.0.0.1:${port}/0` }, 100);
  const prefix = `probe-${process.pid}-${++seq}:`;
  const sync = new FleetSync(backend, store, clock, {
    ...DEFAULT_FLEET_SYNC_OPTIONS,
    keyPrefix: prefix,
    nodeId: `probe-${seq}`,
  });
  const record = (user: string, bytes: number) => {
    const id = store.findOrCreate(PRODUCE, user, null, clock.now());
    store.touch(id, rate, clock.now(), undefined, false);
    store.record(id, bytes, clock.now());
  };
  return { clock, store, backend, sync, prefix, record, key: (user: string) => bucketKey(prefix, PRODUCE, user, null) };
}

/** A bucket's fill in Redis, in units (the key holds milli-units), whichever layout the key has. */
async function fillOf(r: Redis, key: string): Promise<number> {
  const type = await r.type(key);
  const v = type === 'hash' ? await r.hget(key, 'l') : type === 'string' ? await r.get(key) : null;
  return v === null ? 0 : Number(v.split(':')[0]) / 1000;
}

async function poisonedKey(redis: Proc): Promise<Probe> {
  const f = fleetOn(redis.port);
  const r = new Redis(redis.port);
  try {
    await f.backend.connect();
    // Bucket "before" comes first in the sync, "poisoned" second: a hash where a bucket is expected.
    f.record('before', 500);
    f.record('poisoned', 1);
    await r.hset(f.key('poisoned'), 'x', 'y');
    for (let i = 0; i < 3; i++) await f.sync.syncNow();
    const fill = await fillOf(r, f.key('before'));
    // After the breaker's reset timeout, a later sync: is the fleet still cut off?
    f.clock.advance(2000);
    f.record('after', 10);
    await f.sync.syncNow();
    await f.sync.syncNow();
    const after = await fillOf(r, f.key('after'));
    const held = fill <= 500 && f.sync.breaker.state === 'closed' && after > 0;
    return {
      name: 'fleet: a wrong-typed value at one bucket key (3 syncs)',
      held,
      detail: `500 B recorded in the bucket before it; in Redis after 3 syncs: ${fill.toFixed(1)} B; breaker ${f.sync.breaker.state}; a later bucket reached Redis: ${after > 0}`,
    };
  } finally {
    r.disconnect();
    f.backend.close();
  }
}

/**
 * A push Redis applied whose reply the sidecar reads only after command_timeout_ms: the sidecar's loop is held
 * (a GC pause, a busy loop) right after the call went out, so its timeout fires before the reply is read.
 */
async function lateReplyPausedSidecar(redis: Proc): Promise<Probe> {
  // 1 B/s with a deep debt: the fill drains by at most a few bytes while the probe runs.
  const f = fleetOn(redis.port, 1, 1e9);
  const r = new Redis(redis.port);
  try {
    await f.backend.connect();
    const rounds = 20;
    const bytes = 100;
    for (let i = 0; i < rounds; i++) {
      f.record('late', bytes);
      const p = f.sync.syncNow();
      // Let the call go out (one turn of the loop), then hold the loop past the timeout.
      await new Promise((res) => setImmediate(res));
      const until = performance.now() + 150;
      while (performance.now() < until);
      await p;
      f.clock.advance(2000); // let the breaker probe again if it opened
    }
    for (let i = 0; i < 3; i++) await f.sync.syncNow();
    const fill = await fillOf(r, f.key('late'));
    const recorded = rounds * bytes;
    const over = ((fill - recorded) / recorded) * 100;
    return {
      name: 'fleet: the reply of an applied push read after command_timeout_ms (sidecar paused 150 ms, 20 pushes)',
      held: fill <= recorded + 0.5,
      detail: `${recorded} B recorded, ${fill.toFixed(1)} B in Redis (${over >= 0 ? '+' : ''}${over.toFixed(1)}%)`,
    };
  } finally {
    r.disconnect();
    f.backend.close();
  }
}

/**
 * Redis paused (SIGSTOP) for longer than command_timeout_ms at moments that fall inside syncs, then resumed:
 * whatever it had applied but not yet answered must not be pushed again.
 */
async function lateReplyPausedRedis(): Promise<Probe> {
  const redis = await startRedis();
  // 1 B/s with a deep debt: the fill drains by at most a few bytes while the probe runs.
  const f = fleetOn(redis.port, 1, 1e9);
  const r = new Redis(redis.port);
  try {
    await f.backend.connect();
    const bytes = 1000;
    let recorded = 0;
    const users = Array.from({ length: 200 }, (_, i) => `u${i}`);
    for (let round = 0; round < 30; round++) {
      for (const u of users) f.record(u, bytes);
      recorded += bytes * users.length;
      const p = f.sync.syncNow();
      // Stop Redis while the sync's script is being run or answered, past the timeout.
      setTimeout(() => {
        freeze(redis.child);
        setTimeout(() => redis.child.kill('SIGCONT'), 150);
      }, round % 3);
      await p;
      await new Promise((res) => setTimeout(res, 160));
      f.clock.advance(2000);
    }
    for (let i = 0; i < 5; i++) {
      await f.sync.syncNow();
      f.clock.advance(2000);
    }
    let fill = 0;
    for (const u of users) fill += await fillOf(r, f.key(u));
    const over = ((fill - recorded) / recorded) * 100;
    return {
      name: 'fleet: Redis paused (SIGSTOP 150 ms > command_timeout_ms 100) during 30 syncs of 200 buckets',
      held: fill <= recorded,
      detail: `${recorded} B recorded, ${fill.toFixed(1)} B in Redis after draining (${over >= 0 ? '+' : ''}${over.toFixed(2)}%)`,
    };
  } finally {
    r.disconnect();
    f.backend.close();
    await redis.stop();
  }
}

async function waitFor(cond: () => boolean | Promise<boolean>, ms = 3000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

async function poisonedStream(redis: Proc): Promise<Probe> {
  const prefix = `probe-stream-${process.pid}-${++seq}:`;
  const url = `redis://127.0.0.1:${redis.port}/0`;
  const a = new RedisQuotaStore({ url, keyPrefix: prefix, pollIntervalMs: 50 });
  const b = new RedisQuotaStore({ url, keyPrefix: prefix, pollIntervalMs: 50 });
  const r = new Redis(redis.port);
  const heard: QuotaChange[][] = [];
  const logged: string[] = [];
  // Versions without validation have no log hook: nothing is logged there.
  const backend = b.backend as unknown as { log?: (fields: Record<string, unknown>, msg: string) => void };
  if (backend.log !== undefined) backend.log = (fields, msg) => void logged.push(`${msg} ${JSON.stringify(fields)}`);
  try {
    await a.load();
    await b.load();
    b.onChange((c) => void heard.push(c));
    // A version whose entry is not JSON: written as another writer (or a corruption) would.
    const v = await r.incr(`${prefix}{quotas}:version`);
    await r.xadd(`${prefix}{quotas}:changes`, `${v}-0`, 'c', '{not json');
    await a.apply([{ entity: [['user', 'later']], quota_key: 'request_rate', quota_value: 7 }], []);
    const applied = await waitFor(() => heard.some((c) => c.some((x) => x.entity[0]?.[1] === 'later')));
    return {
      name: 'fleet: one unparsable entry in the changes stream',
      held: applied && logged.length > 0,
      detail: `a later alteration reached the other sidecar: ${applied} (its version ${b.appliedVersion}, Redis ${v + 1}); logged: ${logged.length > 0 ? logged[0] : 'nothing'}`,
    };
  } finally {
    r.disconnect();
    await a.close();
    await b.close();
  }
}

async function futureHeartbeat(redis: Proc): Promise<Probe> {
  const f = fleetOn(redis.port);
  const r = new Redis(redis.port);
  try {
    await f.backend.connect();
    const [sec] = await r.time();
    const future = Number(sec) * 1000 + 3_600_000;
    const entry = {
      node_id: 'ghost',
      sync_lag_ms: 0,
      breaker: 'closed',
      buckets: 0,
      queued: 0,
      config_version: 0,
      sync_interval_ms: 100,
      settings: '',
      instance: 'x',
      seen: future,
    };
    await r.hset(`${f.prefix}{fleet}:sidecars`, 'ghost', JSON.stringify(entry));
    f.record('hb', 1);
    await f.sync.syncNow();
    return {
      name: 'fleet: a heartbeat entry from an hour in the future',
      held: f.sync.live === 1,
      detail: `live sidecars counted: ${f.sync.live} (1 is right: the fallback would divide quotas by ${f.sync.live})`,
    };
  } finally {
    r.disconnect();
    f.backend.close();
  }
}

async function flushedRedis(redis: Proc): Promise<Probe> {
  const prefix = `probe-flush-${process.pid}-${++seq}:`;
  const store = new RedisQuotaStore({ url: `redis://127.0.0.1:${redis.port}/0`, keyPrefix: prefix, pollIntervalMs: 50 });
  const r = new Redis(redis.port);
  try {
    await store.load();
    await store.apply([{ entity: [['user', 'x']], quota_key: 'request_rate', quota_value: 5 }], []);
    await r.del(`${prefix}{quotas}:version`, `${prefix}{quotas}:configs`, `${prefix}{quotas}:changes`);
    const backend = store.backend as unknown as { resets?: number };
    const seen = await waitFor(() => (backend.resets ?? 0) > 0 || store.reloads > 0, 2000);
    return {
      name: 'fleet: the shared configs flushed from Redis (version went backwards)',
      held: (backend.resets ?? 0) > 0,
      detail: `noticed: ${seen}; counted as a Redis reset (metric): ${(backend.resets ?? 0) > 0}`,
    };
  } finally {
    r.disconnect();
    await store.close();
  }
}

export async function probes(): Promise<Probe[]> {
  const redis = await startRedis();
  const out: Probe[] = [];
  try {
    out.push(await poisonedKey(redis));
    out.push(await lateReplyPausedSidecar(redis));
    out.push(await poisonedStream(redis));
    out.push(await futureHeartbeat(redis));
    out.push(await flushedRedis(redis));
  } finally {
    await redis.stop();
  }
  out.push(await lateReplyPausedRedis());
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const p of await probes()) console.log(`${p.held ? 'held' : 'FELL'}  ${p.name}: ${p.detail}`);
  process.exit(0);
}
