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
 * what {@code reply} makes of (correlation id, frame) (null: no answer).
 */
final class FakeServer implements AutoCloseable {
  final List<byte[]> frames = new CopyOnWriteArrayList<>();
  private final ServerSocket server;
  private final BiFunction<Integer, byte[], byte[]> reply;
  private final List<Socket> sockets = new CopyOnWriteArrayList<>();

  FakeServer(BiFunction<Integer, byte[], byte[]> reply) throws IOException {
    this(reply, 0);
  }

  /** On {@code port} (0: any free one). */
  FakeServer(BiFunction<Integer, byte[], byte[]> reply, int port) throws IOException {
    this.reply = reply;
    server = new ServerSocket();
    server.setReuseAddress(true);
    server.bind(new java.net.InetSocketAddress(InetAddress.getLoopbackAddress(), port), 50);
    Thread t = new Thread(this::acceptLoop, "fake-server");
    t.setDaemon(true);
    t.start();
  }

  int port() {
    return server.getLocalPort();
  }

  QuotaClientOptions.Builder options() {
    return QuotaClientOptions.builder().port(port()).connectAttempts(1);
  }

  private void acceptLoop() {
    try {
      while (true) {
        Socket s = server.accept();
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

  @Override
  public void close() throws IOException {
    server.close();
    for (Socket s : sockets) s.close();
  }
}
