package dev.rivven.kroxylicious;

import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

import javax.net.ssl.SSLContext;

import dev.rivven.client.BrokerQuotas;
import dev.rivven.client.BrokerQuotasOptions;
import dev.rivven.client.QuotaClient;
import dev.rivven.client.QuotaClientOptions;
import dev.rivven.client.Tls;

/**
 * The filter's decider on the project's Java client: {@link BrokerQuotas} gives the deadline, the breaker, the
 * pipelining and the fail-open answers. The proxy may start before its sidecar: until the first connection is made
 * (retried every second in the background) every call fails at once and the filter fails open; after it, the
 * client reconnects by itself.
 */
final class BrokerQuotasDecider implements QuotaDecider {
    private static final CompletableFuture<Integer> NOT_CONNECTED = CompletableFuture.failedFuture(
            new IllegalStateException("not connected to the sidecar yet"));

    private final QuotaClientOptions clientOptions;
    private final BrokerQuotasOptions options;
    private final ScheduledExecutorService connector = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "rivven-kroxylicious-connect");
        t.setDaemon(true);
        return t;
    });
    private volatile QuotaClient client;
    private volatile BrokerQuotas quotas;
    private volatile boolean closed;
    private final FilterMetrics metrics;
    private long shortCircuitedSeen;
    private long breakerOpenedSeen;

    BrokerQuotasDecider(RivvenQuotaConfig config, FilterMetrics metrics) {
        QuotaClientOptions.Builder b = QuotaClientOptions.builder()
                .host(config.host())
                .port(config.port())
                .clientName("rivven-kroxylicious")
                .connectAttempts(1);
        if (config.token() != null) {
            b.token(config.token());
        }
        if (config.tls() != null) {
            b.tls(sslContext(config.tls()));
        }
        this.clientOptions = b.build();
        this.options = BrokerQuotasOptions.builder()
                .recordDeadlineMs(config.deadlineMs())
                .onError(e -> metrics.failedOpen(e.getClass().getSimpleName() + ": " + e.getMessage()))
                .build();
        this.metrics = metrics;
        connector.execute(this::connect);
        // Calls the breaker answers without sending never reach onError: report them from the client's counters.
        connector.scheduleWithFixedDelay(this::watchBreaker, 1, 1, TimeUnit.SECONDS);
    }

    private void watchBreaker() {
        BrokerQuotas q = quotas;
        if (q == null) {
            return;
        }
        long opened = q.breaker().openedCount();
        long skipped = q.shortCircuited();
        if (opened > breakerOpenedSeen || skipped > shortCircuitedSeen) {
            metrics.breakerOpen(opened - breakerOpenedSeen, skipped - shortCircuitedSeen);
        }
        breakerOpenedSeen = opened;
        shortCircuitedSeen = skipped;
    }

    private static SSLContext sslContext(RivvenQuotaConfig.SidecarTls tls) {
        return Tls.fromPem(tls.ca() == null ? null : Path.of(tls.ca()), tls.cert() == null ? null : Path.of(tls.cert()),
                tls.key() == null ? null : Path.of(tls.key()));
    }

    private void connect() {
        if (closed) {
            return;
        }
        try {
            QuotaClient c = QuotaClient.connect(clientOptions);
            client = c;
            quotas = new BrokerQuotas(c, options);
            if (closed) {
                c.close();
            }
        }
        catch (RuntimeException e) {
            connector.schedule(this::connect, 1, TimeUnit.SECONDS);
        }
    }

    @Override
    public CompletionStage<Integer> produce(String user, String clientId, long bytes) {
        BrokerQuotas q = quotas;
        return q == null ? NOT_CONNECTED : q.produce(user, clientId, bytes).thenApply(BrokerQuotasDecider::toInt);
    }

    @Override
    public CompletionStage<Integer> fetch(String user, String clientId, long bytes) {
        BrokerQuotas q = quotas;
        return q == null ? NOT_CONNECTED : q.fetch(user, clientId, null, bytes).thenApply(BrokerQuotasDecider::toInt);
    }

    @Override
    public CompletionStage<Integer> request(String user, String clientId) {
        BrokerQuotas q = quotas;
        return q == null ? NOT_CONNECTED : q.request(user, clientId).thenApply(BrokerQuotasDecider::toInt);
    }

    private static Integer toInt(Long ms) {
        return ms == BrokerQuotas.DENIED ? DENIED : (int) Math.min(Integer.MAX_VALUE, ms);
    }

    @Override
    public void close() {
        closed = true;
        connector.shutdownNow();
        QuotaClient c = client;
        if (c != null) {
            c.close();
        }
    }
}
