package dev.rivven.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The conformance scenarios (conformance/scenarios.json) against real sidecars and hostile servers the harness
 * starts. Nothing here waits for time to pass: each wait is for a condition, bounded by the scenario's numbers.
 */
class ScenariosTest {
  static Harness harness;
  static Map<String, Object> scenarios;

  @BeforeAll
  static void start() throws Exception {
    harness = new Harness();
    scenarios = Harness.scenarios();
  }

  @AfterAll
  static void stop() throws Exception {
    harness.close();
  }

  static Map<String, Object> scenario(String name) {
    return Json.obj(scenarios.get(name));
  }

  static long num(Map<String, Object> m, String k) {
    return ((Number) m.get(k)).longValue();
  }

  static QuotaClientOptions.Builder optionsFor(Map<String, Object> sidecar) {
    // A generous connect timeout: a cold TLS handshake on a loaded machine can take a second; no scenario here
    // is about connect timing (the hostile silent_hello case sets its own).
    return QuotaClientOptions.builder().port((int) num(sidecar, "port")).clientName("java-conformance").connectTimeoutMs(10_000);
  }

  static CompletableFuture<Long> brokerCall(BrokerQuotas b, Map<String, Object> step) {
    String user = (String) step.get("user");
    String clientId = (String) step.get("client_id");
    switch ((String) step.get("call")) {
      case "produce":
        return b.produce(user, clientId, num(step, "bytes"));
      case "fetch":
        return b.fetch(user, clientId, (String) step.get("consumer_group"), num(step, "bytes"));
      case "request":
        return b.request(user, clientId);
      default:
        throw new IllegalArgumentException(String.valueOf(step.get("call")));
    }
  }

  static List<Long> longs(Object json) {
    List<Long> out = new ArrayList<>();
    for (Object o : Json.arr(json)) out.add(((Number) o).longValue());
    return out;
  }

  static RivvenException failureOf(CompletableFuture<?> f, long withinMs) throws Exception {
    try {
      Object v = f.get(withinMs, TimeUnit.MILLISECONDS);
      throw new AssertionError("expected a failure, got " + v);
    } catch (ExecutionException e) {
      return assertInstanceOf(RivvenException.class, e.getCause());
    }
  }

  @Test
  void throttlesOfTheFixedSequenceEqualTheNodeClients() throws Exception {
    Map<String, Object> sc = scenario("throttles");
    Map<String, Object> s = harness.ask("start_sidecar", "clock", "manual");
    List<Long> expected = new ArrayList<>();
    List<Long> answers = new ArrayList<>();
    try (QuotaClient c = QuotaClient.connect(optionsFor(s).build())) {
      assertEquals(Json.arr(sc.get("setup")).size(), c.alterQuotas(VectorsTest.alterations(sc.get("setup")), false).get(10, TimeUnit.SECONDS));
      long deadline = num(Json.obj(sc.get("broker")), "record_deadline_ms");
      BrokerQuotas b = new BrokerQuotas(c, BrokerQuotasOptions.builder().recordDeadlineMs(deadline).build());
      for (Object o : Json.arr(sc.get("steps"))) {
        Map<String, Object> step = Json.obj(o);
        if (step.get("advance_ms") != null) harness.ask("advance_clock", "sidecar", s.get("sidecar"), "ms", step.get("advance_ms"));
        answers.add(brokerCall(b, step).get(10, TimeUnit.SECONDS));
        expected.add(num(step, "expect"));
      }
      assertEquals(0, b.failures(), "no call failed open");
    } finally {
      harness.ask("stop", "sidecar", s.get("sidecar"));
    }
    assertEquals(expected, answers, "the answers scenarios.json expects");
    assertEquals(longs(harness.ask("reference", "scenario", "throttles").get("answers")), answers, "the Node client's answers, now");
    assertTrue(answers.contains(BrokerQuotas.DENIED) && answers.stream().anyMatch(a -> a > 0), "the sequence throttles and denies");
  }

  @Test
  void tenThousandCallsInFlightAreEachAnsweredInOrder() throws Exception {
    Map<String, Object> sc = scenario("in_flight");
    Map<String, Object> clientOpts = Json.obj(sc.get("client"));
    int calls = (int) num(sc, "calls");
    Map<String, Object> s = harness.ask("start_sidecar", "clock", "manual");
    List<Long> answers = new ArrayList<>();
    List<Integer> completionOrder = new CopyOnWriteArrayList<>();
    try (QuotaClient c = QuotaClient.connect(optionsFor(s).maxPending((int) num(clientOpts, "max_pending")).requestTimeoutMs(num(clientOpts, "request_timeout_ms")).build())) {
      c.alterQuotas(VectorsTest.alterations(sc.get("setup")), false).get(10, TimeUnit.SECONDS);
      BrokerQuotas b = new BrokerQuotas(c, BrokerQuotasOptions.builder().recordDeadlineMs(num(clientOpts, "request_timeout_ms")).build());
      Map<String, Object> step = Json.obj(sc.get("call"));
      List<CompletableFuture<Long>> futures = new ArrayList<>(calls);
      for (int i = 0; i < calls; i++) {
        int position = i;
        futures.add(brokerCall(b, step).whenComplete((v, e) -> completionOrder.add(position)));
      }
      for (CompletableFuture<Long> f : futures) answers.add(f.get(60, TimeUnit.SECONDS));
      assertEquals(0, b.failures(), "none refused by maxPending, none late");
    } finally {
      harness.ask("stop", "sidecar", s.get("sidecar"));
    }
    List<Integer> inOrder = new ArrayList<>();
    for (int i = 0; i < calls; i++) inOrder.add(i);
    assertEquals(inOrder, completionOrder, "answered in the order they were made");
    assertEquals(longs(harness.ask("reference", "scenario", "in_flight").get("answers")), answers, "each answer is the Node client's for that position");
  }

  @Test
  void sidecarKilledEveryCallAnswersWithinItsDeadlineAndARestartClosesTheBreaker() throws Exception {
    outage(scenario("sidecar_killed"));
  }

  @Test
  void sidecarStoppedEveryCallAnswersWithinItsDeadlineAndContinuingClosesTheBreaker() throws Exception {
    outage(scenario("sidecar_stopped"));
  }

  private static void outage(Map<String, Object> sc) throws Exception {
    Map<String, Object> broker = Json.obj(sc.get("broker"));
    Map<String, Object> s = harness.ask("start_sidecar", "clock", "real");
    Object name = s.get("sidecar");
    long within = num(sc, "within_ms");
    List<Throwable> errors = new CopyOnWriteArrayList<>();
    try (QuotaClient c = QuotaClient.connect(optionsFor(s).build())) {
      BrokerQuotas b = new BrokerQuotas(c, BrokerQuotasOptions.builder()
          .recordDeadlineMs(num(broker, "record_deadline_ms"))
          .failureThreshold((int) num(broker, "failure_threshold"))
          .resetTimeoutMs(num(broker, "reset_timeout_ms"))
          .onError(errors::add)
          .build());
      // One call the sidecar answers within the 25 ms record deadline. A freshly started sidecar (and this JVM)
      // cold on a loaded machine can miss it, and a late call answers 0 and counts a failure: wait for an answered
      // one, then count the outage's failures from here.
      answered(b, System.nanoTime() + 10_000_000_000L, () -> b.produce("alice", "app-1", 100));
      long before = b.failures();
      harness.ask("signal", "sidecar", name, "signal", sc.get("signal"));
      long calls = num(sc, "calls");
      for (int i = 0; i < calls; i++) {
        // get() with a bound: a call that waits for a reconnect or the 5 s request timeout fails here.
        assertEquals(0L, b.produce("alice", "app-1", 100).get(within, TimeUnit.MILLISECONDS), "fails open");
      }
      assertEquals(calls, b.failures() - before, "every call answered 0 for a failure, and counted");
      assertTrue(b.shortCircuited() > 0, "the breaker short-circuited calls");
      assertTrue(b.breaker().openedCount() >= 1, "the breaker opened");
      assertTrue(!errors.isEmpty() && errors.stream().allMatch(e -> e instanceof RivvenException && ((RivvenException) e).isRetriable()), "onError saw retriable errors");
      if ("KILL".equals(sc.get("signal"))) {
        Map<String, Object> again = harness.ask("restart", "sidecar", name);
        assertEquals(num(s, "port"), num(again, "port"), "restarted on the same port");
      } else {
        harness.ask("signal", "sidecar", name, "signal", "CONT");
      }
      long until = System.nanoTime() + num(sc, "recover_within_ms") * 1_000_000L;
      while (b.breaker().state() != CircuitBreaker.State.CLOSED) {
        if (System.nanoTime() > until) fail("the breaker did not close after the sidecar came back");
        b.produce("alice", "app-1", 1).get(within, TimeUnit.MILLISECONDS);
        Thread.sleep(10);
      }
      // Answered by the sidecar again, not failed (a restarted sidecar is cold, as at the start: one may be late).
      answered(b, until, () -> b.request("alice", "app-1"));
    } finally {
      harness.ask("stop", "sidecar", name);
    }
  }

  /**
   * Makes {@code call} until one is answered by the sidecar within the broker's record deadline (0, and no failure
   * counted), until {@code untilNanos}.
   */
  private static void answered(BrokerQuotas b, long untilNanos, java.util.function.Supplier<CompletableFuture<Long>> call) throws Exception {
    while (true) {
      long failures = b.failures();
      long got = call.get().get(10, TimeUnit.SECONDS);
      if (got == 0 && b.failures() == failures) return;
      assertEquals(0L, got, "a failed call answers 0");
      if (System.nanoTime() > untilNanos) fail("no call answered by the sidecar (failures " + failures + " -> " + b.failures() + ")");
      Thread.sleep(10);
    }
  }

  /** Connects and makes `call`; returns "ok" or the error code (from the connect or the call). */
  static String attempt(QuotaClientOptions options, String call) throws Exception {
    try (QuotaClient c = QuotaClient.connect(options)) {
      CompletableFuture<?> f;
      switch (call) {
        case "produce":
          f = c.recordProduce("alice", "app-1", 10);
          break;
        case "describeQuotas":
          f = c.describeQuotas(List.of());
          break;
        case "alterQuotas":
          f = c.alterQuotas(List.of(QuotaAlteration.set(List.of(Component.user("x")), "request_rate", 5)), true);
          break;
        default:
          f = c.ping();
      }
      try {
        f.get(10, TimeUnit.SECONDS);
        return "ok";
      } catch (ExecutionException e) {
        return ((RivvenException) e.getCause()).code().name();
      }
    } catch (RivvenException e) {
      return e.code().name();
    }
  }

  @Test
  void tokensRolesAndTheirErrors() throws Exception {
    Map<String, Object> sc = scenario("auth");
    Map<String, Object> s = harness.ask("start_sidecar", "clock", "real", "auth", true);
    Map<String, Object> tokens = Json.obj(s.get("tokens"));
    try {
      for (Object o : Json.arr(sc.get("cases"))) {
        Map<String, Object> k = Json.obj(o);
        String who = (String) k.get("token");
        String token = who == null ? null : tokens.containsKey(who) ? (String) tokens.get(who) : "rvn_not_a_token";
        String got = attempt(optionsFor(s).token(token).connectAttempts(1).build(), (String) k.get("call"));
        assertEquals(k.containsKey("expect") ? "ok" : k.get("expect_error"), got, "token " + who + " " + k.get("call"));
      }
    } finally {
      harness.ask("stop", "sidecar", s.get("sidecar"));
    }
  }

  @Test
  void tlsWithTheCaAndWithout() throws Exception {
    Map<String, Object> sc = scenario("tls");
    Map<String, Object> s = harness.ask("start_sidecar", "clock", "real", "tls", "tls");
    Map<String, Object> tls = Json.obj(s.get("tls"));
    try {
      for (Object o : Json.arr(sc.get("cases"))) {
        Map<String, Object> k = Json.obj(o);
        SSLContext ctx = Tls.fromPem(Boolean.TRUE.equals(k.get("trust_ca")) ? Path.of((String) tls.get("ca")) : null, null, null);
        String got = attempt(optionsFor(s).tls(ctx).serverName((String) tls.get("server_name")).connectAttempts(1).build(), "produce");
        assertEquals(k.containsKey("expect") ? "ok" : k.get("expect_error"), got, "trust_ca " + k.get("trust_ca"));
      }
      // The certificate names 127.0.0.1 too: the host itself verifies without a server name.
      SSLContext ctx = Tls.fromPem(Path.of((String) tls.get("ca")), null, null);
      assertEquals("ok", attempt(optionsFor(s).tls(ctx).build(), "ping"));
    } finally {
      harness.ask("stop", "sidecar", s.get("sidecar"));
    }
  }

  @Test
  void mutualTlsTheClientCertificateAuthenticates() throws Exception {
    Map<String, Object> sc = scenario("mtls");
    Map<String, Object> s = harness.ask("start_sidecar", "clock", "real", "tls", "mtls", "auth", true);
    Map<String, Object> tls = Json.obj(s.get("tls"));
    Map<String, Object> tokens = Json.obj(s.get("tokens"));
    try {
      for (Object o : Json.arr(sc.get("cases"))) {
        Map<String, Object> k = Json.obj(o);
        String cert = (String) k.get("client_cert");
        Path ca = Path.of((String) tls.get("ca"));
        SSLContext ctx = cert == null ? Tls.fromPem(ca, null, null)
            : Tls.fromPem(ca, Path.of((String) tls.get(cert + "_cert")), Path.of((String) tls.get(cert + "_key")));
        String token = k.get("token") == null ? null : (String) tokens.get(k.get("token"));
        String got = attempt(optionsFor(s).tls(ctx).serverName("localhost").token(token).connectAttempts(1).build(), (String) k.get("call"));
        assertEquals(k.containsKey("expect") ? "ok" : k.get("expect_error"), got, "client certificate " + cert + ", " + k.get("call"));
      }
    } finally {
      harness.ask("stop", "sidecar", s.get("sidecar"));
    }
  }

  @Test
  void aBlockedPrincipalIsDenied() throws Exception {
    Map<String, Object> sc = scenario("denied");
    Map<String, Object> block = Json.obj(sc.get("block"));
    Map<String, Object> s = harness.ask("start_sidecar", "clock", "real");
    List<String> denied = new CopyOnWriteArrayList<>();
    try (QuotaClient c = QuotaClient.connect(optionsFor(s).build())) {
      List<Component> entity = VectorsTest.entity(block.get("entity"));
      BrokerQuotas b = new BrokerQuotas(c, BrokerQuotasOptions.builder().recordDeadlineMs(5000).onDenied((e, r) -> denied.add(e + "|" + r)).build());
      c.alterQuotas(List.of(QuotaAlteration.block(entity, (String) block.get("quota_value"))), false).get(10, TimeUnit.SECONDS);
      String user = entity.get(0).name();
      assertEquals(BrokerQuotas.DENIED, b.produce(user, "app-1", 10).get(10, TimeUnit.SECONDS));
      assertEquals(BrokerQuotas.DENIED, b.fetch(user, null, "etl", 10).get(10, TimeUnit.SECONDS));
      assertEquals(BrokerQuotas.DENIED, b.request(user, null).get(10, TimeUnit.SECONDS));
      assertEquals(List.of(sc.get("expect_entity") + "|" + sc.get("expect_reason")), denied.subList(0, 1));
      assertEquals(3, denied.size());
      RecordResult r = c.recordRequest(user, null).get(10, TimeUnit.SECONDS);
      assertTrue(r.isDenied());
      assertEquals(sc.get("expect_reason"), r.deniedReason());
      assertEquals(0, b.failures(), "Denied is an answer, not a failure");
      c.alterQuotas(List.of(QuotaAlteration.unblock(entity)), false).get(10, TimeUnit.SECONDS);
      assertEquals(0L, b.produce(user, "app-1", 10).get(10, TimeUnit.SECONDS), "unblocked");
    } finally {
      harness.ask("stop", "sidecar", s.get("sidecar"));
    }
  }

  @Test
  void aHostileServerGetsCleanErrorsNoHangNoUnboundedBuffer() throws Exception {
    for (Object o : Json.arr(scenario("hostile").get("modes"))) {
      Map<String, Object> m = Json.obj(o);
      String mode = (String) m.get("mode");
      Map<String, Object> h = harness.ask("start_hostile", "mode", mode);
      long within = num(m, "within_ms");
      QuotaClientOptions.Builder opts = QuotaClientOptions.builder().port((int) num(h, "port")).connectAttempts(1).maxFrameBytes(1024 * 1024).connectTimeoutMs(10_000);
      try {
        if (m.containsKey("connect_codes")) {
          long t0 = System.nanoTime();
          String got = attempt(opts.connectTimeoutMs(num(m, "connect_timeout_ms")).build(), "ping");
          assertTrue(Json.arr(m.get("connect_codes")).contains(got), mode + ": connect failed with " + got);
          assertTrue(System.nanoTime() - t0 < within * 1_000_000L, mode + ": within " + within + " ms");
          continue;
        }
        if (m.containsKey("request_timeout_ms")) opts.requestTimeoutMs(num(m, "request_timeout_ms"));
        try (QuotaClient c = QuotaClient.connect(opts.build())) {
          RivvenException err = failureOf(c.recordProduce("alice", "app-1", 1), within);
          assertTrue(Json.arr(m.get("codes")).contains(err.code().name()), mode + ": " + err);
          if ("garbage".equals(mode)) assertEquals(ErrorCode.UNEXPECTED_REPLY, err.code(), "this client names garbage for what it is");
          BrokerQuotas b = new BrokerQuotas(c, BrokerQuotasOptions.builder().recordDeadlineMs(25).build());
          assertEquals(0L, b.produce("alice", "app-1", 1).get(within, TimeUnit.MILLISECONDS), mode + ": the broker's answer fails open");
          if (m.containsKey("max_bytes_accepted")) {
            Map<String, Object> stats = harness.ask("hostile_stats", "hostile", h.get("hostile"));
            long until = System.nanoTime() + within * 1_000_000L;
            while (!Boolean.TRUE.equals(stats.get("closed_by_peer")) && System.nanoTime() < until) {
              Thread.sleep(10);
              stats = harness.ask("hostile_stats", "hostile", h.get("hostile"));
            }
            assertEquals(Boolean.TRUE, stats.get("closed_by_peer"), "the client closed the connection");
            assertTrue(num(stats, "bytes_sent") <= num(m, "max_bytes_accepted"), "the client took " + stats.get("bytes_sent") + " bytes before closing");
          }
        }
      } finally {
        harness.ask("stop", "hostile", h.get("hostile"));
      }
    }
  }

  @Test
  void theHarnessAnswersEveryCommandItDocuments() throws Exception {
    Map<String, Object> s = harness.ask("start_sidecar", "clock", "real");
    try {
      Map<String, Object> reply = harness.ask("request", "sidecar", s.get("sidecar"), "body", Map.of("type", "Ping"));
      assertEquals("Pong", Json.obj(reply.get("reply")).get("type"));
      assertNotNull(s.get("pid"));
    } finally {
      harness.ask("stop", "sidecar", s.get("sidecar"));
    }
  }
}
