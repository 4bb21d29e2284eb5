package dev.rivven.kroxylicious;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;

/** Paths and ports the end-to-end tests share. */
final class Env {
    private static Path logDir;

    private Env() {
    }

    /** Removes a directory tree the tests made (a broker's log segments add up over runs). */
    static void deleteTree(Path root) {
        if (root == null || !Files.exists(root)) {
            return;
        }
        try (var paths = Files.walk(root)) {
            paths.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
        catch (IOException e) {
            // best effort: it is a temporary directory
        }
    }

    /** The repository root (bin/rivven lives there). */
    static Path repo() {
        return Path.of(System.getProperty("rivven.repo", "../..")).toAbsolutePath().normalize();
    }

    static String classpath() {
        try {
            String deps = Files.readString(Path.of(System.getProperty("rivven.classpath.file", "target/test-classpath.txt"))).trim();
            String own = System.getProperty("rivven.classes", "target/classes" + java.io.File.pathSeparator + "target/test-classes");
            return own + java.io.File.pathSeparator + deps;
        }
        catch (IOException e) {
            throw new UncheckedIOException("run the tests through Maven (mvn test): it writes the classpath file", e);
        }
    }

    static synchronized Path logDir() {
        if (logDir == null) {
            try {
                logDir = Files.createDirectories(Path.of("target", "e2e-logs").toAbsolutePath());
            }
            catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return logDir;
    }

    /** A port free now; Kroxylicious and Kafka need a fixed port in their configuration. */
    static int freePort() {
        try (ServerSocket s = new ServerSocket(0)) {
            s.setReuseAddress(true);
            return s.getLocalPort();
        }
        catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Three consecutive free ports (a proxy gateway: bootstrap, then one per broker node id 1..2). */
    static int freePortRun(int count) {
        for (int attempt = 0; attempt < 50; attempt++) {
            int base = freePort();
            if (base + count > 65535) {
                continue;
            }
            boolean ok = true;
            for (int i = 1; i < count && ok; i++) {
                try (ServerSocket s = new ServerSocket(base + i)) {
                    s.setReuseAddress(true);
                }
                catch (IOException e) {
                    ok = false;
                }
            }
            if (ok) {
                return base;
            }
        }
        throw new IllegalStateException("no run of " + count + " free ports");
    }
}
