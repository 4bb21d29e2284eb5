package dev.rivven.kroxylicious;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/** A private redis-server on a free port, no persistence (never a Redis the test did not start). */
final class Redis implements AutoCloseable {
    final int port = Env.freePort();
    private final ChildProcess process;

    Redis(Path dir) throws Exception {
        Files.createDirectories(dir);
        process = ChildProcess.start("redis", List.of("redis-server", "--port", String.valueOf(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no"), dir, Env.logDir().resolve("redis.log"));
        process.await(l -> l.contains("Ready to accept connections"), Duration.ofSeconds(20));
    }

    String url() {
        return "redis://127.0.0.1:" + port + "/0";
    }

    @Override
    public void close() throws InterruptedException {
        process.close();
    }
}
