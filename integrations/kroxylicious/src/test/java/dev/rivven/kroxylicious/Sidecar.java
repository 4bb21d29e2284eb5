package dev.rivven.kroxylicious;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The rivven sidecar from this repository ({@code node bin/rivven serve}, built by {@code npm run build}) on a free
 * port, defaults unlimited (the tests set the quotas they measure), optionally in fleet mode on a Redis.
 */
final class Sidecar implements AutoCloseable {
    private static final Pattern ADDRESS = Pattern.compile("\"address\":\"([^\"]+)\"");
    final String address;
    private final ChildProcess process;
    private final Path dir;

    Sidecar(String name, Path dir, String redisUrl) throws Exception {
        this.dir = Files.createDirectories(dir);
        StringBuilder y = new StringBuilder();
        y.append("server:\n  host: 127.0.0.1\n  port: 0\n");
        y.append("metrics:\n  enabled: false\n");
        y.append("quotas:\n  defaults:\n    produce_bytes_rate: unlimited\n    consume_bytes_rate: unlimited\n    request_rate: unlimited\n");
        y.append("storage:\n  data_dir: ").append(dir.resolve("data")).append("\n");
        if (redisUrl != null) {
            y.append("  backend: redis\n  redis:\n    url: ").append(redisUrl).append("\n    key_prefix: \"rivven-e2e:\"\n");
            y.append("fleet:\n  enabled: true\n  node_id: ").append(name).append("\n");
        }
        Path yaml = dir.resolve("rivven.yaml");
        Files.writeString(yaml, y.toString());
        process = ChildProcess.start(name, List.of("node", Env.repo().resolve("bin/rivven").toString(), "serve", "--config", yaml.toString()),
                dir, Env.logDir().resolve(name + ".log"));
        String line = process.await(l -> l.contains("rivven listening"), Duration.ofSeconds(30));
        Matcher m = ADDRESS.matcher(line);
        if (!m.find()) {
            throw new IllegalStateException("no address in: " + line);
        }
        address = m.group(1);
    }

    /** Runs {@code node bin/rivven <args> --server <this>} and returns its output; fails on a non-zero exit. */
    String cli(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("node", Env.repo().resolve("bin/rivven").toString()));
        cmd.addAll(List.of(args));
        cmd.add("--server");
        cmd.add(address);
        ChildProcess p = ChildProcess.start("rivven-cli", cmd, dir, Env.logDir().resolve("rivven-cli.log"));
        int rc = p.waitFor(Duration.ofSeconds(30));
        String out = String.join("\n", p.allLines(Duration.ofSeconds(30)));
        if (rc != 0) {
            throw new IllegalStateException("rivven " + String.join(" ", args) + " exited " + rc + ": " + out);
        }
        return out;
    }

    long pid() {
        return process.process.pid();
    }

    void kill() throws InterruptedException {
        process.kill();
    }

    @Override
    public void close() throws InterruptedException {
        process.close();
    }
}
