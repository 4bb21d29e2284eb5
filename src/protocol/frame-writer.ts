import { OK_BODY, PONG_BODY } from './responses.js';
import { HEADER_BYTES } from './frame-decoder.js';

const key = (s: string): Buffer => Buffer.from([0xa0 | s.length, ...Buffer.from(s)]);
const K_TYPE = key('type');
const K_USER = key('user');
const K_CLIENT = key('client_id');
const K_GROUP = key('consumer_group');
const K_BYTES = key('bytes');
const K_COUNT = key('count');
const K_ADMIT = key('admit');
/** The three Record request types, in the order of RECORD_PRODUCE, RECORD_CONSUME, RECORD_REQUEST (1, 2, 3). */
const RECORD_TYPES = [key('RecordProduce'), key('RecordConsume'), key('RecordRequest')];

/**
 * Collects frames into one scratch buffer, then hands the socket a single buffer: one write syscall per batch
 * instead of one iovec (and one allocation) per frame. The server collects the replies of one read; the client
 * the calls of one tick. The common replies (Ok, Pong) are copied from pre-encoded templates with only the
 * correlation id written, and the client writes Record requests straight into the buffer, without msgpackr and
 * without an object per call (the server's record fast path reads exactly this encoding).
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
   * A Record request frame (kind RECORD_PRODUCE, RECORD_CONSUME or RECORD_REQUEST): `amount` is bytes, or the
   * count for RecordRequest. Absent names are left out, not written as nil.
   */
  record(
    correlationId: number,
    kind: number,
    user: string | null | undefined,
    clientId: string | null | undefined,
    group: string | null | undefined,
    amount: number,
    admit: boolean,
  ): void {
    // Worst case: the header, the map header, keys and values; a name takes at most 3 bytes per UTF-16 unit.
    const names = (user?.length ?? 0) + (clientId?.length ?? 0) + (group?.length ?? 0);
    this.reserve(HEADER_BYTES + 96 + 3 * names);
    const b = this.buf;
    const start = this.len;
    let at = start + HEADER_BYTES + 1;
    let fields = 2;
    at += K_TYPE.copy(b, at);
    at += RECORD_TYPES[kind - 1]!.copy(b, at);
    if (user != null) {
      at += K_USER.copy(b, at);
      at = writeStr(b, at, user);
      fields++;
    }
    if (clientId != null) {
      at += K_CLIENT.copy(b, at);
      at = writeStr(b, at, clientId);
      fields++;
    }
    if (group != null && kind === 2) {
      at += K_GROUP.copy(b, at);
      at = writeStr(b, at, group);
      fields++;
    }
    at += (kind === 3 ? K_COUNT : K_BYTES).copy(b, at);
    at = writeUint(b, at, amount);
    if (admit) {
      at += K_ADMIT.copy(b, at);
      b[at++] = 0xc3;
      fields++;
    }
    b[start + HEADER_BYTES] = 0x80 | fields;
    b.writeUInt32BE(at - start - 4, start);
    b.writeUInt32BE(correlationId >>> 0, start + 4);
    this.len = at;
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

/** A msgpack str (fixstr, str8 or str16: names are at most 1024 bytes, the server refuses longer ones). */
function writeStr(b: Buffer, at: number, s: string): number {
  const n = Buffer.byteLength(s);
  if (n < 32) b[at++] = 0xa0 | n;
  else if (n < 256) {
    b[at++] = 0xd9;
    b[at++] = n;
  } else {
    b[at++] = 0xda;
    b.writeUInt16BE(n & 0xffff, at);
    at += 2;
  }
  return at + b.write(s, at, 'utf8');
}

/** A msgpack uint; a value past 2^53-1 or not an integer goes as a float64, which the server refuses. */
function writeUint(b: Buffer, at: number, v: number): number {
  if (Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER) {
    if (v < 0x80) {
      b[at] = v;
      return at + 1;
    }
    if (v < 0x100) {
      b[at] = 0xcc;
      b[at + 1] = v;
      return at + 2;
    }
    if (v < 0x10000) {
      b[at] = 0xcd;
      b.writeUInt16BE(v, at + 1);
      return at + 3;
    }
    if (v < 0x100000000) {
      b[at] = 0xce;
      b.writeUInt32BE(v, at + 1);
      return at + 5;
    }
    b[at] = 0xcf;
    b.writeUInt32BE(Math.floor(v / 0x100000000), at + 1);
    b.writeUInt32BE(v >>> 0, at + 5);
    return at + 9;
  }
  b[at] = 0xcb;
  b.writeDoubleBE(v, at + 1);
  return at + 9;
}
