package dev.rivven.client;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The conformance harness (conformance/harness.ts) in its own process, driven over its line protocol: one JSON
 * request per line, one JSON reply per line. Closing it closes its stdin, and the harness kills what it started.
 */
final class Harness implements AutoCloseable {
  /** The repository root: clients/java is two levels below it. */
  static final Path ROOT = Path.of(System.getProperty("user.dir")).resolve("../..").normalize();

  private final Process process;
  private final BufferedReader out;
  private final Writer in;
  private int nextId = 1;

  Harness() throws IOException {
    Path script = ROOT.resolve("conformance/harness.ts");
    if (!Files.exists(script)) throw new IllegalStateException("no conformance harness at " + script);
    if (!Files.exists(ROOT.resolve("dist/cli/main.js"))) {
      throw new IllegalStateException("the sidecar is not built: run `npm run build` in " + ROOT);
    }
    process = new ProcessBuilder("node", "--import", "tsx", script.toString())
        .directory(ROOT.toFile())
        .redirectError(ProcessBuilder.Redirect.INHERIT)
        .start();
    out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
    in = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
    Map<String, Object> ready = Json.obj(Json.parse(out.readLine()));
    if (!Boolean.TRUE.equals(ready.get("ready"))) throw new IllegalStateException("harness not ready: " + ready);
  }

  /** Sends one command (key, value pairs after cmd) and returns its reply; a harness error throws. */
  synchronized Map<String, Object> ask(String cmd, Object... kv) throws IOException {
    Map<String, Object> req = new LinkedHashMap<>();
    int id = nextId++;
    req.put("id", (long) id);
    req.put("cmd", cmd);
    for (int k = 0; k < kv.length; k += 2) req.put((String) kv[k], kv[k + 1]);
    in.write(Json.write(req) + "\n");
    in.flush();
    String line = out.readLine();
    if (line == null) throw new IOException("the harness exited");
    Map<String, Object> reply = Json.obj(Json.parse(line));
    if (!Boolean.TRUE.equals(reply.get("ok"))) throw new IllegalStateException("harness " + cmd + ": " + reply.get("error"));
    return reply;
  }

  static Map<String, Object> scenarios() throws IOException {
    return Json.obj(Json.obj(Json.parse(Files.readString(ROOT.resolve("conformance/scenarios.json")))).get("scenarios"));
  }

  static Map<String, Object> vectors(String file) throws IOException {
    return Json.obj(Json.parse(Files.readString(ROOT.resolve("conformance/vectors/" + file))));
  }

  @Override
  public void close() throws IOException {
    in.close();
    try {
      if (!process.waitFor(20, TimeUnit.SECONDS)) process.destroyForcibly();
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }
}
