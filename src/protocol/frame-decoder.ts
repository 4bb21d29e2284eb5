import { RivvenError } from './error-codes.js';

/** Bytes before the body: u32 length, u32 correlation_id. */
export const HEADER_BYTES = 8;

/** The body is buf[start, end): a view into the socket's chunk when possible, so no object is made per frame. */
export type FrameHandler = (correlationId: number, buf: Buffer, start: number, end: number) => void;

/**
 * Streaming decoder for `length: u32 BE | correlation_id: u32 BE | body`, where length counts
 * correlation_id + body. Fed socket chunks of any size; calls `onFrame` once per complete frame.
 *
 * Memory follows what arrived, never what a prefix claims: a length is checked against the limit as soon as
 * its 4 bytes are known, and a frame split across chunks is kept as the pieces received so far, joined only
 * when the last one arrives. A peer that announces 1 MiB and sends 10 bytes costs 10 bytes. Whole frames
 * inside one chunk are passed as views without copying.
 *
 * The handler may call `pause()`: the decoder stops after that frame and keeps the rest of the chunk until
 * `resume()`, so its owner can apply backpressure between any two frames, not only between reads.
 *
 * After an error the decoder is dead: framing is lost (a bad length), or the handler threw (whatever it left
 * half done belongs to its connection), so the connection must close. Errors are thrown out of push().
 */
export class FrameDecoder {
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerFilled = 0;
  /** Body bytes of the frame in progress, as received; -1 while no body is being assembled. */
  private bodyLength = -1;
  private parts: Buffer[] = [];
  private partBytes = 0;
  private correlationId = 0;
  private failed = false;
  private paused = false;
  private rest: Buffer | null = null;
  /** Counts frames that became partial (split across chunks), so an owner can time each one. */
  partials = 0;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly onFrame: FrameHandler,
  ) {}

  /** Throws RivvenError INVALID_FRAME or FRAME_TOO_LARGE on a bad length, or what the handler threw. */
  push(chunk: Buffer): void {
    if (this.failed) return;
    if (this.paused) {
      this.rest = this.rest === null ? chunk : Buffer.concat([this.rest, chunk]);
      return;
    }
    let at = 0;
    const end = chunk.length;
    while (at < end) {
      if (this.bodyLength >= 0) {
        const n = Math.min(this.bodyLength - this.partBytes, end - at);
        this.parts.push(Buffer.from(chunk.subarray(at, at + n)));
        this.partBytes += n;
        at += n;
        if (this.partBytes === this.bodyLength) {
          const body = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partBytes);
          this.parts = [];
          this.partBytes = 0;
          this.bodyLength = -1;
          this.emit(this.correlationId, body, 0, body.length);
        }
      } else if (this.headerFilled === 0 && end - at >= HEADER_BYTES) {
        // Fast path: the header is whole in this chunk, read it in place (bytes, not readUInt32BE: its
        // argument checks cost more than the read, twice per frame).
        const bodyLength = this.checkLength(uint32(chunk, at)) - 4;
        const correlationId = uint32(chunk, at + 4);
        at += HEADER_BYTES;
        if (end - at >= bodyLength) {
          this.emit(correlationId, chunk, at, at + bodyLength);
          at += bodyLength;
        } else {
          this.partials++;
          this.startBody(correlationId, bodyLength);
        }
      } else {
        if (this.headerFilled === 0) this.partials++;
        const n = Math.min(HEADER_BYTES - this.headerFilled, end - at);
        chunk.copy(this.header, this.headerFilled, at, at + n);
        const before = this.headerFilled;
        this.headerFilled += n;
        at += n;
        if (before < 4 && this.headerFilled >= 4) this.checkLength(this.header.readUInt32BE(0));
        if (this.headerFilled === HEADER_BYTES) {
          this.headerFilled = 0;
          const bodyLength = this.header.readUInt32BE(0) - 4;
          if (bodyLength === 0) this.emit(this.header.readUInt32BE(4), EMPTY, 0, 0);
          else this.startBody(this.header.readUInt32BE(4), bodyLength);
        }
      }
      if (this.paused) {
        if (at < end) this.rest = chunk.subarray(at);
        return;
      }
    }
  }

  /** Stops after the current frame; the rest of the chunk waits for resume(). */
  pause(): void {
    this.paused = true;
  }

  /** Continues with what pause() kept (the handler may pause again). */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const rest = this.rest;
    this.rest = null;
    if (rest !== null) this.push(rest);
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** True while part of a frame is buffered. */
  get midFrame(): boolean {
    return this.headerFilled > 0 || this.bodyLength >= 0;
  }

  /** Bytes held: the frame in progress and what a pause kept. */
  get bufferedBytes(): number {
    return this.headerFilled + this.partBytes + (this.rest === null ? 0 : this.rest.length);
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
    this.bodyLength = bodyLength;
  }

  private emit(correlationId: number, buf: Buffer, start: number, end: number): void {
    try {
      this.onFrame(correlationId, buf, start, end);
    } catch (err) {
      this.failed = true;
      throw err;
    }
  }
}

const EMPTY = Buffer.alloc(0);

/** The big-endian u32 at b[i..i+3]; the caller has checked the four bytes are there. */
const uint32 = (b: Buffer, i: number): number => ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
