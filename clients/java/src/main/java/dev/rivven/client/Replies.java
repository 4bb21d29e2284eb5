package dev.rivven.client;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Typed reply records and the checks that turn a decoded body into them (UNEXPECTED_REPLY when a field is off). */
public final class Replies {
  private Replies() {}

  /**
   * Hello's answer.
   *
   * @param protocolVersion the protocol the server speaks (1)
   * @param serverVersion the server's version string
   */
  public record HelloOk(long protocolVersion, String serverVersion) {}

  /**
   * One configured entity and its values (DescribeQuotas).
   *
   * @param entity the entity's components
   * @param quotas key to value: a Long, "unlimited", a tier name or a block reason
   * @param shadow the keys whose values are shadow ones (measured, not enforced)
   */
  public record QuotaEntry(List<Component> entity, Map<String, Object> quotas, List<String> shadow) {}

  /**
   * One live bucket (DescribeUsage). Names are null where the bucket has none.
   *
   * @param entity the bucket's display form
   * @param user the user, or null
   * @param clientId the client-id, or null
   * @param consumerGroup the consumer group, or null
   * @param quotaType a rate key, or max_in_flight for leases held
   * @param rate usage in the last window, per second (leases: held)
   * @param limit the quota per second as enforced now
   * @param utilization outstanding usage over quota x window
   * @param throttledTotal Throttled replies since the bucket was created
   * @param lastSeenMs the server's wall clock at the last call, epoch ms
   */
  public record BucketUsage(
      String entity,
      String user,
      String clientId,
      String consumerGroup,
      String quotaType,
      double rate,
      double limit,
      double utilization,
      long throttledTotal,
      long lastSeenMs) {}

  /**
   * AcquireLease's answer: granted with an id, or refused with the wait until a lease frees up.
   *
   * @param granted whether a lease was granted
   * @param leaseId the lease's id (granted), else null
   * @param ttlMs the lease's time to live (granted), else 0
   * @param throttleTimeMs the wait until the earliest lease of the group ends (refused), else 0
   * @param entity the lease group (refused), else null
   */
  public record LeaseResult(boolean granted, String leaseId, long ttlMs, long throttleTimeMs, String entity) {}

  /**
   * DescribeViolations' answer: the events (oldest first) and a summary of every match.
   *
   * @param events the events, each a map as docs/protocol.md's ViolationEvent
   * @param total events that matched in all
   * @param byType matches per violation type
   * @param topEntities the entities with most events, each a map {entity, count}
   */
  public record Violations(List<Map<String, Object>> events, long total, Map<String, Object> byType, List<Map<String, Object>> topEntities) {}

  static Map<String, Object> map(Object v, String what) {
    if (!(v instanceof Map)) throw Wire.unexpected(what + " is not a map");
    @SuppressWarnings("unchecked")
    Map<String, Object> m = (Map<String, Object>) v;
    return m;
  }

  static List<Object> list(Map<String, Object> body, String field) {
    Object v = body.get(field);
    if (!(v instanceof List)) throw Wire.unexpected("the reply's " + field + " is not a list");
    @SuppressWarnings("unchecked")
    List<Object> l = (List<Object>) v;
    return l;
  }

  static String str(Map<String, Object> body, String field) {
    Object v = body.get(field);
    if (!(v instanceof String)) throw Wire.unexpected("the reply's " + field + " is not a string");
    return (String) v;
  }

  static String optStr(Map<String, Object> body, String field) {
    Object v = body.get(field);
    if (v == null) return null;
    if (!(v instanceof String)) throw Wire.unexpected("the reply's " + field + " is not a string");
    return (String) v;
  }

  static double num(Map<String, Object> body, String field) {
    Object v = body.get(field);
    if (!(v instanceof Number)) throw Wire.unexpected("the reply's " + field + " is not a number");
    return ((Number) v).doubleValue();
  }

  /** An integer: a msgpack int, or a float64 holding one (msgpackr writes integers past 2^32 that way). */
  static long integer(Map<String, Object> body, String field) {
    Object v = body.get(field);
    if (v instanceof Long) return (Long) v;
    if (v instanceof Double) {
      double d = (Double) v;
      if (d == Math.rint(d) && Math.abs(d) <= Wire.MAX_INT) return (long) d;
    }
    throw Wire.unexpected("the reply's " + field + " is not an integer");
  }

  static void expectType(Map<String, Object> body, String type) {
    if (!type.equals(body.get("type"))) {
      throw Wire.unexpected("expected a " + type + " reply, got " + truncate(String.valueOf(body.get("type"))));
    }
  }

  static String truncate(String s) {
    return s.length() > 64 ? s.substring(0, 64) : s;
  }

  private static final List<String> QUOTA_KEYS = List.of("produce_bytes_rate", "consume_bytes_rate", "request_rate");

  static RecordResult record(Map<String, Object> body) {
    return record(body, null);
  }

  /**
   * A record reply; {@code usageKey} is the quota_type a RecordUsage call may be throttled on ({@code <resource>_rate}),
   * null for the three built-in record calls.
   */
  static RecordResult record(Map<String, Object> body, String usageKey) {
    Object type = body.get("type");
    if ("Ok".equals(type)) return RecordResult.OK;
    if ("Denied".equals(type)) return new RecordResult(0, null, str(body, "entity"), false, str(body, "reason"), null);
    if (!"Throttled".equals(type)) throw Wire.unexpected("expected Ok, Throttled or Denied, got " + truncate(String.valueOf(type)));
    String quotaType = str(body, "quota_type");
    if (usageKey == null ? !QUOTA_KEYS.contains(quotaType) : !usageKey.equals(quotaType)) {
      throw Wire.unexpected("unknown quota_type " + truncate(quotaType));
    }
    long ms = integer(body, "throttle_time_ms");
    // Throttled means a wait (docs/protocol.md: int > 0, at most 2^53-1); a broker would take -1 for DENIED and 0 for no delay.
    if (ms <= 0 || ms > Wire.MAX_INT) throw Wire.unexpected("a Throttled reply with throttle_time_ms " + ms);
    Period period = Period.fromWire(body.get("period"));
    return new RecordResult(ms, quotaType, str(body, "entity"), Boolean.TRUE.equals(body.get("recorded")), null, period);
  }

  static HelloOk hello(Map<String, Object> body) {
    expectType(body, "HelloOk");
    return new HelloOk(integer(body, "protocol_version"), str(body, "server_version"));
  }

  static Void pong(Map<String, Object> body) {
    expectType(body, "Pong");
    return null;
  }

  static Void ok(Map<String, Object> body) {
    expectType(body, "Ok");
    return null;
  }

  static List<Component> entity(Object v) {
    if (!(v instanceof List)) throw Wire.unexpected("an entity is not a list");
    List<Component> out = new ArrayList<>();
    for (Object c : (List<?>) v) {
      if (!(c instanceof List) || ((List<?>) c).size() != 2 || !(((List<?>) c).get(0) instanceof String)) {
        throw Wire.unexpected("an entity component is not [type, name]");
      }
      Object name = ((List<?>) c).get(1);
      if (name != null && !(name instanceof String)) throw Wire.unexpected("an entity name is not a string");
      out.add(new Component((String) ((List<?>) c).get(0), (String) name));
    }
    return List.copyOf(out);
  }

  static List<QuotaEntry> quotas(Map<String, Object> body) {
    expectType(body, "QuotasDescribed");
    List<QuotaEntry> out = new ArrayList<>();
    for (Object item : list(body, "entries")) {
      Map<String, Object> e = map(item, "an entry");
      List<String> shadow = new ArrayList<>();
      if (e.get("shadow") != null) for (Object k : list(e, "shadow")) shadow.add(String.valueOf(k));
      out.add(new QuotaEntry(entity(e.get("entity")), map(e.get("quotas"), "quotas"), List.copyOf(shadow)));
    }
    return out;
  }

  static long altered(Map<String, Object> body) {
    expectType(body, "QuotasAltered");
    return integer(body, "altered_count");
  }

  static List<BucketUsage> usage(Map<String, Object> body) {
    expectType(body, "UsageDescribed");
    List<BucketUsage> out = new ArrayList<>();
    for (Object item : list(body, "buckets")) {
      Map<String, Object> b = map(item, "a bucket");
      out.add(
          new BucketUsage(
              str(b, "entity"),
              optStr(b, "user"),
              optStr(b, "client_id"),
              optStr(b, "consumer_group"),
              str(b, "quota_type"),
              num(b, "rate"),
              num(b, "limit"),
              num(b, "utilization"),
              integer(b, "throttled_total"),
              integer(b, "last_seen_ms")));
    }
    return out;
  }

  static long reset(Map<String, Object> body) {
    expectType(body, "UsageReset");
    return integer(body, "buckets");
  }

  static LeaseResult lease(Map<String, Object> body) {
    if ("Throttled".equals(body.get("type"))) {
      return new LeaseResult(false, null, 0, integer(body, "throttle_time_ms"), str(body, "entity"));
    }
    expectType(body, "LeaseGranted");
    return new LeaseResult(true, str(body, "lease_id"), integer(body, "ttl_ms"), 0, null);
  }

  @SuppressWarnings("unchecked")
  static Violations violations(Map<String, Object> body) {
    expectType(body, "ViolationsDescribed");
    List<Map<String, Object>> events = new ArrayList<>();
    for (Object e : list(body, "events")) events.add(map(e, "an event"));
    Map<String, Object> summary = map(body.get("summary"), "summary");
    List<Map<String, Object>> top = new ArrayList<>();
    for (Object e : list(summary, "top_entities")) top.add(map(e, "a top entity"));
    return new Violations(events, integer(summary, "total"), map(summary.get("by_type"), "by_type"), top);
  }

  static Map<String, Object> fleet(Map<String, Object> body) {
    expectType(body, "FleetDescribed");
    list(body, "sidecars");
    return body;
  }
}
