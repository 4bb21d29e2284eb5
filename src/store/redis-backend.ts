import { readFileSync } from 'node:fs';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { preview } from '../util/printable.js';

/** Where Redis is: one URL (standalone, redis:// or rediss://), a Cluster seed list, or Sentinel. */
export type RedisTarget =
  | { url: string }
  | { cluster: string[]; password?: string | undefined; tls?: boolean | undefined }
  | { sentinel: { name: string; nodes: string[] }; password?: string | undefined; tls?: boolean | undefined };

export type RedisClient = Redis | Cluster;

/** The target storage.redis names: cluster or sentinel when given, else the url. */
export function redisTarget(r: {
  url: string;
  cluster: string[] | null;
  sentinel: { name: string; nodes: string[] } | null;
  password: string | null;
  tls: boolean;
}): RedisTarget {
  const extra = { password: r.password ?? undefined, tls: r.tls };
  if (r.cluster !== null) return { cluster: r.cluster, ...extra };
  if (r.sentinel !== null) return { sentinel: r.sentinel, ...extra };
  return { url: r.url };
}

import type { BadValueSource } from './bad-values.js';

export { BAD_VALUE_SOURCES, type BadValueSource } from './bad-values.js';

/** How a problem with Redis' data is told to the log (the sidecar's logger; nothing in tests). */
export type RedisProblemLog = (fields: Record<string, unknown>, msg: string) => void;

/** One bad key is logged at most once in this long (the count goes on): no log flood from a key that stays bad. */
const LOG_AGAIN_MS = 600_000;
/** Keys remembered for that; past it the memory is cleared (a log line too many, never unbounded memory). */
const MAX_LOGGED_KEYS = 1024;

/** "host:port" as ioredis wants it. */
function hostPort(node: string): { host: string; port: number } {
  const at = node.lastIndexOf(':');
  return { host: node.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(node.slice(at + 1)) };
}

/**
 * No offline queue and no retries per request: while Redis is down a command fails at once (STORAGE_ERROR, a
 * breaker failure) instead of waiting for a reconnect that may never come.
 */
const FAIL_FAST = { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 } as const;

function clientFor(target: RedisTarget, failFast: boolean, autoResubscribe = true): RedisClient {
  // A connection that does not resubscribe by itself does not resend unanswered commands either: its owner
  // redoes what a reconnect needs, once, instead of a backlog growing with each connection that dropped.
  const queue = failFast
    ? FAIL_FAST
    : { lazyConnect: true, enableOfflineQueue: true, autoResubscribe, autoResendUnfulfilledCommands: autoResubscribe };
  if ('url' in target) return new Redis(target.url, queue);
  const auth: RedisOptions = {};
  if (target.password !== undefined) auth.password = target.password;
  if (target.tls === true) auth.tls = {};
  if ('cluster' in target) {
    return new Cluster(target.cluster.map(hostPort), {
      lazyConnect: true,
      enableOfflineQueue: !failFast,
      redisOptions: { ...auth, maxRetriesPerRequest: failFast ? 0 : null },
    });
  }
  return new Redis({
    ...queue,
    ...auth,
    name: target.sentinel.name,
    sentinels: target.sentinel.nodes.map(hostPort),
    ...(target.password !== undefined ? { sentinelPassword: target.password } : {}),
    ...(target.tls === true ? { enableTLSForSentinelMode: true } : {}),
  });
}

/**
 * The connection to Redis that the shared quota store and the fleet's bucket sync share: one command client
 * (fail-fast; not auto-pipelined: its calls are few and large, and on a Cluster ioredis would put scripts of
 * different slots into one pipeline, which the Cluster refuses), a subscriber made on demand, and Redis's clock as seen from here, for deadlines
 * that Redis checks in its own time.
 */
export class RedisBackend {
  readonly client: RedisClient;
  /** Redis server time minus local wall time (ms), measured at connect and re-measured by `measureClock`. */
  clockOffset = 0;
  /** Failed or timed-out calls, of every user of this connection (rivven_quota_backend_failures_total). */
  failures = 0;
  /** Values read from Redis that failed validation, by where they came from (rivven_fleet_bad_values_total). */
  readonly badValues: Record<BadValueSource, number> = { bucket: 0, heartbeat: 0, lease: 0, change: 0, config: 0, version: 0 };
  /** Times Redis was found to have lost the fleet's data: flushed, restarted empty, replaced (rivven_fleet_redis_resets_total). */
  resets = 0;
  /** Where bad values and resets are logged, as errors (serve sets the sidecar's logger). */
  log: RedisProblemLog = () => undefined;
  private readonly logged = new Map<string, number>();

  constructor(
    readonly target: RedisTarget,
    readonly commandTimeoutMs: number,
  ) {
    this.client = clientFor(target, true);
    this.client.on('error', () => undefined);
  }

  /** Where the data is, without credentials, for the start line and `fleet status`. */
  get description(): string {
    const t = this.target;
    if ('url' in t) return t.url.replace(/\/\/[^@]*@/, '//***@');
    if ('cluster' in t) return `cluster ${t.cluster.join(',')}`;
    return `sentinel ${t.sentinel.name}@${t.sentinel.nodes.join(',')}`;
  }

  get cluster(): boolean {
    return this.client instanceof Cluster;
  }

  /**
   * A connection for pub/sub (it queues while reconnecting: a subscription is re-made, not failed). A standalone
   * or Sentinel one does not resubscribe by itself: its owner does, on 'ready'. ioredis 6.0.0 leaves the promise
   * of its own resubscription unhandled, so a connection dropped again before SUBSCRIBE's reply was an unhandled
   * rejection, which ends a Node process. A Cluster's subscriber connection handles that itself.
   */
  subscriber(): RedisClient {
    const s = clientFor(this.target, false, this.client instanceof Cluster);
    s.on('error', () => undefined);
    return s;
  }

  /** Connects (once; later calls return at once) and measures the clock offset. */
  async connect(): Promise<void> {
    if (this.client.status !== 'wait') return;
    await this.client.connect();
    // A Cluster connects to each node on its first command: do it now, not inside the first sync's deadline.
    if (this.client instanceof Cluster) await Promise.all(this.client.nodes('master').map((n) => n.ping()));
    await this.measureClock(false);
  }

  /** Redis server time minus ours; Redis read its clock somewhere in the round trip: take its middle. */
  async measureClock(timed = true): Promise<void> {
    const before = Date.now();
    const [seconds, micros] = await (timed ? this.timed(this.client.time()) : this.client.time());
    const local = (before + Date.now()) / 2;
    this.clockOffset = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - local;
  }

  /**
   * Defines the Lua script in `file` as the client's command `name` and returns its call. The file is named
   * `<name>-<numKeys>.lua` (a KEYS/ARGV/returns header at its top): a number is the script's fixed key count; `n`
   * means the caller passes the key count as the first argument (one key per bucket or group).
   */
  script<R>(name: string, file: URL): (...args: (string | number)[]) => Promise<R> {
    const match = /-(\d+|n)\.lua$/.exec(file.pathname);
    if (match === null) throw new Error(`${file.pathname}: a script file is named <name>-<numKeys>.lua`);
    const lua = readFileSync(file, 'utf8');
    this.client.defineCommand(name, match[1] === 'n' ? { lua } : { numberOfKeys: Number(match[1]), lua });
    // defineCommand adds the method by that name, which ioredis' types cannot know; looked up at each call.
    const client = this.client as unknown as Record<string, (...args: (string | number)[]) => Promise<R>>;
    return (...args) => client[name]!(...args);
  }

  /** A deadline `commandTimeoutMs` from now, in Redis server time: scripts refuse to act past it. */
  deadline(): number {
    return Math.floor(Date.now() + this.clockOffset + this.commandTimeoutMs);
  }

  /**
   * `call`, failed after commandTimeoutMs. The command may still run on Redis later: whatever must not then
   * take effect carries a `deadline()` its script checks.
   */
  async timed<T>(call: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis did not answer within ${this.commandTimeoutMs} ms`)), this.commandTimeoutMs);
    });
    try {
      return await Promise.race([call, timeout]);
    } catch (err) {
      this.failures++;
      throw err;
    } finally {
      clearTimeout(timer);
      call.catch(() => undefined);
    }
  }

  /**
   * A value read from Redis that is not what rivven writes there (DESIGN.md section 15: Redis' data is trusted no
   * more than a client's): counted always, logged once per key per LOG_AGAIN_MS. The caller ignores or replaces it.
   */
  badValue(source: BadValueSource, key: string, detail: string): void {
    this.badValues[source]++;
    const now = Date.now();
    const id = `${source} ${key}`;
    const last = this.logged.get(id);
    if (last !== undefined && now - last < LOG_AGAIN_MS) return;
    if (this.logged.size >= MAX_LOGGED_KEYS) this.logged.clear();
    this.logged.set(id, now);
    this.log({ source, key: preview(key), detail }, 'fleet: a value read from Redis is not valid; it is ignored or replaced');
  }

  /** Redis lost the fleet's data (the config version went backwards, keys gone): counted and logged, every time. */
  lostData(detail: string): void {
    this.resets++;
    this.log(
      { detail },
      'fleet: Redis lost the fleet data (flushed, restarted without persistence, or replaced); usage and configs start again from what Redis holds now',
    );
  }

  close(): void {
    this.client.disconnect();
  }
}
