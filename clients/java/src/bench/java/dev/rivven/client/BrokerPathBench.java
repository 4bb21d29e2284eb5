package dev.rivven.client;

import io.github.bucket4j.Bandwidth;
import io.github.bucket4j.BucketConfiguration;
import io.github.bucket4j.distributed.AsyncBucketProxy;
import io.github.bucket4j.distributed.ExpirationAfterWriteStrategy;
import io.github.bucket4j.redis.lettuce.Bucket4jLettuce;
import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.async.RedisAsyncCommands;
import io.lettuce.core.codec.ByteArrayCodec;
import java.io.IOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Duration;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntFunction;
import org.junit.jupiter.api.Test;

/**
 * The quota check as a Java broker sees it (the Java twin of bench/broker-path.ts): one process, one connection,
 * 256 concurrent callers, each making its next check when the last is answered, over 64 principals. Against:
 * rivven (BrokerQuotas.request to `bin/rivven serve`), Lettuce doing INCR on a private redis-server (a floor: no
 * quota logic at all), and Bucket4j's Redis bucket on Lettuce (the rate limiter a Java developer would pick).
 * Prints one JSON line. Run: {@code mvn -B -P bench test} (README.md, "Benchmark").
 */
class BrokerPathBench {
  static final int CALLERS = 256;
  static final int PRINCIPALS = 64;
  static final long WARMUP_MS = Long.getLong("bench.warmupMs", 3000);
  static final long MEASURE_MS = Long.getLong("bench.measureMs", 5000);

  /** Latencies of one run, and its length. */
  static final class Run {
    final long[] lat = new long[16_000_000];
    final AtomicInteger n = new AtomicInteger();
    long nanos;

    void add(long ns) {
      int i = n.getAndIncrement();
      if (i < lat.length) lat[i] = ns;
    }

    Map<String, Object> summary() {
      int count = Math.min(n.get(), lat.length);
      long[] sorted = Arrays.copyOf(lat, count);
      Arrays.sort(sorted);
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("checks_per_sec", Math.round(n.get() / (nanos / 1e9)));
      m.put("p50_ms", ms(sorted, 0.5));
      m.put("p99_ms", ms(sorted, 0.99));
      m.put("max_ms", ms(sorted, 1));
      return m;
    }

    static double ms(long[] sorted, double p) {
      if (sorted.length == 0) return 0;
      return Math.round(sorted[Math.min(sorted.length - 1, (int) (sorted.length * p))] / 10_000.0) / 100.0;
    }
  }

  /** CALLERS loops of {@code check} for {@code ms}: each makes its next call when the last is answered. */
  static Run drive(IntFunction<CompletableFuture<?>> check, long ms) throws InterruptedException {
    Run run = new Run();
    long start = System.nanoTime();
    long end = start + ms * 1_000_000L;
    CountDownLatch done = new CountDownLatch(CALLERS);
    for (int c = 0; c < CALLERS; c++) {
      int first = c;
      new Object() {
        int i = first;

        void next() {
          // A loop, not recursion, while answers come at once (a completed future runs its callback here).
          while (true) {
            if (System.nanoTime() - end > 0) {
              done.countDown();
              return;
            }
            long t0 = System.nanoTime();
            CompletableFuture<?> f = check.apply(i++ % PRINCIPALS);
            if (f.isDone()) {
              run.add(System.nanoTime() - t0);
              continue;
            }
            f.whenComplete((v, e) -> {
              run.add(System.nanoTime() - t0);
              next();
            });
            return;
          }
        }
      }.next();
    }
    done.await();
    run.nanos = System.nanoTime() - start;
    return run;
  }

  static Process redisServer(int port) throws IOException, InterruptedException {
    Process p = new ProcessBuilder("redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
        .directory(Files.createTempDirectory("rivven-bench-redis-").toFile())
        .redirectOutput(ProcessBuilder.Redirect.DISCARD)
        .redirectError(ProcessBuilder.Redirect.INHERIT)
        .start();
    for (int i = 0; i < 400; i++) {
      try {
        new Socket("127.0.0.1", port).close();
        return p;
      } catch (IOException e) {
        Thread.sleep(10);
      }
    }
    throw new IOException("redis-server did not start");
  }

  static String str(int v) {
    return Integer.toString(v);
  }

  static int freePort() throws IOException {
    try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  /** a's checks answered by the sidecar (rivven) or all of b's, per second. */
  static double ratio(Map<String, Object> a, Map<String, Object> b) {
    return Math.round(((Number) a.getOrDefault("answered_per_sec", a.get("checks_per_sec"))).doubleValue() / ((Number) b.get("checks_per_sec")).doubleValue() * 100) / 100.0;
  }

  @Test
  void brokerPath() throws Exception {
    Map<String, Object> results = new LinkedHashMap<>();
    String[] names = new String[PRINCIPALS];
    for (int i = 0; i < PRINCIPALS; i++) names[i] = "tenant-" + i;
    try (Harness harness = new Harness()) {
      Map<String, Object> s = harness.ask("start_sidecar", "clock", "real", "env", Map.of("RIVVEN_QUOTAS_DEFAULTS_REQUEST_RATE", "1000000000"));
      try (QuotaClient client = QuotaClient.connect(QuotaClientOptions.builder().port((int) ((Number) s.get("port")).longValue()).build())) {
        Map<String, java.util.concurrent.atomic.LongAdder> errors = new java.util.concurrent.ConcurrentHashMap<>();
        BrokerQuotas broker = new BrokerQuotas(client, BrokerQuotasOptions.builder()
            .onError(e -> errors.computeIfAbsent(e instanceof RivvenException ? ((RivvenException) e).code().name() : e.toString(), k -> new java.util.concurrent.atomic.LongAdder()).increment())
            .build());
        drive(p -> broker.request(names[p], "app"), WARMUP_MS);
        long before = broker.failures();
        long shortBefore = broker.shortCircuited();
        Run run = drive(p -> broker.request(names[p], "app"), MEASURE_MS);
        Map<String, Object> r = run.summary();
        long failed = broker.failures() - before;
        // Checks the sidecar answered: a check answered 0 by the breaker costs nothing and says nothing.
        r.put("answered_per_sec", Math.round((run.n.get() - failed) / (run.nanos / 1e9)));
        r.put("failed_open", failed);
        r.put("short_circuited", broker.shortCircuited() - shortBefore);
        r.put("errors", errors.toString());
        results.put("rivven", r);
      }
    }
    int port = freePort();
    Process redis = redisServer(port);
    RedisClient redisClient = RedisClient.create("redis://127.0.0.1:" + port);
    try (StatefulRedisConnection<String, String> conn = redisClient.connect()) {
      RedisAsyncCommands<String, String> async = conn.async();
      drive(p -> async.incr(names[p]).toCompletableFuture(), WARMUP_MS);
      results.put("lettuce_incr", drive(p -> async.incr(names[p]).toCompletableFuture(), MEASURE_MS).summary());
      // Lettuce's manual pipelining: commands queue without a flush, and one thread flushes whatever queued, so a
      // write carries many commands (its best case here; the default above flushes every command).
      conn.setAutoFlushCommands(false);
      java.util.concurrent.atomic.AtomicBoolean flushing = new java.util.concurrent.atomic.AtomicBoolean(true);
      Thread flusher = new Thread(() -> {
        while (flushing.get()) {
          conn.flushCommands();
          java.util.concurrent.locks.LockSupport.parkNanos(20_000);
        }
      }, "lettuce-flusher");
      flusher.start();
      drive(p -> async.incr(names[p]).toCompletableFuture(), WARMUP_MS);
      results.put("lettuce_incr_pipelined", drive(p -> async.incr(names[p]).toCompletableFuture(), MEASURE_MS).summary());
      flushing.set(false);
      flusher.join();
      conn.setAutoFlushCommands(true);
      try (StatefulRedisConnection<byte[], byte[]> bytes = redisClient.connect(ByteArrayCodec.INSTANCE)) {
        var proxies = Bucket4jLettuce.casBasedBuilder(bytes)
            .expirationAfterWrite(ExpirationAfterWriteStrategy.basedOnTimeForRefillingBucketUpToMax(Duration.ofSeconds(10)))
            .build()
            .asAsync();
        BucketConfiguration config = BucketConfiguration.builder()
            .addLimit(Bandwidth.builder().capacity(1_000_000_000L).refillGreedy(1_000_000_000L, Duration.ofSeconds(1)).build())
            .build();
        AsyncBucketProxy[] buckets = new AsyncBucketProxy[PRINCIPALS];
        for (int i = 0; i < PRINCIPALS; i++) buckets[i] = proxies.builder().build(("bench-" + names[i]).getBytes(StandardCharsets.UTF_8), () -> CompletableFuture.completedFuture(config));
        drive(p -> buckets[p].tryConsume(1), WARMUP_MS);
        results.put("bucket4j_redis", drive(p -> buckets[p].tryConsume(1), MEASURE_MS).summary());
      }
    } finally {
      redisClient.shutdown(0, 2, TimeUnit.SECONDS);
      redis.destroy();
      redis.waitFor();
    }
    @SuppressWarnings("unchecked")
    Map<String, Object> rv = (Map<String, Object>) results.get("rivven");
    @SuppressWarnings("unchecked")
    Map<String, Object> incr = (Map<String, Object>) results.get("lettuce_incr");
    @SuppressWarnings("unchecked")
    Map<String, Object> b4j = (Map<String, Object>) results.get("bucket4j_redis");
    @SuppressWarnings("unchecked")
    Map<String, Object> piped = (Map<String, Object>) results.get("lettuce_incr_pipelined");
    results.put("rivven_vs_lettuce_incr", ratio(rv, incr));
    results.put("rivven_vs_lettuce_incr_pipelined", ratio(rv, piped));
    results.put("rivven_vs_bucket4j_redis", ratio(rv, b4j));
    results.put("java", System.getProperty("java.version"));
    results.put("cores", Runtime.getRuntime().availableProcessors());
    results.put("load_average", java.lang.management.ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
    System.out.println("BENCH " + Json.write(results));
  }
}
