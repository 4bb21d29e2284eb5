package dev.rivven.kroxylicious;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/** kafka-clients load for the end-to-end tests: greedy producers and consumers that log when bytes arrived. */
final class Load {
    /** Bytes acknowledged (or consumed) and when (System.nanoTime()). */
    record Sample(long atNanos, int bytes) {
    }

    /**
     * Where a quota window starts: once this many bytes were acknowledged. A fresh bucket lets one window's quota
     * (1 MB) through at once; past 1.5 MB the client has been throttled, and what follows is the quota's steady
     * rate (the sidecar's P2 holds "from the first Throttled reply on"). Measuring from a fixed time after the start
     * instead lets the burst fall inside the window when a loaded machine delays the first acknowledgements.
     */
    static final long AFTER_BYTES = 1_500_000;

    /** A run's samples. */
    record Result(List<Sample> samples, double throttleTimeMaxMs) {
        static Result merge(Result a, Result b) {
            List<Sample> all = new ArrayList<>(a.samples);
            all.addAll(b.samples);
            return new Result(all, Math.max(a.throttleTimeMaxMs, b.throttleTimeMaxMs));
        }

        /** When the acknowledged bytes reached {@code bytes} (nanoTime). */
        long crossing(long bytes) {
            List<Sample> sorted = new ArrayList<>(samples);
            sorted.sort(java.util.Comparator.comparingLong(Sample::atNanos));
            long sum = 0;
            for (Sample s : sorted) {
                sum += s.bytes;
                if (sum >= bytes) {
                    return s.atNanos;
                }
            }
            throw new AssertionError("only " + sum + " bytes were acknowledged, fewer than " + bytes);
        }

        long lastNanos() {
            return samples.stream().mapToLong(Sample::atNanos).max().orElse(0);
        }

        /** Bytes per second in [from, to) (nanoTime). */
        double rateBetween(long from, long to) {
            long bytes = 0;
            for (Sample s : samples) {
                if (s.atNanos >= from && s.atNanos < to) {
                    bytes += s.bytes;
                }
            }
            return bytes / ((to - from) / 1e9);
        }

        /** Bytes per second over {@code seconds} from the window's start ({@link #AFTER_BYTES} acknowledged). */
        double rate(double seconds) {
            long from = crossing(AFTER_BYTES);
            return rateBetween(from, from + (long) (seconds * 1e9));
        }

        /** Bytes per second in each second of the window, for the report. */
        String perSecond(int seconds) {
            long from = crossing(AFTER_BYTES);
            StringBuilder b = new StringBuilder();
            for (int t = 0; t < seconds; t++) {
                long at = from + t * 1_000_000_000L;
                b.append(b.length() == 0 ? "" : " ").append("%.2f".formatted(rateBetween(at, at + 1_000_000_000L) / 1e6));
            }
            return b.toString();
        }
    }

    private Load() {
    }

    static Map<String, Object> producerProps(String bootstrap, String clientId) {
        Map<String, Object> p = new HashMap<>();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, clientId);
        p.put(ProducerConfig.ACKS_CONFIG, "1");
        // Large batches keep a greedy producer able to outrun 1 MB/s even when a loaded 2-core machine makes each
        // round trip slow (5 in flight x 128 KiB per round trip); a 128 KiB batch is still 1/8 of the quota's window.
        p.put(ProducerConfig.LINGER_MS_CONFIG, 10);
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, 128 * 1024);
        p.put(ProducerConfig.BUFFER_MEMORY_CONFIG, 4 * 1024 * 1024);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        return p;
    }

    static Map<String, Object> sasl(Map<String, Object> props, String user, String password) {
        props.put("security.protocol", "SASL_PLAINTEXT");
        props.put("sasl.mechanism", "PLAIN");
        props.put("sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"" + user
                + "\" password=\"" + password + "\";");
        return props;
    }

    /** Sends 1000-byte records as fast as the producer accepts them until {@code seconds} after the window starts. */
    static Result produce(Map<String, Object> props, String topic, double seconds) {
        var samples = new ConcurrentLinkedQueue<Sample>();
        var acked = new java.util.concurrent.atomic.AtomicLong();
        var first = new java.util.concurrent.atomic.AtomicLong();
        byte[] value = new byte[1000];
        long cap = System.nanoTime() + (long) ((seconds + 60) * 1e9);
        double throttleMax;
        KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props);
        try {
            while (System.nanoTime() < cap && (first.get() == 0 || System.nanoTime() - first.get() < (long) (seconds * 1e9))) {
                producer.send(new ProducerRecord<>(topic, value), (md, e) -> {
                    if (e == null) {
                        long now = System.nanoTime();
                        if (acked.addAndGet(md.serializedValueSize()) >= AFTER_BYTES) {
                            first.compareAndSet(0, now);
                        }
                        samples.add(new Sample(now, md.serializedValueSize()));
                    }
                });
            }
            throttleMax = metric(producer.metrics(), "produce-throttle-time-max");
        }
        finally {
            producer.close(Duration.ZERO);
        }
        return new Result(new ArrayList<>(samples), throttleMax);
    }

    /** Consumes {@code topic} from the beginning until {@code seconds} after the window starts. */
    static Result consume(String bootstrap, String clientId, String topic, double seconds, int maxPartitionFetchBytes) {
        Map<String, Object> p = new HashMap<>();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, maxPartitionFetchBytes);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
        List<Sample> samples = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            long cap = System.nanoTime() + (long) ((seconds + 60) * 1e9);
            long first = 0;
            long consumed = 0;
            while (System.nanoTime() < cap && (first == 0 || System.nanoTime() - first < (long) (seconds * 1e9))) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(100))) {
                    long now = System.nanoTime();
                    consumed += r.serializedValueSize();
                    first = first == 0 && consumed >= AFTER_BYTES ? now : first;
                    samples.add(new Sample(now, r.serializedValueSize()));
                }
            }
            return new Result(samples, metric(consumer.metrics(), "fetch-throttle-time-max"));
        }
    }

    private static double metric(Map<org.apache.kafka.common.MetricName, ? extends org.apache.kafka.common.Metric> metrics, String name) {
        double max = 0;
        for (var e : metrics.entrySet()) {
            if (e.getKey().name().equals(name) && e.getValue().metricValue() instanceof Double d && !d.isNaN()) {
                max = Math.max(max, d);
            }
        }
        return max;
    }

    /** The p-th percentile (0..100) of the values, in the values' unit. */
    static double percentile(List<Double> values, double p) {
        if (values.isEmpty()) {
            return Double.NaN;
        }
        List<Double> sorted = new ArrayList<>(values);
        Collections.sort(sorted);
        int i = (int) Math.ceil(p / 100.0 * sorted.size()) - 1;
        return sorted.get(Math.max(0, Math.min(sorted.size() - 1, i)));
    }
}
