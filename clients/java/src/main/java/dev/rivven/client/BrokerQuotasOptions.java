package dev.rivven.client;

import java.util.function.BiConsumer;
import java.util.function.Consumer;

/**
 * How {@link BrokerQuotas} answers: immutable, built once with {@link #builder()}; {@link #DEFAULTS} holds every
 * default (each named on its builder method).
 */
public final class BrokerQuotasOptions {
  /** Every option at its default. */
  public static final BrokerQuotasOptions DEFAULTS = builder().build();

  private final long recordDeadlineMs;
  private final int failureThreshold;
  private final long resetTimeoutMs;
  private final Consumer<Throwable> onError;
  private final BiConsumer<String, String> onDenied;

  private BrokerQuotasOptions(Builder b) {
    recordDeadlineMs = b.recordDeadlineMs;
    failureThreshold = b.failureThreshold;
    resetTimeoutMs = b.resetTimeoutMs;
    onError = b.onError;
    onDenied = b.onDenied;
  }

  /** A builder holding the defaults. */
  public static Builder builder() {
    return new Builder();
  }

  /** A record call not answered within this is answered 0 (fail open). */
  public long recordDeadlineMs() {
    return recordDeadlineMs;
  }

  /** Consecutive failures that open the breaker. */
  public int failureThreshold() {
    return failureThreshold;
  }

  /** Time the breaker stays open before one probe is let through. */
  public long resetTimeoutMs() {
    return resetTimeoutMs;
  }

  /** Told about each call answered 0 because the sidecar could not answer (rate-limit your logging). */
  public Consumer<Throwable> onError() {
    return onError;
  }

  /** Told about each call answered DENIED: the blocked entity and the operator's reason. */
  public BiConsumer<String, String> onDenied() {
    return onDenied;
  }

  /** Builds {@link BrokerQuotasOptions}. */
  public static final class Builder {
    private long recordDeadlineMs = 25;
    private int failureThreshold = 5;
    private long resetTimeoutMs = 1000;
    private Consumer<Throwable> onError = e -> {};
    private BiConsumer<String, String> onDenied = (entity, reason) -> {};

    private Builder() {}

    /** Default 25. */
    public Builder recordDeadlineMs(long v) {
      if (v <= 0) throw new IllegalArgumentException("recordDeadlineMs must be > 0");
      recordDeadlineMs = v;
      return this;
    }

    /** Default 5. */
    public Builder failureThreshold(int v) {
      if (v < 1) throw new IllegalArgumentException("failureThreshold must be >= 1");
      failureThreshold = v;
      return this;
    }

    /** Default 1000. */
    public Builder resetTimeoutMs(long v) {
      if (v < 0) throw new IllegalArgumentException("resetTimeoutMs must be >= 0");
      resetTimeoutMs = v;
      return this;
    }

    /** Default: ignore. */
    public Builder onError(Consumer<Throwable> v) {
      onError = java.util.Objects.requireNonNull(v);
      return this;
    }

    /** Default: ignore. */
    public Builder onDenied(BiConsumer<String, String> v) {
      onDenied = java.util.Objects.requireNonNull(v);
      return this;
    }

    /** The options. */
    public BrokerQuotasOptions build() {
      return new BrokerQuotasOptions(this);
    }
  }
}
