package dev.rivven.client;

import java.util.OptionalInt;

/**
 * A failed call: the server's Error reply, or a client-side failure (timeout, lost connection, open breaker),
 * always with a code from the one error table. {@link #index()} names the offending list element (AlterQuotas).
 */
public final class RivvenException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final ErrorCode code;
  private final int index;

  /** An error with no list index. */
  public RivvenException(ErrorCode code, String message) {
    this(code, message, -1, null);
  }

  /** An error naming list element {@code index} (-1: none), caused by {@code cause} (may be null). */
  public RivvenException(ErrorCode code, String message, int index, Throwable cause) {
    super(code + ": " + message, cause);
    this.code = code;
    this.index = index;
  }

  /** The wire code. */
  public ErrorCode code() {
    return code;
  }

  /** The offending list element, when the server named one. */
  public OptionalInt index() {
    return index < 0 ? OptionalInt.empty() : OptionalInt.of(index);
  }

  /** Whether the same request may succeed later, unchanged (from the error table). */
  public boolean isRetriable() {
    return code.isRetriable();
  }
}
