import { EventEmitter } from 'node:events';
import net from 'node:net';
import { decodeBody, encodeFrame, isPlainMap } from '../protocol/codec.js';
import { isErrorCode, isRetriable, RivvenError } from '../protocol/error-codes.js';
import { FrameDecoder } from '../protocol/frame-decoder.js';
import type { Entity, Component } from '../quota/entity.js';
import type { QuotaKey, QuotaValue } from '../quota/quota-key.js';

export interface QuotaClientOptions {
  /** @default "127.0.0.1" */
  host: string;
  /** @default 9190 */
  port: number;
  /** Each request is rejected with TIMEOUT if no reply arrives in time. @default 5000 */
  requestTimeoutMs: number;
  /** Connection attempts before connect() gives up; reconnects after a drop retry forever. @default 5 */
  connectAttempts: number;
  /** First delay between attempts, doubled each time up to maxBackoffMs. @default 50 */
  initialBackoffMs: number;
  /** @default 2000 */
  maxBackoffMs: number;
  /** Sent in Hello; shows in the server's audit log. */
  clientName?: string;
  /** Sent in Hello; never logged. */
  token?: string;
}

export const DEFAULT_CLIENT_OPTIONS: Readonly<QuotaClientOptions> = Object.freeze({
  host: '127.0.0.1',
  port: 9190,
  requestTimeoutMs: 5000,
  connectAttempts: 5,
  initialBackoffMs: 50,
  maxBackoffMs: 2000,
});

export interface Principal {
  user?: string | null;
  clientId?: string | null;
}

/** Ok is throttleTimeMs 0; otherwise the broker delays (record mode) or rejects (admit mode) the client. */
export interface RecordResult {
  throttleTimeMs: number;
  quotaType?: QuotaKey;
  entity?: string;
  recorded: boolean;
}

export interface QuotaEntry {
  entity: Entity;
  quotas: Partial<Record<QuotaKey, QuotaValue>>;
}

export interface QuotaAlteration {
  entity: Entity;
  quota_key: QuotaKey;
  /** null removes the value. */
  quota_value: QuotaValue | null;
}

/** One live bucket, as DescribeUsage reports it. */
export interface BucketUsage {
  entity: string;
  /** The bucket's parts (servers before 0.2 leave them out). */
  user?: string | null;
  client_id?: string | null;
  consumer_group?: string | null;
  quota_type: QuotaKey;
  rate: number;
  limit: number;
  utilization: number;
  throttled_total: number;
  last_seen_ms: number;
}

interface Pending {
  resolve: (body: Record<string, unknown>) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  /** The socket the request was written to; null while it waits for a connection. */
  socket: net.Socket | null;
}

// A ref'd timer: a process with nothing else to do must not exit in the middle of a retry.
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A connection to one rivven sidecar, used by brokers and by the CLI.
 *
 * Requests are pipelined and matched to replies by correlation id. Each has its own timeout. An Error reply
 * rejects with a RivvenError carrying the server's code (and `index` for AlterQuotas). If the connection
 * drops, calls in flight reject with CONNECTION_CLOSED (they may or may not have been applied), the client
 * reconnects with exponential backoff, and calls made meanwhile wait for it (within their timeout).
 * close() rejects whatever is pending. Events: 'connect', 'disconnect' (Error), 'error' (Error).
 */
export class QuotaClient extends EventEmitter {
  readonly options: Readonly<QuotaClientOptions>;
  private socket: net.Socket | null = null;
  private connecting: Promise<net.Socket> | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(options: Partial<QuotaClientOptions> = {}) {
    super();
    this.options = Object.freeze({ ...DEFAULT_CLIENT_OPTIONS, ...options });
  }

  get address(): string {
    return `${this.options.host}:${this.options.port}`;
  }

  /** Connects (retrying with backoff up to connectAttempts) and says Hello. */
  static async connect(options: Partial<QuotaClientOptions> = {}): Promise<QuotaClient> {
    const client = new QuotaClient(options);
    await client.ensureConnected(client.options.connectAttempts);
    return client;
  }

  hello(): Promise<{ protocolVersion: number; serverVersion: string }> {
    return this.request(this.helloBody()).then((r) => ({
      protocolVersion: r.protocol_version as number,
      serverVersion: r.server_version as string,
    }));
  }

  async ping(): Promise<void> {
    await this.request({ type: 'Ping' });
  }

  recordProduce(p: Principal & { bytes: number; admit?: boolean }): Promise<RecordResult> {
    return this.request({ type: 'RecordProduce', user: p.user, client_id: p.clientId, bytes: p.bytes, admit: p.admit }).then(toRecordResult);
  }

  recordConsume(p: Principal & { consumerGroup?: string | null; bytes: number; admit?: boolean }): Promise<RecordResult> {
    return this.request({
      type: 'RecordConsume',
      user: p.user,
      client_id: p.clientId,
      consumer_group: p.consumerGroup,
      bytes: p.bytes,
      admit: p.admit,
    }).then(toRecordResult);
  }

  recordRequest(p: Principal & { count?: number; admit?: boolean }): Promise<RecordResult> {
    return this.request({ type: 'RecordRequest', user: p.user, client_id: p.clientId, count: p.count, admit: p.admit }).then(toRecordResult);
  }

  async describeQuotas(entities: Component[] = []): Promise<QuotaEntry[]> {
    const reply = await this.request({ type: 'DescribeQuotas', entities });
    return reply.entries as QuotaEntry[];
  }

  async describeUsage(opts: { entities?: Component[]; top?: number; sortBy?: 'utilization' | 'rate' } = {}): Promise<BucketUsage[]> {
    const reply = await this.request({ type: 'DescribeUsage', entities: opts.entities ?? [], top: opts.top, sort_by: opts.sortBy });
    return reply.buckets as BucketUsage[];
  }

  async alterQuotas(alterations: QuotaAlteration[], opts: { validateOnly?: boolean } = {}): Promise<number> {
    const reply = await this.request({ type: 'AlterQuotas', alterations, validate_only: opts.validateOnly ?? false });
    return reply.altered_count as number;
  }

  /** Sends any request body and resolves with the reply body; rejects on an Error reply. */
  async request(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (this.closed) throw new RivvenError('CONNECTION_CLOSED', 'the client is closed');
    const { id, reply } = this.pend();
    const socket = this.socket;
    if (socket !== null && !this.connecting) {
      this.send(socket, id, body);
    } else {
      this.ensureConnected(Infinity).then(
        (s) => this.send(s, id, body),
        (err: Error) => this.settle(id, undefined, err),
      );
    }
    return reply;
  }

  private send(socket: net.Socket, id: number, body: Record<string, unknown>): void {
    const p = this.pending.get(id);
    if (p === undefined) return; // timed out while waiting for the connection
    p.socket = socket;
    socket.write(encodeFrame(id, body));
  }

  /** A fresh correlation id and the promise its reply settles; it rejects with TIMEOUT after requestTimeoutMs. */
  private pend(): { id: number; reply: Promise<Record<string, unknown>> } {
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1; // 0 is reserved for connection errors
    const reply = new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RivvenError('TIMEOUT', `no reply from ${this.address} within ${this.options.requestTimeoutMs} ms`));
      }, this.options.requestTimeoutMs);
      timer.unref();
      this.pending.set(id, { resolve, reject, timer, socket: null });
    });
    return { id, reply };
  }

  /** Rejects every pending call with CONNECTION_CLOSED and closes the connection. */
  async close(): Promise<void> {
    this.closed = true;
    this.failPending(new RivvenError('CONNECTION_CLOSED', 'the client was closed'));
    const socket = this.socket;
    this.socket = null;
    if (socket !== null && !socket.destroyed) {
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.end();
      });
    }
  }

  private helloBody(): Record<string, unknown> {
    return { type: 'Hello', protocol_version: 1, client_name: this.options.clientName, token: this.options.token };
  }

  private ensureConnected(attempts: number): Promise<net.Socket> {
    if (this.socket !== null && this.connecting === null) return Promise.resolve(this.socket);
    this.connecting ??= this.dial(attempts).finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async dial(attempts: number): Promise<net.Socket> {
    let delay = this.options.initialBackoffMs;
    for (let attempt = 1; ; attempt++) {
      if (this.closed) throw new RivvenError('CONNECTION_CLOSED', 'the client was closed');
      try {
        const socket = await this.open();
        this.socket = socket;
        // Hello goes first on every connection; requests queued meanwhile follow it.
        const hello = this.pend();
        this.send(socket, hello.id, this.helloBody());
        await hello.reply;
        this.emit('connect');
        return socket;
      } catch (err) {
        if (err instanceof RivvenError && !isRetriable(err.code)) throw err;
        if (attempt >= attempts) {
          const reason = err instanceof Error ? (err as NodeJS.ErrnoException).code ?? err.message : String(err);
          throw new RivvenError('CONNECTION_CLOSED', `cannot reach the rivven server at ${this.address} (${reason})`);
        }
        await sleep(delay);
        delay = Math.min(delay * 2, this.options.maxBackoffMs);
      }
    }
  }

  private open(): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(this.options.port, this.options.host);
      socket.setNoDelay(true);
      const decoder = new FrameDecoder(64 * 1024 * 1024, (id, buf, start, end) => this.onReply(socket, id, buf.subarray(start, end)));
      socket.once('connect', () => {
        socket.off('error', reject);
        socket.on('error', (err) => this.report(err));
        resolve(socket);
      });
      socket.once('error', reject);
      socket.on('data', (chunk: Buffer) => {
        try {
          decoder.push(chunk);
        } catch (err) {
          socket.destroy(err as Error);
        }
      });
      socket.once('close', () => this.onClose(socket));
    });
  }

  private onReply(socket: net.Socket, id: number, raw: Buffer): void {
    let body: unknown;
    try {
      body = decodeBody(raw);
    } catch {
      body = undefined;
    }
    if (!isPlainMap(body)) {
      this.report(new Error(`undecodable reply from ${this.address}`));
      return;
    }
    if (id === 0) {
      // The server reports a connection-level error and closes: every call sent on it fails with it; calls
      // still waiting for a connection wait for the next one.
      this.failPending(toError(body), socket);
      return;
    }
    if (body.type === 'Error') this.settle(id, undefined, toError(body));
    else this.settle(id, body);
  }

  private settle(id: number, body: Record<string, unknown> | undefined, err?: Error): void {
    const p = this.pending.get(id);
    if (p === undefined) return; // timed out earlier: the late reply is dropped
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (err !== undefined) p.reject(err);
    else p.resolve(body!);
  }

  /** Fails the calls sent on `socket`, or every call when no socket is named. */
  private failPending(err: Error, socket?: net.Socket): void {
    for (const [id, p] of [...this.pending]) if (socket === undefined || p.socket === socket) this.settle(id, undefined, err);
  }

  /** An 'error' event without a listener would throw; an embedding broker must not crash for lack of one. */
  private report(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  private onClose(socket: net.Socket): void {
    if (this.socket !== socket) return;
    this.socket = null;
    const err = new RivvenError('CONNECTION_CLOSED', `connection to ${this.address} closed`);
    this.failPending(err, socket);
    if (this.closed) return;
    this.emit('disconnect', err);
    // Reconnect in the background so the next call finds a connection.
    this.ensureConnected(Infinity).catch((e: Error) => this.report(e));
  }
}

function toError(body: Record<string, unknown>): RivvenError {
  const code = isErrorCode(body.code) ? body.code : 'INTERNAL_ERROR';
  return new RivvenError(code, String(body.message ?? code), typeof body.index === 'number' ? body.index : undefined);
}

function toRecordResult(r: Record<string, unknown>): RecordResult {
  if (r.type === 'Ok') return { throttleTimeMs: 0, recorded: true };
  return {
    throttleTimeMs: r.throttle_time_ms as number,
    quotaType: r.quota_type as QuotaKey,
    entity: r.entity as string,
    recorded: r.recorded as boolean,
  };
}
