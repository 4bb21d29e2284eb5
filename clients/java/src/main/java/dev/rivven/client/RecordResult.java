package dev.rivven.client;

/**
 * The answer to a record call: Ok (throttle 0), Throttled (delay the client, or in admit mode: refused), or
 * Denied (the principal is blocked: reject the request).
 *
 * @param throttleTimeMs how long to delay the client; 0 for Ok and Denied
 * @param quotaType the quota that needs the longest wait (Throttled; {@code <resource>_rate} for recordUsage), else null
 * @param entity the bucket that needs the longest wait (Throttled) or the blocked entity (Denied), else null
 * @param recorded whether the usage was recorded (false when an admit call was refused, and for Denied)
 * @param deniedReason the operator's reason when the principal is blocked, else null
 * @param period the period of the rate that needs the longest wait (Throttled: {@link Period#SECOND} when the
 *     reply names none), else null
 */
public record RecordResult(long throttleTimeMs, String quotaType, String entity, boolean recorded, String deniedReason, Period period) {
  /** The Ok answer, shared. */
  public static final RecordResult OK = new RecordResult(0, null, null, true, null, null);

  /** Whether the principal is blocked (Denied): the broker rejects the request. */
  public boolean isDenied() {
    return deniedReason != null;
  }
}
