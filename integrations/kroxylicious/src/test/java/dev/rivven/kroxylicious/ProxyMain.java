package dev.rivven.kroxylicious;

import java.nio.file.Files;
import java.nio.file.Path;

import io.kroxylicious.proxy.KafkaProxy;
import io.kroxylicious.proxy.config.ConfigParser;
import io.kroxylicious.proxy.internal.config.Features;

/**
 * Starts Kroxylicious from a YAML file, as the kroxylicious-app launcher does (that launcher's jar is not on the
 * Maven Central the project reaches; the runtime is). Prints one line when the proxy listens.
 */
public final class ProxyMain {
    private ProxyMain() {
    }

    public static void main(String[] args) throws Exception {
        ConfigParser parser = new ConfigParser();
        var config = parser.parseConfiguration(Files.readString(Path.of(args[0])));
        try (KafkaProxy proxy = new KafkaProxy(parser, config, Features.defaultFeatures())) {
            proxy.startup();
            System.out.println("rivven-e2e: proxy started");
            proxy.block();
        }
    }
}
