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

    /**
     * A port free now; Kroxylicious and Kafka need a fixed port in their configuration. It comes from below the
     * kernel's ephemeral range: a port from that range can be handed to any outgoing connection (the broker's own
     * clients, a test running beside this one) between this check and the process that binds it, a port below it
     * only to a process asking for it by number.
     */
    static int freePort() {
        return freePortRun(1);
    }

    /**
     * Every port this JVM has handed out. A port is bound by its process only later (a broker's three, a proxy's
     * seven are all chosen before it starts): the bind check alone would hand such a port out again.
     */
    private static final java.util.Set<Integer> HANDED_OUT = new java.util.HashSet<>();

    /** {@code count} consecutive free ports (a proxy gateway: bootstrap, then one per broker node id 1..2). */
    static synchronized int freePortRun(int count) {
        int high = ephemeralLow() - count;
        int low = 10_000;
        var random = java.util.concurrent.ThreadLocalRandom.current();
        for (int attempt = 0; attempt < 200; attempt++) {
            int base = random.nextInt(low, high);
            boolean ok = true;
            for (int i = 0; i < count && ok; i++) {
                if (HANDED_OUT.contains(base + i)) {
                    ok = false;
                    break;
                }
                try (ServerSocket s = new ServerSocket()) {
                    s.setReuseAddress(true);
                    s.bind(new java.net.InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), base + i));
                }
                catch (IOException e) {
                    ok = false;
                }
            }
            if (ok) {
                for (int i = 0; i < count; i++) {
                    HANDED_OUT.add(base + i);
                }
                return base;
            }
        }
        throw new IllegalStateException("no run of " + count + " free ports below " + high);
    }

    /** The low end of the kernel's ephemeral port range (Linux's default when it cannot be read or is odd). */
    static int ephemeralLow() {
        // A Scanner, not Files.readString: on JDK 17 that reads procfs files short (this one came back as "3").
        try (var in = new java.util.Scanner(Path.of("/proc/sys/net/ipv4/ip_local_port_range"))) {
            int low = in.nextInt();
            return low >= 12_000 ? low : 32768;
        }
        catch (IOException | RuntimeException e) {
            return 32768;
        }
    }
}
