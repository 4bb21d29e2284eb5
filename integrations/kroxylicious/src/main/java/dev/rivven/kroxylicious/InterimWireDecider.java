package dev.rivven.kroxylicious;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import org.msgpack.core.MessageBufferPacker;
import org.msgpack.core.MessagePack;
import org.msgpack.core.MessageUnpacker;

/**
 * INTERIM minimal client of the sidecar wire (docs/protocol.md): Hello, then pipelined RecordProduce /
 * RecordConsume / RecordRequest matched by correlation id. No TLS, no breaker, no auto-pipelining: the Java
 * client's BrokerQuotas replaces it (see {@link Deciders}). While not connected, calls fail at once (the filter
 * fails open) and one background reconnect runs every 250 ms.
 */
final class InterimWireDecider implements QuotaDecider {
    private static final int MAX_FRAME = 1 << 20;

    private final RivvenQuotaConfig config;
    private final ScheduledExecutorService reconnector = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "rivven-sidecar-connect");
        t.setDaemon(true);
        return t;
    });
    private final AtomicInteger correlation = new AtomicInteger();
    private final AtomicBoolean closed = new AtomicBoolean();
    private volatile Conn conn;

    private final class Conn {
        final Socket socket;
        final DataOutputStream out;
        final DataInputStream in;
        final Map<Integer, CompletableFuture<Integer>> pending = new ConcurrentHashMap<>();

        Conn(Socket socket) throws IOException {
            this.socket = socket;
            this.out = new DataOutputStream(new BufferedOutputStream(socket.getOutputStream(), 8192));
            this.in = new DataInputStream(new BufferedInputStream(socket.getInputStream(), 8192));
        }

        void send(int id, byte[] body) throws IOException {
            synchronized (out) {
                out.writeInt(body.length + 4);
                out.writeInt(id);
                out.write(body);
                out.flush();
            }
        }

        void readLoop() {
            try {
                while (true) {
                    int length = in.readInt();
                    if (length < 4 || length > MAX_FRAME) {
                        throw new IOException("bad frame length " + length);
                    }
                    int id = in.readInt();
                    byte[] body = new byte[length - 4];
                    in.readFully(body);
                    CompletableFuture<Integer> f = pending.remove(id);
                    if (f != null) {
                        complete(f, body);
                    }
                }
            }
            catch (IOException | RuntimeException e) {
                broken(this, e);
            }
        }
    }

    InterimWireDecider(RivvenQuotaConfig config) {
        if (config.tls() != null) {
            throw new io.kroxylicious.proxy.plugin.PluginConfigurationException(
                    "tls to the sidecar needs the Java client (BrokerQuotas); the interim wire client speaks plain TCP only");
        }
        this.config = config;
        reconnector.execute(this::connectOnce);
    }

    @Override
    public CompletionStage<Integer> produce(String user, String clientId, long bytes) {
        return call("RecordProduce", user, clientId, bytes);
    }

    @Override
    public CompletionStage<Integer> fetch(String user, String clientId, long bytes) {
        return call("RecordConsume", user, clientId, bytes);
    }

    @Override
    public CompletionStage<Integer> request(String user, String clientId) {
        return call("RecordRequest", user, clientId, -1);
    }

    private CompletionStage<Integer> call(String type, String user, String clientId, long bytes) {
        Conn c = conn;
        if (c == null) {
            return CompletableFuture.failedFuture(new IOException("not connected to the sidecar"));
        }
        int id = correlation.incrementAndGet() & 0x7fffffff;
        var f = new CompletableFuture<Integer>();
        c.pending.put(id, f);
        try {
            MessageBufferPacker p = MessagePack.newDefaultBufferPacker();
            p.packMapHeader(bytes >= 0 ? 4 : 3);
            p.packString("type").packString(type);
            p.packString("user");
            packNullable(p, user);
            p.packString("client_id");
            packNullable(p, clientId);
            if (bytes >= 0) {
                p.packString("bytes").packLong(bytes);
            }
            c.send(id, p.toByteArray());
        }
        catch (IOException e) {
            c.pending.remove(id);
            broken(c, e);
            f.completeExceptionally(e);
        }
        return f;
    }

    private static void packNullable(MessageBufferPacker p, String s) throws IOException {
        if (s == null) {
            p.packNil();
        }
        else {
            p.packString(s);
        }
    }

    private static void complete(CompletableFuture<Integer> f, byte[] body) throws IOException {
        try (MessageUnpacker u = MessagePack.newDefaultUnpacker(body)) {
            int n = u.unpackMapHeader();
            String type = null;
            long throttle = 0;
            String message = null;
            for (int i = 0; i < n; i++) {
                String key = u.unpackString();
                switch (key) {
                    case "type" -> type = u.unpackString();
                    case "throttle_time_ms" -> throttle = u.unpackValue().asNumberValue().toLong();
                    case "message" -> message = u.unpackValue().toString();
                    default -> u.skipValue();
                }
            }
            if ("Ok".equals(type) || "Throttled".equals(type)) {
                f.complete((int) Math.min(Integer.MAX_VALUE, Math.max(0, throttle)));
            }
            else if ("Denied".equals(type)) {
                f.complete(DENIED);
            }
            else {
                f.completeExceptionally(new IOException("sidecar answered " + type + (message == null ? "" : ": " + message)));
            }
        }
    }

    private void connectOnce() {
        if (closed.get() || conn != null) {
            return;
        }
        Socket s = new Socket();
        try {
            s.setTcpNoDelay(true);
            s.connect(new InetSocketAddress(config.host(), config.port()), 1000);
            s.setSoTimeout(2000);
            Conn c = new Conn(s);
            MessageBufferPacker p = MessagePack.newDefaultBufferPacker();
            p.packMapHeader(config.token() == null ? 3 : 4);
            p.packString("type").packString("Hello");
            p.packString("protocol_version").packInt(1);
            p.packString("client_name").packString("rivven-kroxylicious");
            if (config.token() != null) {
                p.packString("token").packString(config.token());
            }
            c.send(0, p.toByteArray());
            int length = c.in.readInt();
            if (length < 4 || length > MAX_FRAME) {
                throw new IOException("bad Hello reply");
            }
            c.in.readInt();
            byte[] body = new byte[length - 4];
            c.in.readFully(body);
            try (MessageUnpacker u = MessagePack.newDefaultUnpacker(body)) {
                String reply = u.unpackValue().asMapValue().map().get(org.msgpack.value.ValueFactory.newString("type")).toString();
                if (!"HelloOk".equals(reply)) {
                    throw new IOException("Hello refused: " + reply);
                }
            }
            s.setSoTimeout(0);
            conn = c;
            Thread reader = new Thread(c::readLoop, "rivven-sidecar-reader");
            reader.setDaemon(true);
            reader.start();
        }
        catch (IOException | RuntimeException e) {
            try {
                s.close();
            }
            catch (IOException ignored) {
                // nothing to release beyond the socket
            }
            if (!closed.get()) {
                reconnector.schedule(this::connectOnce, 250, TimeUnit.MILLISECONDS);
            }
        }
    }

    private void broken(Conn c, Exception why) {
        if (conn == c) {
            conn = null;
        }
        try {
            c.socket.close();
        }
        catch (IOException ignored) {
            // already broken
        }
        c.pending.values().forEach(f -> f.completeExceptionally(why));
        c.pending.clear();
        if (!closed.get()) {
            reconnector.schedule(this::connectOnce, 250, TimeUnit.MILLISECONDS);
        }
    }

    @Override
    public void close() {
        closed.set(true);
        Conn c = conn;
        conn = null;
        if (c != null) {
            broken(c, new IOException("closed"));
        }
        reconnector.shutdownNow();
    }
}
