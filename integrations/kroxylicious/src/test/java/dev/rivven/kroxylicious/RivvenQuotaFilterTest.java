package dev.rivven.kroxylicious;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Delayed;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.message.MetadataRequestData;
import org.apache.kafka.common.message.MetadataResponseData;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.message.ProduceResponseData;
import org.apache.kafka.common.message.RequestHeaderData;
import org.apache.kafka.common.message.ResponseHeaderData;
import org.apache.kafka.common.message.SaslAuthenticateRequestData;
import org.apache.kafka.common.message.SaslAuthenticateResponseData;
import org.apache.kafka.common.message.SaslHandshakeRequestData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.record.MemoryRecords;
import org.apache.kafka.common.record.SimpleRecord;
import org.apache.kafka.common.utils.ByteBufferOutputStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import io.kroxylicious.proxy.filter.FilterContext;
import io.kroxylicious.proxy.filter.FilterDispatchExecutor;
import io.kroxylicious.proxy.filter.RequestFilterResult;
import io.kroxylicious.proxy.filter.RequestFilterResultBuilder;
import io.kroxylicious.proxy.filter.ResponseFilterResult;
import io.kroxylicious.proxy.filter.ResponseFilterResultBuilder;
import io.kroxylicious.proxy.internal.filter.RequestFilterResultBuilderImpl;
import io.kroxylicious.proxy.internal.filter.ResponseFilterResultBuilderImpl;

/** The filter alone, against a scripted decider and the proxy runtime's own result builders. */
class RivvenQuotaFilterTest {
    /** One call the filter made, and the answer the test gives it. */
    record Call(String kind, String user, String clientId, long bytes, CompletableFuture<Integer> answer) {
    }

    static class ScriptedDecider implements QuotaDecider {
        final List<Call> calls = new ArrayList<>();
        int produceAnswer;
        int fetchAnswer;
        int requestAnswer;
        boolean never;

        private CompletionStage<Integer> call(String kind, String user, String clientId, long bytes, int answer) {
            var f = never ? new CompletableFuture<Integer>() : CompletableFuture.completedFuture(answer);
            synchronized (calls) {
                calls.add(new Call(kind, user, clientId, bytes, f));
            }
            return f;
        }

        @Override
        public CompletionStage<Integer> produce(String user, String clientId, long bytes) {
            return call("produce", user, clientId, bytes, produceAnswer);
        }

        @Override
        public CompletionStage<Integer> fetch(String user, String clientId, long bytes) {
            return call("fetch", user, clientId, bytes, fetchAnswer);
        }

        @Override
        public CompletionStage<Integer> request(String user, String clientId) {
            return call("request", user, clientId, 0, requestAnswer);
        }

        @Override
        public void close() {
        }
    }

    /** The filter's dispatch executor: one thread, so delays of held requests can be read off its queue. */
    static final class Executor extends ScheduledThreadPoolExecutor implements FilterDispatchExecutor {
        Executor() {
            super(1);
        }

        @Override
        public boolean isInFilterDispatchThread() {
            return false;
        }

        @Override
        public <T> CompletionStage<T> completeOnFilterDispatchThread(CompletionStage<T> stage) {
            return stage.thenApplyAsync(t -> t, this);
        }

        long nextDelayMs() {
            Delayed d = (Delayed) getQueue().peek();
            return d == null ? -1 : d.getDelay(TimeUnit.MILLISECONDS);
        }
    }

    static final class Context implements FilterContext {
        @Override
        public String channelDescriptor() {
            return "test";
        }

        @Override
        public ByteBufferOutputStream createByteBufferOutputStream(int initialCapacity) {
            return new ByteBufferOutputStream(initialCapacity);
        }

        @Override
        public String sniHostname() {
            return null;
        }

        @Override
        public RequestFilterResultBuilder requestFilterResultBuilder() {
            return new RequestFilterResultBuilderImpl();
        }

        @Override
        public CompletionStage<RequestFilterResult> forwardRequest(RequestHeaderData header, ApiMessage request) {
            return requestFilterResultBuilder().forward(header, request).completed();
        }

        @Override
        public <M extends ApiMessage> CompletionStage<M> sendRequest(RequestHeaderData header, ApiMessage request) {
            throw new UnsupportedOperationException();
        }

        @Override
        public CompletionStage<ResponseFilterResult> forwardResponse(ResponseHeaderData header, ApiMessage response) {
            return responseFilterResultBuilder().forward(header, response).completed();
        }

        @Override
        public ResponseFilterResultBuilder responseFilterResultBuilder() {
            return new ResponseFilterResultBuilderImpl();
        }

        @Override
        public String getVirtualClusterName() {
            return "test";
        }
    }

    private final ScriptedDecider decider = new ScriptedDecider();
    private final Executor executor = new Executor();
    private final Context ctx = new Context();
    private final FilterMetrics metrics = new FilterMetrics("test");
    private int correlation;

    @AfterEach
    void stop() {
        executor.shutdownNow();
    }

    private RivvenQuotaFilter filter(int deadlineMs, int maxHoldMs) {
        return new RivvenQuotaFilter(decider, RivvenQuotaConfig.of("127.0.0.1:1", null, null, deadlineMs, "sasl", maxHoldMs), metrics, executor);
    }

    private RequestHeaderData header(ApiKeys key, short version) {
        return new RequestHeaderData().setRequestApiKey(key.id).setRequestApiVersion(version).setCorrelationId(++correlation)
                .setClientId("app-1");
    }

    private static ProduceRequestData produce(int records, short acks) {
        var mr = MemoryRecords.withRecords(Compression.NONE, java.util.stream.IntStream.range(0, records)
                .mapToObj(i -> new SimpleRecord(new byte[100])).toArray(SimpleRecord[]::new));
        var topic = new ProduceRequestData.TopicProduceData().setName("t");
        topic.partitionData().add(new ProduceRequestData.PartitionProduceData().setIndex(0).setRecords(mr));
        var req = new ProduceRequestData().setAcks(acks).setTimeoutMs(1000);
        req.topicData().add(topic);
        return req;
    }

    private static <T> T done(CompletionStage<T> stage) throws Exception {
        return stage.toCompletableFuture().get(5, TimeUnit.SECONDS);
    }

    @Test
    void aThrottledProduceCarriesTheThrottleAndHoldsTheNextRequest() throws Exception {
        RivvenQuotaFilter f = filter(25, 15_000);
        decider.produceAnswer = 1000;
        var h = header(ApiKeys.PRODUCE, (short) 9);
        ProduceRequestData req = produce(10, (short) 1);
        RequestFilterResult r = done(f.onRequest(ApiKeys.PRODUCE, h, req, ctx));
        assertFalse(r.shortCircuitResponse());
        assertEquals(req, r.message(), "forwarded as it came");
        assertEquals(List.of("request", "produce"), decider.calls.stream().map(Call::kind).toList());
        assertEquals(RivvenQuotaFilter.recordBytes(req), decider.calls.get(1).bytes());
        assertTrue(decider.calls.get(1).bytes() > 1000, "record bytes, batch included");

        var resp = new ProduceResponseData().setThrottleTimeMs(0);
        long throttled = System.nanoTime(); // the hold starts when the response carries the throttle
        ResponseFilterResult rr = done(f.onResponse(ApiKeys.PRODUCE, new ResponseHeaderData().setCorrelationId(h.correlationId()), resp, ctx));
        assertEquals(1000, ((ProduceResponseData) rr.message()).throttleTimeMs());

        // The next request is held: not forwarded now, scheduled for when the throttle ends.
        decider.produceAnswer = 0;
        CompletionStage<RequestFilterResult> next = f.onRequest(ApiKeys.METADATA, header(ApiKeys.METADATA, (short) 12), new MetadataRequestData(), ctx);
        assertFalse(next.toCompletableFuture().isDone(), "held");
        long delay = executor.nextDelayMs();
        assertHeldForTheRest(1000, throttled, delay);
        assertEquals(2, decider.calls.size(), "a held request is recorded when it is released, not before");
        assertFalse(done(next).shortCircuitResponse());
        assertEquals(3, decider.calls.size());
    }

    @Test
    void theHoldIsCappedButTheThrottleIsNot() throws Exception {
        RivvenQuotaFilter f = filter(25, 1000);
        decider.requestAnswer = 30_000;
        var h = header(ApiKeys.METADATA, (short) 12);
        done(f.onRequest(ApiKeys.METADATA, h, new MetadataRequestData(), ctx));
        long throttled = System.nanoTime();
        ResponseFilterResult rr = done(f.onResponse(ApiKeys.METADATA, new ResponseHeaderData().setCorrelationId(h.correlationId()),
                new MetadataResponseData(), ctx));
        assertEquals(30_000, ((MetadataResponseData) rr.message()).throttleTimeMs());
        f.onRequest(ApiKeys.METADATA, header(ApiKeys.METADATA, (short) 12), new MetadataRequestData(), ctx);
        long delay = executor.nextDelayMs();
        assertHeldForTheRest(1000, throttled, delay);
    }

    /**
     * A request held from {@code since} (just before the response that announced the throttle) for {@code holdMs}:
     * its delay, read now, is the rest of that hold. The bound below it is the time that has really passed since,
     * not a fixed slack a slow machine could use up.
     */
    private static void assertHeldForTheRest(long holdMs, long since, long delayMs) {
        long passedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - since) + 1; // + 1: both rounded down
        assertTrue(delayMs >= holdMs - passedMs && delayMs <= holdMs,
                "held for the rest of the " + holdMs + " ms hold (" + passedMs + " ms have passed): " + delayMs);
    }

    @Test
    void aDeniedProduceIsAnsweredWithTopicAuthorizationFailed() throws Exception {
        RivvenQuotaFilter f = filter(25, 15_000);
        decider.produceAnswer = QuotaDecider.DENIED;
        RequestFilterResult r = done(f.onRequest(ApiKeys.PRODUCE, header(ApiKeys.PRODUCE, (short) 9), produce(1, (short) 1), ctx));
        assertTrue(r.shortCircuitResponse());
        var p = ((ProduceResponseData) r.message()).responses().iterator().next().partitionResponses().get(0);
        assertEquals(Errors.TOPIC_AUTHORIZATION_FAILED.code(), p.errorCode());
        assertTrue(p.errorMessage().contains("blocked"), p.errorMessage());
        assertEquals(1, metrics.denied.sum());
        // acks=0 expects no response: the request is dropped, not answered.
        RequestFilterResult dropped = done(f.onRequest(ApiKeys.PRODUCE, header(ApiKeys.PRODUCE, (short) 9), produce(1, (short) 0), ctx));
        assertTrue(dropped.drop());
        // A blocked principal's control requests still pass.
        decider.requestAnswer = QuotaDecider.DENIED;
        RequestFilterResult meta = done(f.onRequest(ApiKeys.METADATA, header(ApiKeys.METADATA, (short) 12), new MetadataRequestData(), ctx));
        assertFalse(meta.shortCircuitResponse());
        assertFalse(meta.drop());
    }

    @Test
    void aDeniedFetchIsAnsweredWithTopicAuthorizationFailedAndNoRecords() throws Exception {
        RivvenQuotaFilter f = filter(25, 15_000);
        decider.requestAnswer = QuotaDecider.DENIED;
        var h = header(ApiKeys.FETCH, (short) 12);
        RequestFilterResult r = done(f.onRequest(ApiKeys.FETCH, h, new org.apache.kafka.common.message.FetchRequestData(), ctx));
        assertFalse(r.shortCircuitResponse(), "a fetch goes on at once; its answer applies to the response");
        var resp = new FetchResponseData();
        var topic = new FetchResponseData.FetchableTopicResponse().setTopic("t");
        topic.partitions().add(new FetchResponseData.PartitionData().setPartitionIndex(0)
                .setRecords(MemoryRecords.withRecords(Compression.NONE, new SimpleRecord(new byte[10]))));
        resp.responses().add(topic);
        ResponseFilterResult rr = done(f.onResponse(ApiKeys.FETCH, new ResponseHeaderData().setCorrelationId(h.correlationId()), resp, ctx));
        var partition = ((FetchResponseData) rr.message()).responses().get(0).partitions().get(0);
        assertEquals(Errors.TOPIC_AUTHORIZATION_FAILED.code(), partition.errorCode());
        assertEquals(0, partition.records().sizeInBytes(), "no records reach a blocked principal");
        assertEquals(1, metrics.denied.sum());
    }

    @Test
    void aSidecarThatNeverAnswersCostsTheDeadlineThenTheRequestGoesOn() throws Exception {
        RivvenQuotaFilter f = filter(1, 15_000);
        decider.never = true;
        RequestFilterResult r = done(f.onRequest(ApiKeys.PRODUCE, header(ApiKeys.PRODUCE, (short) 9), produce(1, (short) 1), ctx));
        assertFalse(r.shortCircuitResponse());
        assertFalse(r.drop());
        assertEquals(2, metrics.failOpen.sum(), "both calls failed open");
    }

    @Test
    void aFailedCallFailsOpen() throws Exception {
        QuotaDecider failing = new ScriptedDecider() {
            @Override
            public CompletionStage<Integer> request(String user, String clientId) {
                return CompletableFuture.failedFuture(new IllegalStateException("sidecar away"));
            }
        };
        var f = new RivvenQuotaFilter(failing, RivvenQuotaConfig.of("127.0.0.1:1", null, null, 25, "sasl", 15_000), metrics, executor);
        RequestFilterResult r = done(f.onRequest(ApiKeys.METADATA, header(ApiKeys.METADATA, (short) 12), new MetadataRequestData(), ctx));
        assertEquals(MetadataRequestData.class, r.message().getClass());
        assertEquals(1, metrics.failOpen.sum());
    }

    @Test
    void theUserComesFromASuccessfulSaslExchange() throws Exception {
        RivvenQuotaFilter f = filter(25, 15_000);
        done(f.onRequest(ApiKeys.SASL_HANDSHAKE, header(ApiKeys.SASL_HANDSHAKE, (short) 1), new SaslHandshakeRequestData().setMechanism("PLAIN"), ctx));
        var auth = header(ApiKeys.SASL_AUTHENTICATE, (short) 2);
        done(f.onRequest(ApiKeys.SASL_AUTHENTICATE, auth,
                new SaslAuthenticateRequestData().setAuthBytes("\0alice\0pw".getBytes(StandardCharsets.UTF_8)), ctx));
        done(f.onRequest(ApiKeys.METADATA, header(ApiKeys.METADATA, (short) 12), new MetadataRequestData(), ctx));
        assertNull(decider.calls.get(0).user(), "not before the broker accepted it");
        done(f.onResponse(ApiKeys.SASL_AUTHENTICATE, new ResponseHeaderData().setCorrelationId(auth.correlationId()),
                new SaslAuthenticateResponseData().setErrorCode((short) 0), ctx));
        done(f.onRequest(ApiKeys.METADATA, header(ApiKeys.METADATA, (short) 12), new MetadataRequestData(), ctx));
        assertEquals("alice", decider.calls.get(1).user());
        assertEquals("app-1", decider.calls.get(1).clientId());
    }

    @Test
    void aRefusedSaslExchangeLeavesTheConnectionAnonymous() throws Exception {
        RivvenQuotaFilter f = filter(25, 15_000);
        done(f.onRequest(ApiKeys.SASL_HANDSHAKE, header(ApiKeys.SASL_HANDSHAKE, (short) 1), new SaslHandshakeRequestData().setMechanism("PLAIN"), ctx));
        var auth = header(ApiKeys.SASL_AUTHENTICATE, (short) 2);
        done(f.onRequest(ApiKeys.SASL_AUTHENTICATE, auth,
                new SaslAuthenticateRequestData().setAuthBytes("\0alice\0wrong".getBytes(StandardCharsets.UTF_8)), ctx));
        done(f.onResponse(ApiKeys.SASL_AUTHENTICATE, new ResponseHeaderData().setCorrelationId(auth.correlationId()),
                new SaslAuthenticateResponseData().setErrorCode(Errors.SASL_AUTHENTICATION_FAILED.code()), ctx));
        done(f.onRequest(ApiKeys.METADATA, header(ApiKeys.METADATA, (short) 12), new MetadataRequestData(), ctx));
        assertNull(decider.calls.get(0).user());
    }

    @Test
    void aFetchResponsesRecordBytesAreRecordedAfterTheFact() throws Exception {
        RivvenQuotaFilter f = filter(25, 15_000);
        decider.fetchAnswer = 120;
        var h = header(ApiKeys.FETCH, (short) 12);
        done(f.onRequest(ApiKeys.FETCH, h, new org.apache.kafka.common.message.FetchRequestData(), ctx));
        var records = MemoryRecords.withRecords(Compression.NONE, new SimpleRecord(new byte[500]), new SimpleRecord(new byte[500]));
        var resp = new FetchResponseData();
        var topic = new FetchResponseData.FetchableTopicResponse().setTopic("t");
        topic.partitions().add(new FetchResponseData.PartitionData().setPartitionIndex(0).setRecords(records));
        resp.responses().add(topic);
        ResponseFilterResult rr = done(f.onResponse(ApiKeys.FETCH, new ResponseHeaderData().setCorrelationId(h.correlationId()), resp, ctx));
        Call fetch = decider.calls.get(decider.calls.size() - 1);
        assertEquals("fetch", fetch.kind());
        assertEquals(records.sizeInBytes(), fetch.bytes());
        assertEquals("app-1", fetch.clientId());
        assertEquals(120, ((FetchResponseData) rr.message()).throttleTimeMs());
    }
}
