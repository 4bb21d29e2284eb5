package dev.rivven.kroxylicious;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * A Kroxylicious proxy in a child JVM with a generated YAML: virtual cluster "plain" in front of the broker's
 * PLAINTEXT listener, "sasl" in front of its SASL_PLAINTEXT one, each with the rivven filter (or none).
 */
final class Proxy implements AutoCloseable {
    final int plainPort = Env.freePortRun(3);
    final int saslPort = Env.freePortRun(3);
    final int managementPort = Env.freePort();
    private final ChildProcess process;

    /** @param filterConfig the filter's config block as YAML lines indented by 6, or null for a proxy without it */
    Proxy(String name, Path dir, KafkaBroker broker, String filterConfig) throws Exception {
        StringBuilder y = new StringBuilder();
        y.append("management:\n  bindAddress: 127.0.0.1\n  port: ").append(managementPort)
                .append("\n  endpoints:\n    prometheus: {}\n");
        y.append("virtualClusters:\n");
        cluster(y, "plain", broker.plainPort, plainPort);
        cluster(y, "sasl", broker.saslPort, saslPort);
        if (filterConfig != null) {
            y.append("filterDefinitions:\n  - name: rivven\n    type: RivvenQuota\n    config:\n").append(filterConfig);
            y.append("defaultFilters:\n  - rivven\n");
        }
        Path yaml = dir.resolve(name + ".yaml");
        Files.createDirectories(dir);
        Files.writeString(yaml, y.toString());
        process = ChildProcess.java(name, List.of("-Xmx512m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-Dorg.slf4j.simpleLogger.log.dev.rivven=info"), ProxyMain.class.getName(), List.of(yaml.toString()), dir);
        process.await(l -> l.contains("rivven-e2e: proxy started"), Duration.ofSeconds(60));
    }

    private static void cluster(StringBuilder y, String name, int upstream, int port) {
        y.append("  - name: ").append(name).append("\n")
                .append("    targetCluster:\n      bootstrapServers: 127.0.0.1:").append(upstream).append("\n")
                .append("    gateways:\n      - name: default\n        portIdentifiesNode:\n")
                .append("          bootstrapAddress: 127.0.0.1:").append(port).append("\n")
                .append("          nodeIdRanges:\n            - name: brokers\n              start: 1\n              end: 2\n");
    }

    String plainBootstrap() {
        return "127.0.0.1:" + plainPort;
    }

    String saslBootstrap() {
        return "127.0.0.1:" + saslPort;
    }

    long pid() {
        return process.process.pid();
    }

    List<String> log() {
        return process.lines();
    }

    @Override
    public void close() throws InterruptedException {
        process.close();
    }
}
