package dev.rivven.client;

import java.util.function.LongSupplier;

/**
 * A circuit breaker: after failureThreshold consecutive failures it opens and calls fail at once (no deadline to
 * wait out); after resetTimeoutMs the next call is a probe, and only one probe is out at a time. The probe's
 * success closes the breaker, its failure opens it for another resetTimeoutMs. Thread-safe; the closed state,
 * where nearly every call is made, is read without a lock. The clock is injected for tests.
 */
public final class CircuitBreaker {
  /** closed: calls pass. open: calls fail at once. half-open: one probe call tests recovery, the others fail. */
  public enum State {
    /** Calls pass. */
    CLOSED,
    /** Calls fail at once until resetTimeoutMs has passed. */
    OPEN,
    /** One probe is let through; the others fail at once. */
    HALF_OPEN
  }

  private final int failureThreshold;
  private final long resetTimeoutMs;
  private final LongSupplier nowMs;
  private volatile State state = State.CLOSED;
  private volatile int failures;
  private long openedAt;
  private boolean probing;
  private long opened;

  /** A breaker on the monotonic clock. */
  public CircuitBreaker(int failureThreshold, long resetTimeoutMs) {
    this(failureThreshold, resetTimeoutMs, () -> System.nanoTime() / 1_000_000L);
  }

  /** A breaker on the given clock (milliseconds, monotonic). */
  public CircuitBreaker(int failureThreshold, long resetTimeoutMs, LongSupplier nowMs) {
    if (failureThreshold < 1) throw new IllegalArgumentException("failureThreshold must be >= 1");
    if (resetTimeoutMs < 0) throw new IllegalArgumentException("resetTimeoutMs must be >= 0");
    this.failureThreshold = failureThreshold;
    this.resetTimeoutMs = resetTimeoutMs;
    this.nowMs = nowMs;
  }

  /** The state now. */
  public State state() {
    return state;
  }

  /** Times the breaker opened. */
  public synchronized long openedCount() {
    return opened;
  }

  /** Whether a call may go out now; a true answer in half-open state makes that call the probe. */
  public boolean allow() {
    if (state == State.CLOSED) return true;
    synchronized (this) {
      if (state == State.CLOSED) return true;
      if (state == State.OPEN) {
        if (nowMs.getAsLong() - openedAt < resetTimeoutMs) return false;
        state = State.HALF_OPEN;
      }
      if (probing) return false;
      probing = true;
      return true;
    }
  }

  /** A call succeeded (or failed for a reason that says nothing about the sidecar's health). */
  public void success() {
    if (state == State.CLOSED && failures == 0) return;
    synchronized (this) {
      failures = 0;
      probing = false;
      state = State.CLOSED;
    }
  }

  /** A call failed: a timeout, a lost connection, an overloaded sidecar. */
  public synchronized void failure() {
    probing = false;
    if (state == State.HALF_OPEN || ++failures >= failureThreshold) {
      if (state != State.OPEN) opened++;
      state = State.OPEN;
      openedAt = nowMs.getAsLong();
      failures = 0;
    }
  }
}
