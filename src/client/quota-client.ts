import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { decodeBody, encodeFrame, isPlainMap } from '../protocol/codec.js';
import { isRetriable, RivvenError } from '../protocol/error-codes.js';
import * as alterQuotas from '../protocol/messages/alter-quotas.js';
import type { QuotaAlteration } from '../protocol/messages/alter-quotas.js';
import * as describeQuotas from '../protocol/messages/describe-quotas.js';
import type { QuotaEntry } from '../protocol/messages/describe-quotas.js';
import * as describeUsage from '../protocol/messages/describe-usage.js';
import type { BucketUsage } from '../protocol/messages/describe-usage.js';
import * as error from '../protocol/messages/error.js';
import * as hello from '../protocol/messages/hello.js';
import * as ping from '../protocol/messages/ping.js';
import * as recordReply from '../protocol/messages/record-reply.js';
import * as recordUsage from '../protocol/messages/record-usage.js';
import * as resetUsage from '../protocol/messages/reset-usage.js';
import * as acquireLease from '../protocol/messages/acquire-lease.js';
import * as describeViolations from '../protocol/messages/describe-violations.js';
import * as describeFleet from '../protocol/messages/describe-fleet.js';
import type { RecordResult } from '../protocol/messages/record-reply.js';
import { FrameDecoder } from '../protocol/frame-decoder.js';
import { DeadlineQueue } from './deadline-queue.js';
import { FrameWriter } from '../protocol/frame-writer.js';
import { OK_BODY } from '../protocol/responses.js';
import { RECORD_CONSUME, RECORD_PRODUCE, RECORD_REQUEST } from '../protocol/record-fast-path.js';
import type { Component } from '../quota/entity.js';

export interface QuotaClientOptions {
  /** @default "127.0.0.1" */
  host: string;
  /** @default 9190 */
  port: number;
  /** A call without its own timeout is rejected with TIMEOUT if no reply arrives in time. @default 5000 */
  requestTimeoutMs: number;
  /** TCP connect plus Hello must succeed within this, or the attempt fails and its socket is destroyed. @default 1000 */
  connectTimeoutMs: number;
  /** Connection attempts before connect() gives up; reconnects after a drop retry until close(). @default 5 */
  connectAttempts: number;
  /** First delay between attempts, doubled each time up to maxBackoffMs. @default 50 */
  initialBackoffMs: number;
  /** @default 2000 */
  maxBackoffMs: number;
  /** Calls in flight at most; past it calls are rejected at once with OVERLOADED. @default 10000 */
  maxPending: number;
  /** Sent in Hello; shows in the server's audit log. */
  clientName?: string;
  /** Sent in Hello; never logged. */
  token?: string;
  /** Connect with TLS: the CA that signs the server's certificate, and for mTLS the client's own. */
  tls?: ClientTls;
}

/**
 * Each of ca, cert and key is PEM text (a string holding "-----BEGIN", or a Buffer) or the path of a PEM file,
 * read once when the client is made.
 */
export interface ClientTls {
  /** CA bundle to trust (the system's when absent). */
  ca?: string | Buffer;
  /** Client certificate and key, for servers with server.tls.client_auth. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** The name the server's certificate must carry; the host by default. */
  servername?: string;
}

export const DEFAULT_CLIENT_OPTIONS: Readonly<QuotaClientOptions> = Object.freeze({
  host: '127.0.0.1',
  port: 9190,
  requestTimeoutMs: 5000,
  connectTimeoutMs: 1000,
  connectAttempts: 5,
  initialBackoffMs: 50,
  maxBackoffMs: 2000,
  maxPending: 10_000,
});

/** How one call is made. */
export interface CallOptions {
  /** Overrides requestTimeoutMs for this call (BrokerQuotas passes its record deadline). */
  timeoutMs?: number;
  /**
   * Without a live connection, reject at once with UNAVAILABLE (and reconnect in the background) instead of
   * waiting for the reconnection. For calls in a broker's request path.
   */
  failFast?: boolean;
}

export interface Principal {
  user?: string | null;
  clientId?: string | null;
}

export type { RecordResult } from '../protocol/messages/record-reply.js';
export type { QuotaEntry } from '../protocol/messages/describe-quotas.js';
export type { QuotaAlteration } from '../protocol/messages/alter-quotas.js';
export type { BucketUsage } from '../protocol/messages/describe-usage.js';

/** What a pending call resolves with: the reply body, or (Record calls) a RecordResult. */
const GENERIC = 0;
const RECORD = 1;

interface Pending {
  resolve: (value: unknown) => void;
  kind: typeof GENERIC | typeof RECORD;
  reject: (err: Error) => void;
  /** The socket the request was written to; null while it waits for a connection. */
  socket: net.Socket | null;
}

const sleep = (ms: number, keepAlive: boolean) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    // connect() keeps the process alive while it retries; a background reconnect must not.
    if (!keepAlive) timer.unref();
  });

/**
 * A connection to one rivven sidecar, used by brokers (through BrokerQuotas) and by the CLI.
 *
 * Requests are pipelined and matched to replies by correlation id. Calls made in the same tick go out in one
 * write. Each call has a timeout (its own, or requestTimeoutMs), kept by one timer per distinct timeout. An
 * Error reply rejects with a RivvenError carrying the server's code (and `index` for AlterQuotas). At most
 * maxPending calls are in flight. If the connection drops, calls sent on it reject with CONNECTION_CLOSED
 * (they may or may not have been applied), the client reconnects with exponential backoff, and calls made
 * meanwhile wait for it (within their timeout) unless made with failFast. close() rejects whatever is
 * pending and stops reconnecting. Events: 'connect', 'disconnect' (Error), 'error' (Error).
 */
export class QuotaClient extends EventEmitter {
  readonly options: Readonly<QuotaClientOptions>;
  /** Writes made to the socket (each carries every call of one tick). */
  readonly stats = { writes: 0 };
  private socket: net.Socket | null = null;
  private connecting: Promise<net.Socket> | null = null;
  private readonly pending = new Map<number, Pending>();
  private readonly deadlines = new Map<number, DeadlineQueue>();
  private readonly out = new FrameWriter();
  private outSocket: net.Socket | null = null;
  private nextId = 1;
  private closed = false;

  /** options.tls with any file paths read. */
  private readonly tls: ClientTls | undefined;

  constructor(options: Partial<QuotaClientOptions> = {}) {
    super();
    this.options = Object.freeze({ ...DEFAULT_CLIENT_OPTIONS, ...options });
    this.tls = options.tls === undefined ? undefined : readTlsFiles(options.tls);
  }

  get address(): string {
    return `${this.options.host}:${this.options.port}`;
  }

  /** True while a connection is up and has said Hello. */
  get connected(): boolean {
    return this.socket !== null && this.connecting === null;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * Connects (retrying with backoff up to connectAttempts) and says Hello. On failure nothing is left running:
   * no socket, no timer, no reconnect.
   */
  static async connect(options: Partial<QuotaClientOptions> = {}): Promise<QuotaClient> {
    const client = new QuotaClient(options);
    try {
      await client.ensureConnected(client.options.connectAttempts, true);
    } catch (err) {
      await client.close();
      throw err;
    }
    return client;
  }

  hello(): Promise<hello.HelloOk> {
    return this.request(this.helloBody()).then(hello.decodeReply);
  }

  ping(): Promise<void> {
    return this.request(ping.encodeRequest()).then(ping.decodeReply);
  }

  recordProduce(p: Principal & { bytes: number; admit?: boolean }, opts?: CallOptions): Promise<RecordResult> {
    return this.record(RECORD_PRODUCE, p.user, p.clientId, null, p.bytes, p.admit === true, opts);
  }

  recordConsume(
    p: Principal & { consumerGroup?: string | null; bytes: number; admit?: boolean },
    opts?: CallOptions,
  ): Promise<RecordResult> {
    return this.record(RECORD_CONSUME, p.user, p.clientId, p.consumerGroup, p.bytes, p.admit === true, opts);
  }

  recordRequest(p: Principal & { count?: number; admit?: boolean }, opts?: CallOptions): Promise<RecordResult> {
    return this.record(RECORD_REQUEST, p.user, p.clientId, null, p.count ?? 1, p.admit === true, opts);
  }

  /**
   * Usage of a named resource declared in the sidecar's quotas.resources (orders, services started, ...):
   * `amount` defaults to 1. Answered like the Record calls; an undeclared resource rejects with INVALID_REQUEST.
   */
  recordUsage(p: Principal & { resource: string; amount?: number; admit?: boolean }, opts?: CallOptions): Promise<RecordResult> {
    return this.request(recordUsage.encodeRequest(p), opts).then(recordReply.decodeReply);
  }

  describeQuotas(entities: Component[] = []): Promise<QuotaEntry[]> {
    return this.request(describeQuotas.encodeRequest(entities)).then(describeQuotas.decodeReply);
  }

  describeUsage(opts: { entities?: Component[]; top?: number; sortBy?: 'utilization' | 'rate' } = {}): Promise<BucketUsage[]> {
    return this.request(describeUsage.encodeRequest(opts)).then(describeUsage.decodeReply);
  }

  /** The fleet as the sidecar saw it at its last heartbeat (docs/protocol.md, DescribeFleet). */
  describeFleet(): Promise<describeFleet.FleetDescribed> {
    return this.request(describeFleet.encodeRequest()).then(describeFleet.decodeReply);
  }

  /** The violation log: episode starts and ends, newest last, with a summary of all that match. */
  describeViolations(opts: Parameters<typeof describeViolations.encodeRequest>[0] = {}): Promise<describeViolations.ViolationsReply> {
    return this.request(describeViolations.encodeRequest(opts)).then(describeViolations.decodeReply);
  }

  /** Takes an in-flight lease (max_in_flight), or learns how long until one frees up. */
  acquireLease(p: Principal & { ttlMs?: number }, opts?: CallOptions): Promise<acquireLease.LeaseResult> {
    return this.request(acquireLease.encodeRequest(p), opts).then(acquireLease.decodeReply);
  }

  /** Ends a lease (idempotent). */
  releaseLease(leaseId: string, opts?: CallOptions): Promise<void> {
    return this.request(acquireLease.encodeRelease(leaseId), opts).then(() => undefined);
  }

  /** Clears the usage and debt of the buckets of the listed principals; resolves with how many were reset. */
  resetUsage(entities: Component[]): Promise<number> {
    return this.request(resetUsage.encodeRequest(entities)).then(resetUsage.decodeReply);
  }

  alterQuotas(alterations: QuotaAlteration[], opts: { validateOnly?: boolean } = {}): Promise<number> {
    return this.request(alterQuotas.encodeRequest(alterations, opts.validateOnly ?? false)).then(alterQuotas.decodeReply);
  }

  /** Sends any request body and resolves with the reply body; rejects on an Error reply. */
  request(body: Record<string, unknown>, opts: CallOptions = {}): Promise<Record<string, unknown>> {
    return this.call(GENERIC, opts, (socket, id) => this.send(socket, id, body)) as Promise<Record<string, unknown>>;
  }

  /** A Record call: encoded straight into the outgoing buffer, and an Ok reply recognised without decoding it. */
  private record(
    kind: number,
    user: string | null | undefined,
    clientId: string | null | undefined,
    group: string | null | undefined,
    amount: number,
    admit: boolean,
    opts: CallOptions = {},
  ): Promise<RecordResult> {
    return this.call(RECORD, opts, (socket, id) => {
      if (this.bind(socket, id)) this.out.record(id, kind, user, clientId, group, amount, admit);
    }) as Promise<RecordResult>;
  }

  private call(kind: typeof GENERIC | typeof RECORD, opts: CallOptions, write: (socket: net.Socket, id: number) => void): Promise<unknown> {
    if (this.closed) return Promise.reject(new RivvenError('CONNECTION_CLOSED', 'the client is closed'));
    if (this.pending.size >= this.options.maxPending) {
      return Promise.reject(new RivvenError('OVERLOADED', `${this.pending.size} calls are in flight to ${this.address} (maxPending)`));
    }
    const socket = this.connected ? this.socket : null;
    if (socket === null && opts.failFast) {
      this.reconnectInBackground();
      return Promise.reject(new RivvenError('UNAVAILABLE', `not connected to ${this.address}`));
    }
    const { id, reply } = this.pend(opts.timeoutMs ?? this.options.requestTimeoutMs, kind);
    if (socket !== null) {
      write(socket, id);
    } else {
      this.ensureConnected(Infinity, false).then(
        (s) => write(s, id),
        (err: Error) => this.settle(id, undefined, err),
      );
    }
    return reply;
  }

  /** Rejects every pending call with CONNECTION_CLOSED, stops reconnecting, and closes the connection. */
  async close(): Promise<void> {
    this.closed = true;
    this.failPending(new RivvenError('CONNECTION_CLOSED', 'the client was closed'));
    for (const q of this.deadlines.values()) q.clear();
    const socket = this.socket;
    this.socket = null;
    if (socket !== null && !socket.destroyed) {
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.end();
        // A server that never answers the FIN must not hold close() up.
        setTimeout(() => socket.destroy(), 1000).unref();
      });
    }
  }

  /** Queues the frame for the write this tick makes: calls of one tick share one write. */
  private send(socket: net.Socket, id: number, body: Record<string, unknown>): void {
    if (this.bind(socket, id)) this.out.frame(encodeFrame(id, withoutAbsent(body)));
  }

  /**
   * Ties a pending call to the socket its frame is about to be written for, and makes sure that socket's batch
   * is flushed this tick. False when the call has already timed out (nothing to write).
   */
  private bind(socket: net.Socket, id: number): boolean {
    const p = this.pending.get(id);
    if (p === undefined) return false;
    p.socket = socket;
    if (this.outSocket !== socket) {
      this.flush();
      this.outSocket = socket;
    }
    if (this.out.length === 0) process.nextTick(this.flushNow);
    return true;
  }

  private readonly flushNow = (): void => this.flush();

  private flush(): void {
    const socket = this.outSocket;
    const batch = this.out.take();
    if (batch === null) return;
    if (socket === null || socket.destroyed) return; // its calls fail with CONNECTION_CLOSED as it closes
    this.stats.writes++;
    socket.write(batch);
  }

  /** A fresh correlation id and the promise its reply settles; it rejects with TIMEOUT after timeoutMs. */
  private pend(timeoutMs: number, kind: typeof GENERIC | typeof RECORD = GENERIC): { id: number; reply: Promise<Record<string, unknown>> } {
    let id = this.nextId;
    // 0 is reserved for connection errors; skip ids still in flight after a wrap-around.
    while (id === 0 || this.pending.has(id)) id = id >= 0xffffffff ? 1 : id + 1;
    this.nextId = id >= 0xffffffff ? 1 : id + 1;
    const reply = new Promise<Record<string, unknown>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, socket: null, kind });
    });
    this.deadlineQueue(timeoutMs).add(id);
    return { id, reply };
  }

  private deadlineQueue(timeoutMs: number): DeadlineQueue {
    let q = this.deadlines.get(timeoutMs);
    if (q === undefined) {
      q = new DeadlineQueue(
        timeoutMs,
        (id) => this.pending.has(id),
        (id) => this.settle(id, undefined, new RivvenError('TIMEOUT', `no reply from ${this.address} within ${timeoutMs} ms`)),
      );
      this.deadlines.set(timeoutMs, q);
    }
    return q;
  }

  private helloBody(): Record<string, unknown> {
    return hello.encodeRequest(this.options.clientName, this.options.token);
  }

  private reconnectInBackground(): void {
    if (this.closed || this.connecting !== null) return;
    this.ensureConnected(Infinity, false).catch((e: Error) => this.report(e));
  }

  private ensureConnected(attempts: number, keepAlive: boolean): Promise<net.Socket> {
    if (this.connected) return Promise.resolve(this.socket!);
    this.connecting ??= this.dial(attempts, keepAlive).finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async dial(attempts: number, keepAlive: boolean): Promise<net.Socket> {
    let delay = this.options.initialBackoffMs;
    for (let attempt = 1; ; attempt++) {
      if (this.closed) throw new RivvenError('CONNECTION_CLOSED', 'the client was closed');
      let socket: net.Socket | undefined;
      try {
        socket = await this.open();
        // Hello goes first on every connection; requests queued meanwhile follow it.
        const hello = this.pend(this.options.connectTimeoutMs);
        this.send(socket, hello.id, this.helloBody());
        await hello.reply;
        if (this.closed) throw new RivvenError('CONNECTION_CLOSED', 'the client was closed');
        this.socket = socket;
        this.emit('connect');
        return socket;
      } catch (err) {
        // A socket whose Hello failed or timed out is of no use: never leave it open.
        socket?.destroy();
        if (err instanceof RivvenError && !isRetriable(err.code)) throw err;
        // A plaintext Hello to a TLS port is dropped without a reply: ask the port once whether it speaks TLS.
        if (attempt === 1 && this.tls === undefined && err instanceof RivvenError && err.code === 'CONNECTION_CLOSED') {
          if (await speaksTls(this.options.host, this.options.port, this.options.connectTimeoutMs)) {
            throw new RivvenError(
              'CONNECTION_CLOSED',
              `the rivven server at ${this.address} speaks TLS and this client connected without it: connect with tls: { ca } (the CLI: --tls-ca <ca.pem> or RIVVEN_TLS_CA)`,
            );
          }
        }
        const code = (err as NodeJS.ErrnoException).code;
        const tlsReason = code === undefined ? undefined : TLS_FAILURES[code];
        if (attempt >= attempts || this.closed || tlsReason !== undefined) {
          if (tlsReason !== undefined) {
            throw new RivvenError('CONNECTION_CLOSED', `TLS to the rivven server at ${this.address} failed (${code}): ${tlsReason}`);
          }
          const reason = err instanceof Error ? (code ?? err.message) : String(err);
          throw new RivvenError('CONNECTION_CLOSED', `cannot reach the rivven server at ${this.address} (${reason})`);
        }
        await sleep(delay, keepAlive);
        delay = Math.min(delay * 2, this.options.maxBackoffMs);
      }
    }
  }

  /** A TCP connection within connectTimeoutMs. */
  private open(): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const t = this.tls;
      const socket =
        t === undefined
          ? net.connect(this.options.port, this.options.host)
          : tls.connect({
              port: this.options.port,
              host: this.options.host,
              ...t,
              ...(net.isIP(this.options.host) === 0 || t.servername ? { servername: t.servername ?? this.options.host } : {}),
            });
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new RivvenError('TIMEOUT', `no connection to ${this.address} within ${this.options.connectTimeoutMs} ms`));
      }, this.options.connectTimeoutMs);
      timer.unref();
      const decoder = new FrameDecoder(64 * 1024 * 1024, (id, buf, start, end) => this.onReply(socket, id, buf.subarray(start, end)));
      socket.once(t === undefined ? 'connect' : 'secureConnect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        socket.on('error', (err) => this.report(err));
        resolve(socket);
      });
      const onError = (err: Error) => {
        clearTimeout(timer);
        reject(err);
      };
      socket.once('error', onError);
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
    const p = this.pending.get(id);
    if (p !== undefined && p.kind === RECORD && raw.equals(OK_BODY)) {
      // The reply to nearly every record call: the same bytes every time, so no decoding and no new object.
      this.settleWith(id, p, recordReply.OK_RESULT);
      return;
    }
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
      this.failPending(error.decode(body), socket);
      return;
    }
    if (body.type === 'Error') this.settle(id, undefined, error.decode(body));
    else this.settle(id, body);
  }

  private settle(id: number, body: Record<string, unknown> | undefined, err?: Error): void {
    const p = this.pending.get(id);
    if (p === undefined) return; // timed out earlier: the late reply is dropped
    if (err !== undefined) {
      this.forget(id);
      p.reject(err);
    } else {
      let value: unknown = body;
      try {
        if (p.kind === RECORD) value = recordReply.decodeReply(body!);
      } catch (err) {
        this.forget(id);
        p.reject(err as Error);
        return;
      }
      this.settleWith(id, p, value);
    }
  }

  private settleWith(id: number, p: Pending, value: unknown): void {
    this.forget(id);
    p.resolve(value);
  }

  private forget(id: number): void {
    this.pending.delete(id);
    // Nothing left in flight: no deadline timer may outlive the calls it was for.
    if (this.pending.size === 0) for (const q of this.deadlines.values()) q.clear();
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
    this.failPending(new RivvenError('CONNECTION_CLOSED', `connection to ${this.address} closed`), socket);
    if (this.socket !== socket) return;
    this.socket = null;
    if (this.closed) return;
    this.emit('disconnect', new RivvenError('CONNECTION_CLOSED', `connection to ${this.address} closed`));
    // Reconnect in the background so the next call finds a connection.
    this.reconnectInBackground();
  }
}

/**
 * TLS failures retrying cannot mend, in words a person can act on (the error code alone read as "cannot
 * reach", which sent people looking for a stopped server).
 */
const TLS_FAILURES: Record<string, string> = {
  SELF_SIGNED_CERT_IN_CHAIN:
    "the server's certificate is not signed by a CA this client trusts: give the CA that signed it as tls.ca (the CLI: --tls-ca)",
  DEPTH_ZERO_SELF_SIGNED_CERT: "the server's certificate is self-signed: give it (or its CA) as tls.ca (the CLI: --tls-ca)",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    "the server's certificate is not signed by a CA this client trusts: give the CA that signed it as tls.ca (the CLI: --tls-ca)",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    "the server's certificate is not signed by a CA this client trusts: give the CA that signed it as tls.ca (the CLI: --tls-ca)",
  CERT_HAS_EXPIRED: "the server's certificate has expired",
  ERR_TLS_CERT_ALTNAME_INVALID: "the server's certificate does not name this host: connect by a name it carries, or set tls.servername",
  ERR_SSL_WRONG_VERSION_NUMBER: 'the server does not speak TLS on this port (no server.tls): connect without tls (the CLI: no --tls-ca)',
};

/** tls with each of ca, cert and key that is not PEM text read from the file it names. */
function readTlsFiles(t: ClientTls): ClientTls {
  const out: ClientTls = { ...t };
  for (const key of ['ca', 'cert', 'key'] as const) {
    const v = t[key];
    if (typeof v !== 'string' || v.includes('-----BEGIN')) continue;
    try {
      out[key] = readFileSync(v);
    } catch (err) {
      throw new Error(
        `tls.${key}: ${v} is neither PEM text nor a readable file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      );
    }
  }
  return out;
}

/** Whether host:port completes a TLS handshake (the certificate unchecked: this only asks which protocol it speaks). */
function speaksTls(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host, port, rejectUnauthorized: false, ...(net.isIP(host) === 0 ? { servername: host } : {}) });
    const done = (answer: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** The body without its undefined fields (msgpack would carry them as an extension type). */
function withoutAbsent(body: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k in body) if (body[k] !== undefined) out[k] = body[k];
  return out;
}
