package dev.rivven.client;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.BiFunction;

/**
 * A protocol peer for tests: answers Hello with HelloOk, keeps every other frame it receives, and answers it with
 * what {@code reply} makes of (correlation id, frame) (null: no answer). {@link #down} plays a server that went
 * away while keeping the port: a test restarting a server on the same port could find it taken.
 */
final class FakeServer implements AutoCloseable {
  final List<byte[]> frames = new CopyOnWriteArrayList<>();
  /** Hellos answered: one per connection the client made. */
  final java.util.concurrent.atomic.AtomicInteger hellos = new java.util.concurrent.atomic.AtomicInteger();
  private volatile boolean down;
  private final ServerSocket server;
  private final BiFunction<Integer, byte[], byte[]> reply;
  private final List<Socket> sockets = new CopyOnWriteArrayList<>();

  FakeServer(BiFunction<Integer, byte[], byte[]> reply) throws IOException {
    this.reply = reply;
    server = new ServerSocket();
    server.bind(new java.net.InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 50);
    Thread t = new Thread(this::acceptLoop, "fake-server");
    t.setDaemon(true);
    t.start();
  }

  int port() {
    return server.getLocalPort();
  }

  /**
   * Options to reach this server: one connect attempt, with a connect timeout a loaded machine meets (the default
   * 1000 ms, TCP and Hello with this server's thread per connection, was missed by a cold JVM beside other work);
   * no test on a FakeServer is about connect timing.
   */
  QuotaClientOptions.Builder options() {
    return QuotaClientOptions.builder().port(port()).connectAttempts(1).connectTimeoutMs(10_000);
  }

  private void acceptLoop() {
    try {
      while (true) {
        Socket s = server.accept();
        if (down) {
          s.close(); // before any Hello reply: the client's connect fails and it tries again later
          continue;
        }
        sockets.add(s);
        Thread t = new Thread(() -> serve(s), "fake-server-conn");
        t.setDaemon(true);
        t.start();
      }
    } catch (IOException e) {
      // closed
    }
  }

  private void serve(Socket s) {
    try (s) {
      DataInputStream in = new DataInputStream(s.getInputStream());
      OutputStream out = s.getOutputStream();
      boolean first = true;
      while (true) {
        int len = in.readInt();
        byte[] frame = new byte[len + 4];
        Wire.putInt(frame, 0, len);
        in.readFully(frame, 4, len);
        int id = Wire.getInt(frame, 4);
        Map<String, Object> body = Replies.map(Wire.decode(frame, 8, len - 4), "body");
        byte[] answer;
        if (first && "Hello".equals(body.get("type"))) {
          hellos.incrementAndGet();
          Map<String, Object> ok = new LinkedHashMap<>();
          ok.put("type", "HelloOk");
          ok.put("protocol_version", 1L);
          ok.put("server_version", "fake");
          answer = Wire.frame(id, ok);
        } else {
          frames.add(frame);
          answer = reply.apply(id, frame);
        }
        first = false;
        if (answer != null) {
          out.write(answer);
          out.flush();
        }
      }
    } catch (IOException | RuntimeException e) {
      // the client went away
    }
  }

  /** A copy of {@code frame} carrying correlation id {@code id}. */
  static byte[] withId(byte[] frame, int id) {
    byte[] out = frame.clone();
    Wire.putInt(out, 4, id);
    return out;
  }

  static byte[] hex(String h) {
    byte[] out = new byte[h.length() / 2];
    for (int k = 0; k < out.length; k++) out[k] = (byte) Integer.parseInt(h.substring(2 * k, 2 * k + 2), 16);
    return out;
  }

  /**
   * Down: closes every connection and each new one at once, so the client stays disconnected; up again: serves as
   * before, on the same port.
   */
  void down(boolean isDown) throws IOException {
    down = isDown;
    if (isDown) {
      for (Socket s : sockets) s.close();
      sockets.clear();
    }
  }

  @Override
  public void close() throws IOException {
    server.close();
    for (Socket s : sockets) s.close();
  }
}
