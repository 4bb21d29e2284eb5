import { isRetriable, RivvenError } from '../protocol/error-codes.js';
import { CircuitBreaker, DEFAULT_BREAKER_OPTIONS, type BreakerOptions } from '../util/breaker.js';
import type { CallOptions, QuotaClient, RecordResult } from './quota-client.js';

export interface BrokerQuotasOptions {
  /** A record call not answered within this many ms is answered 0 (fail open). @default 25 */
  recordDeadlineMs: number;
  /** When the breaker opens and when it probes again. @default { failureThreshold: 5, resetTimeoutMs: 1000 } */
  breaker: BreakerOptions;
  /** Told about each call answered 0 because the sidecar could not answer (rate-limit your logging). */
  onError: (err: Error) => void;
  /** Told about each call answered DENIED: the blocked entity and the reason an operator gave. */
  onDenied: (entity: string, reason: string) => void;
}

/**
 * What a BrokerQuotas call answers for a blocked principal: reject the request (Kafka: an authorization or
 * quota error to the client), do not delay it.
 */
export const DENIED = -1;

export const DEFAULT_BROKER_QUOTAS_OPTIONS: Readonly<BrokerQuotasOptions> = Object.freeze({
  recordDeadlineMs: 25,
  breaker: DEFAULT_BREAKER_OPTIONS,
  onError: () => undefined,
  onDenied: () => undefined,
});

/**
 * What a broker calls on each client request: records the usage and returns how many milliseconds to delay
 * that client (0 = none), the way a Kafka broker applies throttle_time_ms.
 *
 * It never stalls the broker. A call answers within recordDeadlineMs, or 0. Without a connection it answers 0 at
 * once (the client reconnects in the background) instead of waiting for a reconnect. After
 * breaker.failureThreshold consecutive failures (timeouts, lost connections, an overloaded sidecar) the breaker
 * opens and calls answer 0 at once, without being sent; after breaker.resetTimeoutMs one call probes the
 * sidecar and, if it answers, closes the breaker. Every 0 given for a failure is counted in `failures`.
 * A blocked principal is answered DENIED (-1): the broker rejects that request instead of delaying it.
 * A quota sidecar outage must not become an outage of the broker's clients.
 */
export class BrokerQuotas {
  readonly options: Readonly<BrokerQuotasOptions>;
  readonly breaker: CircuitBreaker;
  /** Calls answered 0 because the sidecar could not answer (failed, late, or not tried: breaker open). */
  failures = 0;
  /** Of those, the calls not sent because the breaker was open. */
  shortCircuited = 0;
  private readonly callOptions: CallOptions;

  constructor(
    readonly client: QuotaClient,
    options: Partial<BrokerQuotasOptions> = {},
  ) {
    this.options = Object.freeze({ ...DEFAULT_BROKER_QUOTAS_OPTIONS, ...options });
    this.breaker = new CircuitBreaker(this.options.breaker);
    this.callOptions = Object.freeze({ timeoutMs: this.options.recordDeadlineMs, failFast: true });
  }

  /** A produce request of `bytes` from (user, clientId): the delay in ms, 0, or DENIED (reject it). */
  produce(user: string | null, clientId: string | null, bytes: number): Promise<number> {
    if (!this.allow()) return NONE;
    return this.answer(this.client.recordProduce({ user, clientId, bytes }, this.callOptions));
  }

  /** A fetch of `bytes` by a consumer, held against its group's quota too when it has one. */
  fetch(user: string | null, clientId: string | null, consumerGroup: string | null, bytes: number): Promise<number> {
    if (!this.allow()) return NONE;
    return this.answer(this.client.recordConsume({ user, clientId, consumerGroup, bytes }, this.callOptions));
  }

  /** Any request, for request_rate. */
  request(user: string | null, clientId: string | null): Promise<number> {
    if (!this.allow()) return NONE;
    return this.answer(this.client.recordRequest({ user, clientId }, this.callOptions));
  }

  /** `amount` (default 1) of a named resource (quotas.resources), for its `<resource>_rate`. */
  usage(user: string | null, clientId: string | null, resource: string, amount = 1): Promise<number> {
    if (!this.allow()) return NONE;
    return this.answer(this.client.recordUsage({ user, clientId, resource, amount }, this.callOptions));
  }

  private allow(): boolean {
    if (this.breaker.allow()) return true;
    this.failures++;
    this.shortCircuited++;
    return false;
  }

  /** The broker's answer to a record call: its delay, DENIED, or 0 when it failed (fail open); moves the breaker. */
  private answer(call: Promise<RecordResult>): Promise<number> {
    return call.then(
      (r) => {
        this.breaker.success();
        if (r.denied === undefined) return r.throttleTimeMs;
        this.options.onDenied(r.denied.entity, r.denied.reason);
        return DENIED;
      },
      (err: Error) => {
        this.failures++;
        // A non-retriable error is a bad call, not a sick sidecar: it does not move the breaker.
        if (err instanceof RivvenError && !isRetriable(err.code)) this.breaker.success();
        else this.breaker.failure();
        this.options.onError(err);
        return 0;
      },
    );
  }
}

const NONE = Promise.resolve(0);
