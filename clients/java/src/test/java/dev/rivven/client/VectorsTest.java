package dev.rivven.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/** The conformance vectors (conformance/vectors/*.json): what this client writes and how it reads every reply. */
class VectorsTest {

  static List<Component> entity(Object json) {
    List<Component> out = new ArrayList<>();
    for (Object c : Json.arr(json)) out.add(new Component((String) Json.arr(c).get(0), (String) Json.arr(c).get(1)));
    return out;
  }

  static List<QuotaAlteration> alterations(Object json) {
    List<QuotaAlteration> out = new ArrayList<>();
    for (Object a : Json.arr(json)) {
      Map<String, Object> m = Json.obj(a);
      out.add(new QuotaAlteration(entity(m.get("entity")), (String) m.get("quota_key"), m.get("quota_value"), Boolean.TRUE.equals(m.get("shadow"))));
    }
    return out;
  }

  static String s(Map<String, Object> args, String k) {
    return (String) args.get(k);
  }

  static long n(Map<String, Object> args, String k, long fallback) {
    Object v = args.get(k);
    return v == null ? fallback : ((Number) v).longValue();
  }

  static boolean b(Map<String, Object> args, String k) {
    return Boolean.TRUE.equals(args.get(k));
  }

  /** Makes the call a request vector describes. */
  @SuppressWarnings("unchecked")
  static CompletableFuture<?> invoke(QuotaClient c, String method, Map<String, Object> a) {
    CallOptions o = CallOptions.DEFAULT;
    switch (method) {
      case "hello":
        return c.hello();
      case "ping":
        return c.ping();
      case "recordProduce":
        return c.recordProduce(s(a, "user"), s(a, "client_id"), n(a, "bytes", 0), b(a, "admit"), o);
      case "recordConsume":
        return c.recordConsume(s(a, "user"), s(a, "client_id"), s(a, "consumer_group"), n(a, "bytes", 0), b(a, "admit"), o);
      case "recordRequest":
        return c.recordRequest(s(a, "user"), s(a, "client_id"), n(a, "count", 1), b(a, "admit"), o);
      case "recordUsage":
        return c.recordUsage(s(a, "user"), s(a, "client_id"), s(a, "resource"), n(a, "amount", 1), b(a, "admit"), o);
      case "describeQuotas":
        return c.describeQuotas(entity(a.get("entities")));
      case "alterQuotas":
        return c.alterQuotas(alterations(a.get("alterations")), b(a, "validate_only"));
      case "describeUsage":
        return c.describeUsage(a.containsKey("entities") ? entity(a.get("entities")) : List.of(), (int) n(a, "top", 0), s(a, "sort_by"));
      case "resetUsage":
        return c.resetUsage(entity(a.get("entities")));
      case "acquireLease":
        return c.acquireLease(s(a, "user"), s(a, "client_id"), n(a, "ttl_ms", 0), o);
      case "releaseLease":
        return c.releaseLease(s(a, "lease_id"), o);
      case "describeViolations":
        return c.describeViolations(
            n(a, "since_ms", 0),
            a.containsKey("entities") ? entity(a.get("entities")) : List.of(),
            a.containsKey("types") ? (List<String>) (List<?>) Json.arr(a.get("types")) : List.of(),
            (int) n(a, "limit", 0));
      case "describeFleet":
        return c.describeFleet();
      default:
        throw new IllegalArgumentException("unknown method " + method);
    }
  }

  static byte[] errorReply(int id) {
    Map<String, Object> e = new LinkedHashMap<>();
    e.put("type", "Error");
    e.put("code", "INTERNAL_ERROR");
    e.put("message", "captured");
    return Wire.frame(id, e);
  }

  static Object await(CompletableFuture<?> f) throws Exception {
    return f.get(10, TimeUnit.SECONDS);
  }

  static RivvenException failure(CompletableFuture<?> f) throws Exception {
    try {
      Object v = f.get(10, TimeUnit.SECONDS);
      throw new AssertionError("expected a failure, got " + v);
    } catch (ExecutionException e) {
      return assertInstanceOf(RivvenException.class, e.getCause());
    }
  }

  @TestFactory
  Stream<DynamicTest> requestVectors() throws Exception {
    List<Object> vectors = Json.arr(Harness.vectors("requests.json").get("vectors"));
    return vectors.stream().map(Json::obj).map(v -> DynamicTest.dynamicTest((String) v.get("name"), () -> {
      Map<String, Object> call = Json.obj(v.get("call"));
      Map<String, Object> args = Json.obj(call.get("args"));
      try (FakeServer server = new FakeServer((id, frame) -> errorReply(id));
          QuotaClient c = QuotaClient.connect(server.options().clientName(s(args, "client_name")).token(s(args, "token")).build())) {
        failure(invoke(c, (String) call.get("method"), args));
        byte[] sent = server.frames.get(0);
        byte[] want = FakeServer.hex((String) v.get("frame"));
        assertEquals(sent.length - 4, Wire.getInt(sent, 0), "the length counts correlation id and body");
        Object body = Wire.decode(sent, 8, sent.length - 8);
        assertTrue(Json.same(v.get("object"), body), "body " + body + " is the vector's object " + v.get("object"));
        if (Boolean.TRUE.equals(v.get("exact"))) {
          assertArrayEquals(FakeServer.withId(want, 0), FakeServer.withId(sent, 0), "the exact bytes the Node client writes");
        }
      }
    }));
  }

  /** The call that a reply vector answers ("for"), with any arguments. */
  static CompletableFuture<?> callFor(QuotaClient c, String type) {
    switch (type) {
      case "RecordProduce":
        return c.recordProduce("alice", "app-1", 1);
      case "RecordConsume":
        return c.recordConsume("bob", null, "etl", 1);
      case "RecordRequest":
        return c.recordRequest("carol", null);
      case "RecordUsage":
        return c.recordUsage("alice", "app-1", "orders", 1);
      case "Hello":
        return c.hello();
      case "DescribeQuotas":
        return c.describeQuotas(List.of());
      case "AlterQuotas":
        return c.alterQuotas(List.of(QuotaAlteration.set(List.of(Component.user("a")), "request_rate", 1)), false);
      case "DescribeUsage":
        return c.describeUsage(List.of(), 0, null);
      case "ResetUsage":
        return c.resetUsage(List.of(Component.user(null)));
      case "AcquireLease":
        return c.acquireLease("alice", null, 0, CallOptions.DEFAULT);
      case "ReleaseLease":
        return c.releaseLease("l", CallOptions.DEFAULT);
      case "DescribeViolations":
        return c.describeViolations(0, List.of(), List.of(), 0);
      case "DescribeFleet":
        return c.describeFleet();
      default:
        return c.ping();
    }
  }

  static Stream<Map<String, Object>> replyVectors() throws Exception {
    return Stream.concat(
            Json.arr(Harness.vectors("replies.json").get("vectors")).stream(),
            Json.arr(Harness.vectors("errors.json").get("vectors")).stream())
        .map(Json::obj);
  }

  @TestFactory
  Stream<DynamicTest> replyVectorsDecode() throws Exception {
    return replyVectors().map(v -> DynamicTest.dynamicTest((String) v.get("name"), () -> {
      byte[] frame = FakeServer.hex((String) v.get("frame"));
      boolean connectionLevel = ((Number) v.get("correlation_id")).longValue() == 0;
      // The frame's body decodes to the object.
      assertTrue(Json.same(v.get("object"), Wire.decode(frame, 8, frame.length - 8)), "decodes to its object");
      Map<String, Object> expect = v.get("expect") == null ? Map.of() : Json.obj(v.get("expect"));
      try (FakeServer server = new FakeServer((id, f) -> connectionLevel ? frame : FakeServer.withId(frame, id));
          QuotaClient c = QuotaClient.connect(server.options().build())) {
        CompletableFuture<?> typed = callFor(c, (String) v.get("for"));
        if (expect.containsKey("error")) {
          Map<String, Object> e = Json.obj(expect.get("error"));
          RivvenException err = failure(typed);
          assertEquals(e.get("code"), err.code().name());
          assertEquals(e.get("retriable"), err.isRetriable());
          if (e.containsKey("index")) assertEquals(((Number) e.get("index")).intValue(), err.index().orElse(-1));
        } else {
          Object value = await(typed);
          if (expect.containsKey("record")) checkRecord(Json.obj(expect.get("record")), (RecordResult) value);
          if (expect.containsKey("lease")) {
            Map<String, Object> l = Json.obj(expect.get("lease"));
            Replies.LeaseResult lease = (Replies.LeaseResult) value;
            assertEquals(l.get("granted"), lease.granted());
            assertEquals(((Number) l.get("throttle_time_ms")).longValue(), lease.throttleTimeMs());
            assertEquals(l.get("entity"), lease.entity());
          }
        }
      }
      if (expect.containsKey("broker")) {
        try (FakeServer server = new FakeServer((id, f) -> connectionLevel ? frame : FakeServer.withId(frame, id));
            QuotaClient c = QuotaClient.connect(server.options().build())) {
          BrokerQuotas b = new BrokerQuotas(c, BrokerQuotasOptions.builder().recordDeadlineMs(5000).build());
          CompletableFuture<Long> answer;
          switch ((String) v.get("for")) {
            case "RecordConsume":
              answer = b.fetch("bob", null, "etl", 1);
              break;
            case "RecordRequest":
              answer = b.request("carol", null);
              break;
            case "RecordUsage":
              answer = b.usage("alice", "app-1", "orders", 1);
              break;
            default:
              answer = b.produce("alice", "app-1", 1);
          }
          assertEquals(((Number) expect.get("broker")).longValue(), answer.get(10, TimeUnit.SECONDS), "the broker's answer");
          assertEquals(expect.containsKey("error") ? 1 : 0, b.failures(), "failures counted");
        }
      }
      if (!connectionLevel && !"Error".equals(v.get("type"))) {
        // The generic call hands back the body as the object.
        try (FakeServer server = new FakeServer((id, f) -> FakeServer.withId(frame, id));
            QuotaClient c = QuotaClient.connect(server.options().build())) {
          Map<String, Object> ping = new LinkedHashMap<>();
          ping.put("type", "Ping");
          assertTrue(Json.same(v.get("object"), await(c.request(ping, CallOptions.DEFAULT))), "the generic call's body");
        }
      }
    }));
  }

  static void checkRecord(Map<String, Object> want, RecordResult got) {
    if (want.containsKey("denied")) {
      Map<String, Object> d = Json.obj(want.get("denied"));
      assertTrue(got.isDenied());
      assertEquals(d.get("entity"), got.entity());
      assertEquals(d.get("reason"), got.deniedReason());
      return;
    }
    assertEquals(((Number) want.get("throttle_time_ms")).longValue(), got.throttleTimeMs());
    if (want.containsKey("quota_type")) {
      assertEquals(want.get("quota_type"), got.quotaType());
      assertEquals(want.get("entity"), got.entity());
      assertEquals(want.get("recorded"), got.recorded());
      assertEquals(want.get("period"), got.period().wire(), "the period that binds (absent on the wire: s)");
    }
  }

  @Test
  void theErrorTableIsTheServersTable() throws Exception {
    List<Object> codes = Json.arr(Harness.vectors("error-codes.json").get("codes"));
    Set<String> wire = codes.stream().map(c -> (String) Json.obj(c).get("code")).collect(Collectors.toSet());
    Set<String> mine = Arrays.stream(ErrorCode.values()).map(Enum::name).collect(Collectors.toSet());
    assertEquals(wire, mine, "the same codes");
    for (Object c : codes) {
      Map<String, Object> m = Json.obj(c);
      assertEquals(m.get("retriable"), ErrorCode.valueOf((String) m.get("code")).isRetriable(), m.get("code") + " retriable");
    }
    assertEquals(ErrorCode.INTERNAL_ERROR, ErrorCode.fromWire("NO_SUCH_CODE"));
    if (wire.isEmpty()) fail("no codes");
  }
}
