package dev.rivven.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.DataInputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Replies and peers a hostile server would produce, beyond the conformance kit's modes. */
class HostileReplyTest {
  private static byte[] rawFrame(int id, String bodyHex) {
    byte[] body = FakeServer.hex(bodyHex);
    byte[] out = new byte[8 + body.length];
    Wire.putInt(out, 0, body.length + 4);
    Wire.putInt(out, 4, id);
    System.arraycopy(body, 0, out, 8, body.length);
    return out;
  }

  @Test
  void sizesClaimedBeyondTheFrameFailTheCallAndTheReaderGoesOn() throws Exception {
    // 5 bytes claiming a 2 GiB binary made msgpack-core allocate it: OutOfMemoryError on the reader, which died
    // with the call already taken from pending, so that call never completed and the connection looked alive.
    String[] bodies = {"c67fffffff", "81a474797065c67fffffff", "dd7fffffff", "dbffffffff", "dfffffffff"};
    try (FakeServer server = new FakeServer((id, f) -> ClientTest.isPing(f) ? ClientTest.pong(id) : rawFrame(id, bodies[id % bodies.length]));
        QuotaClient c = QuotaClient.connect(server.options().build())) {
      for (int i = 0; i < bodies.length; i++) {
        RivvenException e = VectorsTest.failure(c.recordRequest("u", null));
        assertEquals(ErrorCode.UNEXPECTED_REPLY, e.code(), e.getMessage());
      }
      c.ping().get(10, TimeUnit.SECONDS);
      assertTrue(c.isConnected());
    }
  }

  @Test
  void aThrottledReplyWithoutAPositiveWaitIsNotTakenForDeniedOrADelay() throws Exception {
    // throttle_time_ms -1 came out of BrokerQuotas as -1: DENIED, so the broker rejected the request.
    for (long ms : new long[] {-1, -5000, 0, 1L << 53, Long.MAX_VALUE}) {
      Map<String, Object> t = new LinkedHashMap<>();
      t.put("type", "Throttled");
      t.put("throttle_time_ms", ms);
      t.put("quota_type", "request_rate");
      t.put("entity", "user:u");
      t.put("recorded", true);
      try (FakeServer server = new FakeServer((id, f) -> Wire.frame(id, t));
          QuotaClient c = QuotaClient.connect(server.options().build())) {
        assertEquals(ErrorCode.UNEXPECTED_REPLY, VectorsTest.failure(c.recordRequest("u", null)).code());
        BrokerQuotas b = new BrokerQuotas(c, BrokerQuotasOptions.builder().recordDeadlineMs(10_000).build());
        assertEquals(0L, b.request("u", null).get(10, TimeUnit.SECONDS), "throttle_time_ms " + ms);
        assertEquals(1, b.failures());
      }
    }
  }

  @Test
  void aServerThatReadsNothingLosesTheConnectionInsteadOfGrowingTheQueue() throws Exception {
    CountDownLatch done = new CountDownLatch(1);
    try (ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
      server.setReceiveBufferSize(4096);
      Thread t = new Thread(() -> {
        try (Socket s = server.accept()) {
          DataInputStream in = new DataInputStream(s.getInputStream());
          int len = in.readInt();
          byte[] rest = new byte[len];
          in.readFully(rest);
          Map<String, Object> ok = new LinkedHashMap<>();
          ok.put("type", "HelloOk");
          ok.put("protocol_version", 1L);
          ok.put("server_version", "reads-nothing");
          OutputStream out = s.getOutputStream();
          out.write(Wire.frame(Wire.getInt(rest, 0), ok));
          out.flush();
          done.await(); // and never reads again
        } catch (Exception e) {
          // the test is over
        }
      }, "reads-nothing");
      t.setDaemon(true);
      t.start();
      QuotaClient c = QuotaClient.connect(QuotaClientOptions.builder().port(server.getLocalPort()).connectAttempts(1).maxPending(1_000_000).requestTimeoutMs(120_000).build());
      try {
        String user = "u".repeat(1000);
        List<CompletableFuture<RecordResult>> calls = new ArrayList<>();
        // 48 MiB of frames: far past what the kernel's buffers take, and past the client's bound.
        for (int i = 0; i < 48 * 1024 && c.isConnected(); i++) calls.add(c.recordRequest(user, null));
        assertFalse(c.isConnected(), "the queue for a peer that reads nothing is bounded: the connection is lost");
        assertEquals(ErrorCode.CONNECTION_CLOSED, VectorsTest.failure(calls.get(0)).code());
      } finally {
        c.close();
        done.countDown();
      }
    }
  }

  @Test
  void aHelloReplyTrickledByteByByteDoesNotHoldConnectPastItsTimeout() throws Exception {
    // Each read had the socket timeout, the whole no bound: 1 byte every 50 ms kept connect() going for 3 s and
    // more, far past connectTimeoutMs, and then succeeded.
    CountDownLatch done = new CountDownLatch(1);
    try (ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
      Thread t = new Thread(() -> {
        try (Socket s = server.accept()) {
          DataInputStream in = new DataInputStream(s.getInputStream());
          byte[] rest = new byte[in.readInt()];
          in.readFully(rest);
          Map<String, Object> ok = new LinkedHashMap<>();
          ok.put("type", "HelloOk");
          ok.put("protocol_version", 1L);
          ok.put("server_version", "trickles");
          OutputStream out = s.getOutputStream();
          for (byte b : Wire.frame(Wire.getInt(rest, 0), ok)) {
            out.write(b);
            out.flush();
            if (done.await(50, TimeUnit.MILLISECONDS)) return;
          }
        } catch (Exception e) {
          // the client gave up
        }
      }, "trickles");
      t.setDaemon(true);
      t.start();
      try {
        RivvenException e = org.junit.jupiter.api.Assertions.assertThrows(RivvenException.class,
            () -> QuotaClient.connect(QuotaClientOptions.builder().port(server.getLocalPort()).connectAttempts(1).connectTimeoutMs(300).build()).close());
        assertTrue(e.getMessage().contains("TIMEOUT"), e.getMessage());
      } finally {
        done.countDown();
      }
    }
  }

  @Test
  void connectionsThatDieRightAfterHelloAreRedialledWithBackoff() throws Exception {
    // A server that accepts, answers Hello and closes, forever, was redialled at once whenever a call came: 4152
    // connections in 5 s and 93% of a core for a caller making a fail-fast call every millisecond.
    java.util.concurrent.atomic.AtomicInteger connects = new java.util.concurrent.atomic.AtomicInteger();
    try (ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
      Thread t = new Thread(() -> {
        while (true) {
          try (Socket s = server.accept()) {
            connects.incrementAndGet();
            DataInputStream in = new DataInputStream(s.getInputStream());
            byte[] rest = new byte[in.readInt()];
            in.readFully(rest);
            Map<String, Object> ok = new LinkedHashMap<>();
            ok.put("type", "HelloOk");
            ok.put("protocol_version", 1L);
            ok.put("server_version", "closes");
            s.getOutputStream().write(Wire.frame(Wire.getInt(rest, 0), ok));
          } catch (Exception e) {
            if (server.isClosed()) return;
          }
        }
      }, "closes");
      t.setDaemon(true);
      t.start();
      long started = System.nanoTime();
      try (QuotaClient c = QuotaClient.connect(QuotaClientOptions.builder().port(server.getLocalPort()).initialBackoffMs(50).maxBackoffMs(200).build())) {
        CallOptions failFast = new CallOptions(25, true);
        while (connects.get() < 6) {
          c.recordRequest("u", null, 1, false, failFast).exceptionally(e -> null);
          java.util.concurrent.locks.LockSupport.parkNanos(1_000_000); // a broker's pace, not a wait for time
        }
      }
      // Redials 2..6 each waited at least its backoff: 50 + 100 + 200 + 200 ms.
      assertTrue(System.nanoTime() - started >= 550_000_000L, "redialled with backoff");
    }
  }

  @Test
  void callsWithATimeoutEachOfTheirOwnLeaveNoQueuePerValue() throws Exception {
    // One queue per distinct timeout was kept forever, and the deadline thread walked them all on every wake.
    Deadlines d = new Deadlines("test-deadlines", c -> {});
    try {
      for (int i = 0; i < 100; i++) {
        Call<Object> call = new Call<>(i + 1, System.nanoTime() + (1000 + i) * 1_000_000L, true, b -> b, new byte[0]);
        call.complete(null); // answered in time: its queue is left empty
        d.add(call, 1000 + i);
      }
      long until = System.nanoTime() + 10_000_000_000L;
      while (d.queueCount() > 0 && System.nanoTime() < until) Thread.onSpinWait();
      assertEquals(0, d.queueCount(), "empty queues are dropped");
    } finally {
      d.stop();
    }
  }
}
