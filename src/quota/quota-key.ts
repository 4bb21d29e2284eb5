/** The three rate quotas, in the order used to index per-key arrays and bucket kinds. */
export const QUOTA_KEYS = ['produce_bytes_rate', 'consume_bytes_rate', 'request_rate'] as const;
export type QuotaKey = (typeof QUOTA_KEYS)[number];

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

/** Every key AlterQuotas takes. */
export const ALTER_KEYS = [...LIMIT_KEYS, ...POLICY_KEYS] as const;
export type AlterKey = (typeof ALTER_KEYS)[number];

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

export function isAlterKey(key: unknown): key is AlterKey {
  return typeof key === 'string' && (ALTER_KEYS as readonly string[]).includes(key);
}
