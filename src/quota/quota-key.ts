/** The three quota types, in the order used to index per-key arrays. */
export const QUOTA_KEYS = ['produce_bytes_rate', 'consume_bytes_rate', 'request_rate'] as const;
export type QuotaKey = (typeof QUOTA_KEYS)[number];

export const PRODUCE = 0;
export const CONSUME = 1;
export const REQUEST = 2;
export type QuotaKeyIndex = typeof PRODUCE | typeof CONSUME | typeof REQUEST;

export function quotaKeyIndex(key: string): QuotaKeyIndex | -1 {
  const i = (QUOTA_KEYS as readonly string[]).indexOf(key);
  return i as QuotaKeyIndex | -1;
}

/** A configured value: a positive rate (units per second) or no limit. */
export type QuotaValue = number | 'unlimited';

export function isQuotaKey(key: unknown): key is QuotaKey {
  return typeof key === 'string' && (QUOTA_KEYS as readonly string[]).includes(key);
}
