package dev.rivven.kroxylicious;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.message.RequestHeaderData;
import org.apache.kafka.common.message.ResponseHeaderData;
import org.apache.kafka.common.message.SaslAuthenticateRequestData;
import org.apache.kafka.common.message.SaslAuthenticateResponseData;
import org.apache.kafka.common.message.SaslHandshakeRequestData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.record.BaseRecords;
import org.apache.kafka.common.record.MemoryRecords;

import io.kroxylicious.proxy.filter.FilterContext;
import io.kroxylicious.proxy.filter.FilterDispatchExecutor;
import io.kroxylicious.proxy.filter.RequestFilter;
import io.kroxylicious.proxy.filter.RequestFilterResult;
import io.kroxylicious.proxy.filter.ResponseFilter;
import io.kroxylicious.proxy.filter.ResponseFilterResult;

/**
 * One instance per client connection. Every request is recorded (request_rate), a Produce's record bytes
 * (produce_bytes_rate) before it is forwarded, a Fetch response's record bytes (consume_bytes_rate) after the fact.
 * A throttle is written into the response's throttle_time_ms and the connection's reads are held that long
 * (KIP-219: the next request waits, and the proxy reads nothing more from that client meanwhile). A Denied
 * principal's Produce is answered with TOPIC_AUTHORIZATION_FAILED, and its Fetch responses carry that error instead
 * of records. Every sidecar call is bounded by the deadline; past it the request goes on unthrottled (fail open).
 *
 * <p>Kroxylicious calls a filter instance on its connection's event loop only; the continuations below hop back
 * onto it ({@code executor}), so the fields need no locking.
 */
final class RivvenQuotaFilter implements RequestFilter, ResponseFilter {
    private static final Integer TIMED_OUT = Integer.MIN_VALUE;

    /** What a forwarded request leaves for its response: the version (to write the throttle) and its answer. */
    private record Pending(short version, CompletableFuture<Integer> decision, String clientId) {
    }

    private final QuotaDecider decider;
    private final RivvenQuotaConfig config;
    private final FilterMetrics metrics;
    private final FilterDispatchExecutor executor;
    private final Map<Integer, Pending> pending = new HashMap<>();

    private String user;
    private String saslMechanism;
    private String saslUser;
    private long heldUntilNanos = System.nanoTime();

    RivvenQuotaFilter(QuotaDecider decider, RivvenQuotaConfig config, FilterMetrics metrics, FilterDispatchExecutor executor) {
        this.decider = decider;
        this.config = config;
        this.metrics = metrics;
        this.executor = executor;
    }

    @Override
    public CompletionStage<RequestFilterResult> onRequest(ApiKeys apiKey, RequestHeaderData header, ApiMessage request, FilterContext ctx) {
        switch (apiKey) {
            case API_VERSIONS:
                return ctx.forwardRequest(header, request);
            case SASL_HANDSHAKE:
                saslMechanism = ((SaslHandshakeRequestData) request).mechanism();
                return ctx.forwardRequest(header, request);
            case SASL_AUTHENTICATE:
                if (config.principalSource() == PrincipalSource.SASL && saslUser == null) {
                    saslUser = SaslPrincipals.userOf(saslMechanism, ((SaslAuthenticateRequestData) request).authBytes());
                }
                return ctx.forwardRequest(header, request);
            default:
                break;
        }
        long waitNanos = heldUntilNanos - System.nanoTime();
        if (waitNanos <= 0) {
            return decide(apiKey, header, request, ctx);
        }
        // Held: this request (and, since the proxy stops reading while filter work is pending, everything behind
        // it) waits out the throttle the previous response announced.
        metrics.holdMs.add(TimeUnit.NANOSECONDS.toMillis(waitNanos));
        var held = new CompletableFuture<RequestFilterResult>();
        executor.schedule(() -> {
            try {
                decide(apiKey, header, request, ctx).whenComplete((r, e) -> {
                    if (e != null) {
                        held.completeExceptionally(e);
                    }
                    else {
                        held.complete(r);
                    }
                });
            }
            catch (RuntimeException e) {
                held.completeExceptionally(e);
            }
        }, waitNanos, TimeUnit.NANOSECONDS);
        return held;
    }

    /**
     * A Produce waits for its answer (a Denied principal's records must not reach the log); every other request is
     * forwarded at once and its answer, which has arrived long before the broker's response in practice, is applied
     * to that response. Waiting only where it matters keeps a consumer's fetch loop from paying a sidecar round
     * trip on each request.
     */
    private CompletionStage<RequestFilterResult> decide(ApiKeys apiKey, RequestHeaderData header, ApiMessage request, FilterContext ctx) {
        String clientId = header.clientId();
        CompletableFuture<Integer> requestCall = bounded(decider.request(user, clientId));
        metrics.decisions.increment();
        if (apiKey != ApiKeys.PRODUCE) {
            pending.put(header.correlationId(), new Pending(header.requestApiVersion(), requestCall, clientId));
            return ctx.requestFilterResultBuilder().forward(header, request).completed();
        }
        ProduceRequestData produce = (ProduceRequestData) request;
        long started = System.nanoTime();
        return requestCall.thenCombine(bounded(decider.produce(user, clientId, recordBytes(produce))), RivvenQuotaFilter::combine)
                .thenApplyAsync(throttle -> {
                    metrics.decision.record(System.nanoTime() - started, TimeUnit.NANOSECONDS);
                    return afterProduceDecision(header, produce, ctx, throttle);
                }, executor);
    }

    private RequestFilterResult afterProduceDecision(RequestHeaderData header, ProduceRequestData request, FilterContext ctx, int throttle) {
        boolean noResponse = request.acks() == 0;
        if (throttle == QuotaDecider.DENIED) {
            metrics.denied.increment();
            if (noResponse) {
                return ctx.requestFilterResultBuilder().drop().build();
            }
            return ctx.requestFilterResultBuilder().errorResponse(header, request, new TopicAuthorizationException(blocked(header.clientId())))
                    .build();
        }
        if (noResponse) {
            // acks=0: there is no response to carry the throttle; Kafka mutes such a channel, so do we.
            hold(throttle);
        }
        else {
            pending.put(header.correlationId(), new Pending(header.requestApiVersion(), CompletableFuture.completedFuture(throttle),
                    header.clientId()));
        }
        return ctx.requestFilterResultBuilder().forward(header, request).build();
    }

    private String blocked(String clientId) {
        return "rivven: " + (user == null ? "anonymous" : "user " + user) + (clientId == null ? "" : " / client-id " + clientId)
                + " is blocked by quota policy";
    }

    @Override
    public CompletionStage<ResponseFilterResult> onResponse(ApiKeys apiKey, ResponseHeaderData header, ApiMessage response, FilterContext ctx) {
        if (apiKey == ApiKeys.SASL_AUTHENTICATE) {
            if (((SaslAuthenticateResponseData) response).errorCode() == 0 && saslUser != null) {
                user = saslUser;
            }
            else {
                saslUser = null;
            }
            return ctx.forwardResponse(header, response);
        }
        Pending p = pending.remove(header.correlationId());
        if (p == null) {
            return ctx.forwardResponse(header, response);
        }
        CompletableFuture<Integer> answer = p.decision();
        if (apiKey == ApiKeys.FETCH) {
            long bytes = recordBytes((FetchResponseData) response);
            if (bytes > 0) {
                answer = answer.thenCombine(bounded(decider.fetch(user, p.clientId(), bytes)), RivvenQuotaFilter::combine);
            }
        }
        if (answer.isDone()) {
            return CompletableFuture.completedFuture(apply(apiKey, header, response, p, answer.join(), ctx));
        }
        return answer.thenApplyAsync(t -> apply(apiKey, header, response, p, t, ctx), executor);
    }

    private ResponseFilterResult apply(ApiKeys apiKey, ResponseHeaderData header, ApiMessage response, Pending p, int throttle, FilterContext ctx) {
        if (throttle == QuotaDecider.DENIED) {
            if (apiKey == ApiKeys.FETCH) {
                metrics.denied.increment();
                deny((FetchResponseData) response);
            }
            // Metadata, group and other control requests of a blocked principal pass, so its clients learn the
            // data-plane error instead of timing out on metadata.
            throttle = 0;
        }
        if (throttle > 0) {
            metrics.throttled.increment();
            ThrottleField.raise(response, p.version(), throttle);
            hold(throttle);
        }
        return ctx.responseFilterResultBuilder().forward(header, response).build();
    }

    /** A blocked principal's fetch: every partition TOPIC_AUTHORIZATION_FAILED, no records delivered. */
    private static void deny(FetchResponseData response) {
        for (var topic : response.responses()) {
            for (var partition : topic.partitions()) {
                partition.setErrorCode(Errors.TOPIC_AUTHORIZATION_FAILED.code()).setRecords(MemoryRecords.EMPTY);
            }
        }
    }

    private void hold(int throttleMs) {
        if (throttleMs <= 0) {
            return;
        }
        long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(Math.min(throttleMs, config.maxHoldMs()));
        if (until - heldUntilNanos > 0) {
            heldUntilNanos = until;
        }
    }

    private CompletableFuture<Integer> bounded(CompletionStage<Integer> call) {
        return call.toCompletableFuture()
                .completeOnTimeout(TIMED_OUT, config.deadlineMs(), TimeUnit.MILLISECONDS)
                .handle((v, e) -> {
                    if (e != null) {
                        metrics.failedOpen(e.getClass().getSimpleName() + ": " + e.getMessage());
                        return 0;
                    }
                    if (v == null || v.equals(TIMED_OUT)) {
                        metrics.failedOpen("no answer within " + config.deadlineMs() + " ms");
                        return 0;
                    }
                    metrics.answered();
                    return v;
                });
    }

    private static int combine(int a, int b) {
        return a == QuotaDecider.DENIED || b == QuotaDecider.DENIED ? QuotaDecider.DENIED : Math.max(a, b);
    }

    static long recordBytes(ProduceRequestData request) {
        long bytes = 0;
        for (var topic : request.topicData()) {
            for (var partition : topic.partitionData()) {
                bytes += sizeOf(partition.records());
            }
        }
        return bytes;
    }

    static long recordBytes(FetchResponseData response) {
        long bytes = 0;
        for (var topic : response.responses()) {
            for (var partition : topic.partitions()) {
                bytes += sizeOf(partition.records());
            }
        }
        return bytes;
    }

    private static int sizeOf(BaseRecords records) {
        return records == null ? 0 : records.sizeInBytes();
    }
}
