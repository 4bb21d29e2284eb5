import net from 'node:net';
import { decodeBody, encodeFrame } from '../../src/protocol/codec.js';
import { FrameDecoder } from '../../src/protocol/frame-decoder.js';

export interface Reply {
  correlationId: number;
  body: Record<string, unknown>;
}

/** A raw protocol peer for tests: sends any bytes, reads replies in arrival order. */
export class WirePeer {
  readonly replies: Reply[] = [];
  private waiters: (() => void)[] = [];
  ended = false;
  private readonly decoder = new FrameDecoder(64 * 1024 * 1024, (correlationId, buf, start, end) => {
    this.replies.push({ correlationId, body: decodeBody(buf.subarray(start, end)) as Record<string, unknown> });
    this.wake();
  });

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.decoder.push(chunk));
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number): Promise<WirePeer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(new WirePeer(socket)));
      socket.once('error', reject);
    });
  }

  send(correlationId: number, body: unknown): void {
    this.socket.write(encodeFrame(correlationId, body));
  }

  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Resolves once `n` replies in total have arrived (rejects if the peer closed first). */
  async waitFor(n: number): Promise<Reply[]> {
    while (this.replies.length < n) {
      if (this.ended) throw new Error(`connection ended after ${this.replies.length} of ${n} replies`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    return this.replies.slice(0, n);
  }

  /** Sends one request and returns its reply. */
  async request(body: unknown, correlationId = 1): Promise<Record<string, unknown>> {
    const before = this.replies.length;
    this.send(correlationId, body);
    const replies = await this.waitFor(before + 1);
    return replies[before]!.body;
  }

  async closed(): Promise<void> {
    while (!this.ended) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/** Builds a raw frame with an arbitrary length field, for malformed-input tests. */
export function rawFrame(length: number, correlationId: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(length, 0);
  head.writeUInt32BE(correlationId, 4);
  return Buffer.concat([head, body]);
}
