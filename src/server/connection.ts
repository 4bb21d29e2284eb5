import type { Socket } from 'node:net';
import { FrameDecoder } from '../protocol/frame-decoder.js';
import { RivvenError } from '../protocol/error-codes.js';
import { errorFrame } from '../protocol/responses.js';
import type { Logger } from '../observability/logger.js';
import type { ConnectionContext, Dispatcher } from './dispatcher.js';
import { ReplyWriter } from './reply-writer.js';

export interface ConnectionOptions {
  maxFrameBytes: number;
  /** Unsent reply bytes above which the server stops reading from this peer. @default 1 MiB */
  highWaterBytes: number;
  /** Replies waiting behind a slow (I/O-bound) request above which reading stops. @default 1024 */
  maxQueuedReplies: number;
}

export interface ConnectionStats {
  id: number;
  remote: string;
  readingPaused: boolean;
  bytesRead: number;
  unsentReplyBytes: number;
  queuedReplies: number;
}

interface Slot {
  frame: Buffer | null;
}

/**
 * One broker connection. Replies go out in request order: replies ready while this chunk is parsed are
 * written together (one write per read); a reply that waits on I/O holds back the ones after it.
 *
 * Backpressure: a peer that does not read its replies stops being read from, so unsent replies (and
 * requests, which the kernel then buffers) cannot grow this process without bound.
 */
export class Connection {
  private readonly decoder: FrameDecoder;
  /** Replies in order, not yet handed to the socket. */
  private readonly out = new ReplyWriter();
  /** Replies held back behind one that waits on I/O, in order. */
  private readonly waiting: Slot[] = [];
  private pausedForBackpressure = false;
  private closing = false;
  readonly closed: Promise<void>;

  constructor(
    private readonly socket: Socket,
    private readonly dispatcher: Dispatcher,
    readonly ctx: ConnectionContext,
    private readonly options: ConnectionOptions,
    private readonly logger: Logger,
  ) {
    this.decoder = new FrameDecoder(options.maxFrameBytes, (id, buf, start, end) => this.onFrame(id, buf, start, end));
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.maybeResume());
    socket.on('error', (err) => {
      this.logger.debug({ conn: ctx.id, err: err.message }, 'connection error');
      socket.destroy();
    });
  }

  /** Stops reading; closes once every request already read has been answered. */
  drain(): Promise<void> {
    this.closing = true;
    this.socket.pause();
    this.endIfDone();
    return this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }

  stats(): ConnectionStats {
    return {
      id: this.ctx.id,
      remote: this.ctx.remote,
      readingPaused: this.pausedForBackpressure || this.closing,
      bytesRead: this.socket.bytesRead,
      unsentReplyBytes: this.socket.writableLength,
      queuedReplies: this.waiting.length,
    };
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return;
    this.dispatcher.beginBatch();
    try {
      this.decoder.push(chunk);
    } catch (err) {
      if (!(err instanceof RivvenError)) throw err;
      // Framing is lost: answer what came before, report on correlation_id 0, close.
      this.logger.warn({ conn: this.ctx.id, remote: this.ctx.remote, code: err.code }, err.message);
      this.enqueue(errorFrame(0, err.code, err.message));
      this.closing = true;
      this.socket.pause();
    }
    this.dispatcher.endBatch();
    this.flush();
    this.endIfDone();
  }

  private onFrame(correlationId: number, buf: Buffer, start: number, end: number): void {
    const mark = this.out.length;
    const reply = this.dispatcher.handle(correlationId, buf, start, end, this.ctx, this.out);
    if (reply === undefined) {
      // Written in place; if an earlier reply is still pending, this one must wait behind it.
      if (this.waiting.length > 0) this.hold({ frame: this.out.takeFrom(mark) });
      return;
    }
    this.enqueue(reply);
  }

  private enqueue(reply: Buffer | Promise<Buffer>): void {
    if (Buffer.isBuffer(reply)) {
      if (this.waiting.length === 0) this.out.frame(reply);
      else this.hold({ frame: reply });
      return;
    }
    const slot: Slot = { frame: null };
    this.hold(slot);
    void reply.then((frame) => {
      slot.frame = frame;
      while (this.waiting.length > 0 && this.waiting[0]!.frame !== null) this.out.frame(this.waiting.shift()!.frame!);
      this.flush();
      this.maybeResume();
      this.endIfDone();
    });
  }

  /** Queues a reply behind a pending one; too many queued and reading stops until they drain. */
  private hold(slot: Slot): void {
    this.waiting.push(slot);
    if (this.waiting.length > this.options.maxQueuedReplies) this.pause();
  }

  private flush(): void {
    const batch = this.out.drain();
    if (batch === null || this.socket.destroyed) return;
    this.socket.write(batch);
    if (this.socket.writableLength > this.options.highWaterBytes) this.pause();
  }

  private pause(): void {
    if (!this.pausedForBackpressure) {
      this.pausedForBackpressure = true;
      this.socket.pause();
    }
  }

  private maybeResume(): void {
    if (
      this.pausedForBackpressure &&
      !this.closing &&
      this.socket.writableLength <= this.options.highWaterBytes &&
      this.waiting.length <= this.options.maxQueuedReplies
    ) {
      this.pausedForBackpressure = false;
      this.socket.resume();
    }
  }

  private endIfDone(): void {
    if (this.closing && this.waiting.length === 0 && !this.socket.destroyed) this.socket.end();
  }
}
