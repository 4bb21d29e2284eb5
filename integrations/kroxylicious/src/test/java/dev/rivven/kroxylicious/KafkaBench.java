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
    private static final int SATURATION_RECORDS = Integer.getInteger("bench.records", 150_000);
    private static final int RATE = Integer.getInteger("bench.rate", 1000);
    private static final int RATE_SECONDS = Integer.getInteger("bench.seconds", 10);

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
            // Warm the broker's JIT first, so the first path measured does not pay for it.
            broker.createTopic("bench-warmup", 1);
            ChildProcess warm = ChildProcess.java("bench-warmup", List.of("-Xmx512m"), "org.apache.kafka.tools.ProducerPerformance",
                    List.of("--topic", "bench-warmup", "--num-records", String.valueOf(SATURATION_RECORDS / 2), "--record-size",
                            String.valueOf(RECORD), "--throughput", "-1", "--producer-props", "bootstrap.servers=" + broker.bootstrap()),
                    dir);
            warm.waitFor(Duration.ofMinutes(5));
            Map<String, List<String>> rows = new LinkedHashMap<>();
            int n = 0;
            for (Target t : targets) {
                String topic = "bench-" + n++;
                broker.createTopic(topic, 1);
                List<String> row = new ArrayList<>();
                // Saturation, produce: Kafka's producer performance tool.
                long[] cpu0 = cpu(t.proxyPid, sidecar.pid(), brokerPid);
                ChildProcess perf = ChildProcess.java("bench-producer-perf-" + n, List.of("-Xmx512m"), "org.apache.kafka.tools.ProducerPerformance",
                        List.of("--topic", topic, "--num-records", String.valueOf(SATURATION_RECORDS), "--record-size", String.valueOf(RECORD),
                                "--throughput", "-1", "--producer-props", "bootstrap.servers=" + t.bootstrap, "acks=1", "linger.ms=5",
                                "batch.size=65536"),
                        dir);
                perf.waitFor(Duration.ofMinutes(5));
                long[] cpu1 = cpu(t.proxyPid, sidecar.pid(), brokerPid);
                double mb = SATURATION_RECORDS * (double) RECORD / 1e6;
                row.add(group(perf.lines(), Pattern.compile("\\(([0-9.]+) MB/sec\\)"), "producer-perf"));
                row.add(cpuPerMb(cpu0, cpu1, mb));
                // Saturation, fetch: Kafka's consumer performance tool reads what was just produced.
                cpu0 = cpu(t.proxyPid, sidecar.pid(), brokerPid);
                ChildProcess cperf = ChildProcess.java("bench-consumer-perf-" + n, List.of("-Xmx512m"), "org.apache.kafka.tools.ConsumerPerformance",
                        List.of("--bootstrap-server", t.bootstrap, "--topic", topic, "--messages", String.valueOf(SATURATION_RECORDS),
                                "--timeout", "60000"),
                        dir);
                cperf.waitFor(Duration.ofMinutes(5));
                cpu1 = cpu(t.proxyPid, sidecar.pid(), brokerPid);
                row.add(consumerMbPerSec(cperf.lines()));
                row.add(cpuPerMb(cpu0, cpu1, mb));
                // Fixed rate: produce through the target, a consumer through the target reading it.
                row.addAll(fixedRate(broker, t, topic + "-rate"));
                rows.put(t.name, row);
                System.out.println("bench: " + t.name + " " + row);
            }
            String table = table(rows);
            System.out.println(table);
            Files.writeString(Env.logDir().resolve("bench-results.md"), table);
        }
    }

    /** Latency at RATE records/s for RATE_SECONDS: produce send-to-ack, and produce-to-consume through the target. */
    private static List<String> fixedRate(KafkaBroker broker, Target t, String topic) throws Exception {
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
            return List.of("%.2f / %.2f".formatted(Load.percentile(produce, 50), Load.percentile(produce, 99)),
                    "%.2f / %.2f".formatted(Load.percentile(endToEnd, 50), Load.percentile(endToEnd, 99)));
        }
    }

    private static String table(Map<String, List<String>> rows) {
        StringBuilder b = new StringBuilder();
        b.append("| path | produce MB/s (saturation) | CPU s/GB produce: proxy / sidecar / broker | fetch MB/s (saturation) | CPU s/GB fetch: proxy / sidecar / broker | produce p50 / p99 ms at ")
                .append(RATE).append("/s | produce-to-consume p50 / p99 ms at ").append(RATE).append("/s |\n");
        b.append("|---|---|---|---|---|---|---|\n");
        rows.forEach((name, r) -> b.append("| ").append(name).append(" | ").append(String.join(" | ", r)).append(" |\n"));
        b.append("\n").append(SATURATION_RECORDS).append(" records of ").append(RECORD).append(" B per saturation run; fixed rate ")
                .append(RATE).append(" records/s for ").append(RATE_SECONDS).append(" s; load average at the end: ")
                .append(loadAverage()).append("; ").append(Runtime.getRuntime().availableProcessors()).append(" cores; Java ")
                .append(System.getProperty("java.version")).append("\n");
        return b.toString();
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

    private static String consumerMbPerSec(List<String> lines) {
        // CSV: start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, ...
        for (String l : lines) {
            String[] f = l.split(",\\s*");
            if (f.length >= 4 && f[3].matches("[0-9.]+") && f[0].matches("\\d{4}-.*")) {
                return "%.1f".formatted(Double.parseDouble(f[3]) * 1.048576);
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

    private static String cpuPerMb(long[] before, long[] after, double mb) {
        List<String> parts = new ArrayList<>();
        for (int i = 0; i < before.length; i++) {
            // Clock ticks are 1/100 s on Linux; per GB reads better than per MB at these sizes.
            parts.add(before[i] < 0 ? "-" : "%.1f".formatted((after[i] - before[i]) / 100.0 / (mb / 1000)));
        }
        return String.join(" / ", parts);
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
