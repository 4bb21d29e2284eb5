package dev.rivven.client;

import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;

/**
 * A connection to one rivven sidecar: typed record and admin calls, each answered by a {@link CompletableFuture}.
 *
 * <p>Calls are pipelined on one connection and matched to replies by correlation id; calls made while the writer
 * is busy go out together in its next write. In-flight calls are bounded ({@code maxPending}: past it a call fails
 * at once with OVERLOADED). Each call has a deadline ({@code requestTimeoutMs}, or its {@link CallOptions}), after
 * which it fails with TIMEOUT; a late reply is dropped. When the connection drops, the calls sent on it fail with
 * CONNECTION_CLOSED and the client reconnects in the background with backoff; calls made meanwhile wait for the
 * connection (within their deadline), or with {@code failFast} fail at once with UNAVAILABLE.
 *
 * <p>Thread-safe. No thread per call: each connection has a reader and a writer thread, the client one deadline
 * thread and, while reconnecting, one connect thread. Futures complete on the reader thread (a reply), the
 * deadline thread (TIMEOUT) or the caller's (fail-fast): a callback attached with {@code thenApply} runs there, so
 * do not block in it (use the {@code ...Async} variants to move work elsewhere). Brokers use it through
 * {@link BrokerQuotas}, which never lets a call stall the broker.
 */
public final class QuotaClient implements AutoCloseable {
  private final QuotaClientOptions options;
  private final String address;
  private final ConcurrentHashMap<Integer, Call<?>> pending = new ConcurrentHashMap<>();
  private final AtomicInteger inFlight = new AtomicInteger();
  private final AtomicInteger nextId = new AtomicInteger(1);
  private final Deadlines deadlines;
  private final Object connectLock = new Object();
  /** Calls waiting for a connection; guarded by connectLock. */
  private final ArrayDeque<Call<?>> waiting = new ArrayDeque<>();
  private volatile Connection conn;
  /** The background connect thread, while one runs; guarded by connectLock. */
  private Thread connector;
  /**
   * How long the next background reconnect waits before its first attempt; guarded by connectLock. Connections that
   * die right after their Hello (a server that accepts and closes, forever) must not become a reconnect storm.
   */
  private long redialAfterMs;
  private volatile boolean closed;

  private QuotaClient(QuotaClientOptions options) {
    this.options = options;
    this.address = options.host() + ":" + options.port();
    this.deadlines = new Deadlines("rivven-deadlines " + address, this::expire);
  }

  /**
   * Connects (retrying with backoff up to connectAttempts) and says Hello. On failure nothing is left running.
   *
   * @throws RivvenException CONNECTION_CLOSED when the sidecar cannot be reached, or the code the server gave
   *     (AUTHENTICATION_FAILED, UNSUPPORTED_VERSION, ...)
   */
  public static QuotaClient connect(QuotaClientOptions options) {
    QuotaClient c = new QuotaClient(options);
    try {
      c.conn = c.dial(options.connectAttempts());
    } catch (RuntimeException e) {
      c.close();
      throw e;
    }
    return c;
  }

  /** {@link #connect} on a thread of its own; the future fails with its RivvenException. */
  public static CompletableFuture<QuotaClient> connectAsync(QuotaClientOptions options) {
    CompletableFuture<QuotaClient> f = new CompletableFuture<>();
    Thread t = new Thread(() -> {
      try {
        f.complete(connect(options));
      } catch (RuntimeException e) {
        f.completeExceptionally(e);
      }
    }, "rivven-connect " + options.host() + ":" + options.port());
    t.setDaemon(true);
    t.start();
    return f;
  }

  /** The options this client was built with. */
  public QuotaClientOptions options() {
    return options;
  }

  /** Whether a connection is up now. */
  public boolean isConnected() {
    Connection c = conn;
    return c != null && !c.isDead();
  }

  /** Calls sent or waiting and not yet answered. */
  public int inFlight() {
    return inFlight.get();
  }

  /** Hello again on this connection: the server's protocol and version. */
  public CompletableFuture<Replies.HelloOk> hello() {
    Map<String, Object> body = body("Hello");
    body.put("protocol_version", 1L);
    if (options.clientName() != null) body.put("client_name", options.clientName());
    if (options.token() != null) body.put("token", options.token());
    return request(body, CallOptions.DEFAULT, Replies::hello);
  }

  /** Ping: completes when the sidecar answers Pong. */
  public CompletableFuture<Void> ping() {
    return request(body("Ping"), CallOptions.DEFAULT, Replies::pong);
  }

  /** Records {@code bytes} produced by (user, clientId); either may be null. */
  public CompletableFuture<RecordResult> recordProduce(String user, String clientId, long bytes) {
    return record(Wire.RECORD_PRODUCE, user, clientId, null, bytes, false, CallOptions.DEFAULT);
  }

  /** Records a produce; {@code admit}: only if it fits (else Throttled, nothing recorded). */
  public CompletableFuture<RecordResult> recordProduce(String user, String clientId, long bytes, boolean admit, CallOptions opts) {
    return record(Wire.RECORD_PRODUCE, user, clientId, null, bytes, admit, opts);
  }

  /** Records {@code bytes} consumed by (user, clientId), held against consumerGroup's quota too (may be null). */
  public CompletableFuture<RecordResult> recordConsume(String user, String clientId, String consumerGroup, long bytes) {
    return record(Wire.RECORD_CONSUME, user, clientId, consumerGroup, bytes, false, CallOptions.DEFAULT);
  }

  /** Records a fetch, with admit mode and call options. */
  public CompletableFuture<RecordResult> recordConsume(String user, String clientId, String consumerGroup, long bytes, boolean admit, CallOptions opts) {
    return record(Wire.RECORD_CONSUME, user, clientId, consumerGroup, bytes, admit, opts);
  }

  /** Records one request of (user, clientId), for request_rate. */
  public CompletableFuture<RecordResult> recordRequest(String user, String clientId) {
    return record(Wire.RECORD_REQUEST, user, clientId, null, 1, false, CallOptions.DEFAULT);
  }

  /** Records {@code count} (>= 1) requests, with admit mode and call options. */
  public CompletableFuture<RecordResult> recordRequest(String user, String clientId, long count, boolean admit, CallOptions opts) {
    if (count < 1) return failed(new RivvenException(ErrorCode.INVALID_REQUEST, "count must be at least 1"));
    return record(Wire.RECORD_REQUEST, user, clientId, null, count, admit, opts);
  }

  /** Records one unit of the named {@code resource} (declared in the sidecar's quotas.resources) for (user, clientId). */
  public CompletableFuture<RecordResult> recordUsage(String user, String clientId, String resource) {
    return recordUsage(user, clientId, resource, 1, false, CallOptions.DEFAULT);
  }

  /** Records {@code amount} (>= 1) units of {@code resource}, held against its {@code <resource>_rate}. */
  public CompletableFuture<RecordResult> recordUsage(String user, String clientId, String resource, long amount) {
    return recordUsage(user, clientId, resource, amount, false, CallOptions.DEFAULT);
  }

  /**
   * Records {@code amount} units of the named {@code resource}, with admit mode and call options. Answered like the
   * other record calls; Throttled names {@code <resource>_rate}. An undeclared resource fails with INVALID_REQUEST
   * (from the sidecar); a name outside the grammar (1-32 of a-z, 0-9, _, starting with a letter) or an amount
   * outside 1..2^53-1 fails here, unsent.
   */
  public CompletableFuture<RecordResult> recordUsage(String user, String clientId, String resource, long amount, boolean admit, CallOptions opts) {
    if (!isResourceName(resource)) {
      return failed(new RivvenException(ErrorCode.INVALID_REQUEST, "resource must be 1-32 characters of a-z, 0-9 and _, starting with a letter"));
    }
    if (amount < 1 || amount > Wire.MAX_INT) return failed(new RivvenException(ErrorCode.INVALID_REQUEST, "amount must be an integer from 1 to 2^53-1"));
    // As the Node client writes it (conformance/README.md): amount left out when 1, the default.
    Map<String, Object> body = body("RecordUsage");
    body.put("resource", resource);
    if (user != null) body.put("user", user);
    if (clientId != null) body.put("client_id", clientId);
    if (amount != 1) body.put("amount", amount);
    if (admit) body.put("admit", true);
    String key = resource + "_rate";
    return request(body, opts, b -> Replies.record(b, key));
  }

  private static boolean isResourceName(String name) {
    if (name == null || name.isEmpty() || name.length() > 32) return false;
    if (name.charAt(0) < 'a' || name.charAt(0) > 'z') return false;
    for (int i = 1; i < name.length(); i++) {
      char ch = name.charAt(i);
      if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_')) return false;
    }
    return true;
  }

  /** Configured entities containing any of {@code entities} (empty: all, the global default first). */
  public CompletableFuture<List<Replies.QuotaEntry>> describeQuotas(List<Component> entities) {
    Map<String, Object> body = body("DescribeQuotas");
    body.put("entities", entities);
    return request(body, CallOptions.DEFAULT, Replies::quotas);
  }

  /** Applies every alteration or none; completes with how many were applied. */
  public CompletableFuture<Long> alterQuotas(List<QuotaAlteration> alterations, boolean validateOnly) {
    Map<String, Object> body = body("AlterQuotas");
    body.put("alterations", alterations);
    body.put("validate_only", validateOnly);
    return request(body, CallOptions.DEFAULT, Replies::altered);
  }

  /** The live buckets, highest first by sortBy ("utilization" or "rate"; null: the server's default), at most top (0: default). */
  public CompletableFuture<List<Replies.BucketUsage>> describeUsage(List<Component> entities, int top, String sortBy) {
    Map<String, Object> body = body("DescribeUsage");
    body.put("entities", entities);
    if (top > 0) body.put("top", (long) top);
    if (sortBy != null) body.put("sort_by", sortBy);
    return request(body, CallOptions.DEFAULT, Replies::usage);
  }

  /** Clears usage and debt of the listed principals' buckets; completes with how many were reset. */
  public CompletableFuture<Long> resetUsage(List<Component> entities) {
    Map<String, Object> body = body("ResetUsage");
    body.put("entities", entities);
    return request(body, CallOptions.DEFAULT, Replies::reset);
  }

  /** Takes an in-flight lease (max_in_flight), or learns how long until one frees up; ttlMs 0: the default. */
  public CompletableFuture<Replies.LeaseResult> acquireLease(String user, String clientId, long ttlMs, CallOptions opts) {
    Map<String, Object> body = body("AcquireLease");
    if (user != null) body.put("user", user);
    if (clientId != null) body.put("client_id", clientId);
    if (ttlMs > 0) body.put("ttl_ms", ttlMs);
    return request(body, opts, Replies::lease);
  }

  /** Ends a lease (idempotent). */
  public CompletableFuture<Void> releaseLease(String leaseId, CallOptions opts) {
    Map<String, Object> body = body("ReleaseLease");
    body.put("lease_id", leaseId);
    return request(body, opts, Replies::ok);
  }

  /** The violation log: sinceMs (epoch ms, 0: all), entities and types filter (empty: all), limit (0: default). */
  public CompletableFuture<Replies.Violations> describeViolations(long sinceMs, List<Component> entities, List<String> types, int limit) {
    Map<String, Object> body = body("DescribeViolations");
    if (sinceMs > 0) body.put("since_ms", sinceMs);
    if (!entities.isEmpty()) body.put("entities", entities);
    if (!types.isEmpty()) body.put("types", types);
    if (limit > 0) body.put("limit", (long) limit);
    return request(body, CallOptions.DEFAULT, Replies::violations);
  }

  /** The fleet as the sidecar saw it at its last heartbeat, as the FleetDescribed body (docs/protocol.md). */
  public CompletableFuture<Map<String, Object>> describeFleet() {
    return request(body("DescribeFleet"), CallOptions.DEFAULT, Replies::fleet);
  }

  /** Sends any request body and completes with the reply body; an Error reply fails it with its code. */
  public CompletableFuture<Map<String, Object>> request(Map<String, Object> body, CallOptions opts) {
    return request(body, opts, Function.identity());
  }

  private static Map<String, Object> body(String type) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("type", type);
    return m;
  }

  private <T> CompletableFuture<T> request(Map<String, Object> body, CallOptions opts, Function<Map<String, Object>, T> decoder) {
    Map<String, Object> frozen = new LinkedHashMap<>(body);
    return call(opts, (id, deadline) -> new Call<>(id, deadline, opts.failFast(), decoder, Wire.frame(id, frozen)));
  }

  private CompletableFuture<RecordResult> record(int kind, String user, String clientId, String group, long amount, boolean admit, CallOptions opts) {
    if (amount < 0 || amount > Wire.MAX_INT) {
      return failed(new RivvenException(ErrorCode.INVALID_REQUEST, "amount must be an integer from 0 to 2^53-1"));
    }
    byte[] u = Wire.utf8(user);
    byte[] c = Wire.utf8(clientId);
    byte[] g = kind == Wire.RECORD_CONSUME ? Wire.utf8(group) : null;
    return call(opts, (id, deadline) -> new Call<RecordResult>(id, deadline, opts.failFast(), null, null, kind, u, c, g, amount, admit));
  }

  private interface CallFactory<T> {
    Call<T> make(int id, long deadlineNanos);
  }

  private <T> CompletableFuture<T> call(CallOptions opts, CallFactory<T> factory) {
    if (closed) return failed(new RivvenException(ErrorCode.CONNECTION_CLOSED, "the client is closed"));
    if (inFlight.incrementAndGet() > options.maxPending()) {
      inFlight.decrementAndGet();
      return failed(new RivvenException(ErrorCode.OVERLOADED, options.maxPending() + " calls are in flight to " + address + " (maxPending)"));
    }
    Connection c = conn;
    if (c == null && opts.failFast()) {
      inFlight.decrementAndGet();
      reconnectInBackground();
      return failed(new RivvenException(ErrorCode.UNAVAILABLE, "not connected to " + address));
    }
    long timeoutMs = opts.timeoutMs() > 0 ? opts.timeoutMs() : options.requestTimeoutMs();
    Call<T> call = factory.make(freshId(), System.nanoTime() + timeoutMs * 1_000_000L);
    pending.put(call.id, call);
    deadlines.add(call, timeoutMs);
    if (c != null && c.send(call)) return call;
    if (opts.failFast()) {
      settle(call, new RivvenException(ErrorCode.UNAVAILABLE, "not connected to " + address));
      reconnectInBackground();
      return call;
    }
    synchronized (connectLock) {
      Connection now = conn;
      if (now == null || !now.send(call)) {
        // Calls that timed out while waiting are dropped here, so the queue stays within maxPending live calls.
        if (waiting.size() >= options.maxPending()) waiting.removeIf(CompletableFuture::isDone);
        waiting.add(call);
      }
    }
    reconnectInBackground();
    return call;
  }

  /** A correlation id: never 0 (reserved for connection errors), never one still in flight after a wrap-around. */
  private int freshId() {
    while (true) {
      int id = nextId.getAndIncrement();
      if (id != 0 && !pending.containsKey(id)) return id;
    }
  }

  private static <T> CompletableFuture<T> failed(RivvenException e) {
    CompletableFuture<T> f = new CompletableFuture<>();
    f.completeExceptionally(e);
    return f;
  }

  /** From the reader thread: one reply body in buf[0, n). */
  void onReply(int id, byte[] buf, int n) {
    Call<?> call = pending.remove(id);
    if (call == null) return; // timed out earlier: the late reply is dropped
    inFlight.decrementAndGet();
    if (call.isRecord() && Wire.isOk(buf, 0, n)) {
      // The reply to nearly every record call: the same bytes every time, so no decoding and no new object.
      complete(call, RecordResult.OK);
      return;
    }
    try {
      call.answer(Replies.map(Wire.decode(buf, 0, n), "the reply"));
    } catch (RuntimeException | Error e) {
      // The call is no longer pending, so nothing else would ever complete it: it must fail here, whatever broke.
      call.completeExceptionally(e instanceof RivvenException ? e : new RivvenException(ErrorCode.UNEXPECTED_REPLY, "the reply could not be read: " + e, -1, e));
      if (e instanceof Error) throw (Error) e;
    }
  }

  @SuppressWarnings("unchecked")
  private static <T> void complete(Call<T> call, Object value) {
    call.complete((T) value);
  }

  private void expire(Call<?> call) {
    settle(call, new RivvenException(ErrorCode.TIMEOUT, "no reply from " + address + " within the call's deadline"));
  }

  /** Fails a call if it is still pending. */
  private void settle(Call<?> call, RivvenException err) {
    if (pending.remove(call.id, call)) {
      inFlight.decrementAndGet();
      call.completeExceptionally(err);
    }
  }

  /** From a dying connection: its calls fail, and the client reconnects in the background. */
  void onConnectionLost(Connection c, RivvenException err) {
    for (Call<?> call : new ArrayList<>(pending.values())) if (call.conn == c) settle(call, err);
    synchronized (connectLock) {
      if (conn == c) {
        conn = null;
        long livedMs = (System.nanoTime() - c.openedAtNanos) / 1_000_000L;
        redialAfterMs = livedMs < options.maxBackoffMs() ? longerRedial() : 0;
      }
    }
    if (!closed) reconnectInBackground();
  }

  private void reconnectInBackground() {
    synchronized (connectLock) {
      // A registered connection, even one found dead, is left to its own loss (fail() -> onConnectionLost, which
      // unregisters it, sets the redial backoff, then comes here): a reconnect started from a call in between
      // read the backoff before that loss lengthened it, and redialled a server that closes at once too soon.
      if (closed || connector != null || conn != null) return;
      Thread t = new Thread(this::reconnectLoop, "rivven-reconnect " + address);
      t.setDaemon(true);
      connector = t;
      t.start();
    }
  }

  private void reconnectLoop() {
    long delay = options.initialBackoffMs();
    try {
      long wait;
      synchronized (connectLock) {
        wait = redialAfterMs;
      }
      if (wait > 0) Thread.sleep(wait);
      while (!closed) {
        try {
          Connection c = Connection.open(this, options, freshId());
          synchronized (connectLock) {
            if (closed) {
              c.fail(new RivvenException(ErrorCode.CONNECTION_CLOSED, "the client was closed"));
              return;
            }
            if (!c.isDead()) {
              conn = c;
              // From here a loss of c starts a new reconnect (this thread is done): one lost before the finally
              // below found this thread still registered and started none.
              connector = null;
              // Calls that waited for a connection go out now, in the order they were made.
              for (Call<?> call; (call = waiting.poll()) != null; ) {
                if (pending.get(call.id) == call && !c.send(call)) settle(call, new RivvenException(ErrorCode.CONNECTION_CLOSED, "connection to " + address + " closed"));
              }
              return;
            }
            // Lost before it was even published (the server closed at once): a connection that died at once.
            delay = redialAfterMs = longerRedial();
          }
        } catch (RivvenException e) {
          // Not retriable (a revoked token): the waiting calls fail with it; attempts go on, with backoff.
          if (!e.isRetriable()) failWaiting(e);
        } catch (IOException e) {
          // Refused, reset, TLS failure: try again after the backoff.
        }
        Thread.sleep(delay);
        delay = Math.min(delay * 2, options.maxBackoffMs());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      synchronized (connectLock) {
        if (connector == Thread.currentThread()) connector = null;
      }
    }
  }

  /** The next redial wait after a connection that died at once (under connectLock). */
  private long longerRedial() {
    return Math.min(Math.max(redialAfterMs * 2, options.initialBackoffMs()), options.maxBackoffMs());
  }

  private void failWaiting(RivvenException e) {
    List<Call<?>> calls;
    synchronized (connectLock) {
      calls = new ArrayList<>(waiting);
      waiting.clear();
    }
    for (Call<?> call : calls) settle(call, e);
  }

  private Connection dial(int attempts) {
    long delay = options.initialBackoffMs();
    for (int attempt = 1; ; attempt++) {
      if (closed) throw new RivvenException(ErrorCode.CONNECTION_CLOSED, "the client was closed");
      String reason;
      try {
        return Connection.open(this, options, freshId());
      } catch (RivvenException e) {
        if (!e.isRetriable()) throw e;
        reason = e.getMessage();
      } catch (IOException e) {
        reason = e.toString();
      }
      if (attempt >= attempts || closed) {
        throw new RivvenException(ErrorCode.CONNECTION_CLOSED, "cannot reach the rivven server at " + address + " (" + reason + ")");
      }
      try {
        Thread.sleep(delay);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new RivvenException(ErrorCode.CONNECTION_CLOSED, "interrupted while connecting to " + address);
      }
      delay = Math.min(delay * 2, options.maxBackoffMs());
    }
  }

  /** Fails every pending call with CONNECTION_CLOSED, stops reconnecting and closes the connection. Idempotent. */
  @Override
  public void close() {
    Connection c;
    Thread t;
    synchronized (connectLock) {
      if (closed) return;
      closed = true;
      c = conn;
      conn = null;
      t = connector;
      waiting.clear();
    }
    if (t != null) t.interrupt();
    if (c != null) c.fail(new RivvenException(ErrorCode.CONNECTION_CLOSED, "the client was closed"));
    RivvenException err = new RivvenException(ErrorCode.CONNECTION_CLOSED, "the client was closed");
    for (Call<?> call : new ArrayList<>(pending.values())) settle(call, err);
    deadlines.stop();
  }
}
