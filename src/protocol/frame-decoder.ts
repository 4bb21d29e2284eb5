import { RivvenError } from './error-codes.js';

/** Bytes before the body: u32 length, u32 correlation_id. */
export const HEADER_BYTES = 8;

/** The body is buf[start, end): a view into the socket's chunk when possible, so no object is made per frame. */
export type FrameHandler = (correlationId: number, buf: Buffer, start: number, end: number) => void;

/**
 * Streaming decoder for `length: u32 BE | correlation_id: u32 BE | body`, where length counts
 * correlation_id + body. Fed socket chunks of any size; calls `onFrame` once per complete frame.
 *
 * A length is checked against the limit as soon as its 4 bytes are known, before anything of the body is
 * buffered, so a hostile prefix cannot make the server allocate. Whole frames inside one chunk are passed
 * as views without copying; only a frame split across chunks is assembled, into one buffer of its exact size.
 * After an error the decoder is dead: framing is lost, so the connection must close.
 */
export class FrameDecoder {
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerFilled = 0;
  private body: Buffer | null = null;
  private bodyFilled = 0;
  private correlationId = 0;
  private failed = false;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly onFrame: FrameHandler,
  ) {}

  /** Throws RivvenError INVALID_FRAME or FRAME_TOO_LARGE on a bad length. */
  push(chunk: Buffer): void {
    if (this.failed) return;
    let at = 0;
    const end = chunk.length;
    while (at < end) {
      if (this.body !== null) {
        const n = Math.min(this.body.length - this.bodyFilled, end - at);
        chunk.copy(this.body, this.bodyFilled, at, at + n);
        this.bodyFilled += n;
        at += n;
        if (this.bodyFilled === this.body.length) {
          const body = this.body;
          this.body = null;
          this.emit(this.correlationId, body, 0, body.length);
        }
        continue;
      }
      if (this.headerFilled === 0 && end - at >= 4) {
        // Fast path: the header starts here, read it in place.
        const length = this.checkLength(chunk.readUInt32BE(at));
        if (end - at >= HEADER_BYTES) {
          const correlationId = chunk.readUInt32BE(at + 4);
          const bodyLength = length - 4;
          if (end - at - HEADER_BYTES >= bodyLength) {
            this.emit(correlationId, chunk, at + HEADER_BYTES, at + HEADER_BYTES + bodyLength);
            at += HEADER_BYTES + bodyLength;
            continue;
          }
          this.startBody(correlationId, bodyLength);
          at += HEADER_BYTES;
          continue;
        }
      }
      const n = Math.min(HEADER_BYTES - this.headerFilled, end - at);
      chunk.copy(this.header, this.headerFilled, at, at + n);
      const before = this.headerFilled;
      this.headerFilled += n;
      at += n;
      if (before < 4 && this.headerFilled >= 4) this.checkLength(this.header.readUInt32BE(0));
      if (this.headerFilled === HEADER_BYTES) {
        this.headerFilled = 0;
        this.startBody(this.header.readUInt32BE(4), this.header.readUInt32BE(0) - 4);
        if (this.body!.length === 0) {
          this.body = null;
          this.emit(this.correlationId, EMPTY, 0, 0);
        }
      }
    }
  }

  /** True while part of a frame is buffered. */
  get midFrame(): boolean {
    return this.headerFilled > 0 || this.body !== null;
  }

  private checkLength(length: number): number {
    if (length < 4) {
      this.failed = true;
      throw new RivvenError('INVALID_FRAME', `frame length ${length} is below 4`);
    }
    if (length > this.maxFrameBytes) {
      this.failed = true;
      throw new RivvenError('FRAME_TOO_LARGE', `frame length ${length} exceeds max_frame_bytes ${this.maxFrameBytes}`);
    }
    return length;
  }

  private startBody(correlationId: number, bodyLength: number): void {
    this.correlationId = correlationId;
    this.body = Buffer.allocUnsafe(bodyLength);
    this.bodyFilled = 0;
  }

  private emit(correlationId: number, buf: Buffer, start: number, end: number): void {
    try {
      this.onFrame(correlationId, buf, start, end);
    } catch (err) {
      // A throwing handler must not leave the stream half-parsed: surface it outside the parse loop.
      process.nextTick(() => {
        throw err;
      });
    }
  }
}

const EMPTY = Buffer.alloc(0);
