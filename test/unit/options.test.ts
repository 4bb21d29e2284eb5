import { readFileSync } from 'node:fs';
import t from 'tap';
import { DEFAULT_FLEET_SYNC_OPTIONS } from '../../src/fleet/options.js';
import { configSchema } from '../../src/config/schema.js';
import {
  adaptiveOptions,
  dispatcherOptions,
  fleetSyncOptions,
  leaseOptions,
  quotaManagerOptions,
  serverOptions,
  violationLogOptions,
} from '../../src/config/to-options.js';
import { DEFAULT_HEALTH_SERVER_OPTIONS } from '../../src/observability/http.js';
import { DEFAULT_VIOLATION_LOG_OPTIONS } from '../../src/observability/options.js';
import { DEFAULT_ADAPTIVE_OPTIONS, DEFAULT_LEASE_OPTIONS, DEFAULT_QUOTA_OPTIONS } from '../../src/quota/options.js';
import { DEFAULT_DISPATCHER_OPTIONS, DEFAULT_SERVER_OPTIONS } from '../../src/server/options.js';
import { DEFAULT_BATCHED_WRITER_OPTIONS } from '../../src/store/batched-writer.js';
import { DEFAULT_FILE_STORE_OPTIONS } from '../../src/store/file-quota-store.js';
import { DEFAULT_REDIS_STORE_OPTIONS } from '../../src/store/redis-quota-store.js';
import { DEFAULT_BREAKER_OPTIONS } from '../../src/util/breaker.js';
import { DEFAULT_BROKER_QUOTAS_OPTIONS } from '../../src/client/broker-quotas.js';
import { DEFAULT_CLIENT_OPTIONS } from '../../src/client/quota-client.js';
import { DEFAULT_RATE_LIMIT_OPTIONS } from '../../src/http/fastify-rate-limit.js';

/** Each options type that documents `@default`, the file it is declared in, and its DEFAULT_* object. */
const OPTIONS: [string, string, object][] = [
  ['QuotaManagerOptions', 'src/quota/options.ts', DEFAULT_QUOTA_OPTIONS],
  ['LeaseOptions', 'src/quota/options.ts', DEFAULT_LEASE_OPTIONS],
  ['AdaptiveOptions', 'src/quota/options.ts', DEFAULT_ADAPTIVE_OPTIONS],
  ['ServerOptions', 'src/server/options.ts', DEFAULT_SERVER_OPTIONS],
  ['ConnectionOptions', 'src/server/options.ts', DEFAULT_SERVER_OPTIONS],
  ['DispatcherOptions', 'src/server/options.ts', DEFAULT_DISPATCHER_OPTIONS],
  ['ViolationLogOptions', 'src/observability/options.ts', DEFAULT_VIOLATION_LOG_OPTIONS],
  ['HealthServerOptions', 'src/observability/http.ts', DEFAULT_HEALTH_SERVER_OPTIONS],
  ['FleetSyncOptions', 'src/fleet/options.ts', DEFAULT_FLEET_SYNC_OPTIONS],
  ['FileQuotaStoreOptions', 'src/store/file-quota-store.ts', DEFAULT_FILE_STORE_OPTIONS],
  ['BatchedWriterOptions', 'src/store/batched-writer.ts', DEFAULT_BATCHED_WRITER_OPTIONS],
  ['RedisQuotaStoreOptions', 'src/store/redis-quota-store.ts', DEFAULT_REDIS_STORE_OPTIONS],
  ['BreakerOptions', 'src/util/breaker.ts', DEFAULT_BREAKER_OPTIONS],
  ['BrokerQuotasOptions', 'src/client/broker-quotas.ts', DEFAULT_BROKER_QUOTAS_OPTIONS],
  ['QuotaClientOptions', 'src/client/connection.ts', DEFAULT_CLIENT_OPTIONS],
  ['RateLimitOptions', 'src/http/rate-limit-options.ts', DEFAULT_RATE_LIMIT_OPTIONS],
];

const UNITS: Record<string, number> = { KiB: 1024, MiB: 1024 * 1024, GiB: 1024 * 1024 * 1024 };

/**
 * The `@default` values an interface's doc comments give, field -> value, for the ones that are a literal: a
 * number (`1 MiB` counts), a quoted string, true/false. A computed default ("maxBuckets / 10") is left out.
 */
function documentedDefaults(source: string, name: string): Map<string, unknown> {
  const start = source.indexOf(`export interface ${name} `);
  if (start < 0) throw new Error(`no interface ${name}`);
  const body = source.slice(start, source.indexOf('\n}\n', start));
  const found = new Map<string, unknown>();
  for (const m of body.matchAll(/@default ([^\n]*?)\s*\*\/\s*\n\s*(\w+)\??: *(\(?)/g)) {
    const text = m[1]!;
    if (m[3] === '(') continue; // a function's default is what it returns, not a value to hold
    const n = /^(\d[\d_]*(?:\.\d+)?)(?: (KiB|MiB|GiB))?$/.exec(text);
    if (n !== null) found.set(m[2]!, Number(n[1]!.replace(/_/g, '')) * (n[2] === undefined ? 1 : UNITS[n[2]]!));
    else if (/^"[^"]*"$/.test(text)) found.set(m[2]!, text.slice(1, -1));
    else if (text === 'true' || text === 'false') found.set(m[2]!, text === 'true');
  }
  return found;
}

t.test('every DEFAULT_* is frozen and holds what its options type documents as @default', async (t) => {
  for (const [name, file, defaults] of OPTIONS) {
    t.ok(Object.isFrozen(defaults), `${name}: its DEFAULT_* is frozen`);
    const documented = documentedDefaults(readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8'), name);
    t.ok(documented.size > 0, `${name} documents a literal @default`);
    for (const [field, value] of documented) t.same((defaults as Record<string, unknown>)[field], value, `${name}.${field}`);
  }
});

t.test('the @default reader reads literals and fails on a wrong one', async (t) => {
  const sample = [
    'export interface Sample {',
    '  /** Size. @default 1 MiB */',
    '  size: number;',
    '  /**',
    '   * Long. @default 3_600_000',
    '   */',
    '  long?: number;',
    '  /** Host. @default "127.0.0.1" */',
    '  host: string;',
    '  /** Share. @default max / 10 */',
    '  share: number;',
    '  /** Cost. @default 1 */',
    '  cost?: (req: Request) => number;',
    '}',
    '',
  ].join('\n');
  t.same(
    [...documentedDefaults(sample, 'Sample')],
    [
      ['size', 1024 * 1024],
      ['long', 3_600_000],
      ['host', '127.0.0.1'],
    ],
  );
  t.notSame(documentedDefaults(sample, 'Sample').get('size'), 1000 * 1000, 'a default that differs is seen');
});

t.test("rivven.yaml's defaults, mapped to options, are the options' DEFAULT_*", async (t) => {
  const c = configSchema.parse({});
  t.same(quotaManagerOptions(c.quotas), { ...DEFAULT_QUOTA_OPTIONS, maxBucketsPerPrincipal: undefined });
  t.same(leaseOptions(c.quotas), {
    maxLeases: DEFAULT_LEASE_OPTIONS.maxLeases,
    maxLeasesPerPrincipal: DEFAULT_LEASE_OPTIONS.maxLeasesPerPrincipal,
    maxThrottleMs: DEFAULT_LEASE_OPTIONS.maxThrottleMs,
  });
  t.same(adaptiveOptions(c.adaptive), DEFAULT_ADAPTIVE_OPTIONS);
  t.same(serverOptions(c.server, undefined), { ...DEFAULT_SERVER_OPTIONS, tls: undefined });
  t.same(dispatcherOptions(c), DEFAULT_DISPATCHER_OPTIONS);
  t.match(violationLogOptions(c, null), { ...DEFAULT_VIOLATION_LOG_OPTIONS, file: null });
  const fleet = fleetSyncOptions(c, 'node-a');
  t.same({ ...fleet, settings: '' }, { ...DEFAULT_FLEET_SYNC_OPTIONS, keyPrefix: 'rivven:', nodeId: 'node-a' });
  t.match(fleet.settings, /^[0-9a-f]{8}$/, 'the settings digest');
});

t.test('each mapping carries every key of its section', async (t) => {
  const c = configSchema.parse({
    server: {
      host: '0.0.0.0',
      port: 1,
      max_connections: 2,
      max_frame_bytes: 1001,
      max_connection_bytes: 2002,
      max_reply_bytes: 2003,
      frame_timeout_ms: 3,
      auth_timeout_ms: 4,
      max_unauthenticated_connections: 5,
      max_partial_frame_bytes: 2004,
    },
    quotas: {
      window_ms: 600,
      window_buckets: 6,
      max_throttle_ms: 7,
      idle_timeout_ms: 8,
      cleanup_interval_ms: 9,
      max_buckets: 10,
      max_buckets_per_principal: 11,
      max_debt_ms: 12,
      max_leases: 13,
      max_leases_per_principal: 13,
    },
    adaptive: { cpu_threshold: 0.1, memory_threshold: 0.2, min_factor: 0.3, check_interval_ms: 400 },
    auth: { failure_delay_ms: 14 },
    violations: { max_events: 15, max_file_bytes: 5000, max_queued_bytes: 6000, max_episodes_per_principal: 16 },
    fleet: { sync_interval_ms: 17, breaker: { failure_threshold: 18, reset_timeout_ms: 19 } },
    storage: { redis: { key_prefix: 'p:' } },
  });
  t.same(serverOptions(c.server, undefined), {
    host: '0.0.0.0',
    port: 1,
    maxConnections: 2,
    maxFrameBytes: 1001,
    maxConnectionBytes: 2002,
    frameTimeoutMs: 3,
    authTimeoutMs: 4,
    maxUnauthenticatedConnections: 5,
    maxPartialFrameBytes: 2004,
    tls: undefined,
  });
  t.same(dispatcherOptions(c), { maxReplyBytes: 2003, authFailureDelayMs: 14, authTimeoutMs: 4 });
  t.same(quotaManagerOptions(c.quotas), {
    windowMs: 600,
    windowBuckets: 6,
    maxThrottleMs: 7,
    idleTimeoutMs: 8,
    cleanupIntervalMs: 9,
    maxBuckets: 10,
    maxBucketsPerPrincipal: 11,
    maxDebtMs: 12,
  });
  t.same(leaseOptions(c.quotas), { maxLeases: 13, maxLeasesPerPrincipal: 13, maxThrottleMs: 7 });
  t.same(adaptiveOptions(c.adaptive), { cpuThreshold: 0.1, memoryThreshold: 0.2, minFactor: 0.3, checkIntervalMs: 400 });
  t.same(violationLogOptions(c, '/x/violations.log'), {
    maxEvents: 15,
    file: '/x/violations.log',
    maxFileBytes: 5000,
    episodeGapMs: 7 + 600,
    maxEpisodes: 10,
    maxEpisodesPerPrincipal: 16,
    maxQueuedBytes: 6000,
  });
  t.match(fleetSyncOptions(c, 'n'), {
    keyPrefix: 'p:',
    nodeId: 'n',
    syncIntervalMs: 17,
    breaker: { failureThreshold: 18, resetTimeoutMs: 19 },
  });
});
