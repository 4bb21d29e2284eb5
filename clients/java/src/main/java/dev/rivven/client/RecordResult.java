package dev.rivven.client;

/**
 * The answer to a record call: Ok (throttle 0), Throttled (delay the client, or in admit mode: refused), or
 * Denied (the principal is blocked: reject the request).
 *
 * @param throttleTimeMs how long to delay the client; 0 for Ok and Denied
 * @param quotaType the quota that needs the longest wait (Throttled), else null
 * @param entity the bucket that needs the longest wait (Throttled) or the blocked entity (Denied), else null
 * @param recorded whether the usage was recorded (false when an admit call was refused, and for Denied)
 * @param deniedReason the operator's reason when the principal is blocked, else null
 */
public record RecordResult(long throttleTimeMs, String quotaType, String entity, boolean recorded, String deniedReason) {
  /** The Ok answer, shared. */
  public static final RecordResult OK = new RecordResult(0, null, null, true, null);

  /** Whether the principal is blocked (Denied): the broker rejects the request. */
  public boolean isDenied() {
    return deniedReason != null;
  }
}
