import type { QuotaClient, RecordResult } from './quota-client.js';

/**
 * What a broker calls on each client request: records the usage and returns how many milliseconds to delay
 * that client (0 = none), the way a Kafka broker applies throttle_time_ms.
 *
 * It fails open: if the sidecar cannot answer (down, restarting, timeout), the answer is 0 and the failure is
 * counted and reported. A quota sidecar outage must not become an outage of the broker's clients.
 */
export class BrokerQuotas {
  /** Calls answered 0 because the sidecar could not answer. */
  failures = 0;

  constructor(
    readonly client: QuotaClient,
    private readonly onError: (err: Error) => void = () => undefined,
  ) {}

  /** A produce request of `bytes` from (user, clientId). */
  produce(user: string | null, clientId: string | null, bytes: number): Promise<number> {
    return this.throttle(this.client.recordProduce({ user, clientId, bytes }));
  }

  /** A fetch of `bytes` by a consumer, held against its group's quota too when it has one. */
  fetch(user: string | null, clientId: string | null, consumerGroup: string | null, bytes: number): Promise<number> {
    return this.throttle(this.client.recordConsume({ user, clientId, consumerGroup, bytes }));
  }

  /** Any request, for request_rate. */
  request(user: string | null, clientId: string | null): Promise<number> {
    return this.throttle(this.client.recordRequest({ user, clientId }));
  }

  private throttle(call: Promise<RecordResult>): Promise<number> {
    return call.then(
      (r) => r.throttleTimeMs,
      (err: Error) => {
        this.failures++;
        this.onError(err);
        return 0;
      },
    );
  }
}
