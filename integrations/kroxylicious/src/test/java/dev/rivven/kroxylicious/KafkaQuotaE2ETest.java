package dev.rivven.kroxylicious;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The filter end to end: a real Kafka 4 broker (KRaft), the Kroxylicious proxy with the filter, real rivven
 * sidecars, kafka-clients and Kafka's producer performance tool. Everything starts once for the class; the quota
 * cases run one after another on it (the 10 s measurement windows are the quota's correctness, so they are real).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class KafkaQuotaE2ETest {
    private static final double QUOTA = 1_000_000;
    /** The measured window: 10 s from the moment 1.5 MB were acknowledged (the fresh bucket's burst is behind). */
    private static final double WINDOW_S = 10;

    private Path dir;
    private KafkaBroker broker;
    private Sidecar sidecar;
    private Proxy proxy;
    private final List<AutoCloseable> closeLast = new ArrayList<>();

    @BeforeAll
    void start() throws Exception {
        dir = Files.createTempDirectory("rivven-kafka-e2e-");
        long t0 = System.nanoTime();
        broker = new KafkaBroker(dir.resolve("kafka"));
        for (String topic : List.of("produce", "consume", "sasl", "fleet", "steady", "blocked")) {
            broker.createTopic(topic, 1);
        }
        sidecar = new Sidecar("sidecar", dir.resolve("sidecar"), null);
        proxy = new Proxy("proxy", dir.resolve("proxy"), broker, filterConfig(sidecar.address, MEASURE_DEADLINE_MS));
        report("startup: broker + sidecar + proxy in %.1f s", (System.nanoTime() - t0) / 1e9);
    }

    /**
     * The rate cases run with a 250 ms deadline: on this shared 2-core machine (load averages of 10-20 from other work
     * were seen) a sidecar answer sometimes takes longer than the default 25 ms, even 100 ms; each such answer is 0 (fail
     * open, the design) and five in a row open the client's breaker for a second, so the quota leaks, which is not what
     * these cases measure. The outage case runs with the default 25 ms, the deadline it measures.
     */
    static final int MEASURE_DEADLINE_MS = 250;
    static final int DEFAULT_DEADLINE_MS = 25;

    static String filterConfig(String sidecarAddress, int deadlineMs) {
        return "      sidecar: " + sidecarAddress + "\n      deadlineMs: " + deadlineMs + "\n      principalSource: sasl\n";
    }

    @AfterAll
    void stop() throws Exception {
        for (AutoCloseable c : closeLast) {
            c.close();
        }
        for (AutoCloseable c : new AutoCloseable[] { proxy, sidecar, broker }) {
            if (c != null) {
                c.close();
            }
        }
        Env.deleteTree(dir);
    }

    static void report(String format, Object... args) {
        String line = "rivven-e2e: " + format.formatted(args);
        System.out.println(line);
        try {
            Files.writeString(Env.logDir().resolve("results.txt"), line + "\n", java.nio.file.StandardOpenOption.CREATE,
                    java.nio.file.StandardOpenOption.APPEND);
        }
        catch (java.io.IOException ignored) {
            // the line is on stdout too
        }
    }

    static void assertWithin(double expected, double tolerance, double actual, String what) {
        assertTrue(Math.abs(actual - expected) <= expected * tolerance,
                "%s: %.0f B/s, expected %.0f +-%.0f%%".formatted(what, actual, expected, tolerance * 100));
    }

    @Test
    @Order(1)
    void aClientIdWithAProduceQuotaGetsItAndAnotherBesideItIsNotSlowed() throws Exception {
        sidecar.cli("quota", "set", "--client-id", "limited", "--produce-bytes-rate", "1000000");
        // Kafka's own producer performance tool, client-id "free" (no quota), beside the limited producer.
        ChildProcess perf = ChildProcess.java("producer-perf", List.of("-Xmx256m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"),
                "org.apache.kafka.tools.ProducerPerformance",
                List.of("--topic", "produce", "--num-records", "60000", "--record-size", "1000", "--throughput", "-1",
                        "--print-metrics", "--producer-props", "bootstrap.servers=" + proxy.plainBootstrap(), "client.id=free", "acks=1",
                        "linger.ms=5"),
                dir);
        Load.Result limited = Load.produce(Load.producerProps(proxy.plainBootstrap(), "limited"), "produce", WINDOW_S);
        assertEquals(0, perf.waitFor(Duration.ofSeconds(120)), "producer-perf failed");
        // Its summary and metrics are its last lines: read once its output has ended, not when it exited.
        List<String> perfLines = perf.allLines(Duration.ofSeconds(30));
        double rate = limited.rate(WINDOW_S);
        String summary = perfLines.stream().filter(l -> l.contains("records sent") && l.contains("99th")).reduce((a, b) -> b).orElse("");
        double freeThrottle = metricLine(perfLines, "producer-metrics:produce-throttle-time-max:{client-id=free}");
        report("produce quota 1 MB/s, client-id limited: %.3f MB/s over %.0f s (client's max throttle_time_ms seen %.0f; per second: %s)",
                rate / 1e6, WINDOW_S, limited.throttleTimeMaxMs(), limited.perSecond((int) WINDOW_S));
        report("beside it, producer-perf client-id free: %s; its max throttle_time_ms %.0f", summary.trim(), freeThrottle);
        assertWithin(QUOTA, 0.10, rate, "client-id limited");
        assertTrue(limited.throttleTimeMaxMs() > 0, "the limited producer saw throttle_time_ms");
        assertEquals(0.0, freeThrottle, "client-id free was never throttled");
        assertTrue(perfMbPerSec(summary) > 2 * QUOTA / 1e6, "client-id free ran well above the other's quota: " + summary);
    }

    private static double metricLine(List<String> lines, String key) {
        for (String l : lines) {
            if (l.trim().startsWith(key)) {
                String[] parts = l.trim().split("\\s*:\\s*");
                return Double.parseDouble(parts[parts.length - 1].trim());
            }
        }
        throw new AssertionError("no metric " + key + " in the perf tool's output");
    }

    private static double perfMbPerSec(String summary) {
        var m = java.util.regex.Pattern.compile("\\(([0-9.]+) MB/sec\\)").matcher(summary);
        return m.find() ? Double.parseDouble(m.group(1)) : 0;
    }

    @Test
    @Order(2)
    void aClientIdWithAConsumeQuotaGetsIt() throws Exception {
        // 20 MB to read, produced straight to the broker (no quota in the way).
        fill("consume", 20_000);
        sidecar.cli("quota", "set", "--client-id", "reader", "--consume-bytes-rate", "1000000");
        Load.Result r = Load.consume(proxy.plainBootstrap(), "reader", "consume", WINDOW_S, 100_000);
        double rate = r.rate(WINDOW_S);
        report("consume quota 1 MB/s, client-id reader: %.3f MB/s over %.0f s (max fetch throttle_time_ms %.0f; per second: %s)", rate / 1e6,
                WINDOW_S, r.throttleTimeMaxMs(), r.perSecond((int) WINDOW_S));
        assertWithin(QUOTA, 0.10, rate, "client-id reader");
        assertTrue(r.throttleTimeMaxMs() > 0, "the consumer saw throttle_time_ms");
    }

    private void fill(String topic, int records) throws Exception {
        var props = Load.producerProps(broker.bootstrap(), "filler");
        props.put("buffer.memory", 32 * 1024 * 1024);
        try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(props)) {
            byte[] value = new byte[1000];
            for (int i = 0; i < records; i++) {
                p.send(new ProducerRecord<>(topic, value));
            }
            p.flush();
        }
    }

    @Test
    @Order(3)
    void aSaslUserGetsItsUserQuota() throws Exception {
        sidecar.cli("quota", "set", "--user", "alice", "--produce-bytes-rate", "1000000");
        var props = Load.sasl(Load.producerProps(proxy.saslBootstrap(), "alice-app"), "alice", "alice-secret");
        Load.Result r = Load.produce(props, "sasl", WINDOW_S);
        double rate = r.rate(WINDOW_S);
        report("user quota 1 MB/s, SASL/PLAIN user alice (client-id alice-app, no client quota): %.3f MB/s over %.0f s (per second: %s)",
                rate / 1e6, WINDOW_S, r.perSecond((int) WINDOW_S));
        assertWithin(QUOTA, 0.10, rate, "user alice");
    }

    @Test
    @Order(4)
    void twoProxiesWithFleetSidecarsShareOneQuota() throws Exception {
        Redis redis = new Redis(dir.resolve("redis"));
        closeLast.add(redis);
        Sidecar f1 = new Sidecar("fleet-sidecar-1", dir.resolve("fleet1"), redis.url());
        closeLast.add(0, f1);
        Sidecar f2 = new Sidecar("fleet-sidecar-2", dir.resolve("fleet2"), redis.url());
        closeLast.add(0, f2);
        Proxy p1 = new Proxy("fleet-proxy-1", dir.resolve("fleet-proxy-1"), broker, filterConfig(f1.address, MEASURE_DEADLINE_MS));
        closeLast.add(0, p1);
        Proxy p2 = new Proxy("fleet-proxy-2", dir.resolve("fleet-proxy-2"), broker, filterConfig(f2.address, MEASURE_DEADLINE_MS));
        closeLast.add(0, p2);
        f1.cli("quota", "set", "--client-id", "shared", "--produce-bytes-rate", "1000000");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!f2.cli("quota", "list").contains("shared")) {
            assertTrue(System.nanoTime() < deadline, "the second sidecar never saw the shared quota");
            Thread.sleep(100);
        }
        // Each runs until 6 s after its own window would end; the measured window starts when the two together had
        // 2 MB acknowledged (the shared bucket's burst is behind) and lasts 10 s, inside both runs.
        var a = CompletableFuture.supplyAsync(() -> Load.produce(Load.producerProps(p1.plainBootstrap(), "shared"), "fleet", WINDOW_S + 6));
        var b = CompletableFuture.supplyAsync(() -> Load.produce(Load.producerProps(p2.plainBootstrap(), "shared"), "fleet", WINDOW_S + 6));
        Load.Result resA = a.get();
        Load.Result resB = b.get();
        long from = Load.Result.merge(resA, resB).crossing(2_000_000);
        long to = from + (long) (WINDOW_S * 1e9);
        assertTrue(to <= Math.min(resA.lastNanos(), resB.lastNanos()), "both producers ran through the window");
        double ra = resA.rateBetween(from, to);
        double rb = resB.rateBetween(from, to);
        report("fleet: one 1 MB/s client-id quota across two proxies, each with its own sidecar on one Redis: %.3f + %.3f = %.3f MB/s",
                ra / 1e6, rb / 1e6, (ra + rb) / 1e6);
        assertWithin(QUOTA, 0.15, ra + rb, "client-id shared across two proxies");
        assertTrue(ra > 0.1 * QUOTA && rb > 0.1 * QUOTA, "both proxies carried traffic");
    }

    @Test
    @Order(5)
    void aBlockedPrincipalsProduceAndFetchFailAndItIsInTheViolationLog() throws Exception {
        sidecar.cli("quota", "block", "--client-id", "blocked", "--reason", "e2e: blocked on purpose");
        var props = Load.producerProps(proxy.plainBootstrap(), "blocked");
        try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(props)) {
            ExecutionException e = org.junit.jupiter.api.Assertions.assertThrows(ExecutionException.class,
                    () -> p.send(new ProducerRecord<>("blocked", new byte[100])).get(30, TimeUnit.SECONDS));
            assertInstanceOf(TopicAuthorizationException.class, e.getCause());
            report("blocked client-id: produce failed with %s: %s", e.getCause().getClass().getSimpleName(), e.getCause().getMessage());
        }
        fill("blocked", 10); // straight to the broker: there is something a blocked consumer could read
        var cp = new java.util.HashMap<String, Object>(Map.of("bootstrap.servers", proxy.plainBootstrap(), "client.id", "blocked",
                "key.deserializer", org.apache.kafka.common.serialization.ByteArrayDeserializer.class,
                "value.deserializer", org.apache.kafka.common.serialization.ByteArrayDeserializer.class));
        try (var consumer = new org.apache.kafka.clients.consumer.KafkaConsumer<byte[], byte[]>(cp)) {
            var tp = new org.apache.kafka.common.TopicPartition("blocked", 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            TopicAuthorizationException refused = null;
            while (refused == null && System.nanoTime() < deadline) {
                try {
                    assertTrue(consumer.poll(Duration.ofMillis(200)).isEmpty(), "a blocked consumer reads nothing");
                }
                catch (TopicAuthorizationException e) {
                    refused = e;
                }
            }
            assertTrue(refused != null, "the blocked consumer's fetch was refused");
            report("blocked client-id: fetch failed with %s: %s", refused.getClass().getSimpleName(), refused.getMessage());
        }
        assertTrue(proxy.counter("rivven_kroxylicious_denied_total") >= 2, "the proxy's metrics count the refusals");
        String violations = sidecar.cli("quota", "violations", "--type", "BLOCKED", "--json");
        assertTrue(violations.contains("client-id:blocked"), "violation log names the blocked principal: " + violations);
    }

    @Test
    @Order(6)
    void theSidecarStoppedThenKilledMidRunProductionContinuesWithinTheDeadline() throws Exception {
        Sidecar doomed = new Sidecar("doomed-sidecar", dir.resolve("doomed"), null);
        closeLast.add(0, doomed);
        Proxy p25 = new Proxy("proxy-25ms", dir.resolve("proxy-25ms"), broker, filterConfig(doomed.address, DEFAULT_DEADLINE_MS));
        closeLast.add(0, p25);
        var props = Load.producerProps(p25.plainBootstrap(), "steady");
        props.put("linger.ms", 0);
        String[] phases = { "sidecar up", "sidecar SIGSTOPped (hangs)", "sidecar SIGKILLed" };
        List<List<Double>> latencies = List.of(new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
        int failed = 0;
        String decision = "rivven_kroxylicious_decision_seconds";
        List<java.util.TreeMap<Double, Double>> histograms = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(props)) {
            byte[] value = new byte[1000];
            for (int phase = 0; phase < phases.length; phase++) {
                histograms.add(p25.histogram(decision));
                if (phase == 1) {
                    signal("STOP", doomed.pid());
                }
                else if (phase == 2) {
                    doomed.kill();
                }
                long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(4);
                while (System.nanoTime() < end) {
                    long t = System.nanoTime();
                    try {
                        p.send(new ProducerRecord<>("steady", value)).get(30, TimeUnit.SECONDS);
                        latencies.get(phase).add((System.nanoTime() - t) / 1e6);
                    }
                    catch (ExecutionException e) {
                        failed++;
                    }
                    Thread.sleep(5);
                }
            }
        }
        histograms.add(p25.histogram(decision));
        double p99Up = Load.percentile(latencies.get(0), 99);
        double[] decisionP99 = new double[phases.length];
        for (int phase = 0; phase < phases.length; phase++) {
            List<Double> l = latencies.get(phase);
            decisionP99[phase] = p99Bound(histograms.get(phase), histograms.get(phase + 1));
            report("outage, deadline %d ms, %s: %d sends, p50 %.2f ms, p99 %.2f ms (added at p99 vs up: %.2f ms); "
                    + "the filter's own wait for the sidecar, p99 <= %.0f ms", DEFAULT_DEADLINE_MS, phases[phase], l.size(),
                    Load.percentile(l, 50), Load.percentile(l, 99), Load.percentile(l, 99) - p99Up, decisionP99[phase]);
        }
        assertEquals(0, failed, "no send failed while the sidecar hung or was dead");
        for (int phase = 1; phase < phases.length; phase++) {
            assertTrue(latencies.get(phase).size() > 100, "production continued: " + phases[phase]);
            // A correctness bound, not a benchmark: no request waits on the sidecar for much longer than the deadline
            // (a 5 s connect or request timeout would break it), with generous slack for a loaded 2-core machine.
            assertTrue(Load.percentile(latencies.get(phase), 99) < p99Up + DEFAULT_DEADLINE_MS + 250, phases[phase]);
            assertTrue(decisionP99[phase] <= 0.250 * 1000, "the filter's wait for the sidecar stays near the deadline: " + phases[phase]);
        }
        assertTrue(p25.log().stream().anyMatch(l -> l.contains("fail open") || l.contains("failed open")),
                "the proxy logged that it fails open");
        double failedOpen = p25.counter("rivven_kroxylicious_fail_open_total");
        report("outage: rivven_kroxylicious_fail_open_total %.0f on the proxy's metrics endpoint", failedOpen);
        assertTrue(failedOpen > 0, "the proxy's metrics count the fail-open answers");
    }

    /** The upper bound (ms) of the histogram bucket that holds the 99th percentile of what was added between two snapshots. */
    private static double p99Bound(java.util.TreeMap<Double, Double> before, java.util.TreeMap<Double, Double> after) {
        double total = after.lastEntry().getValue() - before.getOrDefault(after.lastKey(), 0.0);
        assertTrue(total > 0, "the filter timed its decisions");
        for (var e : after.entrySet()) {
            double count = e.getValue() - before.getOrDefault(e.getKey(), 0.0);
            if (count >= 0.99 * total) {
                return e.getKey() * 1000;
            }
        }
        return Double.POSITIVE_INFINITY;
    }

    private static void signal(String sig, long pid) throws Exception {
        assertEquals(0, new ProcessBuilder("kill", "-" + sig, String.valueOf(pid)).inheritIO().start().waitFor());
    }
}
