package dev.rivven.kroxylicious;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.Uuid;

/**
 * A real Apache Kafka broker (KRaft, broker and controller in one JVM) from the Maven Central jars, in a child JVM:
 * storage formatted by Kafka's StorageTool, then kafka.Kafka. Two listeners: PLAINTEXT and SASL_PLAINTEXT (PLAIN,
 * users alice and bob).
 */
final class KafkaBroker implements AutoCloseable {
    static final int NODE_ID = 1;
    final int plainPort = Env.freePort();
    final int saslPort = Env.freePort();
    private final int controllerPort = Env.freePort();
    private final ChildProcess process;

    KafkaBroker(Path dir) throws Exception {
        Files.createDirectories(dir);
        Path config = dir.resolve("server.properties");
        Properties p = new Properties();
        p.putAll(Map.ofEntries(
                Map.entry("process.roles", "broker,controller"),
                Map.entry("node.id", String.valueOf(NODE_ID)),
                Map.entry("controller.quorum.voters", NODE_ID + "@127.0.0.1:" + controllerPort),
                Map.entry("listeners", "PLAINTEXT://127.0.0.1:" + plainPort + ",SASL_PLAINTEXT://127.0.0.1:" + saslPort
                        + ",CONTROLLER://127.0.0.1:" + controllerPort),
                Map.entry("advertised.listeners", "PLAINTEXT://127.0.0.1:" + plainPort + ",SASL_PLAINTEXT://127.0.0.1:" + saslPort),
                Map.entry("controller.listener.names", "CONTROLLER"),
                Map.entry("inter.broker.listener.name", "PLAINTEXT"),
                Map.entry("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"),
                Map.entry("sasl.enabled.mechanisms", "PLAIN"),
                Map.entry("listener.name.sasl_plaintext.plain.sasl.jaas.config",
                        "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\" user_bob=\"bob-secret\";"),
                Map.entry("log.dirs", dir.resolve("data").toString()),
                Map.entry("num.partitions", "1"),
                Map.entry("offsets.topic.replication.factor", "1"),
                Map.entry("offsets.topic.num.partitions", "1"),
                Map.entry("transaction.state.log.replication.factor", "1"),
                Map.entry("transaction.state.log.min.isr", "1"),
                Map.entry("share.coordinator.state.topic.replication.factor", "1"),
                Map.entry("share.coordinator.state.topic.min.isr", "1"),
                Map.entry("group.initial.rebalance.delay.ms", "0"),
                Map.entry("auto.create.topics.enable", "false")));
        try (var w = Files.newBufferedWriter(config)) {
            p.store(w, "rivven e2e broker");
        }
        List<String> jvm = List.of("-Xmx768m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn");
        ChildProcess format = ChildProcess.java("kafka-storage-format", jvm, "kafka.tools.StorageTool",
                List.of("format", "-t", Uuid.randomUuid().toString(), "-c", config.toString()), dir);
        if (format.waitFor(Duration.ofSeconds(120)) != 0) {
            throw new IllegalStateException("kafka storage format failed: " + format.lines());
        }
        process = ChildProcess.java("kafka-broker", List.of("-Xmx1g", "-Dorg.slf4j.simpleLogger.defaultLogLevel=info"), "kafka.Kafka",
                List.of(config.toString()), dir);
        process.await(l -> l.contains("Kafka Server started") || l.contains("started (kafka.server.KafkaRaftServer)")
                || l.contains("Transitioning from RECOVERY to RUNNING"), Duration.ofSeconds(120));
    }

    long pid() {
        return process.process.pid();
    }

    String bootstrap() {
        return "127.0.0.1:" + plainPort;
    }

    void createTopic(String name, int partitions) throws Exception {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap()))) {
            admin.createTopics(List.of(new NewTopic(name, partitions, (short) 1))).all().get();
        }
    }

    @Override
    public void close() throws InterruptedException {
        process.close();
    }
}
