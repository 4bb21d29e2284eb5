import { MAX_NAME_BYTES } from '../quota/entity.js';
import { internAscii } from './name-cache.js';

/**
 * A decoder for the three Record requests only, the bulk of all traffic: it reads the msgpack map in place,
 * compares the `type` bytes without making a string, and builds no object. It accepts exactly the bodies the
 * generic path (msgpackr + messages/*.ts) accepts and answers the same; anything it does not fully recognise
 * (another type, an unusual encoding, a non-ASCII name, a value out of range) returns false, and the generic
 * path decodes the body again and gives the precise error. test/unit/record-fast-path.test.ts checks the two agree
 * on random bodies.
 */

export const RECORD_PRODUCE = 1;
export const RECORD_CONSUME = 2;
export const RECORD_REQUEST = 3;

const TYPE_NAMES = [Buffer.from('RecordProduce'), Buffer.from('RecordConsume'), Buffer.from('RecordRequest')];
const K_TYPE = Buffer.from('type');
const K_USER = Buffer.from('user');
const K_CLIENT = Buffer.from('client_id');
const K_GROUP = Buffer.from('consumer_group');
const K_BYTES = Buffer.from('bytes');
const K_COUNT = Buffer.from('count');
const K_ADMIT = Buffer.from('admit');

const F_TYPE = 1;
const F_USER = 2;
const F_CLIENT = 3;
const F_GROUP = 4;
const F_BYTES = 5;
const F_COUNT = 6;
const F_ADMIT = 7;

const UNSET = -1;
const BAD = -2;
const NOT_A_NAME = 0; // sentinel distinct from null and every string

/** The decoded request, in reused fields, and the cursor over the body (one object: monomorphic loads). */
class RecordDecoder {
  kind = 0;
  user: string | null = null;
  clientId: string | null = null;
  consumerGroup: string | null = null;
  amount = 0;
  admit = false;
  private b: Buffer = Buffer.alloc(0);
  private at = 0;
  private end = 0;

  /** Holds a Record request the generic path decoded, so both paths are recorded by the same code. */
  set(kind: number, user: string | null, clientId: string | null, consumerGroup: string | null, amount: number, admit: boolean): void {
    this.kind = kind;
    this.user = user;
    this.clientId = clientId;
    this.consumerGroup = consumerGroup;
    this.amount = amount;
    this.admit = admit;
  }

  /** Decodes buf[start, end) into the fields; false means "use the generic path". */
  decode(buf: Buffer, start: number, end: number): boolean {
    this.b = buf;
    this.at = start;
    this.end = end;
    if (start >= end) return false;
    let entries: number;
    const h = buf[start]!;
    if (h >= 0x80 && h <= 0x8f) {
      entries = h - 0x80;
      this.at = start + 1;
    } else if (h === 0xde && start + 2 < end) {
      entries = buf.readUInt16BE(start + 1);
      this.at = start + 3;
    } else return false;
    let kind = 0;
    let user: string | null = null;
    let client: string | null = null;
    let group: string | null = null;
    let bytes = UNSET;
    let count = UNSET;
    let admit = false;
    for (let e = 0; e < entries; e++) {
      if (this.at >= end) return false;
      const klen = this.strHeader();
      if (klen < 0 || this.at + klen >= end) return false;
      const field = this.fieldOf(this.at, klen);
      this.at += klen;
      switch (field) {
        case F_TYPE: {
          const tlen = this.strHeader();
          if (tlen < 0 || this.at + tlen > end) return false;
          kind = this.kindOf(this.at, tlen);
          if (kind === 0) return false;
          this.at += tlen;
          break;
        }
        case F_USER:
        case F_CLIENT:
        case F_GROUP: {
          const v = this.name();
          if (v === NOT_A_NAME) return false;
          if (field === F_USER) user = v;
          else if (field === F_CLIENT) client = v;
          else group = v;
          break;
        }
        case F_BYTES:
        case F_COUNT: {
          const v = this.uint();
          if (v === BAD) return false;
          if (field === F_BYTES) bytes = v;
          else count = v;
          break;
        }
        case F_ADMIT: {
          const t = buf[this.at];
          if (t !== 0xc2 && t !== 0xc3 && t !== 0xc0) return false;
          admit = t === 0xc3;
          this.at++;
          break;
        }
        default:
          if (!this.skipScalar()) return false;
      }
    }
    if (this.at !== end || kind === 0) return false;
    let amount: number;
    if (kind === RECORD_REQUEST) {
      if (count === 0) return false;
      amount = count === UNSET ? 1 : count;
    } else {
      if (bytes === UNSET) return false;
      amount = bytes;
    }
    this.kind = kind;
    this.user = user;
    this.clientId = client;
    this.consumerGroup = kind === RECORD_CONSUME ? group : null;
    this.amount = amount;
    this.admit = admit;
    return true;
  }

  private same(start: number, len: number, name: Buffer): boolean {
    if (len !== name.length) return false;
    const b = this.b;
    for (let i = 0; i < len; i++) if (b[start + i] !== name[i]) return false;
    return true;
  }

  /** The field a key names, picked by length and first byte, then confirmed byte for byte. */
  private fieldOf(start: number, len: number): number {
    const c = this.b[start];
    if (len === 4) {
      if (c === 0x74) return this.same(start, len, K_TYPE) ? F_TYPE : 0;
      return this.same(start, len, K_USER) ? F_USER : 0;
    }
    if (len === 5) {
      if (c === 0x62) return this.same(start, len, K_BYTES) ? F_BYTES : 0;
      if (c === 0x63) return this.same(start, len, K_COUNT) ? F_COUNT : 0;
      return this.same(start, len, K_ADMIT) ? F_ADMIT : 0;
    }
    if (len === 9) return this.same(start, len, K_CLIENT) ? F_CLIENT : 0;
    if (len === 14) return this.same(start, len, K_GROUP) ? F_GROUP : 0;
    return 0;
  }

  /** "RecordProduce" / "RecordConsume" / "RecordRequest" (they differ at byte 6), or 0. */
  private kindOf(start: number, len: number): number {
    if (len !== 13) return 0;
    const c = this.b[start + 6];
    const kind = c === 0x50 ? RECORD_PRODUCE : c === 0x43 ? RECORD_CONSUME : c === 0x52 ? RECORD_REQUEST : 0;
    return kind !== 0 && this.same(start, len, TYPE_NAMES[kind - 1]!) ? kind : 0;
  }

  /** Length of a str at the cursor (moving past its header), or -1 if not a str. */
  private strHeader(): number {
    const b = this.b;
    const at = this.at;
    const t = b[at]!;
    if (t >= 0xa0 && t <= 0xbf) {
      this.at = at + 1;
      return t - 0xa0;
    }
    if (t === 0xd9 && at + 1 < this.end) {
      this.at = at + 2;
      return b[at + 1]!;
    }
    if (t === 0xda && at + 2 < this.end) {
      this.at = at + 3;
      return b.readUInt16BE(at + 1);
    }
    return -1;
  }

  /** A non-negative integer (<= 2^53-1) at the cursor, or BAD. */
  private uint(): number {
    const b = this.b;
    const at = this.at;
    const end = this.end;
    const t = b[at]!;
    if (t <= 0x7f) {
      this.at = at + 1;
      return t;
    }
    if (t === 0xcc && at + 1 < end) {
      this.at = at + 2;
      return b[at + 1]!;
    }
    if (t === 0xcd && at + 2 < end) {
      this.at = at + 3;
      return b.readUInt16BE(at + 1);
    }
    if (t === 0xce && at + 4 < end) {
      this.at = at + 5;
      return b.readUInt32BE(at + 1);
    }
    if (t === 0xcf && at + 8 < end) {
      const hi = b.readUInt32BE(at + 1);
      if (hi >= 0x200000) return BAD; // >= 2^53: the generic path rejects it with its own message
      this.at = at + 9;
      return hi * 0x100000000 + b.readUInt32BE(at + 5);
    }
    if (t === 0xcb && at + 8 < end) {
      const v = b.readDoubleBE(at + 1);
      if (!Number.isSafeInteger(v) || v < 0) return BAD;
      this.at = at + 9;
      return v;
    }
    return BAD;
  }

  /**
   * A name: nil -> null, an ASCII str of 1..1024 bytes -> the (interned) string, else NOT_A_NAME. Non-ASCII
   * names go the generic way, so every UTF-8 subtlety (invalid sequences, the byte limit) is decided in one place.
   */
  private name(): string | null | typeof NOT_A_NAME {
    if (this.b[this.at] === 0xc0) {
      this.at++;
      return null;
    }
    const len = this.strHeader();
    const at = this.at;
    if (len <= 0 || len > MAX_NAME_BYTES || at + len > this.end) return NOT_A_NAME;
    const b = this.b;
    for (let i = at; i < at + len; i++) if (b[i]! >= 0x80) return NOT_A_NAME;
    this.at = at + len;
    return internAscii(b, at, at + len);
  }

  /** Skips a scalar value nobody asked for (an unknown field); false for containers and extensions. */
  private skipScalar(): boolean {
    const t = this.b[this.at]!;
    let size = 0;
    if (t <= 0x7f || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) size = 1;
    else if (t === 0xcc || t === 0xd0) size = 2;
    else if (t === 0xcd || t === 0xd1) size = 3;
    else if (t === 0xce || t === 0xd2 || t === 0xca) size = 5;
    else if (t === 0xcf || t === 0xd3 || t === 0xcb) size = 9;
    else {
      const len = this.strHeader();
      if (len < 0) return false;
      this.at += len;
      return this.at <= this.end;
    }
    this.at += size;
    return this.at <= this.end;
  }
}

/** The one decoder; its fields hold the last request decoded. */
export const fast = new RecordDecoder();

export const decodeRecord = (buf: Buffer, start: number, end: number): boolean => fast.decode(buf, start, end);
