import net, { type AddressInfo } from 'node:net';
import type { ErrorCode } from '../protocol/error-codes.js';
import { errorFrame } from '../protocol/responses.js';
import type { Logger } from '../observability/logger.js';
import { Connection, type ConnectionOptions, type ConnectionStats } from './connection.js';
import type { Dispatcher } from './dispatcher.js';

export interface ServerOptions extends ConnectionOptions {
  host: string;
  port: number;
  maxConnections: number;
}

/** The TCP listener: accepts brokers, enforces max_connections, drains on close. */
export class QuotaServer {
  private readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  private nextId = 1;
  private listening = false;
  refusedConnections = 0;

  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly options: ServerOptions,
    private readonly logger: Logger,
  ) {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  get isListening(): boolean {
    return this.listening;
  }

  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        this.listening = true;
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  connectionStats(): ConnectionStats[] {
    return [...this.connections].map((c) => c.stats());
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /**
   * Stops accepting, lets every connection answer what it has already read, then closes. Connections still
   * open after `drainTimeoutMs` are destroyed.
   */
  async close(drainTimeoutMs = 5000): Promise<void> {
    this.listening = false;
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const drained = Promise.all([...this.connections].map((c) => c.drain()));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        for (const c of this.connections) c.destroy();
        resolve();
      }, drainTimeoutMs);
      timer.unref();
    });
    await Promise.race([drained, timeout]);
    clearTimeout(timer);
    await stopped;
  }

  /** Answers with an Error on correlation id 0 and closes, counting the refusal. */
  private refuse(socket: net.Socket, code: ErrorCode, message: string): void {
    this.refusedConnections++;
    socket.on('error', () => socket.destroy());
    socket.end(errorFrame(0, code, message));
  }

  private accept(socket: net.Socket): void {
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    if (!this.listening) return this.refuse(socket, 'SHUTTING_DOWN', 'server is shutting down');
    if (this.connections.size >= this.options.maxConnections) {
      this.logger.warn({ remote, max: this.options.maxConnections }, 'connection refused: max_connections reached');
      return this.refuse(socket, 'OVERLOADED', `server has reached max_connections (${this.options.maxConnections})`);
    }
    const id = this.nextId++;
    const conn = new Connection(
      socket,
      this.dispatcher,
      { id, remote, principal: 'anonymous', clientName: undefined },
      this.options,
      this.logger,
    );
    this.connections.add(conn);
    this.logger.debug({ conn: id, remote }, 'connection opened');
    void conn.closed.then(() => {
      this.connections.delete(conn);
      this.logger.debug({ conn: id, remote }, 'connection closed');
    });
  }
}
