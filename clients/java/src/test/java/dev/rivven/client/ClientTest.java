package dev.rivven.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** The client's own bounds and states, against an in-test peer. */
class ClientTest {
  @Test
  void theBreakerOpensAfterTheThresholdProbesOnceAndClosesOnSuccess() {
    AtomicLong now = new AtomicLong(1000);
    CircuitBreaker b = new CircuitBreaker(3, 100, now::get);
    for (int i = 0; i < 2; i++) b.failure();
    assertEquals(CircuitBreaker.State.CLOSED, b.state());
    b.success();
    for (int i = 0; i < 2; i++) b.failure();
    assertEquals(CircuitBreaker.State.CLOSED, b.state(), "a success resets the count: failures must be consecutive");
    b.failure();
    assertEquals(CircuitBreaker.State.OPEN, b.state());
    assertFalse(b.allow(), "open: calls fail at once");
    now.addAndGet(100);
    assertTrue(b.allow(), "after resetTimeoutMs one probe goes");
    assertEquals(CircuitBreaker.State.HALF_OPEN, b.state());
    assertFalse(b.allow(), "one probe at a time");
    b.failure();
    assertEquals(CircuitBreaker.State.OPEN, b.state(), "a failed probe opens it again");
    now.addAndGet(100);
    assertTrue(b.allow());
    b.success();
    assertEquals(CircuitBreaker.State.CLOSED, b.state());
    assertEquals(2, b.openedCount());
  }

  @Test
  void aCallWithoutAReplyTimesOutAndOnlyThatCall() throws Exception {
    // Answers Pings, never a record call.
    try (FakeServer server = new FakeServer((id, f) -> isPing(f) ? pong(id) : null);
        QuotaClient c = QuotaClient.connect(server.options().requestTimeoutMs(200).build())) {
      CompletableFuture<RecordResult> late = c.recordProduce("a", null, 1);
      // The pings are answered: a deadline of their own, not the 200 ms a loaded machine can miss.
      patientPing(c).get(15, TimeUnit.SECONDS);
      RivvenException e = VectorsTest.failure(late);
      assertEquals(ErrorCode.TIMEOUT, e.code());
      assertTrue(e.isRetriable());
      assertEquals(0, c.inFlight(), "the timed-out call is forgotten");
      patientPing(c).get(15, TimeUnit.SECONDS);
    }
  }

  @Test
  void inFlightCallsAreBoundedByMaxPending() throws Exception {
    try (FakeServer server = new FakeServer((id, f) -> null)) {
      QuotaClient c = QuotaClient.connect(server.options().maxPending(3).requestTimeoutMs(60_000).build());
      List<CompletableFuture<RecordResult>> calls = new ArrayList<>();
      for (int i = 0; i < 3; i++) calls.add(c.recordRequest("u", null));
      RivvenException e = VectorsTest.failure(c.recordRequest("u", null));
      assertEquals(ErrorCode.OVERLOADED, e.code());
      assertEquals(3, c.inFlight());
      BrokerQuotas b = new BrokerQuotas(c);
      assertEquals(0L, b.request("u", null).get(1, TimeUnit.SECONDS), "past maxPending a broker call fails open at once");
      c.close();
      for (CompletableFuture<RecordResult> call : calls) assertEquals(ErrorCode.CONNECTION_CLOSED, VectorsTest.failure(call).code(), "close() fails what is pending");
      assertEquals(ErrorCode.CONNECTION_CLOSED, VectorsTest.failure(c.ping()).code(), "and every later call");
    }
  }

  @Test
  void withoutAConnectionFailFastCallsFailAtOnceAndOthersWaitForTheReconnect() throws Exception {
    try (FakeServer server = new FakeServer((id, f) -> pong(id))) {
      QuotaClient c = QuotaClient.connect(server.options().initialBackoffMs(10).maxBackoffMs(20).build());
      try {
        c.ping().get(5, TimeUnit.SECONDS);
        server.down(true);
        // The reader sees the close; wait for that condition, not for time.
        long until = System.nanoTime() + 5_000_000_000L;
        while (c.isConnected() && System.nanoTime() < until) Thread.onSpinWait();
        assertFalse(c.isConnected());
        RivvenException e = VectorsTest.failure(c.recordProduce("a", null, 1, false, new CallOptions(1000, true)));
        assertEquals(ErrorCode.UNAVAILABLE, e.code());
        CompletableFuture<Void> waiting = c.ping();
        server.down(false);
        waiting.get(10, TimeUnit.SECONDS);
      } finally {
        c.close();
      }
      assertEquals(2, server.hellos.get(), "a second connection said Hello");
      assertEquals(2, server.frames.size(), "the fail-fast call never went out; the waiting one went out on the new connection");
    }
  }

  @Test
  void connectFailsCleanlyAndLeavesNothingRunning() throws Exception {
    // A port bound and not listening: refused, and no one else can take it while the test runs.
    try (java.net.Socket holder = new java.net.Socket()) {
      holder.bind(new java.net.InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), 0));
      int port = holder.getLocalPort();
      connectFailsCleanlyOn(port);
    }
  }

  private static void connectFailsCleanlyOn(int port) throws Exception {
    int before = Thread.activeCount();
    RivvenException e = assertThrows(RivvenException.class,
        () -> QuotaClient.connect(QuotaClientOptions.builder().port(port).connectAttempts(2).initialBackoffMs(5).build()));
    assertEquals(ErrorCode.CONNECTION_CLOSED, e.code());
    assertTrue(e.getMessage().contains("cannot reach"), e.getMessage());
    long until = System.nanoTime() + 5_000_000_000L;
    while (Thread.activeCount() > before && System.nanoTime() < until) Thread.onSpinWait();
    assertTrue(Thread.activeCount() <= before, "no thread left behind");
  }

  @Test
  void callsFromManyThreadsAtOnceEachGetTheirOwnReply() throws Exception {
    // The peer answers each RecordRequest with its own count as the throttle, so a mixed-up reply shows.
    try (FakeServer server = new FakeServer((id, f) -> {
          Map<String, Object> body = Replies.map(Wire.decode(f, 8, f.length - 8), "body");
          Map<String, Object> t = new LinkedHashMap<>();
          t.put("type", "Throttled");
          t.put("throttle_time_ms", body.get("count"));
          t.put("quota_type", "request_rate");
          t.put("entity", "user:" + body.get("user"));
          t.put("recorded", true);
          return Wire.frame(id, t);
        });
        QuotaClient c = QuotaClient.connect(server.options().build())) {
      int threads = 8;
      int perThread = 1000; // 8000 in flight at most: under maxPending
      List<Thread> workers = new ArrayList<>();
      List<Throwable> problems = new java.util.concurrent.CopyOnWriteArrayList<>();
      for (int t = 0; t < threads; t++) {
        int me = t;
        workers.add(new Thread(() -> {
          List<CompletableFuture<RecordResult>> mine = new ArrayList<>();
          for (int i = 1; i <= perThread; i++) mine.add(c.recordRequest("t" + me, null, i, false, CallOptions.DEFAULT));
          for (int i = 1; i <= perThread; i++) {
            try {
              RecordResult r = mine.get(i - 1).get(30, TimeUnit.SECONDS);
              if (r.throttleTimeMs() != i || !r.entity().equals("user:t" + me)) problems.add(new AssertionError("call " + i + " of t" + me + " got " + r));
            } catch (Exception e) {
              problems.add(e);
            }
          }
        }));
      }
      for (Thread w : workers) w.start();
      for (Thread w : workers) w.join();
      assertEquals(0, problems.size(), () -> problems.size() + " problems, the first: " + problems.get(0));
      assertEquals(threads * perThread, server.frames.size());
      assertEquals(0, c.inFlight());
    }
  }

  @Test
  void aReplyNestedPastTheDepthLimitIsUnexpectedNotAStackOverflow() {
    byte[] deep = new byte[200];
    for (int i = 0; i < deep.length - 1; i++) deep[i] = (byte) 0x91; // fixarray of 1, nested
    deep[deep.length - 1] = 0x01;
    RivvenException e = assertThrows(RivvenException.class, () -> Wire.decode(deep, 0, deep.length));
    assertEquals(ErrorCode.UNEXPECTED_REPLY, e.code());
  }

  @Test
  void recordAmountsOutsideTheProtocolAreRefusedBeforeSending() throws Exception {
    try (FakeServer server = new FakeServer((id, f) -> null);
        QuotaClient c = QuotaClient.connect(server.options().build())) {
      assertEquals(ErrorCode.INVALID_REQUEST, VectorsTest.failure(c.recordProduce("a", null, -1)).code());
      assertEquals(ErrorCode.INVALID_REQUEST, VectorsTest.failure(c.recordProduce("a", null, 1L << 53)).code());
      assertEquals(ErrorCode.INVALID_REQUEST, VectorsTest.failure(c.recordRequest("a", null, 0, false, CallOptions.DEFAULT)).code());
      assertEquals(ErrorCode.INVALID_REQUEST, VectorsTest.failure(c.recordUsage("a", null, "orders", 0)).code());
      assertEquals(ErrorCode.INVALID_REQUEST, VectorsTest.failure(c.recordUsage("a", null, "orders", 1L << 53)).code());
      for (String bad : new String[] {null, "", "Orders", "1orders", "or-ders", "o".repeat(33)}) {
        assertEquals(ErrorCode.INVALID_REQUEST, VectorsTest.failure(c.recordUsage("a", null, bad)).code(), "resource " + bad);
      }
      assertTrue(server.frames.isEmpty());
    }
  }

  /** A Ping with a 10 s deadline of its own, whatever the client's requestTimeoutMs. */
  static CompletableFuture<Map<String, Object>> patientPing(QuotaClient c) {
    Map<String, Object> ping = new LinkedHashMap<>();
    ping.put("type", "Ping");
    return c.request(ping, new CallOptions(10_000, false));
  }

  static boolean isPing(byte[] frame) {
    return "Ping".equals(Replies.map(Wire.decode(frame, 8, frame.length - 8), "body").get("type"));
  }

  static byte[] pong(int id) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("type", "Pong");
    return Wire.frame(id, m);
  }
}
