// The options of `rivven-quota/fastify` (DESIGN section 19), with their defaults, and what the plugin counts.
import type { FastifyRequest } from 'fastify';
import type { QuotaClient } from '../client/quota-client.js';
import { systemClock, type Clock } from '../quota/clock.js';
import { DEFAULT_BREAKER_OPTIONS, type BreakerOptions } from '../util/breaker.js';

export interface RateLimitOptions {
  /** A connected client (QuotaClient.connect); the plugin never closes it. */
  client: QuotaClient;
  /** The tenant: a header name, or a function of the request; undefined or '' lets the request pass unrecorded. */
  tenant: string | ((req: FastifyRequest) => string | undefined);
  /** The client-id of the quota entities, from the request. @default none */
  clientId?: (req: FastifyRequest) => string | undefined;
  /** How many requests this one counts for (request_rate, or `resource`'s rate). @default 1 */
  cost?: (req: FastifyRequest) => number;
  /**
   * A named resource declared in the sidecar's quotas.resources (orders, services started, ...): each request is
   * recorded as RecordUsage of it (`<resource>_rate`) instead of RecordRequest (request_rate). An undeclared one
   * is refused by the sidecar (INVALID_REQUEST, passed to onError) and the request passes. @default none
   */
  resource?: string;
  /**
   * Count bodies against the tenant's byte quotas: a request body as produce bytes (`produce_bytes_rate`), a
   * response body as consume bytes (`consume_bytes_rate`). A Content-Length body is recorded before the handler
   * runs, in admit mode (over quota: 429, nothing recorded); a chunked body and every response are counted as they
   * pass and recorded after the response, as Kafka records a fetch, and a throttle they earn refuses the tenant's
   * next requests (429) until it has passed. @default false
   */
  bytes: boolean;
  /** Hold a lease (quota key max_in_flight) while the handler runs. @default false */
  leases: boolean;
  /** A lease's time to live, in case the response never finishes. @default 30000 */
  leaseTtlMs: number;
  /** Past this the sidecar's answer is not waited for: the request passes. @default 25 */
  recordDeadlineMs: number;
  /** When the sidecar is taken for away and when it is tried again. @default { failureThreshold: 5, resetTimeoutMs: 1000 } */
  breaker: BreakerOptions;
  /** X-RateLimit-Limit and -Remaining from a usage snapshot per tenant, refreshed in the background. @default true */
  rateLimitHeaders: boolean;
  /** How old a tenant's usage snapshot may be. @default 1000 */
  usageRefreshMs: number;
  /** Tenants whose snapshot is kept; past it the oldest is forgotten. @default 10000 */
  maxTenants: number;
  /** Told about each request let through because the sidecar did not answer. */
  onError: (err: Error) => void;
  /** Times the throttle that counted bytes earn (tests pass the sidecar's manual clock). @default systemClock */
  clock: Clock;
}

export const DEFAULT_RATE_LIMIT_OPTIONS = Object.freeze({
  bytes: false,
  leases: false,
  leaseTtlMs: 30_000,
  recordDeadlineMs: 25,
  breaker: DEFAULT_BREAKER_OPTIONS,
  rateLimitHeaders: true,
  usageRefreshMs: 1000,
  maxTenants: 10_000,
  onError: () => undefined,
  clock: systemClock,
});

/** What the plugin counted, for the app's own metrics. */
export interface RateLimitStats {
  /** Requests let through because the sidecar failed, was late, or the breaker was open. */
  failures: number;
  throttled: number;
  denied: number;
}
