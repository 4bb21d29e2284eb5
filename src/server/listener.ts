import net from 'node:net';
import tls from 'node:tls';
import type { ServerOptions, ServerTls } from './options.js';

/** What the listener hands its sockets to (the QuotaServer, which counts them against its limits). */
export interface ListenerHooks {
  /** A TCP socket accepted, before any TLS handshake: it counts against the limits from here on. False: refused. */
  admit(socket: net.Socket): boolean;
  /** A socket admitted and, on the TLS port, through its handshake. */
  ready(socket: net.Socket): void;
  /** A TLS handshake failed (plaintext on the TLS port, an untrusted or missing client certificate, a timeout). */
  handshakeFailed(err: Error, socket: net.Socket): void;
}

/** The plaintext or TLS listener of server.tls, calling `hooks` for each socket; it does not listen yet. */
export function createListener(options: ServerOptions, hooks: ListenerHooks): net.Server {
  const t = options.tls;
  if (t === undefined) {
    return net.createServer((socket) => {
      if (hooks.admit(socket)) hooks.ready(socket);
    });
  }
  const server = tls.createServer(
    {
      cert: t.cert,
      key: t.key,
      ...(t.ca ? { ca: t.ca } : {}),
      requestCert: t.clientAuth !== 'none',
      rejectUnauthorized: t.clientAuth === 'require',
      // The handshake's own bound; auth_timeout_ms (checked by this server) bounds it and the Hello together.
      handshakeTimeout: Math.min(options.authTimeoutMs, options.frameTimeoutMs),
    },
    (socket) => hooks.ready(socket),
  );
  // The raw TCP socket, before its handshake: it counts against the limits from here on.
  server.on('connection', (raw: net.Socket) => hooks.admit(raw));
  server.on('tlsClientError', (err, socket) => {
    hooks.handshakeFailed(err, socket);
    // Node leaves the socket of a timed-out handshake open; nothing more can happen on it.
    socket.destroy();
  });
  return server;
}

/** Replaces the certificate, key and CA for new connections (SIGHUP); existing connections are untouched. */
export function reloadTls(server: net.Server, t: ServerTls): void {
  if (!(server instanceof tls.Server)) return;
  server.setSecureContext({ cert: t.cert, key: t.key, ...(t.ca ? { ca: t.ca } : {}) });
}

/** The CN of a client certificate the TLS layer verified against server.tls.ca; undefined otherwise. */
export function verifiedCommonName(socket: net.Socket): string | undefined {
  if (!(socket instanceof tls.TLSSocket) || !socket.authorized) return undefined;
  const cn = socket.getPeerCertificate().subject?.CN;
  return typeof cn === 'string' && cn.length > 0 ? cn : undefined;
}
