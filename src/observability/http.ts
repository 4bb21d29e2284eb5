import { createHash, timingSafeEqual } from 'node:crypto';
import http, { type Server } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Registry } from 'prom-client';

export interface HealthServerOptions {
  /** HTTPS instead of HTTP. */
  tls?: { cert: Buffer; key: Buffer } | undefined;
  /** SHA-256 (hex) of the bearer token GET /metrics requires; /healthz and /readyz stay open for probes. */
  tokenSha256?: string | null | undefined;
  /** Sockets open at once, counted from accept (a TLS handshake in progress counts); more are closed. @default 64 */
  maxConnections?: number;
  /** A socket silent this long (handshake, headers, or between keep-alive requests) is destroyed. @default 10000 */
  idleTimeoutMs?: number;
}

export const DEFAULT_HEALTH_SERVER_OPTIONS = Object.freeze({ maxConnections: 64, idleTimeoutMs: 10_000 });

/**
 * The operator's HTTP endpoints: GET /metrics (Prometheus text), /healthz (the process is alive) and
 * /readyz (200 once stored quotas are loaded and the protocol port listens, 503 before and while shutting down;
 * its body says "degraded" while a fleet sidecar decides alone because Redis is out of reach).
 */
export class HealthServer {
  private readonly server: Server;
  private readonly tokenDigest: Buffer | undefined;
  /** Every socket from accept (oldest first), with its "address:port". */
  private readonly sockets = new Map<Socket, string>();
  /** Requests in progress, by "address:port". */
  private readonly busy = new Map<string, number>();

  constructor(
    private readonly registry: Registry,
    /** false: 503; true: 200 "ready"; "degraded": 200 "degraded" (fleet mode deciding alone while Redis is out of reach). */
    private readonly ready: () => boolean | 'degraded',
    options: HealthServerOptions = {},
  ) {
    const handler: http.RequestListener = (req, res) => {
      void this.route(req.method ?? 'GET', (req.url ?? '/').split('?')[0]!, req.headers.authorization, res);
    };
    const idle = options.idleTimeoutMs ?? DEFAULT_HEALTH_SERVER_OPTIONS.idleTimeoutMs;
    // The same bounds as the protocol port: a peer gets a bounded time for its handshake and its request, and
    // a bounded number of sockets. A scraper needs one connection; probes a few.
    // headersTimeout and requestTimeout are only checked every connectionsCheckingInterval (30 s by default): a
    // peer sending a header line every few seconds held its socket 30 s, not `idle`.
    const bounds = {
      headersTimeout: idle,
      requestTimeout: idle,
      keepAliveTimeout: Math.min(5000, idle),
      connectionsCheckingInterval: Math.max(10, Math.floor(idle / 4)),
    };
    this.server = options.tls
      ? https.createServer({ cert: options.tls.cert, key: options.tls.key, handshakeTimeout: idle, ...bounds }, handler)
      : http.createServer(bounds, handler);
    const max = options.maxConnections ?? DEFAULT_HEALTH_SERVER_OPTIONS.maxConnections;
    // Without a 'timeout' listener, a socket idle for this long is destroyed (one that never sends a byte too).
    this.server.setTimeout(idle);
    // A handshake that fails or times out leaves its socket open unless closed here.
    this.server.on('tlsClientError', (_err: Error, socket: Socket) => socket.destroy());
    // Every socket from accept, so that close() ends handshakes in progress too (closeAllConnections knows only
    // the HTTP connections).
    // The cap is kept here rather than by server.maxConnections, which drops the new socket: 64 peers sending a
    // keep-alive request every few seconds would hold every connection and /healthz would be refused (a liveness
    // probe would then restart the sidecar). When full, the oldest socket with no request in progress makes room;
    // only when all are busy is the new one closed.
    this.server.on('connection', (socket: Socket) => {
      if (this.sockets.size >= max && !this.evictIdle()) {
        socket.destroy();
        return;
      }
      const key = `${socket.remoteAddress}:${socket.remotePort}`;
      this.sockets.set(socket, key);
      this.busy.set(key, 0);
      socket.once('close', () => {
        this.sockets.delete(socket);
        this.busy.delete(key);
      });
    });
    // Requests in progress per peer (on https the request's socket is the TLS one: matched by address and port).
    this.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const key = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
      const n = this.busy.get(key);
      if (n === undefined) return;
      this.busy.set(key, n + 1);
      res.once('close', () => {
        const m = this.busy.get(key);
        if (m !== undefined) this.busy.set(key, m - 1);
      });
    });
    this.tokenDigest = options.tokenSha256 ? Buffer.from(options.tokenSha256, 'hex') : undefined;
  }

  /** New certificate and key for new connections (SIGHUP). */
  reloadTls(t: { cert: Buffer; key: Buffer }): void {
    if (this.server instanceof https.Server) this.server.setSecureContext({ cert: t.cert, key: t.key });
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Sockets open now, from accept (the metrics listener's own bound is maxConnections). */
  get connectionCount(): number {
    return this.sockets.size;
  }

  address(): AddressInfo | null {
    return this.server.address() as AddressInfo | null;
  }

  /** Closes the oldest socket with no request in progress; false when every socket is serving one. */
  private evictIdle(): boolean {
    for (const [socket, key] of this.sockets) {
      if ((this.busy.get(key) ?? 0) > 0) continue;
      this.sockets.delete(socket);
      socket.destroy();
      return true;
    }
    return false;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    for (const socket of this.sockets.keys()) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** True when /metrics needs no token, or the request carries it (compared as SHA-256 digests, in constant time). */
  private authorized(header: string | undefined): boolean {
    if (this.tokenDigest === undefined) return true;
    const m = /^Bearer (.+)$/.exec(header ?? '');
    if (m === null) return false;
    return timingSafeEqual(createHash('sha256').update(m[1]!, 'utf8').digest(), this.tokenDigest);
  }

  private async route(method: string, path: string, authorization: string | undefined, res: http.ServerResponse): Promise<void> {
    if (method !== 'GET' && method !== 'HEAD') return send(res, 405, 'method not allowed\n');
    switch (path) {
      case '/metrics':
        if (!this.authorized(authorization)) {
          res.setHeader('www-authenticate', 'Bearer');
          return send(res, 401, 'a bearer token is required (metrics.token_sha256)\n');
        }
        try {
          const body = await this.registry.metrics();
          res.writeHead(200, { 'content-type': this.registry.contentType });
          res.end(body);
        } catch (err) {
          send(res, 500, `metrics failed: ${(err as Error).message}\n`);
        }
        return;
      case '/healthz':
        return send(res, 200, 'ok\n');
      case '/readyz': {
        const r = this.ready();
        return r === false ? send(res, 503, 'not ready\n') : send(res, 200, r === 'degraded' ? 'degraded\n' : 'ready\n');
      }
      default:
        return send(res, 404, 'not found: try /metrics, /healthz or /readyz\n');
    }
  }
}

function send(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(body);
}
