package dev.rivven.kroxylicious;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/** A process a test started: its output kept (and tee'd to a log file) so a test can wait for a line. */
final class ChildProcess implements AutoCloseable {
    final Process process;
    final String name;
    private final ConcurrentLinkedQueue<String> lines = new ConcurrentLinkedQueue<>();
    private final List<Watcher> watchers = new ArrayList<>();
    /** Reads the process's output into {@code lines} until the process closes it (it ended). */
    private final Thread reader;

    private record Watcher(Predicate<String> match, CompletableFuture<String> found) {
    }

    private ChildProcess(String name, Process process, Path log) throws IOException {
        this.name = name;
        this.process = process;
        PrintWriter out = new PrintWriter(Files.newBufferedWriter(log, StandardCharsets.UTF_8), true);
        reader = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                    out.println(line);
                    lines.add(line);
                    if (lines.size() > 2000) {
                        lines.poll();
                    }
                    synchronized (watchers) {
                        for (Watcher w : watchers) {
                            if (!w.found.isDone() && w.match.test(line)) {
                                w.found.complete(line);
                            }
                        }
                    }
                }
            }
            catch (IOException ignored) {
                // the process ended
            }
            finally {
                out.close();
                synchronized (watchers) {
                    watchers.forEach(w -> w.found.completeExceptionally(new IllegalStateException(name + " exited before the awaited line")));
                }
            }
        }, name + "-output");
        reader.setDaemon(true);
        reader.start();
    }

    static ChildProcess start(String name, List<String> command, Path dir, Path log) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true);
        return new ChildProcess(name, pb.start(), log);
    }

    /** A child JVM on the test's classpath (the same Java that runs the test). */
    static ChildProcess java(String name, List<String> jvmArgs, String mainClass, List<String> args, Path dir) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(jvmArgs);
        cmd.add("-cp");
        cmd.add(Env.classpath());
        cmd.add(mainClass);
        cmd.addAll(args);
        return start(name, cmd, dir, Env.logDir().resolve(name + ".log"));
    }

    /** Waits until a line matches (already printed lines count). */
    String await(Predicate<String> match, Duration timeout) throws Exception {
        var w = new Watcher(match, new CompletableFuture<>());
        synchronized (watchers) {
            for (String l : lines) {
                if (match.test(l)) {
                    return l;
                }
            }
            if (!process.isAlive()) {
                throw new IllegalStateException(name + " is not running; see " + Env.logDir().resolve(name + ".log"));
            }
            watchers.add(w);
        }
        try {
            return w.found.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        }
        catch (java.util.concurrent.TimeoutException e) {
            throw new IllegalStateException(name + ": no matching line within " + timeout + "; see " + Env.logDir().resolve(name + ".log"));
        }
    }

    int waitFor(Duration timeout) throws InterruptedException {
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            throw new IllegalStateException(name + " did not exit within " + timeout);
        }
        return process.exitValue();
    }

    List<String> lines() {
        return List.copyOf(lines);
    }

    /**
     * Every line of a process that has ended: waits until its output is read to the end. The process exiting does
     * not mean its last lines have been read yet: the reader thread gets them when it next runs.
     */
    List<String> allLines(Duration timeout) throws InterruptedException {
        reader.join(timeout.toMillis());
        if (reader.isAlive()) {
            throw new IllegalStateException(name + ": its output did not end within " + timeout + "; see " + Env.logDir().resolve(name + ".log"));
        }
        return lines();
    }

    void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
    }

    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            process.destroy();
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                kill();
            }
        }
    }
}
