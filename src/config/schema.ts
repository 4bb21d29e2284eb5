import { z } from 'zod';
import { DEFAULT_FLEET_SYNC_OPTIONS as FLEET } from '../fleet/options.js';
import { DEFAULT_VIOLATION_LOG_OPTIONS as VIOLATIONS, LOG_LEVELS } from '../observability/options.js';
import { DEFAULT_ADAPTIVE_OPTIONS, DEFAULT_LEASE_OPTIONS, DEFAULT_QUOTA_OPTIONS } from '../quota/options.js';
import { LIMIT_KEYS, MAX_RESOURCES, resourceNameError, type LimitKey, type QuotaValue } from '../quota/quota-key.js';
import { fromLimit } from '../quota/quota-table.js';
import { parseLimit } from '../quota/quota-value.js';
import { QuotaValueError } from '../quota/rate-value.js';
import { DEFAULT_DISPATCHER_OPTIONS, DEFAULT_SERVER_OPTIONS as SERVER } from '../server/options.js';

// Every default of rivven.yaml is the DEFAULT_* of the options it becomes (config/to-options.ts maps each
// section), read from the small options modules so that loading the config loads no class; a key that maps to
// no options type keeps its default here. rivven.yaml.example documents each key; a test checks the two agree.

/** A limit's value, checked by the one validation of quota values (docs/protocol.md, "Quota values"); canonical out. */
const quotaValue = (key: LimitKey) =>
  z
    .union([z.number(), z.string(), z.array(z.union([z.number(), z.string()]))], {
      error: 'expected a number, "<amount>/<unit>", a list of those, or "unlimited"',
    })
    .transform((raw, ctx): QuotaValue => {
      try {
        return fromLimit(parseLimit(key, raw));
      } catch (err) {
        if (!(err instanceof QuotaValueError)) throw err;
        ctx.addIssue({ code: 'custom', message: err.detail });
        return z.NEVER;
      }
    });
/** A resource key's value (`orders_rate: 10/min`), checked against quotas.resources and canonicalized in configSchema. */
const resourceValue = z.union([z.number(), z.string(), z.array(z.union([z.number(), z.string()]))], {
  error: 'expected a number, "<amount>/<unit>", a list of those, or "unlimited"',
});
const positiveInt = z.number().int().positive();
const port = z.number().int().min(0).max(65535);

const bytes = (min: number, max: number, fallback: number) => z.number().int().min(min).max(max).default(fallback);
/** A file path, or null for none. */
const path = z.string().min(1).nullable().default(null);
const hostPort = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/, 'expected host:port');
const certAndKeyTogether = { message: 'cert and key are given together', path: ['cert'] };

/** Every key; cross-key rules are added below (configSchema). */
const configShape = z.strictObject({
  server: z
    .strictObject({
      host: z.string().min(1).default(SERVER.host),
      port: port.default(SERVER.port),
      max_frame_bytes: bytes(64, 64 * 1024 * 1024, SERVER.maxFrameBytes),
      max_connections: positiveInt.default(SERVER.maxConnections),
      max_connection_bytes: bytes(1024, Number.MAX_SAFE_INTEGER, SERVER.maxConnectionBytes),
      max_reply_bytes: bytes(1024, 1024 * 1024 * 1024, DEFAULT_DISPATCHER_OPTIONS.maxReplyBytes),
      frame_timeout_ms: positiveInt.default(SERVER.frameTimeoutMs),
      auth_timeout_ms: positiveInt.default(SERVER.authTimeoutMs),
      max_unauthenticated_connections: positiveInt.default(SERVER.maxUnauthenticatedConnections),
      max_partial_frame_bytes: bytes(1024, Number.MAX_SAFE_INTEGER, SERVER.maxPartialFrameBytes),
      tls: z
        .strictObject({ cert: path, key: path, ca: path, client_auth: z.enum(['none', 'request', 'require']).default('none') })
        .refine((t) => (t.cert === null) === (t.key === null), certAndKeyTogether)
        .refine((t) => t.client_auth === 'none' || (t.cert !== null && t.ca !== null), {
          message: 'client_auth needs cert, key and the ca that signs client certificates',
          path: ['client_auth'],
        })
        .prefault({}),
    })
    .prefault({}),
  metrics: z
    .strictObject({
      enabled: z.boolean().default(true),
      host: z.string().min(1).default('127.0.0.1'),
      port: port.default(9191),
      tls: z
        .strictObject({ cert: path, key: path })
        .refine((t) => (t.cert === null) === (t.key === null), certAndKeyTogether)
        .prefault({}),
      token_sha256: z
        .string()
        .regex(/^[0-9a-f]{64}$/, 'expected the SHA-256 of the token: 64 lowercase hex digits')
        .nullable()
        .default(null),
    })
    .prefault({}),
  quotas: z
    .strictObject({
      /** Named resources (orders, services started, ...): each gets the keys <name>_rate and <name>_burst. */
      resources: z
        .array(
          z
            .string()
            .superRefine((n, ctx) => void (resourceNameError(n) && ctx.addIssue({ code: 'custom', message: resourceNameError(n)! }))),
        )
        .max(MAX_RESOURCES)
        .refine((names) => new Set(names).size === names.length, { message: 'a resource is declared twice' })
        .default([]),
      defaults: z
        .object({
          produce_bytes_rate: quotaValue('produce_bytes_rate').default(52428800),
          consume_bytes_rate: quotaValue('consume_bytes_rate').default(104857600),
          request_rate: quotaValue('request_rate').default(1000),
        })
        .catchall(resourceValue)
        .prefault({}),
      window_ms: positiveInt.default(DEFAULT_QUOTA_OPTIONS.windowMs),
      window_buckets: positiveInt.max(1000).default(DEFAULT_QUOTA_OPTIONS.windowBuckets),
      max_throttle_ms: positiveInt.default(DEFAULT_QUOTA_OPTIONS.maxThrottleMs),
      idle_timeout_ms: positiveInt.default(DEFAULT_QUOTA_OPTIONS.idleTimeoutMs),
      cleanup_interval_ms: positiveInt.default(DEFAULT_QUOTA_OPTIONS.cleanupIntervalMs),
      max_buckets: positiveInt.default(DEFAULT_QUOTA_OPTIONS.maxBuckets),
      /** One principal's share of max_buckets; null: a tenth of it. */
      max_buckets_per_principal: positiveInt.nullable().default(null),
      max_debt_ms: positiveInt.default(DEFAULT_QUOTA_OPTIONS.maxDebtMs),
      resolution_order: z.enum(['rivven', 'kafka']).default('rivven'),
      max_leases: positiveInt.default(DEFAULT_LEASE_OPTIONS.maxLeases),
      /** One principal's share of max_leases; null: a tenth of it. */
      max_leases_per_principal: positiveInt.nullable().default(null),
    })
    .refine((q) => q.max_leases_per_principal === null || q.max_leases_per_principal <= q.max_leases, {
      message: 'max_leases_per_principal cannot exceed max_leases',
      path: ['max_leases_per_principal'],
    })
    .refine((q) => q.window_ms % q.window_buckets === 0, {
      message: 'window_ms must be a multiple of window_buckets',
      path: ['window_ms'],
    })
    .prefault({}),
  storage: z
    .strictObject({
      /** file: this sidecar's own data_dir; redis: run-time quotas shared by every sidecar with the same key_prefix. */
      backend: z.enum(['file', 'redis']).default('file'),
      data_dir: z.string().min(1).default('./data'),
      max_entities: positiveInt.default(100_000),
      redis: z
        .strictObject({
          url: z
            .string()
            .regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL')
            .default('redis://127.0.0.1:6379/0'),
          /** A Cluster seed list; wins over url. */
          cluster: z.array(hostPort).min(1).max(100).nullable().default(null),
          /** Sentinel: the primary's name and the sentinels; wins over url. */
          sentinel: z
            .strictObject({ name: z.string().min(1).max(256), nodes: z.array(hostPort).min(1).max(100) })
            .nullable()
            .default(null),
          /** Password for cluster and sentinel (a url carries its own). */
          password: z.string().min(1).nullable().default(null),
          /** TLS for cluster and sentinel (a url says rediss://). */
          tls: z.boolean().default(false),
          key_prefix: z
            .string()
            .min(1)
            .max(256)
            .regex(/^[^{}]*$/, "key_prefix may not contain { or }: they would change the keys' hash tags")
            .default('rivven:'),
          command_timeout_ms: positiveInt.max(60_000).default(100),
        })
        .refine((r) => r.cluster === null || r.sentinel === null, {
          message: 'cluster and sentinel exclude each other',
          path: ['cluster'],
        })
        .prefault({}),
    })
    .prefault({}),
  fleet: z
    .strictObject({
      /** Share usage buckets across every sidecar of the same key_prefix (needs storage.backend: redis). */
      enabled: z.boolean().default(false),
      sync_interval_ms: positiveInt.min(10).max(60_000).default(FLEET.syncIntervalMs),
      /** This sidecar's name in the fleet, unique per sidecar; null: the host name and the protocol port. */
      node_id: z.string().min(1).max(256).nullable().default(null),
      breaker: z
        .strictObject({
          failure_threshold: positiveInt.max(1000).default(FLEET.breaker.failureThreshold),
          reset_timeout_ms: positiveInt.max(3_600_000).default(FLEET.breaker.resetTimeoutMs),
        })
        .prefault({}),
    })
    .prefault({}),
  auth: z
    .strictObject({
      tokens_file: path,
      allow_anonymous: z.boolean().default(false),
      failure_delay_ms: z.number().int().min(0).max(60_000).default(DEFAULT_DISPATCHER_OPTIONS.authFailureDelayMs),
    })
    .prefault({}),
  adaptive: z
    .strictObject({
      enabled: z.boolean().default(false),
      cpu_threshold: z.number().gt(0).lt(1).default(DEFAULT_ADAPTIVE_OPTIONS.cpuThreshold),
      memory_threshold: z.number().gt(0).lt(1).default(DEFAULT_ADAPTIVE_OPTIONS.memoryThreshold),
      min_factor: z.number().gt(0).max(1).default(DEFAULT_ADAPTIVE_OPTIONS.minFactor),
      check_interval_ms: positiveInt.min(100).default(DEFAULT_ADAPTIVE_OPTIONS.checkIntervalMs),
    })
    .prefault({}),
  violations: z
    .strictObject({
      max_events: positiveInt.max(1_000_000).default(VIOLATIONS.maxEvents),
      max_file_bytes: bytes(4096, Number.MAX_SAFE_INTEGER, VIOLATIONS.maxFileBytes),
      /** Events waiting to be written to violations.log; past it they are dropped (counted). */
      max_queued_bytes: bytes(4096, 1024 * 1024 * 1024, VIOLATIONS.maxQueuedBytes),
      /** Open episodes of one principal; null: a tenth of max_events. */
      max_episodes_per_principal: positiveInt.nullable().default(null),
    })
    .prefault({}),
  /** Boot tiers: name -> rates and bursts; run-time values of [["tier", name]] win over them, key by key. */
  tiers: z
    .record(
      z.string().min(1).max(1024),
      z
        .object({
          produce_bytes_rate: quotaValue('produce_bytes_rate').optional(),
          consume_bytes_rate: quotaValue('consume_bytes_rate').optional(),
          request_rate: quotaValue('request_rate').optional(),
          produce_bytes_burst: quotaValue('produce_bytes_burst').optional(),
          consume_bytes_burst: quotaValue('consume_bytes_burst').optional(),
          request_burst: quotaValue('request_burst').optional(),
          max_in_flight: quotaValue('max_in_flight').optional(),
        })
        .catchall(resourceValue),
    )
    .default({}),
  log: z.strictObject({ level: z.enum(LOG_LEVELS).default('info') }).prefault({}),
});

export const configSchema = configShape
  .refine((c) => !c.fleet.enabled || c.storage.backend === 'redis', {
    message: 'needs storage.backend: redis (the fleet shares its buckets through Redis)',
    path: ['fleet', 'enabled'],
  })
  .transform((c, ctx) => {
    resourceKeys(c.quotas.resources, c.quotas.defaults, DEFAULT_KEYS, ['quotas', 'defaults'], ctx);
    for (const [tier, values] of Object.entries(c.tiers)) resourceKeys(c.quotas.resources, values, LIMIT_KEYS, ['tiers', tier], ctx);
    return c;
  });

/** The built-in keys quotas.defaults takes (the rates). */
const DEFAULT_KEYS = ['produce_bytes_rate', 'consume_bytes_rate', 'request_rate'];

/**
 * The keys of defaults and tiers beyond the built-in ones: each must be a declared resource's `<name>_rate` or
 * `<name>_burst`, its value checked by the one validation and put in canonical form (in place).
 */
function resourceKeys(
  resources: readonly string[],
  values: Record<string, unknown>,
  builtIn: readonly string[],
  at: string[],
  ctx: z.RefinementCtx,
): void {
  const keys = new Set(resources.flatMap((n) => [`${n}_rate`, `${n}_burst`]));
  for (const [key, raw] of Object.entries(values)) {
    if (builtIn.includes(key) || raw === undefined) continue;
    if (!keys.has(key)) {
      const declared = resources.length === 0 ? 'none are declared' : `declared: ${resources.join(', ')}`;
      ctx.addIssue({
        code: 'custom',
        path: [...at, key],
        message: `unknown key: not a built-in key nor a resource in quotas.resources (${declared})`,
      });
      continue;
    }
    try {
      values[key] = fromLimit(parseLimit(key, raw));
    } catch (err) {
      if (!(err instanceof QuotaValueError)) throw err;
      ctx.addIssue({ code: 'custom', path: [...at, key], message: err.detail });
    }
  }
}

export type Config = z.output<typeof configSchema>;
