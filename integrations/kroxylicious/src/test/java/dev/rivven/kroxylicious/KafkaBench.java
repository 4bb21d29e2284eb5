package dev.rivven.kroxylicious;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * The benchmark of the README's Kafka section, one run side by side: direct to the broker, through Kroxylicious
 * without the filter, and through it with the filter (a sidecar answering every request; quotas unlimited, so what is
 * measured is the cost of asking). Throughput at saturation with Kafka's own perf tools, p50/p99 at a fixed rate, and
 * CPU seconds per MB of the proxy, the sidecar and the broker (from /proc). Run: integrations/kroxylicious/bench.sh.
 */
public final class KafkaBench {
    private static final int RECORD = 1000;
    private static final int SATURATION_RECORDS = Integer.getInteger("bench.records", 100_000);
    private static final int RATE = Integer.getInteger("bench.rate", 1000);
    private static final int RATE_SECONDS = Integer.getInteger("bench.seconds", 10);
    private static final int ROUNDS = Integer.getInteger("bench.rounds", 3);

    private KafkaBench() {
    }

    record Target(String name, String bootstrap, long proxyPid) {
    }

    public static void main(String[] args) throws Exception {
        Path dir = Files.createTempDirectory("rivven-kafka-bench-");
        try (KafkaBroker broker = new KafkaBroker(dir.resolve("kafka"));
             Sidecar sidecar = new Sidecar("bench-sidecar", dir.resolve("sidecar"), null);
             Proxy bare = new Proxy("bench-proxy-bare", dir.resolve("bare"), broker, null);
             Proxy filtered = new Proxy("bench-proxy-filter", dir.resolve("filter"), broker,
                     KafkaQuotaE2ETest.filterConfig(sidecar.address, KafkaQuotaE2ETest.DEFAULT_DEADLINE_MS))) {
            long brokerPid = brokerPid(broker);
            List<Target> targets = List.of(new Target("direct to the broker", broker.bootstrap(), -1),
                    new Target("Kroxylicious, no filter", bare.plainBootstrap(), bare.pid()),
                    new Target("Kroxylicious + rivven filter", filtered.plainBootstrap(), filtered.pid()));
            // Rounds interleave the paths, so a burst of load from elsewhere on the machine does not land on one
            // path only; each cell is the median of its rounds.
            Map<String, List<double[]>> runs = new LinkedHashMap<>();
            int n = 0;
            // Round 0 warms every JVM's JIT on every path (the proxies' first round cost up to ten times the CPU per GB
            // of later ones) and is not counted.
            for (int round = 0; round <= ROUNDS; round++) {
                for (Target t : targets) {
                    double[] m = measure(broker, sidecar, brokerPid, t, "bench-" + n++, dir);
                    if (round > 0) {
                        runs.computeIfAbsent(t.name, k -> new ArrayList<>()).add(m);
                    }
                    System.out.println("bench: round " + round + (round == 0 ? " (warm-up)" : "") + ", " + t.name + ": "
                            + java.util.Arrays.toString(m));
                }
            }
            String table = table(runs);
            System.out.println(table);
            Files.writeString(Env.logDir().resolve("bench-results.md"), table);
        }
        finally {
            Env.deleteTree(dir);
        }
    }

    /**
     * One path once: produce MB/s, its CPU s/GB (proxy, sidecar, broker), fetch MB/s, its CPU s/GB, produce p50 and
     * p99 ms, produce-to-consume p50 and p99 ms.
     */
    private static double[] measure(KafkaBroker broker, Sidecar sidecar, long brokerPid, Target t, String topic, Path dir) throws Exception {
        broker.createTopic(topic, 1);
        double mb = SATURATION_RECORDS * (double) RECORD / 1e6;
        // Saturation, produce: Kafka's producer performance tool.
        long[] cpu0 = cpu(t.proxyPid, sidecar.pid(), brokerPid);
        ChildProcess perf = ChildProcess.java("bench-producer-perf", List.of("-Xmx512m"), "org.apache.kafka.tools.ProducerPerformance",
                List.of("--topic", topic, "--num-records", String.valueOf(SATURATION_RECORDS), "--record-size", String.valueOf(RECORD),
                        "--throughput", "-1", "--producer-props", "bootstrap.servers=" + t.bootstrap, "acks=1", "linger.ms=5",
                        "batch.size=65536"),
                dir);
        perf.waitFor(Duration.ofMinutes(5));
        long[] cpu1 = cpu(t.proxyPid, sidecar.pid(), brokerPid);
        double produceMbs = Double.parseDouble(group(perf.lines(), Pattern.compile("\\(([0-9.]+) MB/sec\\)"), "producer-perf"));
        double[] produceCpu = cpuPerGb(cpu0, cpu1, mb);
        // Saturation, fetch: Kafka's consumer performance tool reads what was just produced.
        cpu0 = cpu(t.proxyPid, sidecar.pid(), brokerPid);
        ChildProcess cperf = ChildProcess.java("bench-consumer-perf", List.of("-Xmx512m"), "org.apache.kafka.tools.ConsumerPerformance",
                List.of("--bootstrap-server", t.bootstrap, "--topic", topic, "--messages", String.valueOf(SATURATION_RECORDS), "--timeout",
                        "60000"),
                dir);
        cperf.waitFor(Duration.ofMinutes(5));
        cpu1 = cpu(t.proxyPid, sidecar.pid(), brokerPid);
        double fetchMbs = consumerMbPerSec(cperf.lines());
        double[] fetchCpu = cpuPerGb(cpu0, cpu1, mb);
        double[] latency = fixedRate(broker, t, topic + "-rate");
        return new double[] { produceMbs, produceCpu[0], produceCpu[1], produceCpu[2], fetchMbs, fetchCpu[0], fetchCpu[1], fetchCpu[2],
            latency[0], latency[1], latency[2], latency[3] };
    }

    /** Latency at RATE records/s for RATE_SECONDS: produce send-to-ack, and produce-to-consume through the target. */
    private static double[] fixedRate(KafkaBroker broker, Target t, String topic) throws Exception {
        broker.createTopic(topic, 1);
        List<Double> produce = new ArrayList<>();
        List<Double> endToEnd = java.util.Collections.synchronizedList(new ArrayList<>());
        AtomicBoolean stop = new AtomicBoolean();
        Map<String, Object> cp = new java.util.HashMap<>();
        cp.put("bootstrap.servers", t.bootstrap);
        cp.put("client.id", "bench-consumer");
        cp.put("key.deserializer", ByteArrayDeserializer.class);
        cp.put("value.deserializer", ByteArrayDeserializer.class);
        Thread consumer = new Thread(() -> {
            try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(cp)) {
                c.assign(List.of(new TopicPartition(topic, 0)));
                c.seekToBeginning(List.of(new TopicPartition(topic, 0)));
                while (!stop.get()) {
                    for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(50))) {
                        long sent = ByteBuffer.wrap(r.value()).getLong();
                        endToEnd.add((System.nanoTime() - sent) / 1e6);
                    }
                }
            }
        });
        consumer.start();
        Thread.sleep(2000); // the consumer has its assignment before the first record goes out
        Map<String, Object> pp = Load.producerProps(t.bootstrap, "bench-producer");
        pp.put("linger.ms", 0);
        try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(pp)) {
            p.partitionsFor(topic);
            long interval = TimeUnit.SECONDS.toNanos(1) / RATE;
            long next = System.nanoTime();
            long end = next + TimeUnit.SECONDS.toNanos(RATE_SECONDS);
            while (next < end) {
                long wait = next - System.nanoTime();
                if (wait > 0) {
                    TimeUnit.NANOSECONDS.sleep(wait);
                }
                byte[] value = new byte[RECORD];
                long sent = System.nanoTime();
                ByteBuffer.wrap(value).putLong(sent);
                p.send(new ProducerRecord<>(topic, value), (md, e) -> {
                    if (e == null) {
                        synchronized (produce) {
                            produce.add((System.nanoTime() - sent) / 1e6);
                        }
                    }
                });
                next += interval;
            }
            p.flush();
        }
        Thread.sleep(1000);
        stop.set(true);
        consumer.join();
        synchronized (produce) {
            return new double[] { Load.percentile(produce, 50), Load.percentile(produce, 99), Load.percentile(endToEnd, 50),
                Load.percentile(endToEnd, 99) };
        }
    }

    private static String table(Map<String, List<double[]>> runs) {
        StringBuilder b = new StringBuilder();
        b.append("| path | produce MB/s (saturation) | CPU s/GB produce: proxy / sidecar / broker | fetch MB/s (saturation) | CPU s/GB fetch: proxy / sidecar / broker | produce p50 / p99 ms at ")
                .append(RATE).append("/s | produce-to-consume p50 / p99 ms at ").append(RATE).append("/s |\n");
        b.append("|---|---|---|---|---|---|---|\n");
        runs.forEach((name, rs) -> {
            double[] m = new double[rs.get(0).length];
            for (int i = 0; i < m.length; i++) {
                final int col = i;
                m[i] = median(rs.stream().mapToDouble(r -> r[col]).toArray());
            }
            b.append("| ").append(name).append(" | %.1f | %s / %.1f / %.1f | %.1f | %s / %.1f / %.1f | %.2f / %.1f | %.2f / %.1f |\n".formatted(
                    m[0], Double.isNaN(m[1]) ? "-" : "%.1f".formatted(m[1]), m[2], m[3], m[4], Double.isNaN(m[5]) ? "-" : "%.1f".formatted(m[5]),
                    m[6], m[7], m[8], m[9], m[10], m[11]));
        });
        b.append("\nMedians of ").append(ROUNDS).append(" interleaved rounds after a warm-up round; ").append(SATURATION_RECORDS).append(" records of ")
                .append(RECORD).append(" B per saturation run; fixed rate ").append(RATE).append(" records/s for ").append(RATE_SECONDS)
                .append(" s; load average at the end: ").append(loadAverage()).append("; ").append(Runtime.getRuntime().availableProcessors())
                .append(" cores; Java ").append(System.getProperty("java.version")).append("\n");
        return b.toString();
    }

    private static double median(double[] values) {
        double[] v = values.clone();
        java.util.Arrays.sort(v);
        return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    }

    private static String group(List<String> lines, Pattern p, String what) {
        String found = null;
        for (String l : lines) {
            Matcher m = p.matcher(l);
            if (m.find()) {
                found = m.group(1);
            }
        }
        if (found == null) {
            throw new IllegalStateException(what + " printed no result: " + lines);
        }
        return found;
    }

    private static double consumerMbPerSec(List<String> lines) {
        // CSV: start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, ...
        for (String l : lines) {
            String[] f = l.split(",\\s*");
            if (f.length >= 4 && f[3].matches("[0-9.]+") && f[0].matches("\\d{4}-.*")) {
                return Double.parseDouble(f[3]) * 1.048576; // the tool's MB are MiB
            }
        }
        throw new IllegalStateException("consumer-perf printed no result: " + lines);
    }

    /** CPU seconds (user + system) of each pid so far; -1 for none. */
    private static long[] cpu(long... pids) throws Exception {
        long[] ticks = new long[pids.length];
        for (int i = 0; i < pids.length; i++) {
            if (pids[i] <= 0) {
                ticks[i] = -1;
                continue;
            }
            String stat = Files.readString(Path.of("/proc", String.valueOf(pids[i]), "stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            ticks[i] = Long.parseLong(f[11]) + Long.parseLong(f[12]);
        }
        return ticks;
    }

    /** CPU seconds per GB moved of each process; NaN for none. Clock ticks are 1/100 s on Linux. */
    private static double[] cpuPerGb(long[] before, long[] after, double mb) {
        double[] out = new double[before.length];
        for (int i = 0; i < before.length; i++) {
            out[i] = before[i] < 0 ? Double.NaN : (after[i] - before[i]) / 100.0 / (mb / 1000);
        }
        return out;
    }

    private static long brokerPid(KafkaBroker broker) {
        return broker.pid();
    }

    private static String loadAverage() {
        try {
            return Files.readString(Path.of("/proc/loadavg")).split(" ")[0];
        }
        catch (Exception e) {
            return "?";
        }
    }
}
