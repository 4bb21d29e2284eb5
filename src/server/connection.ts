import type { Socket } from 'node:net';
import { FrameDecoder } from '../protocol/frame-decoder.js';
import { RivvenError, type ErrorCode } from '../protocol/error-codes.js';
import { errorFrame } from '../protocol/responses.js';
import type { Logger } from '../observability/logger.js';
import type { ConnectionContext, Dispatcher } from './dispatcher.js';
import { FrameWriter } from '../protocol/frame-writer.js';
import type { ConnectionOptions } from './options.js';

export interface ConnectionStats {
  id: number;
  remote: string;
  readingPaused: boolean;
  bytesRead: number;
  unsentReplyBytes: number;
  /** Bytes of an unfinished frame held for this peer. */
  partialFrameBytes: number;
  /** A request waiting on I/O or sliced work (AlterQuotas, a large describe), at most one. */
  pendingReply: boolean;
}

/** Bytes of unfinished frames across every connection, bounded so slow senders cannot fill memory together. */
export class PartialFrameBudget {
  used = 0;
  /** Connections closed because the budget was spent. */
  refused = 0;
  constructor(readonly max: number) {}
}

/** Replies of one read are handed to the socket once this much is written, to keep the scratch buffer small. */
const FLUSH_BYTES = 64 * 1024;

/**
 * One broker connection. Replies go out in request order: replies ready while a chunk is parsed are written
 * together (one write per read).
 *
 * Memory held for a peer is bounded, whatever it sends and whether or not it reads:
 * - replies: after every frame, unsent + not-yet-flushed reply bytes are checked against maxConnectionBytes;
 *   past it the decoder stops at that frame and the socket is paused until the peer has read enough;
 * - work: a request that answers later (AlterQuotas, a large DescribeQuotas/DescribeUsage built in slices)
 *   pauses the decoder too, so at most one is in flight per connection and nothing queues behind it;
 * - frames: an unfinished frame costs the bytes received, at most max_frame_bytes, counted in a budget shared
 *   by all connections, and must complete within frameTimeoutMs.
 * Nothing a request does can throw past the connection: a framing error is answered and closes it, anything
 * unexpected is logged and closes it. Other connections never notice.
 */
export class Connection {
  private readonly decoder: FrameDecoder;
  private readonly out = new FrameWriter();
  private pending: Promise<Buffer> | null = null;
  private overBudget = false;
  private closing = false;
  private partialCounted = 0;
  private timedPartial = 0;
  private partialStartedAt = 0;
  readonly closed: Promise<void>;

  constructor(
    private readonly socket: Socket,
    private readonly dispatcher: Dispatcher,
    readonly ctx: ConnectionContext,
    private readonly options: ConnectionOptions,
    private readonly budget: PartialFrameBudget,
    private readonly logger: Logger,
    /** Called once when the peer authenticates (a Hello with a valid token); undefined if it came authenticated. */
    private onAuthenticated?: () => void,
  ) {
    this.decoder = new FrameDecoder(options.maxFrameBytes, (id, buf, start, end) => this.onFrame(id, buf, start, end));
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.budget.used -= this.partialCounted;
        this.partialCounted = 0;
        resolve();
      }),
    );
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.run(() => this.decoder.push(chunk)));
    socket.on('drain', () => this.maybeResume());
    socket.on('error', (err) => {
      this.logger.debug({ conn: ctx.id, err: err.message }, 'connection error');
      socket.destroy();
    });
  }

  /** Stops reading; closes once every request already decoded has been answered (graceful shutdown). */
  closeGracefully(): Promise<void> {
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
      readingPaused: this.decoder.isPaused || this.closing,
      bytesRead: this.socket.bytesRead,
      unsentReplyBytes: this.socket.writableLength,
      partialFrameBytes: this.partialCounted,
      pendingReply: this.pending !== null,
    };
  }

  /** Closes the connection if its unfinished frame is older than frameTimeoutMs; the server calls this. */
  checkFrameTimeout(now: number): boolean {
    if (!this.decoder.midFrame || this.timedPartial !== this.decoder.partials) return false;
    if (now - this.partialStartedAt < this.options.frameTimeoutMs) return false;
    this.fail('FRAME_TIMEOUT', `a frame was started and not completed within ${this.options.frameTimeoutMs} ms`);
    return true;
  }

  /**
   * Runs decoder work (a new chunk, or resuming after a pause) as one batch: one clock reading, one timing,
   * one write. Every failure ends here.
   */
  private run(work: () => void): void {
    if (this.closing || this.socket.destroyed) return;
    this.dispatcher.beginBatch();
    try {
      work();
    } catch (err) {
      if (err instanceof RivvenError) {
        // Framing is lost: answer what came before, report on correlation_id 0, close.
        this.logger.warn({ conn: this.ctx.id, remote: this.ctx.remote, code: err.code }, err.message);
        this.out.frame(errorFrame(0, err.code, err.message));
      } else {
        this.logger.error({ conn: this.ctx.id, remote: this.ctx.remote, err }, 'connection failed; closing it');
        this.out.reset();
        this.socket.destroy();
      }
      this.closing = true;
      this.socket.pause();
    }
    this.dispatcher.endBatch();
    if (this.onAuthenticated !== undefined && this.ctx.authenticated) {
      this.onAuthenticated();
      this.onAuthenticated = undefined;
    }
    this.flush();
    this.accountPartialFrame();
    this.endIfDone();
  }

  private onFrame(correlationId: number, buf: Buffer, start: number, end: number): void {
    const reply = this.dispatcher.handle(correlationId, buf, start, end, this.ctx, this.out);
    if (this.ctx.closeAfterReply) {
      // A failed Hello: its reply goes out (now, or once its failure delay is over), nothing after it is read
      // or answered, and the connection closes.
      this.closing = true;
      this.decoder.pause();
      this.socket.pause();
      if (reply !== undefined) {
        this.pending = reply;
        void reply.then((frame) => this.settle(frame));
      }
      return;
    }
    if (reply !== undefined) {
      // Later replies must wait behind this one, and reading waits with them: nothing queues.
      this.pending = reply;
      this.decoder.pause();
      this.socket.pause();
      void reply.then((frame) => this.settle(frame));
      return;
    }
    if (this.out.length >= FLUSH_BYTES) this.flush();
    if (this.out.length + this.socket.writableLength > this.options.maxConnectionBytes) {
      this.flush();
      this.overBudget = true;
      this.decoder.pause();
      this.socket.pause();
    }
  }

  private settle(frame: Buffer): void {
    this.pending = null;
    if (this.socket.destroyed) return;
    // A later reply is a whole frame already (up to max_reply_bytes): it goes to the socket as it is, behind
    // what was written before it. Copied into the writer it would cost a slab of twice its size, pinned as
    // long as the peer leaves it unread.
    this.flush();
    this.socket.write(frame);
    // A Hello refused once its turn came (its token was checked late): nothing after it is read.
    if (this.ctx.closeAfterReply) this.closing = true;
    if (this.socket.writableLength > this.options.maxConnectionBytes) this.overBudget = true;
    this.maybeResume();
    this.endIfDone();
  }

  private flush(): void {
    const batch = this.out.take();
    if (batch === null || this.socket.destroyed) return;
    this.socket.write(batch);
  }

  private maybeResume(): void {
    if (this.overBudget && this.socket.writableLength <= this.options.maxConnectionBytes) this.overBudget = false;
    if (this.overBudget || this.pending !== null || this.closing || !this.decoder.isPaused) return;
    this.run(() => this.decoder.resume());
    if (!this.decoder.isPaused && !this.closing) this.socket.resume();
  }

  /** Keeps the shared budget and the frame timer in step with the decoder. */
  private accountPartialFrame(): void {
    const d = this.decoder;
    const bytes = d.midFrame ? d.bufferedBytes : 0;
    this.budget.used += bytes - this.partialCounted;
    this.partialCounted = bytes;
    if (d.midFrame && this.timedPartial !== d.partials) {
      this.timedPartial = d.partials;
      this.partialStartedAt = performance.now();
    }
    if (bytes > 0 && this.budget.used > this.budget.max) {
      this.budget.refused++;
      this.fail('OVERLOADED', 'the server holds too many unfinished frames; send whole frames, then retry');
    }
  }

  /** Reports on correlation id 0 and closes, dropping what this peer had buffered. */
  private fail(code: ErrorCode, message: string): void {
    this.logger.warn({ conn: this.ctx.id, remote: this.ctx.remote, code }, message);
    this.closing = true;
    this.socket.pause();
    this.budget.used -= this.partialCounted;
    this.partialCounted = 0;
    if (!this.socket.destroyed) this.socket.end(errorFrame(0, code, message));
    // A peer that never reads its socket must not keep this one open.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private endIfDone(): void {
    if (this.closing && this.pending === null && !this.socket.destroyed && !this.socket.writableEnded) this.socket.end();
  }
}
