/** The three rate quotas, in the order used to index per-key arrays and bucket kinds. */
export const QUOTA_KEYS = ['produce_bytes_rate', 'consume_bytes_rate', 'request_rate'] as const;
export type QuotaKey = (typeof QUOTA_KEYS)[number];
/** A rate key a call can be throttled by: a built-in one or a declared resource's (Throttled.quota_type). */
export type RateKey = QuotaKey | `${string}_rate`;

/** Each rate's burst: a bucket's capacity in units (quota x window when not set). Index k + BURST_OFFSET. */
export const BURST_KEYS = ['produce_bytes_burst', 'consume_bytes_burst', 'request_burst'] as const;
export type BurstKey = (typeof BURST_KEYS)[number];
export const BURST_OFFSET = QUOTA_KEYS.length;

/** Concurrent leases (AcquireLease) a principal may hold: a count, resolved like the rates. */
export const MAX_IN_FLIGHT = 'max_in_flight';
/** Its index in an entity's limits. */
export const IN_FLIGHT = QUOTA_KEYS.length + BURST_KEYS.length;

/** Every key with a numeric value: the rates, their bursts, then max_in_flight, indexing an entity's limits. */
export const LIMIT_KEYS = [...QUOTA_KEYS, ...BURST_KEYS, MAX_IN_FLIGHT] as const;
export type LimitKey = (typeof LIMIT_KEYS)[number];
export type LimitKeyIndex = number;

/** Keys whose value is a name: the tier a user or client-id belongs to, the reason it is blocked. */
export const POLICY_KEYS = ['tier', 'blocked'] as const;
export type PolicyKey = (typeof POLICY_KEYS)[number];

/** Every built-in key AlterQuotas takes (a declared resource's `<name>_rate` and `<name>_burst` too: Resources). */
export const ALTER_KEYS = [...LIMIT_KEYS, ...POLICY_KEYS] as const;
/** A named resource's key (quotas.resources). */
export type ResourceKey = `${string}_rate` | `${string}_burst`;
export type AlterKey = (typeof ALTER_KEYS)[number] | ResourceKey;

export const PRODUCE = 0;
export const CONSUME = 1;
export const REQUEST = 2;
export type QuotaKeyIndex = typeof PRODUCE | typeof CONSUME | typeof REQUEST;

export function quotaKeyIndex(key: string): QuotaKeyIndex | -1 {
  const i = (QUOTA_KEYS as readonly string[]).indexOf(key);
  return i as QuotaKeyIndex | -1;
}

/** The index of a numeric key in an entity's limits, or -1. */
export const limitKeyIndex = (key: string): LimitKeyIndex => (LIMIT_KEYS as readonly string[]).indexOf(key);

/**
 * A configured value on the wire: a positive number (a rate per second, a burst, a count), "unlimited", or a
 * rate value's canonical form (`"10/min"`, or a list such as `[100, "10000/d"]`; docs/protocol.md).
 */
export type QuotaValue = number | 'unlimited' | string | readonly (number | string)[];

/** What an alteration sets: a number or "unlimited" for a limit, a name for tier and blocked. */
export type AlterValue = QuotaValue | string;

export function isQuotaKey(key: unknown): key is QuotaKey {
  return typeof key === 'string' && (QUOTA_KEYS as readonly string[]).includes(key);
}

/** A built-in key AlterQuotas takes. */
export function isAlterKey(key: unknown): key is AlterKey {
  return typeof key === 'string' && (ALTER_KEYS as readonly string[]).includes(key);
}

/**
 * Named resources (quotas.resources: orders, services started, ...): each declared name gets the keys
 * `<name>_rate` and `<name>_burst`, resolved like the built-in three. Their indexes follow the built-in keys:
 * resource s (its index in quotas.resources) has its rate at RESOURCE_LIMIT_BASE + 2s and its burst next
 * to it, and counts as rate key RESOURCE_KEY_BASE + s (the index of per-key counters and Verdict.quotaType).
 */
export const MAX_RESOURCES = 16;
export const RESOURCE_LIMIT_BASE = IN_FLIGHT + 1;
export const RESOURCE_KEY_BASE = QUOTA_KEYS.length;
/** Rate keys at most: the built-in three and every declared resource (the length of per-key counters). */
export const MAX_RATE_KEYS = QUOTA_KEYS.length + MAX_RESOURCES;
/** Limit indexes at most: the built-in keys and two per resource. */
export const MAX_LIMIT_KEYS = RESOURCE_LIMIT_BASE + 2 * MAX_RESOURCES;
export const resourceRateIndex = (resource: number): LimitKeyIndex => RESOURCE_LIMIT_BASE + 2 * resource;

/** The limit index of a rate's burst (a built-in rate's or a resource's), or -1 for a key that has none. */
export const burstIndexOf = (key: LimitKeyIndex): LimitKeyIndex =>
  key < BURST_OFFSET ? key + BURST_OFFSET : key >= RESOURCE_LIMIT_BASE && (key - RESOURCE_LIMIT_BASE) % 2 === 0 ? key + 1 : -1;

/** A rate key index (0-2 built-in, then the resources) as the limit index of its rate. */
export const rateLimitIndex = (k: number): LimitKeyIndex => (k < RESOURCE_KEY_BASE ? k : resourceRateIndex(k - RESOURCE_KEY_BASE));

/** The stems of the built-in keys: no resource may take one. */
const BUILT_IN_STEMS = ['produce_bytes', 'consume_bytes', 'request'];
const RESOURCE_NAME = /^[a-z][a-z0-9_]{0,31}$/;

/** Why `name` cannot name a resource, or undefined when it can (docs/operations.md, quotas.resources). */
export function resourceNameError(name: unknown): string | undefined {
  if (typeof name !== 'string' || !RESOURCE_NAME.test(name)) {
    return `a resource name is 1 to 32 characters of a-z, 0-9 and _, starting with a letter`;
  }
  if (BUILT_IN_STEMS.includes(name)) return `${name} is a built-in key's stem (${name}_rate exists already)`;
  return undefined;
}

/** A key that could be a resource's (`<name>_rate`, `<name>_burst` with a valid name), declared or not. */
export function resourceKeyShape(key: string): boolean {
  const m = /^(.+)_(rate|burst)$/.exec(key);
  return m !== null && resourceNameError(m[1]) === undefined;
}

/**
 * The resources one sidecar declares, and every key name it takes: the built-in limit keys, then each
 * resource's rate and burst (indexed like an entity's limits), and the rate keys (indexed like per-key counters).
 */
export class Resources {
  readonly limitKeys: readonly string[];
  readonly rateKeys: readonly string[];
  private readonly indexes: ReadonlyMap<string, number>;
  private readonly limitIndexes: ReadonlyMap<string, LimitKeyIndex>;

  constructor(readonly names: readonly string[] = []) {
    if (names.length > MAX_RESOURCES) throw new Error(`at most ${MAX_RESOURCES} resources, got ${names.length}`);
    for (const n of names) {
      const why = resourceNameError(n);
      if (why !== undefined) throw new Error(`resource ${String(n).slice(0, 64)}: ${why}`);
    }
    if (new Set(names).size !== names.length) throw new Error('a resource is declared twice');
    this.names = Object.freeze([...names]);
    this.indexes = new Map(names.map((n, i) => [n, i]));
    this.limitKeys = Object.freeze([...LIMIT_KEYS, ...names.flatMap((n) => [`${n}_rate`, `${n}_burst`])]);
    this.rateKeys = Object.freeze([...QUOTA_KEYS, ...names.map((n) => `${n}_rate`)]);
    this.limitIndexes = new Map(this.limitKeys.map((k, i) => [k, i]));
  }

  /** The index of a declared resource (its place in quotas.resources), or -1. */
  indexOf(name: string): number {
    return this.indexes.get(name) ?? -1;
  }

  /** The index of any limit key this sidecar takes in an entity's limits, or -1. */
  limitIndex(key: string): LimitKeyIndex {
    return this.limitIndexes.get(key) ?? -1;
  }

  /** A key AlterQuotas may set here: the built-in ones and the declared resources' keys. */
  isAlterKey(key: unknown): key is AlterKey {
    return isAlterKey(key) || (typeof key === 'string' && this.limitIndexes.has(key));
  }
}

export const NO_RESOURCES = new Resources();
