import { randomBytes } from 'node:crypto';
import { type Cluster, Redis } from 'ioredis';
import { QuotaClient } from '../../src/client/quota-client.js';
import { RedisQuotaStore, type RedisQuotaStoreOptions } from '../../src/store/redis-quota-store.js';
import { type Proc, startSidecar } from './procs.js';
import { startServer, type TestServer } from './server.js';

/**
 * The one fleet fixture: sidecars sharing a Redis under a key prefix of their own, stopped (and their keys
 * removed) when the test ends. In this process (`inProcessFleet`: each its own server, store and Redis
 * connections, with a manual clock the test drives) or as processes of the built bin/rivven (`processFleet`).
 * The Redis is the file's own (privateRedisUrl) or one a test starts to stop, kill or freeze.
 */

type Teardown = { teardown(fn: () => unknown): void };

export interface Sidecar {
  s: TestServer;
  c: QuotaClient;
  store: RedisQuotaStore;
}

/** A key prefix no other test uses. */
export const newPrefix = (): string => `rivven-test-${randomBytes(6).toString('hex')}:`;

/** A connection to the Redis at `url` (a URL, or a port on 127.0.0.1), closed when the test ends. */
export function redisAt(t: Teardown, url: string | number): Redis {
  const r = typeof url === 'number' ? new Redis(url) : new Redis(url);
  t.teardown(() => r.disconnect());
  return r;
}

/** Removes the prefix's keys; a Redis already stopped (or a cluster, whose keys go with it) is left alone. */
async function removeKeys(url: string | string[], prefix: string): Promise<void> {
  if (typeof url !== 'string') return;
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  r.on('error', () => undefined);
  try {
    await r.connect();
    const keys = await r.keys(`${prefix}*`);
    if (keys.length > 0) await r.del(...keys);
  } catch {
    // a private Redis already stopped
  } finally {
    r.disconnect();
  }
}

export interface InProcessFleetOptions {
  /** rivven.yaml settings of every sidecar (`fleet` is merged into the fleet defaults below). */
  overrides?: Record<string, Record<string, unknown>>;
  /** Settings of sidecar i only (quotas). */
  quotasOf?: (i: number) => Record<string, unknown>;
  /**
   * Fleet mode (shared buckets): on unless told. Its sync timer is slowed to a minute: the tests run each sync
   * themselves (`tick`). Off, the sidecars share only their configs, through the Redis store.
   */
  fleet?: boolean;
  /** Options of each sidecar's RedisQuotaStore. */
  store?: Partial<RedisQuotaStoreOptions>;
}

/** `n` sidecars in this process on one Redis (a URL, or a cluster's seeds) and one key prefix. */
export async function inProcessFleet(
  t: Teardown,
  url: string | string[],
  n: number,
  { overrides = {}, quotasOf = () => ({}), fleet = true, store: storeOptions = {} }: InProcessFleetOptions = {},
): Promise<{ sidecars: Sidecar[]; prefix: string }> {
  const prefix = newPrefix();
  const sidecars: Sidecar[] = [];
  // Registered first, so it runs even when a later start fails.
  t.teardown(async () => {
    for (const { s, c } of sidecars) {
      await c.close();
      await s.stop();
    }
    await removeKeys(url, prefix);
  });
  for (let i = 0; i < n; i++) {
    const target = typeof url === 'string' ? { url } : { cluster: url };
    const store = new RedisQuotaStore({ target, keyPrefix: prefix, ...storeOptions });
    const s = fleet
      ? await startServer(
          {
            ...overrides,
            quotas: { defaults: { request_rate: 10 }, ...quotasOf(i) },
            storage: { backend: 'redis', redis: { key_prefix: prefix } },
            fleet: { enabled: true, sync_interval_ms: 60_000, node_id: `node-${i}`, ...overrides.fleet },
          },
          store,
          { fleet: { backend: store.backend, configVersion: () => store.appliedVersion } },
        )
      : await startServer(overrides, store);
    const c = await QuotaClient.connect({ port: s.port });
    sidecars.push({ s, c, store });
  }
  return { sidecars, prefix };
}

/** One fleet sync of a sidecar of `inProcessFleet`, run by the test. */
export const tick = (x: Sidecar): Promise<void> => x.s.app.fleet!.syncNow();

/**
 * The time of an `inProcessFleet`, sidecars and Redis alike, moved only by the test. The sync script drains each
 * bucket by Redis's own clock (TIME), which runs while the test does; here Redis's buckets drain by the time the
 * test moved instead, to the milli-unit: before each sidecar's sync (`syncAll`) every bucket under the prefix is
 * drained by the ms moved since the last sync at `rate` (units a second: a test of one rate) and stamped ahead
 * of Redis time, so the script drains it no further (the sidecars read levels, never Redis's stamps).
 */
export function fleetClock(t: Teardown, url: string, fleet: { sidecars: Sidecar[]; prefix: string }, rate: number) {
  const r = redisAt(t, url);
  let owed = 0;
  const hold = (ms: number) => holdRedisBuckets(r, fleet.prefix, ms, () => rate);
  return {
    /** Moves every sidecar's manual clock, and Redis's time for the buckets, `ms` forward. */
    advance(ms: number): void {
      for (const x of fleet.sidecars) x.s.clock.advance(ms);
      owed += ms;
    },
    /** One sync of each sidecar in turn, each after Redis's buckets are held to the clocks. */
    async syncAll(): Promise<void> {
      for (const x of fleet.sidecars) {
        await hold(owed);
        owed = 0;
        await tick(x);
      }
    },
  };
}

/**
 * Drains every fleet bucket under `prefix` by `ms` at its rate (`rateOf` its key, units a second) and stamps it
 * ahead of Redis time, so the sync script drains it no further until it writes it: Redis's buckets then drain by
 * the time the test moved, not by Redis's own clock. Call it before each sync (`ms` 0 when no time moved).
 */
export async function holdRedisBuckets(r: Redis, prefix: string, ms: number, rateOf: (key: string) => number): Promise<void> {
  const keys = await r.keys(`${prefix}bucket:*`);
  if (keys.length > 0) await r.eval(HOLD_SCRIPT, keys.length, ...keys, HOLD_AHEAD_MS, ...keys.map((k) => ms * rateOf(k)));
}

/** holdRedisBuckets for the named keys, one script call each: on a Cluster a script touches keys of one slot. */
export async function holdBucketKeys(r: Redis | Cluster, keys: string[], ms: number, rateOf: (key: string) => number): Promise<void> {
  for (const k of keys) await r.eval(HOLD_SCRIPT, 1, k, HOLD_AHEAD_MS, ms * rateOf(k));
}

/** Far enough ahead that no sync drains a held bucket, well inside the 60 s the script takes for a planted stamp. */
const HOLD_AHEAD_MS = 10_000;
// KEYS: the buckets; ARGV[1] ms ahead of Redis time to stamp them, ARGV[1 + i] milli-units to drain from bucket i.
// Levels are written as lua/sync-buckets-n.lua writes them; the sidecars' series fields and the TTL are kept.
const HOLD_SCRIPT = `
local t = redis.call('TIME')
local at = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i, k in ipairs(KEYS) do
  local l, _, rest = string.match(redis.call('GET', k) or '', '^([^:]+):(%d+)(.*)$')
  if l then
    local level = math.max(0, tonumber(l) - tonumber(ARGV[1 + i]))
    local shown = level == math.floor(level) and string.format('%.0f', level) or string.format('%.17g', level)
    redis.call('SET', k, shown .. ':' .. string.format('%.0f', at) .. rest, 'KEEPTTL')
  end
end`;

/** Three sidecar processes (the built bin/rivven) in fleet mode on the Redis at `url`, one key prefix, `env` added. */
export async function processFleet(
  t: Teardown,
  url: string,
  env: Record<string, string> = {},
): Promise<{ procs: Proc[]; clients: QuotaClient[]; prefix: string }> {
  const prefix = newPrefix();
  const procs: Proc[] = [];
  const clients: QuotaClient[] = [];
  t.teardown(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(procs.map((p) => p.stop()));
    await removeKeys(url, prefix);
  });
  const all = {
    RIVVEN_STORAGE_BACKEND: 'redis',
    RIVVEN_STORAGE_REDIS_URL: url,
    RIVVEN_STORAGE_REDIS_KEY_PREFIX: prefix,
    RIVVEN_FLEET_ENABLED: 'true',
    ...env,
  };
  procs.push(...(await Promise.all([0, 1, 2].map(() => startSidecar(all)))));
  clients.push(...(await Promise.all(procs.map((p) => QuotaClient.connect({ port: p.port })))));
  return { procs, clients, prefix };
}
