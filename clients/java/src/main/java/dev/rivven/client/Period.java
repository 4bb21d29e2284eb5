package dev.rivven.client;

/**
 * The period of the rate that binds a Throttled answer (DESIGN section 16: a key may carry several rates, one
 * bucket per period; the longest wait wins and the reply names its period). On the wire {@code "min"}, {@code "h"},
 * {@code "d"}, or absent for a per-second rate.
 */
public enum Period {
  /** Per second: the wire leaves {@code period} out. */
  SECOND("s"),
  /** Per minute ({@code "min"}). */
  MINUTE("min"),
  /** Per hour ({@code "h"}). */
  HOUR("h"),
  /** Per day ({@code "d"}). */
  DAY("d");

  private final String wire;

  Period(String wire) {
    this.wire = wire;
  }

  /** The unit as the wire and the rate grammar write it: {@code s}, {@code min}, {@code h} or {@code d}. */
  public String wire() {
    return wire;
  }

  /** The period a Throttled reply names; null (absent) is {@link #SECOND}; anything else is UNEXPECTED_REPLY. */
  static Period fromWire(Object value) {
    if (value == null) return SECOND;
    if (value instanceof String) {
      for (Period p : values()) if (p.wire.equals(value)) return p;
    }
    String shown = String.valueOf(value);
    throw Wire.unexpected("unknown period " + (shown.length() > 64 ? shown.substring(0, 64) : shown));
  }
}
