package dev.rivven.client;

import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;

/**
 * One call in flight: the future its caller holds, what to write, and how to read its reply. A record call is
 * written straight into the connection's outgoing buffer from its fields; any other call carries its frame.
 */
final class Call<T> extends CompletableFuture<T> {
  final int id;
  final long deadlineNanos;
  final boolean failFast;
  /** Null for record calls (their reply is an Ok template or a RecordResult). */
  final Function<Map<String, Object>, T> decoder;
  /** The whole frame (non-record calls). */
  final byte[] frame;
  // Record calls.
  final int kind;
  final byte[] user;
  final byte[] clientId;
  final byte[] group;
  final long amount;
  final boolean admit;
  /** The connection its frame was queued on; null while it waits for one. Written under that connection's lock. */
  volatile Connection conn;

  Call(int id, long deadlineNanos, boolean failFast, Function<Map<String, Object>, T> decoder, byte[] frame) {
    this(id, deadlineNanos, failFast, decoder, frame, 0, null, null, null, 0, false);
  }

  Call(int id, long deadlineNanos, boolean failFast, Function<Map<String, Object>, T> decoder, byte[] frame, int kind, byte[] user, byte[] clientId, byte[] group, long amount, boolean admit) {
    this.id = id;
    this.deadlineNanos = deadlineNanos;
    this.failFast = failFast;
    this.decoder = decoder;
    this.frame = frame;
    this.kind = kind;
    this.user = user;
    this.clientId = clientId;
    this.group = group;
    this.amount = amount;
    this.admit = admit;
  }

  boolean isRecord() {
    return kind != 0;
  }

  int frameBound() {
    return isRecord() ? Wire.recordFrameBound(user, clientId, group) : frame.length;
  }

  /** Appends this call's frame at {@code at}; returns the end. */
  int writeTo(byte[] b, int at) {
    if (!isRecord()) {
      System.arraycopy(frame, 0, b, at, frame.length);
      return at + frame.length;
    }
    return Wire.writeRecord(b, at, id, kind, user, clientId, group, amount, admit);
  }

  /** Completes from a reply body (decoded); a decoder failure fails the call. */
  @SuppressWarnings("unchecked")
  void answer(Map<String, Object> body) {
    try {
      if ("Error".equals(body.get("type"))) {
        completeExceptionally(errorOf(body));
      } else if (isRecord()) {
        complete((T) Replies.record(body));
      } else {
        complete(decoder.apply(body));
      }
    } catch (RivvenException e) {
      completeExceptionally(e);
    }
  }

  static RivvenException errorOf(Map<String, Object> body) {
    ErrorCode code = ErrorCode.fromWire(body.get("code"));
    Object message = body.get("message");
    String text = message instanceof String ? (String) message : code.name();
    if (text.length() > 4096) text = text.substring(0, 4096);
    Object index = body.get("index");
    return new RivvenException(code, text, index instanceof Long ? (int) Math.min((Long) index, Integer.MAX_VALUE) : -1, null);
  }
}
