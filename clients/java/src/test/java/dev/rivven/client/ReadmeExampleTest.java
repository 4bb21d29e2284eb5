package dev.rivven.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The broker example of clients/java/README.md is this code, and it runs. */
class ReadmeExampleTest {
  // The broker's own types, as small as the example needs.
  interface ClientConnection {
    String user();

    String clientId();

    void reject(String error);

    void send(String response, long throttleTimeMs);

    void muteFor(long ms);
  }

  record ProduceRequest(int sizeInBytes) {}

  static final List<String> LOG = new CopyOnWriteArrayList<>();
  static final ExecutorService handlers = Executors.newFixedThreadPool(2);
  static int port;

  static String appendToLog(ProduceRequest req) {
    return "appended " + req.sizeInBytes();
  }

  static final class Broker {
    // README-EXAMPLE-START
    QuotaClient client = QuotaClient.connect(QuotaClientOptions.builder()
        .host("127.0.0.1").port(port).clientName("broker-1").token(System.getenv("RIVVEN_TOKEN")).build());
    BrokerQuotas quotas = new BrokerQuotas(client, BrokerQuotasOptions.builder()
        .recordDeadlineMs(25)                                 // the most a quota check adds to a request
        .onError(e -> LOG.add("quota sidecar unavailable, not throttling: " + e))
        .onDenied((entity, reason) -> LOG.add("blocked " + entity + ": " + reason))
        .build());

    // In the request path: record, then honour the throttle the way Kafka does: answer at once with
    // throttle_time_ms and stop reading from that connection for as long. Never block the client's threads.
    void onProduce(ClientConnection conn, ProduceRequest req) {
      quotas.produce(conn.user(), conn.clientId(), req.sizeInBytes()).thenAcceptAsync(delayMs -> {
        if (delayMs == BrokerQuotas.DENIED) {
          conn.reject("CLUSTER_AUTHORIZATION_FAILED");    // a blocked principal: refuse, do not delay
          return;
        }
        conn.send(appendToLog(req), delayMs);
        if (delayMs > 0) conn.muteFor(delayMs);
      }, handlers);
    }
    // README-EXAMPLE-END
  }

  @Test
  void theReadmeShowsThisCodeAndItRuns() throws Exception {
    String source = Files.readString(Path.of("src/test/java/dev/rivven/client/ReadmeExampleTest.java"));
    String example = source.substring(source.indexOf("// README-EXAMPLE-START") + 24, source.indexOf("    // README-EXAMPLE-END"))
        .replace(".port(port)", ".port(9190)").lines().map(l -> l.startsWith("    ") ? l.substring(4) : l)
        .collect(java.util.stream.Collectors.joining("\n")).strip();
    String readme = Files.readString(Path.of("README.md"));
    assertTrue(readme.contains(example), "README.md holds the example exactly:\n" + example);
    assertTrue(example.lines().count() <= 22, "about 20 lines");

    List<String> sent = new CopyOnWriteArrayList<>();
    try (FakeServer server = new FakeServer((id, f) -> FakeServer.withId(FakeServer.hex("000000210000002ade0002a474797065a24f6bb07468726f74746c655f74696d655f6d7300"), id))) {
      port = server.port();
      Broker broker = new Broker();
      ClientConnection conn = new ClientConnection() {
        public String user() { return "alice"; }
        public String clientId() { return "app-1"; }
        public void reject(String error) { sent.add("reject " + error); }
        public void send(String response, long throttleTimeMs) { sent.add(response + " throttle " + throttleTimeMs); }
        public void muteFor(long ms) { sent.add("mute " + ms); }
      };
      broker.onProduce(conn, new ProduceRequest(1024));
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (sent.isEmpty() && System.nanoTime() < until) Thread.onSpinWait();
      broker.client.close();
    }
    assertEquals(List.of("appended 1024 throttle 0"), sent);
  }
}
