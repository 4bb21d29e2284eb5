import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { isRetriable, RivvenError } from '../protocol/error-codes.js';
import { FrameDecoder } from '../protocol/frame-decoder.js';
import * as hello from '../protocol/messages/hello.js';
import type { Multiplexer } from './multiplexer.js';

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

/** What a Connection tells its client. */
export interface ConnectionEvents {
  connect(): void;
  disconnect(err: Error): void;
  /** An error no call is waiting for. */
  error(err: Error): void;
}

const sleep = (ms: number, keepAlive: boolean) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    // connect() keeps the process alive while it retries; a background reconnect must not.
    if (!keepAlive) timer.unref();
  });

/**
 * Keeps one connection to a sidecar up: TCP or TLS within connectTimeoutMs, Hello first on every connection,
 * exponential backoff between attempts, and a reconnect in the background when it drops. Its replies go to
 * the Multiplexer, which also fails the calls sent on a socket that closed.
 */
export class Connection {
  private socket: net.Socket | null = null;
  private connecting: Promise<net.Socket> | null = null;
  /** Set by close(): no more attempts. */
  private closed = false;
  /** options.tls with any file paths read. */
  private readonly tls: ClientTls | undefined;

  constructor(
    private readonly options: Readonly<QuotaClientOptions>,
    private readonly calls: Multiplexer,
    private readonly events: ConnectionEvents,
  ) {
    this.tls = options.tls === undefined ? undefined : readTlsFiles(options.tls);
  }

  get address(): string {
    return `${this.options.host}:${this.options.port}`;
  }

  /** The socket while a connection is up and has said Hello, else null. */
  get ready(): net.Socket | null {
    return this.connecting === null ? this.socket : null;
  }

  reconnectInBackground(): void {
    if (this.closed || this.connecting !== null) return;
    this.ensure(Infinity, false).catch((e: Error) => this.events.error(e));
  }

  /** The ready socket, or one connected (up to `attempts` tries; `keepAlive`: the waits hold the process up). */
  ensure(attempts: number, keepAlive: boolean): Promise<net.Socket> {
    const ready = this.ready;
    if (ready !== null) return Promise.resolve(ready);
    this.connecting ??= this.dial(attempts, keepAlive).finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  /** Stops reconnecting and closes the socket (a server that never answers the FIN gets 1 s). */
  async close(): Promise<void> {
    this.closed = true;
    const socket = this.socket;
    this.socket = null;
    if (socket !== null && !socket.destroyed) {
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.end();
        setTimeout(() => socket.destroy(), 1000).unref();
      });
    }
  }

  private async dial(attempts: number, keepAlive: boolean): Promise<net.Socket> {
    let delay = this.options.initialBackoffMs;
    for (let attempt = 1; ; attempt++) {
      if (this.closed) throw new RivvenError('CONNECTION_CLOSED', 'the client was closed');
      let socket: net.Socket | undefined;
      try {
        socket = await this.open();
        // Hello goes first on every connection; requests queued meanwhile follow it.
        const call = this.calls.pend(this.options.connectTimeoutMs);
        this.calls.send(socket, call.id, hello.encodeRequest(this.options.clientName, this.options.token));
        await call.reply;
        if (this.closed) throw new RivvenError('CONNECTION_CLOSED', 'the client was closed');
        this.socket = socket;
        this.events.connect();
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
      const decoder = new FrameDecoder(64 * 1024 * 1024, (id, buf, start, end) => this.calls.onReply(socket, id, buf.subarray(start, end)));
      socket.once(t === undefined ? 'connect' : 'secureConnect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        socket.on('error', (err) => this.events.error(err));
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

  private onClose(socket: net.Socket): void {
    this.calls.failPending(new RivvenError('CONNECTION_CLOSED', `connection to ${this.address} closed`), socket);
    if (this.socket !== socket) return;
    this.socket = null;
    if (this.closed) return;
    this.events.disconnect(new RivvenError('CONNECTION_CLOSED', `connection to ${this.address} closed`));
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
