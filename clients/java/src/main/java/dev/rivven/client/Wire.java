package dev.rivven.client;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.msgpack.core.MessageBufferPacker;
import org.msgpack.core.MessageFormat;
import org.msgpack.core.MessagePack;
import org.msgpack.core.MessageUnpacker;

/**
 * The protocol's bytes (docs/protocol.md): {@code length u32 | correlation_id u32 | msgpack map}. Record requests
 * are written by hand, byte for byte as the Node client writes them (conformance vectors marked exact); every
 * other body goes through msgpack-core. Replies decode to plain Java values: Map (insertion order), List, String,
 * Long, Double, Boolean, byte[] and null.
 */
final class Wire {
  private Wire() {}

  static final int HEADER_BYTES = 8;
  /** The largest integer the protocol carries: 2^53-1. */
  static final long MAX_INT = (1L << 53) - 1;
  /** Replies nest a few levels at most; a deeper one is hostile. */
  private static final int MAX_DEPTH = 32;

  static final int RECORD_PRODUCE = 1;
  static final int RECORD_CONSUME = 2;
  static final int RECORD_REQUEST = 3;

  private static final byte[] K_TYPE = fixstr("type");
  private static final byte[] K_USER = fixstr("user");
  private static final byte[] K_CLIENT = fixstr("client_id");
  private static final byte[] K_GROUP = fixstr("consumer_group");
  private static final byte[] K_BYTES = fixstr("bytes");
  private static final byte[] K_COUNT = fixstr("count");
  private static final byte[] K_ADMIT = fixstr("admit");
  private static final byte[][] RECORD_TYPES = {
    fixstr("RecordProduce"), fixstr("RecordConsume"), fixstr("RecordRequest")
  };

  /** The Ok body exactly as the server writes it (map16 {type: "Ok", throttle_time_ms: 0}): matched without decoding. */
  static final byte[] OK_BODY = okBody();

  private static byte[] fixstr(String s) {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    byte[] out = new byte[b.length + 1];
    out[0] = (byte) (0xa0 | b.length);
    System.arraycopy(b, 0, out, 1, b.length);
    return out;
  }

  private static byte[] okBody() {
    byte[] t = fixstr("type");
    byte[] ok = fixstr("Ok");
    byte[] k = fixstr("throttle_time_ms");
    byte[] out = new byte[3 + t.length + ok.length + k.length + 1];
    out[0] = (byte) 0xde;
    out[2] = 2;
    int at = 3;
    System.arraycopy(t, 0, out, at, t.length);
    at += t.length;
    System.arraycopy(ok, 0, out, at, ok.length);
    at += ok.length;
    System.arraycopy(k, 0, out, at, k.length);
    return out;
  }

  static boolean isOk(byte[] buf, int off, int len) {
    return len == OK_BODY.length && Arrays.equals(buf, off, off + len, OK_BODY, 0, len);
  }

  /** The UTF-8 of a name, or null for none. */
  static byte[] utf8(String s) {
    return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
  }

  /** Worst-case size of a record frame with these names. */
  static int recordFrameBound(byte[] user, byte[] clientId, byte[] group) {
    return HEADER_BYTES + 96 + len(user) + len(clientId) + len(group);
  }

  private static int len(byte[] b) {
    return b == null ? 0 : b.length;
  }

  /**
   * Writes a Record request frame at {@code at} (room for {@link #recordFrameBound} bytes): fixmap; type, user,
   * client_id, consumer_group (RecordConsume only), bytes or count, admit (only when true). Returns the end.
   */
  static int writeRecord(byte[] b, int at, int id, int kind, byte[] user, byte[] clientId, byte[] group, long amount, boolean admit) {
    int start = at;
    at += HEADER_BYTES + 1;
    int fields = 2;
    at = put(b, at, K_TYPE);
    at = put(b, at, RECORD_TYPES[kind - 1]);
    if (user != null) {
      at = put(b, at, K_USER);
      at = writeStr(b, at, user);
      fields++;
    }
    if (clientId != null) {
      at = put(b, at, K_CLIENT);
      at = writeStr(b, at, clientId);
      fields++;
    }
    if (group != null && kind == RECORD_CONSUME) {
      at = put(b, at, K_GROUP);
      at = writeStr(b, at, group);
      fields++;
    }
    at = put(b, at, kind == RECORD_REQUEST ? K_COUNT : K_BYTES);
    at = writeUint(b, at, amount);
    if (admit) {
      at = put(b, at, K_ADMIT);
      b[at++] = (byte) 0xc3;
      fields++;
    }
    b[start + HEADER_BYTES] = (byte) (0x80 | fields);
    putInt(b, start, at - start - 4);
    putInt(b, start + 4, id);
    return at;
  }

  private static int put(byte[] b, int at, byte[] src) {
    System.arraycopy(src, 0, b, at, src.length);
    return at + src.length;
  }

  static void putInt(byte[] b, int at, int v) {
    b[at] = (byte) (v >>> 24);
    b[at + 1] = (byte) (v >>> 16);
    b[at + 2] = (byte) (v >>> 8);
    b[at + 3] = (byte) v;
  }

  static int getInt(byte[] b, int at) {
    return ((b[at] & 0xff) << 24) | ((b[at + 1] & 0xff) << 16) | ((b[at + 2] & 0xff) << 8) | (b[at + 3] & 0xff);
  }

  /** fixstr, str8 or str16 (names are at most 1024 bytes; the server refuses longer ones). */
  private static int writeStr(byte[] b, int at, byte[] s) {
    int n = s.length;
    if (n < 32) {
      b[at++] = (byte) (0xa0 | n);
    } else if (n < 256) {
      b[at++] = (byte) 0xd9;
      b[at++] = (byte) n;
    } else {
      b[at++] = (byte) 0xda;
      b[at++] = (byte) (n >>> 8);
      b[at++] = (byte) n;
    }
    return put(b, at, s);
  }

  /** The smallest msgpack uint for v (0 <= v <= 2^53-1, checked by the caller). */
  private static int writeUint(byte[] b, int at, long v) {
    if (v < 0x80) {
      b[at] = (byte) v;
      return at + 1;
    }
    if (v < 0x100) {
      b[at] = (byte) 0xcc;
      b[at + 1] = (byte) v;
      return at + 2;
    }
    if (v < 0x10000) {
      b[at] = (byte) 0xcd;
      b[at + 1] = (byte) (v >>> 8);
      b[at + 2] = (byte) v;
      return at + 3;
    }
    if (v < 0x100000000L) {
      b[at] = (byte) 0xce;
      putInt(b, at + 1, (int) v);
      return at + 5;
    }
    b[at] = (byte) 0xcf;
    putInt(b, at + 1, (int) (v >>> 32));
    putInt(b, at + 5, (int) v);
    return at + 9;
  }

  /** A whole frame for any body: a map of plain values (see {@link #pack}). */
  static byte[] frame(int id, Map<String, ?> body) {
    try (MessageBufferPacker p = MessagePack.newDefaultBufferPacker()) {
      pack(p, body);
      byte[] msg = p.toByteArray();
      byte[] out = new byte[HEADER_BYTES + msg.length];
      putInt(out, 0, msg.length + 4);
      putInt(out, 4, id);
      System.arraycopy(msg, 0, out, HEADER_BYTES, msg.length);
      return out;
    } catch (IOException e) {
      throw new IllegalStateException("msgpack encoding failed", e);
    }
  }

  /** Packs null, Boolean, String, integer types, Float/Double, byte[], Map, List, Component and QuotaAlteration. */
  static void pack(MessageBufferPacker p, Object v) throws IOException {
    if (v == null) {
      p.packNil();
    } else if (v instanceof String) {
      p.packString((String) v);
    } else if (v instanceof Boolean) {
      p.packBoolean((Boolean) v);
    } else if (v instanceof Long || v instanceof Integer || v instanceof Short || v instanceof Byte) {
      p.packLong(((Number) v).longValue());
    } else if (v instanceof Double || v instanceof Float) {
      p.packDouble(((Number) v).doubleValue());
    } else if (v instanceof byte[]) {
      byte[] b = (byte[]) v;
      p.packBinaryHeader(b.length);
      p.writePayload(b);
    } else if (v instanceof Map) {
      Map<?, ?> m = (Map<?, ?>) v;
      int n = 0;
      for (Object value : m.values()) if (value != ABSENT) n++;
      p.packMapHeader(n);
      for (Map.Entry<?, ?> e : m.entrySet()) {
        if (e.getValue() == ABSENT) continue;
        p.packString(String.valueOf(e.getKey()));
        pack(p, e.getValue());
      }
    } else if (v instanceof List) {
      List<?> l = (List<?>) v;
      p.packArrayHeader(l.size());
      for (Object item : l) pack(p, item);
    } else if (v instanceof Component) {
      Component c = (Component) v;
      p.packArrayHeader(2);
      p.packString(c.type());
      pack(p, c.name());
    } else if (v instanceof QuotaAlteration) {
      pack(p, ((QuotaAlteration) v).toWire());
    } else {
      throw new IllegalArgumentException("cannot encode a " + v.getClass().getName() + " as msgpack");
    }
  }

  /** A map value that is left out of the encoding (the Node client drops undefined fields). */
  static final Object ABSENT = new Object();

  /** Decodes one msgpack value filling exactly [off, off+len); throws UNEXPECTED_REPLY otherwise. */
  static Object decode(byte[] buf, int off, int len) {
    try (MessageUnpacker u = MessagePack.newDefaultUnpacker(buf, off, len)) {
      Object v = read(u, 0, len);
      if (u.hasNext()) throw unexpected("trailing bytes after the reply body");
      return v;
    } catch (RivvenException e) {
      throw e;
    } catch (IOException | RuntimeException e) {
      throw new RivvenException(ErrorCode.UNEXPECTED_REPLY, "the reply is not valid msgpack: " + e.getMessage(), -1, e);
    }
  }

  /**
   * A size from a header is checked against the bytes left before anything is allocated for it: msgpack-core
   * allocates a binary's array from its header, so 5 bytes claiming 2 GiB would otherwise cost an
   * OutOfMemoryError on the reader thread.
   */
  private static int size(MessageUnpacker u, long n, int perItem, int len) {
    if (n < 0 || n * perItem > len - u.getTotalReadBytes()) throw unexpected("a msgpack header claims " + n + " items, beyond the frame");
    return (int) n;
  }

  private static Object read(MessageUnpacker u, int depth, int len) throws IOException {
    if (depth > MAX_DEPTH) throw unexpected("the reply nests deeper than " + MAX_DEPTH);
    MessageFormat f = u.getNextFormat();
    switch (f.getValueType()) {
      case NIL:
        u.unpackNil();
        return null;
      case BOOLEAN:
        return u.unpackBoolean();
      case INTEGER:
        if (f == MessageFormat.UINT64) {
          java.math.BigInteger big = u.unpackBigInteger();
          if (big.bitLength() > 63) throw unexpected("an integer beyond 2^63");
          return big.longValue();
        }
        return u.unpackLong();
      case FLOAT:
        return u.unpackDouble();
      case STRING:
        // Malformed UTF-8 is replaced, as unpackString does.
        return new String(u.readPayload(size(u, Integer.toUnsignedLong(u.unpackRawStringHeader()), 1, len)), StandardCharsets.UTF_8);
      case BINARY:
        return u.readPayload(size(u, Integer.toUnsignedLong(u.unpackBinaryHeader()), 1, len));
      case ARRAY: {
        int n = size(u, Integer.toUnsignedLong(u.unpackArrayHeader()), 1, len);
        List<Object> out = new ArrayList<>(Math.min(n, 1024));
        for (int i = 0; i < n; i++) out.add(read(u, depth + 1, len));
        return out;
      }
      case MAP: {
        int n = size(u, Integer.toUnsignedLong(u.unpackMapHeader()), 2, len);
        Map<String, Object> out = new LinkedHashMap<>(Math.min(n, 64) * 2);
        for (int i = 0; i < n; i++) {
          Object k = read(u, depth + 1, len);
          if (!(k instanceof String)) throw unexpected("a map key that is not a string");
          out.put((String) k, read(u, depth + 1, len));
        }
        return out;
      }
      default:
        throw unexpected("a msgpack " + f.getValueType() + " value");
    }
  }

  static RivvenException unexpected(String message) {
    return new RivvenException(ErrorCode.UNEXPECTED_REPLY, message);
  }
}
