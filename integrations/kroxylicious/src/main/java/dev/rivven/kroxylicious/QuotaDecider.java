package dev.rivven.kroxylicious;

import java.util.concurrent.CompletionStage;

/**
 * What the filter needs from the rivven sidecar: one record call per Kafka request, answered with a throttle.
 *
 * <p>Each call resolves to a throttle in milliseconds: {@code 0} for "go on" (also the answer when the sidecar
 * is away: callers fail open), a positive number for "throttled this long", {@link #DENIED} when the principal
 * is blocked. {@code user} and {@code clientId} may be null (anonymous, no client-id). This is the shape of the
 * Java client's {@code BrokerQuotas}, so the filter runs on it through {@link BrokerQuotasDecider}.
 */
public interface QuotaDecider extends AutoCloseable {
    int DENIED = -1;

    /** Records a Produce request's record bytes (produce_bytes_rate). */
    CompletionStage<Integer> produce(String user, String clientId, long bytes);

    /** Records a Fetch response's record bytes (consume_bytes_rate), after the fact as Kafka does. */
    CompletionStage<Integer> fetch(String user, String clientId, long bytes);

    /** Records one request (request_rate). */
    CompletionStage<Integer> request(String user, String clientId);

    @Override
    void close();
}
