package dev.rivven.client;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.atomic.LongAdder;

/**
 * What a broker calls on each client request: records the usage and answers how many milliseconds to delay that
 * client (0: none), the way a Kafka broker applies throttle_time_ms, or {@link #DENIED} for a blocked principal.
 *
 * <p>It never stalls the broker. Every answer comes within recordDeadlineMs, or is 0 (fail open). Without a
 * connection it answers 0 at once (the client reconnects in the background) instead of waiting for a reconnect.
 * After failureThreshold consecutive failures (timeouts, lost connections, an overloaded sidecar) the breaker opens
 * and calls answer 0 at once, without being sent; after resetTimeoutMs one call probes the sidecar and, if it
 * answers, closes the breaker. Every 0 given for a failure is counted in {@link #failures()}, those not even sent in
 * {@link #shortCircuited()}. A quota sidecar outage must not become an outage of the broker's clients.
 *
 * <p>Thread-safe; the futures complete on the client's reader or deadline thread, or at once.
 */
public final class BrokerQuotas {
  /** The answer for a blocked principal: reject the request (an authorization or quota error), do not delay it. */
  public static final long DENIED = -1;

  private final QuotaClient client;
  private final BrokerQuotasOptions options;
  private final CircuitBreaker breaker;
  private final CallOptions callOptions;
  private final LongAdder failures = new LongAdder();
  private final LongAdder shortCircuited = new LongAdder();

  /** A broker wrapper with the default options. */
  public BrokerQuotas(QuotaClient client) {
    this(client, BrokerQuotasOptions.DEFAULTS);
  }

  /** A broker wrapper around {@code client}. */
  public BrokerQuotas(QuotaClient client, BrokerQuotasOptions options) {
    this.client = client;
    this.options = options;
    this.breaker = new CircuitBreaker(options.failureThreshold(), options.resetTimeoutMs());
    this.callOptions = new CallOptions(options.recordDeadlineMs(), true);
  }

  /** The client calls go through. */
  public QuotaClient client() {
    return client;
  }

  /** The options. */
  public BrokerQuotasOptions options() {
    return options;
  }

  /** The breaker. */
  public CircuitBreaker breaker() {
    return breaker;
  }

  /** Calls answered 0 because the sidecar could not answer (failed, late, or not tried: breaker open). */
  public long failures() {
    return failures.sum();
  }

  /** Of those, the calls not sent because the breaker was open. */
  public long shortCircuited() {
    return shortCircuited.sum();
  }

  /** A produce request of {@code bytes} from (user, clientId): the delay in ms, 0, or DENIED (reject it). */
  public CompletableFuture<Long> produce(String user, String clientId, long bytes) {
    if (!allow()) return CompletableFuture.completedFuture(0L);
    return settle(client.recordProduce(user, clientId, bytes, false, callOptions));
  }

  /** A fetch of {@code bytes} by a consumer, held against its group's quota too when it has one (may be null). */
  public CompletableFuture<Long> fetch(String user, String clientId, String consumerGroup, long bytes) {
    if (!allow()) return CompletableFuture.completedFuture(0L);
    return settle(client.recordConsume(user, clientId, consumerGroup, bytes, false, callOptions));
  }

  /** Any request, for request_rate. */
  public CompletableFuture<Long> request(String user, String clientId) {
    if (!allow()) return CompletableFuture.completedFuture(0L);
    return settle(client.recordRequest(user, clientId, 1, false, callOptions));
  }

  /**
   * {@code amount} units of a named resource (orders, API calls: declared in the sidecar's quotas.resources), for
   * {@code <resource>_rate}: the delay in ms, 0, or DENIED, as for the other calls.
   */
  public CompletableFuture<Long> usage(String user, String clientId, String resource, long amount) {
    if (!allow()) return CompletableFuture.completedFuture(0L);
    return settle(client.recordUsage(user, clientId, resource, amount, false, callOptions));
  }

  private boolean allow() {
    if (breaker.allow()) return true;
    failures.increment();
    shortCircuited.increment();
    return false;
  }

  private CompletableFuture<Long> settle(CompletableFuture<RecordResult> call) {
    return call.handle((r, err) -> {
      if (err == null) {
        breaker.success();
        if (!r.isDenied()) return r.throttleTimeMs();
        try {
          options.onDenied().accept(r.entity(), r.deniedReason());
        } catch (RuntimeException e) {
          // The broker's callback must not change the answer.
        }
        return DENIED;
      }
      failures.increment();
      Throwable cause = err instanceof CompletionException && err.getCause() != null ? err.getCause() : err;
      // A non-retriable error is a bad call, not a sick sidecar: it does not move the breaker.
      if (cause instanceof RivvenException && !((RivvenException) cause).isRetriable()) breaker.success();
      else breaker.failure();
      try {
        options.onError().accept(cause);
      } catch (RuntimeException e) {
        // As above.
      }
      return 0L;
    });
  }
}
