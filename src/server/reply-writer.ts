import { OK_BODY, PONG_BODY } from '../protocol/responses.js';
import { HEADER_BYTES } from '../protocol/frame-decoder.js';

/**
 * Collects the reply frames of one read into one scratch buffer, then hands the socket a single buffer: one
 * write syscall per read instead of one iovec (and one allocation) per reply. The common replies (Ok, Pong)
 * are copied from pre-encoded templates with only the correlation id written.
 */
export class ReplyWriter {
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
  drain(): Buffer | null {
    if (this.len === 0) return null;
    const out = Buffer.allocUnsafe(this.len);
    this.buf.copy(out, 0, 0, this.len);
    this.len = 0;
    return out;
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
