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

    /** The proxy's Prometheus text (Kroxylicious' management endpoint), where the filter's counters are too. */
    String metrics() throws Exception {
        var client = java.net.http.HttpClient.newHttpClient();
        var req = java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + managementPort + "/metrics")).build();
        return client.send(req, java.net.http.HttpResponse.BodyHandlers.ofString()).body();
    }

    /** The value of a counter series whose line starts with {@code prefix}, summed; 0 when absent. */
    double counter(String prefix) throws Exception {
        double sum = 0;
        for (String line : metrics().split("\n")) {
            if (line.startsWith(prefix)) {
                sum += Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
            }
        }
        return sum;
    }

    /** The cumulative counts of a Prometheus histogram, by upper bound in seconds (+Inf last). */
    java.util.TreeMap<Double, Double> histogram(String name) throws Exception {
        var buckets = new java.util.TreeMap<Double, Double>();
        var p = java.util.regex.Pattern.compile("^" + name + "_bucket\\{.*le=\"([^\"]+)\".*\\} (\\S+)$");
        for (String line : metrics().split("\n")) {
            var m = p.matcher(line);
            if (m.find()) {
                double le = m.group(1).equals("+Inf") ? Double.POSITIVE_INFINITY : Double.parseDouble(m.group(1));
                buckets.merge(le, Double.parseDouble(m.group(2)), Double::sum);
            }
        }
        return buckets;
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
