import { OK_BODY, PONG_BODY } from './responses.js';
import { HEADER_BYTES } from './frame-decoder.js';

/** The size of a writer's slab: the replies of a few hundred reads before a new one is needed. */
const SLAB_BYTES = 16 * 1024;
/** The slab of a writer whose large slab went with its last batch: the next write starts a new one. */
const NO_SLAB = Buffer.alloc(0);

/**
 * Collects frames into a slab, then hands the socket a single buffer: one write syscall per batch instead of
 * one iovec (and one allocation) per frame. The server collects the replies of one read; the client the calls
 * of one tick. The common replies (Ok, Pong) are copied from pre-encoded templates with only the correlation id
 * written, and the client writes Record requests straight into the slab (room, advance).
 *
 * A batch is handed over as a view of the slab, not a copy: the writer only ever writes past what it handed
 * over, and starts a new slab when the rest is too small, so bytes the socket still holds are never touched
 * (the old slab lives until the socket lets go of its last view).
 */
export class FrameWriter {
  private buf = Buffer.allocUnsafe(SLAB_BYTES);
  /** Where the batch not yet taken begins. */
  private start = 0;
  private len = 0;

  /** Bytes written since the last take(). */
  get length(): number {
    return this.len - this.start;
  }

  /** Where the next byte goes in the buffer room() returns. */
  get end(): number {
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
    this.buf.set(frame, this.len);
    this.len += frame.length;
    return undefined;
  }

  /** Forgets what was written since the last take() (the connection is being closed). */
  reset(): void {
    this.len = this.start;
  }

  /** Everything written since the last take(), as a view the caller may keep; the writer is then empty. */
  take(): Buffer | null {
    if (this.len === this.start) return null;
    const out = this.buf.subarray(this.start, this.len);
    this.start = this.len;
    // A slab grown for a large reply lives only as long as the socket holds that reply: kept, it would stay
    // with the connection for its lifetime, twice the size of the largest reply it ever had.
    if (this.buf.length > SLAB_BYTES) {
      this.buf = NO_SLAB;
      this.start = 0;
      this.len = 0;
    }
    return out;
  }

  /**
   * Room for `n` more bytes: the buffer to write them into, from `end` on, until advance(). For encoders
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

  // Bytes stored one by one: for a 30-byte template, Buffer's copy() and writeUInt32BE() cost more in checking
  // their arguments than in copying.
  private template(body: Buffer, correlationId: number): void {
    const size = body.length;
    this.reserve(HEADER_BYTES + size);
    const b = this.buf;
    const at = this.len;
    const length = size + 4;
    b[at] = length >>> 24;
    b[at + 1] = length >>> 16;
    b[at + 2] = length >>> 8;
    b[at + 3] = length;
    b[at + 4] = correlationId >>> 24;
    b[at + 5] = correlationId >>> 16;
    b[at + 6] = correlationId >>> 8;
    b[at + 7] = correlationId;
    const from = at + HEADER_BYTES;
    for (let i = 0; i < size; i++) b[from + i] = body[i]!;
    this.len = from + size;
  }

  /** Room for `n` more bytes after `len`: past the slab's end, the untaken batch moves to a new slab. */
  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const pending = this.len - this.start;
    const next = Buffer.allocUnsafe(Math.max(SLAB_BYTES, 2 * (pending + n)));
    this.buf.copy(next, 0, this.start, this.len);
    this.buf = next;
    this.start = 0;
    this.len = pending;
  }
}
