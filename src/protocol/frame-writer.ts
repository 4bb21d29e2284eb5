import { OK_BODY, PONG_BODY } from './responses.js';
import { HEADER_BYTES } from './frame-decoder.js';

/**
 * Collects frames into one scratch buffer, then hands the socket a single buffer: one write syscall per batch
 * instead of one iovec (and one allocation) per frame. The server collects the replies of one read; the client
 * the calls of one tick. The common replies (Ok, Pong) are copied from pre-encoded templates with only the
 * correlation id written, and the client writes Record requests straight into the buffer (room, advance).
 */
export class FrameWriter {
  private buf = Buffer.allocUnsafe(16 * 1024);
  private len = 0;

  get length(): number {
    return this.len;
  }

  // Writers return undefined so a dispatcher can `return out.ok(id)` as its "answered now" Reply.
  ok(correlationId: number): undefined {
    this.template(OK_BODY, correlationId);
    return undefined;
  }

  pong(correlationId: number): undefined {
    this.template(PONG_BODY, correlationId);
    return undefined;
  }

  /** A whole frame encoded elsewhere. */
  frame(frame: Buffer): undefined {
    this.reserve(frame.length);
    frame.copy(this.buf, this.len);
    this.len += frame.length;
    return undefined;
  }

  /** Forgets what was written (the connection is being closed). */
  reset(): void {
    this.len = 0;
  }

  /**
   * A copy of everything written, and the writer emptied. The copy is what the socket keeps until the kernel
   * takes it, so the scratch buffer can be reused at once.
   */
  take(): Buffer | null {
    if (this.len === 0) return null;
    const out = Buffer.allocUnsafe(this.len);
    this.buf.copy(out, 0, 0, this.len);
    this.len = 0;
    return out;
  }

  /**
   * Room for `n` more bytes: the buffer to write them into, from `length` on, until advance(). For encoders
   * that write a frame in place (the Record requests, messages/record/write.ts).
   */
  room(n: number): Buffer {
    this.reserve(n);
    return this.buf;
  }

  /** Ends an in-place write begun with room(): the frames now end at `end`. */
  advance(end: number): void {
    this.len = end;
  }

  private template(body: Buffer, correlationId: number): void {
    const n = HEADER_BYTES + body.length;
    this.reserve(n);
    const b = this.buf;
    const at = this.len;
    b.writeUInt32BE(body.length + 4, at);
    b.writeUInt32BE(correlationId >>> 0, at + 4);
    body.copy(b, at + HEADER_BYTES);
    this.len = at + n;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(bigger, 0, 0, this.len);
    this.buf = bigger;
  }
}
