package dev.rivven.client;

/**
 * How one call is made.
 *
 * @param timeoutMs the call fails with TIMEOUT if no reply arrives within this; 0 means the client's
 *     requestTimeoutMs
 * @param failFast without a live connection, fail at once with UNAVAILABLE (and reconnect in the background)
 *     instead of waiting for the reconnection; for calls in a broker's request path
 */
public record CallOptions(long timeoutMs, boolean failFast) {
  /** The client's request timeout, waiting for a connection. */
  public static final CallOptions DEFAULT = new CallOptions(0, false);

  /** Checks the timeout is not negative. */
  public CallOptions {
    if (timeoutMs < 0) throw new IllegalArgumentException("timeoutMs must be >= 0");
  }
}
