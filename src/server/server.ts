import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { ErrorCode } from '../protocol/error-codes.js';
import { errorFrame } from '../protocol/responses.js';
import type { Logger } from '../observability/logger.js';
import { Connection, PartialFrameBudget, type ConnectionStats } from './connection.js';
import type { Dispatcher } from './dispatcher.js';
import { connectionsThatFit, openFileLimit, RESERVED_DESCRIPTORS } from './fd-limit.js';
import { createListener, reloadTls, verifiedCommonName } from './listener.js';
import type { ServerOptions, ServerTls } from './options.js';
import { UnauthenticatedSockets, type Admitted } from './unauthenticated.js';

export { DEFAULT_SERVER_OPTIONS, type ServerOptions, type ServerTls } from './options.js';

/** Refused sockets waiting for their error frame to leave; past this they are closed at once. */
const MAX_LINGERING_REFUSALS = 256;

/** The TCP listener: accepts brokers, enforces the connection limits, closes gracefully. */
export class QuotaServer {
  private readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  private readonly refusedSockets = new Set<net.Socket>();
  /** Sockets accepted and not yet authenticated (a TLS handshake in progress counts), oldest first. */
  private readonly unauthenticated = new UnauthenticatedSockets();
  /** Sockets open from accept to close, whatever their state: what max_connections bounds. */
  private open = 0;
  private nextId = 1;
  private state: 'new' | 'listening' | 'shutting-down' | 'closed' = 'new';
  private frameTimer: NodeJS.Timeout | undefined;
  readonly partialFrames: PartialFrameBudget;
  /** What the process can hold: max_connections, lowered to fit the open-file limit. */
  readonly connectionLimit: number;
  readonly fileLimit: number | undefined;
  refusedConnections = 0;
  timedOutFrames = 0;
  /** TLS handshakes that failed (plaintext on the TLS port, an untrusted or missing client certificate). */
  failedHandshakes = 0;
  /** Sockets destroyed because they had not finished the handshake and authentication in auth_timeout_ms. */
  authTimeouts = 0;
  /** Unauthenticated sockets closed to make room for new ones (max_unauthenticated_connections or max_connections). */
  evictedUnauthenticated = 0;

  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly options: ServerOptions,
    private readonly logger: Logger,
  ) {
    this.server = createListener(options, {
      admit: (socket) => this.admit(socket),
      ready: (socket) => {
        if (this.state === 'listening') this.accept(socket);
        else socket.destroy();
      },
      handshakeFailed: (err, socket) => {
        this.failedHandshakes++;
        this.logger.debug({ remote: `${socket.remoteAddress}:${socket.remotePort}`, err: err.message }, 'TLS handshake failed');
      },
    });
    this.partialFrames = new PartialFrameBudget(options.maxPartialFrameBytes);
    this.fileLimit = options.fileLimit ?? openFileLimit();
    this.connectionLimit = connectionsThatFit(options.maxConnections, this.fileLimit);
  }

  /** Replaces the certificate, key and CA for new connections (SIGHUP); existing connections are untouched. */
  reloadTls(t: ServerTls): void {
    reloadTls(this.server, t);
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  get isListening(): boolean {
    return this.state === 'listening';
  }

  listen(): Promise<AddressInfo> {
    if (this.connectionLimit < this.options.maxConnections) {
      this.logger.warn(
        { max_connections: this.options.maxConnections, open_file_limit: this.fileLimit, accepted_up_to: this.connectionLimit },
        `the open-file limit holds only ${this.connectionLimit} connections (${RESERVED_DESCRIPTORS} descriptors are kept for the store, logs and metrics); raise it (ulimit -n, LimitNOFILE) or lower server.max_connections`,
      );
    }
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        // An accept error after this point (EMFILE and the like) must not crash the process.
        this.server.on('error', (err) => this.logger.error({ err: err.message }, 'listener error'));
        this.state = 'listening';
        const every = Math.max(10, Math.min(1000, Math.floor(Math.min(this.options.frameTimeoutMs, this.options.authTimeoutMs) / 4)));
        this.frameTimer = setInterval(() => this.checkFrameTimeouts(), every);
        this.frameTimer.unref();
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** The client_name each connection gave in Hello (tests of what the server holds). */
  connectionNames(): (string | undefined)[] {
    return [...this.connections].map((c) => c.ctx.clientName);
  }

  connectionStats(): ConnectionStats[] {
    return [...this.connections].map((c) => c.stats());
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /**
   * Closes gracefully: keeps listening only to answer new connections with SHUTTING_DOWN, lets every connection answer
   * what it has already read, then closes everything. Connections still open after `graceMs` are
   * destroyed, and so are refused sockets whose peers never read: nothing can keep the process alive.
   */
  async close(graceMs = 5000): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'shutting-down';
    clearInterval(this.frameTimer);
    // Sockets still in their TLS handshake or authentication have nothing a broker waits for: closed now, not
    // after the others (a handshake that never finishes would keep the process alive past SIGTERM).
    for (const u of this.unauthenticated.values()) u.socket.destroy();
    const answered = Promise.all([...this.connections].map((c) => c.closeGracefully()));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        for (const c of this.connections) c.destroy();
        resolve();
      }, graceMs);
      timer.unref();
    });
    await Promise.race([answered, timeout]);
    clearTimeout(timer);
    this.state = 'closed';
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const u of this.unauthenticated.values()) u.socket.destroy();
    for (const s of this.refusedSockets) s.destroy();
    for (const c of this.connections) c.destroy();
    await stopped;
  }

  private checkFrameTimeouts(): void {
    const now = performance.now();
    for (const c of this.connections) if (c.checkFrameTimeout(now)) this.timedOutFrames++;
    // Oldest first: the first one young enough ends the scan.
    for (const u of this.unauthenticated.values()) {
      if (now - u.since < this.options.authTimeoutMs) break;
      this.unauthenticated.forget(u);
      this.authTimeouts++;
      this.logger.info({ remote: u.key, after_ms: this.options.authTimeoutMs }, 'closed a connection that did not authenticate in time');
      u.socket.destroy();
    }
  }

  /** Unauthenticated sockets (TLS handshakes included) open now. */
  get unauthenticatedCount(): number {
    return this.unauthenticated.size;
  }

  /** Closes an unauthenticated socket to make room (UnauthenticatedSockets.evictable says which). */
  private evictOldestUnauthenticated(): void {
    const u = this.unauthenticated.evictable();
    if (u === undefined) return;
    const key = u.key;
    this.unauthenticated.forget(u);
    // Its place under max_connections is free now, not when its close event comes.
    this.uncount(u);
    this.evictedUnauthenticated++;
    this.logger.info({ remote: key }, 'closed an unauthenticated connection to make room for a new one');
    u.socket.destroy();
  }

  /**
   * Counts a socket from accept (before any TLS handshake): against max_connections and, until it
   * authenticates, against max_unauthenticated_connections and auth_timeout_ms. When every place is taken and
   * some are unauthenticated, the oldest of those makes room: only authenticated connections can refuse a new one.
   * False when the socket was refused.
   */
  private admit(socket: net.Socket): boolean {
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const tlsPort = this.options.tls !== undefined;
    if (this.state !== 'listening') {
      if (tlsPort) socket.destroy();
      else this.refuse(socket, 'SHUTTING_DOWN', 'server is shutting down');
      return false;
    }
    if (this.open >= this.connectionLimit && this.unauthenticated.size > 0) this.evictOldestUnauthenticated();
    if (this.open >= this.connectionLimit) {
      const why = this.connectionLimit < this.options.maxConnections ? 'the open-file limit' : 'max_connections';
      this.logger.warn({ remote, max: this.connectionLimit }, `connection refused: ${why} reached`);
      // A TLS peer cannot read a plaintext refusal; it is closed before its handshake.
      if (tlsPort) {
        this.refusedConnections++;
        socket.destroy();
      } else this.refuse(socket, 'OVERLOADED', `server has reached ${why} (${this.connectionLimit} connections)`);
      return false;
    }
    if (this.unauthenticated.size >= Math.min(this.options.maxUnauthenticatedConnections, this.connectionLimit)) {
      this.evictOldestUnauthenticated();
    }
    const admitted: Admitted = { socket, key: remote, address: socket.remoteAddress ?? '', since: performance.now(), counted: true };
    this.open++;
    this.unauthenticated.add(admitted);
    socket.once('close', () => {
      this.uncount(admitted);
      this.unauthenticated.forget(admitted);
    });
    return true;
  }

  private uncount(a: Admitted): void {
    if (!a.counted) return;
    a.counted = false;
    this.open--;
  }

  /** A connection authenticated (or needed no authentication): it leaves the unauthenticated set. */
  private authenticated(remote: string): void {
    const a = this.unauthenticated.get(remote);
    if (a !== undefined) this.unauthenticated.forget(a);
  }

  /** Answers with an Error on correlation id 0 and closes, counting the refusal. */
  private refuse(socket: net.Socket, code: ErrorCode, message: string): void {
    this.refusedConnections++;
    socket.on('error', () => socket.destroy());
    if (this.refusedSockets.size >= MAX_LINGERING_REFUSALS || this.state === 'closed') {
      socket.destroy();
      return;
    }
    this.refusedSockets.add(socket);
    socket.once('close', () => this.refusedSockets.delete(socket));
    socket.end(errorFrame(0, code, message));
    // The frame is in the kernel's hands once written; a peer that never reads must not hold the descriptor.
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  /** A socket admitted (and, on the TLS port, through its handshake) becomes a connection. */
  private accept(socket: net.Socket): void {
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const id = this.nextId++;
    const peer = { id, remote, principal: 'anonymous', roles: 0, authenticated: false, clientName: undefined, closeAfterReply: false };
    this.dispatcher.guard.open(peer, verifiedCommonName(socket));
    const onAuthenticated = () => this.authenticated(remote);
    if (peer.authenticated) onAuthenticated();
    const conn = new Connection(
      socket,
      this.dispatcher,
      peer,
      this.options,
      this.partialFrames,
      this.logger,
      peer.authenticated ? undefined : onAuthenticated,
    );
    this.connections.add(conn);
    this.logger.debug({ conn: id, remote }, 'connection opened');
    void conn.closed.then(() => {
      this.connections.delete(conn);
      this.dispatcher.connectionClosed(id);
      this.logger.debug({ conn: id, remote }, 'connection closed');
    });
  }
}
