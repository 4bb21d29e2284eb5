package dev.rivven.client;

import javax.net.ssl.SSLContext;

/**
 * How a {@link QuotaClient} connects and calls: immutable, built once with {@link #builder()}. Every default is
 * in {@link #DEFAULTS} and documented on its builder method.
 */
public final class QuotaClientOptions {
  /** Every option at its default. */
  public static final QuotaClientOptions DEFAULTS = builder().build();

  private final String host;
  private final int port;
  private final long requestTimeoutMs;
  private final long connectTimeoutMs;
  private final int connectAttempts;
  private final long initialBackoffMs;
  private final long maxBackoffMs;
  private final int maxPending;
  private final int maxFrameBytes;
  private final String clientName;
  private final String token;
  private final SSLContext tls;
  private final String serverName;

  private QuotaClientOptions(Builder b) {
    host = b.host;
    port = b.port;
    requestTimeoutMs = b.requestTimeoutMs;
    connectTimeoutMs = b.connectTimeoutMs;
    connectAttempts = b.connectAttempts;
    initialBackoffMs = b.initialBackoffMs;
    maxBackoffMs = b.maxBackoffMs;
    maxPending = b.maxPending;
    maxFrameBytes = b.maxFrameBytes;
    clientName = b.clientName;
    token = b.token;
    tls = b.tls;
    serverName = b.serverName;
  }

  /** A builder holding the defaults. */
  public static Builder builder() {
    return new Builder();
  }

  /** The sidecar's host. */
  public String host() {
    return host;
  }

  /** The sidecar's port. */
  public int port() {
    return port;
  }

  /** A call without its own timeout fails with TIMEOUT after this. */
  public long requestTimeoutMs() {
    return requestTimeoutMs;
  }

  /** TCP connect, TLS handshake and Hello must succeed within this. */
  public long connectTimeoutMs() {
    return connectTimeoutMs;
  }

  /** Attempts {@link QuotaClient#connect} makes before it gives up. */
  public int connectAttempts() {
    return connectAttempts;
  }

  /** First delay between connection attempts, doubled each time up to maxBackoffMs. */
  public long initialBackoffMs() {
    return initialBackoffMs;
  }

  /** Longest delay between connection attempts. */
  public long maxBackoffMs() {
    return maxBackoffMs;
  }

  /** Calls in flight at most; past it calls fail at once with OVERLOADED. */
  public int maxPending() {
    return maxPending;
  }

  /** Largest reply frame accepted; a larger length closes the connection before anything is buffered. */
  public int maxFrameBytes() {
    return maxFrameBytes;
  }

  /** Sent in Hello; shows in the server's audit log (null: none). */
  public String clientName() {
    return clientName;
  }

  /** Sent in Hello; never logged (null: none). */
  public String token() {
    return token;
  }

  /** TLS settings (null: plain TCP). */
  public SSLContext tls() {
    return tls;
  }

  /** The name the server's certificate must carry (null: the host). */
  public String serverName() {
    return serverName;
  }

  @Override
  public String toString() {
    return "QuotaClientOptions{" + host + ":" + port + (tls != null ? " tls" : "") + (token != null ? " token=<set>" : "") + "}";
  }

  /** Builds {@link QuotaClientOptions}; each setter names its default. */
  public static final class Builder {
    private String host = "127.0.0.1";
    private int port = 9190;
    private long requestTimeoutMs = 5000;
    private long connectTimeoutMs = 1000;
    private int connectAttempts = 5;
    private long initialBackoffMs = 50;
    private long maxBackoffMs = 2000;
    private int maxPending = 10_000;
    private int maxFrameBytes = 64 * 1024 * 1024;
    private String clientName;
    private String token;
    private SSLContext tls;
    private String serverName;

    private Builder() {}

    /** Default "127.0.0.1". */
    public Builder host(String v) {
      host = v;
      return this;
    }

    /** Default 9190. */
    public Builder port(int v) {
      if (v < 0 || v > 65535) throw new IllegalArgumentException("port must be 0..65535");
      port = v;
      return this;
    }

    /** Default 5000. */
    public Builder requestTimeoutMs(long v) {
      requestTimeoutMs = positive(v, "requestTimeoutMs");
      return this;
    }

    /** Default 1000. */
    public Builder connectTimeoutMs(long v) {
      connectTimeoutMs = positive(v, "connectTimeoutMs");
      return this;
    }

    /** Default 5. */
    public Builder connectAttempts(int v) {
      connectAttempts = (int) positive(v, "connectAttempts");
      return this;
    }

    /** Default 50. */
    public Builder initialBackoffMs(long v) {
      initialBackoffMs = positive(v, "initialBackoffMs");
      return this;
    }

    /** Default 2000. */
    public Builder maxBackoffMs(long v) {
      maxBackoffMs = positive(v, "maxBackoffMs");
      return this;
    }

    /** Default 10000. */
    public Builder maxPending(int v) {
      maxPending = (int) positive(v, "maxPending");
      return this;
    }

    /** Default 64 MiB. */
    public Builder maxFrameBytes(int v) {
      maxFrameBytes = (int) positive(v, "maxFrameBytes");
      return this;
    }

    /** Default none. */
    public Builder clientName(String v) {
      clientName = v;
      return this;
    }

    /** Default none. */
    public Builder token(String v) {
      token = v;
      return this;
    }

    /** Default none (plain TCP); {@link Tls#fromPem} builds one from PEM files. */
    public Builder tls(SSLContext v) {
      tls = v;
      return this;
    }

    /** Default: the host. */
    public Builder serverName(String v) {
      serverName = v;
      return this;
    }

    /** The options. */
    public QuotaClientOptions build() {
      if (maxBackoffMs < initialBackoffMs) throw new IllegalArgumentException("maxBackoffMs must be >= initialBackoffMs");
      return new QuotaClientOptions(this);
    }

    private static long positive(long v, String name) {
      if (v <= 0) throw new IllegalArgumentException(name + " must be > 0");
      return v;
    }
  }
}
