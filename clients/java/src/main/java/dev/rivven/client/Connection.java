package dev.rivven.client;

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;

/**
 * One TCP (or TLS) connection to a sidecar, with two threads: a writer that sends whatever calls queued since its
 * last write in one write (auto-pipelining: callers never touch the socket, so none blocks on it), and a reader
 * that matches each reply to its call by correlation id. A reply frame's length is checked before anything is
 * buffered. Any failure of the stream fails the calls sent on it and hands the client the loss.
 */
final class Connection {
  private final QuotaClient client;
  private final Socket socket;
  private final OutputStream out;
  private final DataInputStream in;
  private final int maxFrameBytes;
  /** Bytes queued for a writer that cannot write (the peer does not read) past which the connection is lost. */
  static final int MAX_QUEUED_BYTES = 16 * 1024 * 1024;
  private final Object lock = new Object();
  private byte[] buf = new byte[16 * 1024];
  private byte[] spare = new byte[16 * 1024];
  private int len;
  private boolean dead;
  final String address;
  /** When the connection was made (its age tells a connection that dies at once from one lost after a while). */
  final long openedAtNanos = System.nanoTime();

  private Connection(QuotaClient client, Socket socket, String address, int maxFrameBytes) throws IOException {
    this.client = client;
    this.socket = socket;
    this.address = address;
    this.maxFrameBytes = maxFrameBytes;
    this.out = socket.getOutputStream();
    this.in = new DataInputStream(new BufferedInputStream(socket.getInputStream(), 64 * 1024));
  }

  /**
   * Connects, shakes hands (TLS) and says Hello, all within connectTimeoutMs; then starts the reader and writer.
   * A socket whose Hello failed is closed before this throws.
   */
  static Connection open(QuotaClient client, QuotaClientOptions o, int helloId) throws IOException {
    long deadline = System.nanoTime() + o.connectTimeoutMs() * 1_000_000L;
    String address = o.host() + ":" + o.port();
    Socket raw = new Socket();
    Socket s = raw;
    // A socket timeout bounds each read, not the whole: a server trickling its TLS handshake or Hello reply one
    // byte at a time held connect() for as long as it liked. The watchdog closes the socket at the deadline.
    CountDownLatch settled = new CountDownLatch(1);
    Thread watchdog = new Thread(() -> {
      try {
        if (!settled.await(o.connectTimeoutMs(), TimeUnit.MILLISECONDS)) closeQuietly(raw);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }, "rivven-connect-watchdog " + address);
    watchdog.setDaemon(true);
    watchdog.start();
    try {
      raw.setTcpNoDelay(true);
      raw.connect(new InetSocketAddress(o.host(), o.port()), (int) Math.max(1, o.connectTimeoutMs()));
      if (o.tls() != null) {
        String name = o.serverName() != null ? o.serverName() : o.host();
        SSLSocket ssl = (SSLSocket) o.tls().getSocketFactory().createSocket(raw, name, o.port(), true);
        SSLParameters p = ssl.getSSLParameters();
        p.setEndpointIdentificationAlgorithm("HTTPS");
        if (!isIpLiteral(name)) p.setServerNames(List.of(new SNIHostName(name)));
        ssl.setSSLParameters(p);
        s = ssl;
        s.setSoTimeout(remainingMs(deadline));
        ssl.startHandshake();
      }
      Connection c = new Connection(client, s, address, o.maxFrameBytes());
      Map<String, Object> hello = new java.util.LinkedHashMap<>();
      hello.put("type", "Hello");
      hello.put("protocol_version", 1L);
      if (o.clientName() != null) hello.put("client_name", o.clientName());
      if (o.token() != null) hello.put("token", o.token());
      c.out.write(Wire.frame(helloId, hello));
      c.out.flush();
      s.setSoTimeout(remainingMs(deadline));
      Map<String, Object> reply = c.readHelloReply(helloId, deadline);
      if ("Error".equals(reply.get("type"))) throw Call.errorOf(reply);
      Replies.hello(reply);
      settled.countDown();
      if (raw.isClosed()) throw new SocketTimeoutException("connect timeout");
      s.setSoTimeout(0);
      c.start();
      return c;
    } catch (SocketTimeoutException e) {
      closeQuietly(s);
      throw timeout(o, address, e);
    } catch (IOException | RuntimeException e) {
      closeQuietly(s);
      // The watchdog closed it: the deadline passed.
      if (System.nanoTime() - deadline >= 0) throw timeout(o, address, e);
      throw e;
    } finally {
      settled.countDown();
      try {
        watchdog.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  private static RivvenException timeout(QuotaClientOptions o, String address, Exception cause) {
    return new RivvenException(ErrorCode.TIMEOUT, "no connection to " + address + " within " + o.connectTimeoutMs() + " ms", -1, cause);
  }

  private static int remainingMs(long deadline) throws SocketTimeoutException {
    long left = (deadline - System.nanoTime()) / 1_000_000L;
    if (left <= 0) throw new SocketTimeoutException("connect timeout");
    return (int) Math.min(left, Integer.MAX_VALUE);
  }

  private static boolean isIpLiteral(String host) {
    return host.indexOf(':') >= 0 || host.chars().allMatch(ch -> ch == '.' || Character.isDigit(ch));
  }

  private Map<String, Object> readHelloReply(int helloId, long deadline) throws IOException {
    while (true) {
      // A server that sends other frames instead of the answer does not hold the connect past its timeout.
      if (deadline - System.nanoTime() <= 0) throw new SocketTimeoutException("no Hello reply");
      long length = Integer.toUnsignedLong(in.readInt());
      if (length < 4 || length - 4 > maxFrameBytes) {
        throw new RivvenException(ErrorCode.CONNECTION_CLOSED, "the server at " + address + " sent a frame of " + length + " bytes");
      }
      int id = in.readInt();
      byte[] body = new byte[(int) (length - 4)];
      in.readFully(body);
      Map<String, Object> reply = Replies.map(Wire.decode(body, 0, body.length), "the Hello reply");
      if (id == helloId || id == 0) return reply;
    }
  }

  private void start() {
    Thread reader = new Thread(this::readLoop, "rivven-reader " + address);
    reader.setDaemon(true);
    Thread writer = new Thread(this::writeLoop, "rivven-writer " + address);
    writer.setDaemon(true);
    reader.start();
    writer.start();
  }

  /** Queues the call's frame for the writer's next write; false when this connection is dead (nothing queued). */
  boolean send(Call<?> call) {
    int need = call.frameBound();
    synchronized (lock) {
      if (dead) return false;
      if (len + need <= MAX_QUEUED_BYTES) {
        if (len + need > buf.length) {
          byte[] bigger = new byte[Math.max(buf.length * 2, len + need)];
          System.arraycopy(buf, 0, bigger, 0, len);
          buf = bigger;
        }
        boolean wake = len == 0;
        call.conn = this;
        len = call.writeTo(buf, len);
        if (wake) lock.notifyAll();
        return true;
      }
    }
    // The writer is stuck on a peer that reads nothing while calls kept timing out and new ones came: the
    // connection is lost, not a buffer to grow without bound (calls then fail fast or wait for a reconnect).
    fail(new RivvenException(ErrorCode.CONNECTION_CLOSED, "the server at " + address + " reads nothing (" + MAX_QUEUED_BYTES + " bytes queued)"));
    return false;
  }

  private void writeLoop() {
    try {
      while (true) {
        byte[] batch;
        int n;
        synchronized (lock) {
          while (len == 0 && !dead) lock.wait();
          if (dead) return;
          batch = buf;
          n = len;
          buf = spare;
          spare = batch;
          len = 0;
        }
        out.write(batch, 0, n);
        out.flush();
        // A batch far larger than usual is not kept as the spare (a burst must not pin its memory).
        if (batch.length > 1024 * 1024) {
          synchronized (lock) {
            spare = new byte[16 * 1024];
          }
        }
      }
    } catch (IOException e) {
      fail(new RivvenException(ErrorCode.CONNECTION_CLOSED, "connection to " + address + " failed: " + e.getMessage(), -1, e));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private void readLoop() {
    byte[] body = new byte[64 * 1024];
    try {
      while (true) {
        long length = Integer.toUnsignedLong(in.readInt());
        if (length < 4 || length - 4 > maxFrameBytes) {
          // Never trust a length from the network: close before buffering a byte of it.
          fail(new RivvenException(ErrorCode.CONNECTION_CLOSED, "the server at " + address + " sent a frame of " + length + " bytes (maxFrameBytes " + maxFrameBytes + ")"));
          return;
        }
        int id = in.readInt();
        int n = (int) (length - 4);
        if (n > body.length) body = new byte[Math.max(n, Math.min(body.length * 2, maxFrameBytes))];
        in.readFully(body, 0, n);
        if (n < 64 * 1024 && body.length > 1024 * 1024) body = new byte[64 * 1024];
        if (id == 0) {
          // A connection-level error (FRAME_TOO_LARGE, ...): the server closes; every call sent here fails with it.
          RivvenException err;
          try {
            err = Call.errorOf(Replies.map(Wire.decode(body, 0, n), "a connection error"));
          } catch (RivvenException e) {
            err = e;
          }
          fail(err);
          return;
        }
        client.onReply(id, body, n);
      }
    } catch (EOFException e) {
      fail(new RivvenException(ErrorCode.CONNECTION_CLOSED, "connection to " + address + " closed", -1, e));
    } catch (IOException e) {
      fail(new RivvenException(ErrorCode.CONNECTION_CLOSED, "connection to " + address + " failed: " + e.getMessage(), -1, e));
    } catch (RuntimeException | Error e) {
      // A reader that dies silently would leave the connection looking alive and every later call timing out.
      fail(new RivvenException(ErrorCode.CONNECTION_CLOSED, "reading from " + address + " failed: " + e, -1, e));
      if (e instanceof Error) throw (Error) e;
    }
  }

  /** Marks the connection dead, closes it, fails the calls sent on it and tells the client (once). */
  void fail(RivvenException err) {
    synchronized (lock) {
      if (dead) return;
      dead = true;
      len = 0;
      lock.notifyAll();
    }
    closeQuietly(socket);
    client.onConnectionLost(this, err);
  }

  boolean isDead() {
    synchronized (lock) {
      return dead;
    }
  }

  private static void closeQuietly(Socket s) {
    try {
      s.close();
    } catch (IOException e) {
      // Closing a broken socket: nothing more to do.
    }
  }

}
