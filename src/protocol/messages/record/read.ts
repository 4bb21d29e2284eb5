// The server reads Record requests in place (RecordReader): the bulk of all traffic, so no msgpackr and no
// object per request. It reads what write.ts writes, and any other encoding msgpackr would accept.
import { MAX_NAME_BYTES } from '../../../quota/entity.js';
import { internAscii } from '../../name-cache.js';
import {
  K_ADMIT,
  K_BYTES,
  K_CLIENT,
  K_COUNT,
  K_GROUP,
  K_TYPE,
  K_USER,
  RECORD_CONSUME,
  RECORD_PRODUCE,
  RECORD_REQUEST,
  type RecordCall,
  TYPE_NAMES,
} from './names.js';

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

/**
 * Bytes i..i+3 as one (signed) 32-bit word; the reader only asks for bytes it has checked are there. Read by hand,
 * like every length and integer here: Buffer's readUInt16BE/readUInt32BE check their offset through a wrapper that
 * allocates, and msgpackr (most Node callers) writes every map with a 16-bit length.
 */
function word(b: Uint8Array, i: number): number {
  return (b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!;
}

// The names' words, taken from the names themselves (names.ts), so the two cannot disagree.
const W_TYPE = word(K_TYPE, 0);
const W_USER = word(K_USER, 0);
const W_COUN = word(K_COUNT, 0);
const W_BYTE = word(K_BYTES, 0);
const W_ADMI = word(K_ADMIT, 0);
const W_CLIE = word(K_CLIENT, 0);
const W_NT_I = word(K_CLIENT, 4);
const W_CONS = word(K_GROUP, 0);
const W_UMER = word(K_GROUP, 4);
const W__GRO = word(K_GROUP, 8);
const [PRODUCE, CONSUME, REQUEST] = TYPE_NAMES as [Buffer, Buffer, Buffer];
const W_RECO = word(PRODUCE, 0);
const M_PRO = word(PRODUCE, 6) >>> 8;
const M_CON = word(CONSUME, 6) >>> 8;
const M_REQ = word(REQUEST, 6) >>> 8;
const W_DUCE = word(PRODUCE, 9);
const W_SUME = word(CONSUME, 9);
const W_UEST = word(REQUEST, 9);
// The bytes past the last whole word.
const T5 = K_COUNT[4];
const S5 = K_BYTES[4];
const CLIENT_8 = K_CLIENT[8];
const GROUP_12 = K_GROUP[12];
const GROUP_13 = K_GROUP[13];
const RECORD_4 = PRODUCE[4];
const RECORD_5 = PRODUCE[5];

/**
 * Reads a Record request in place: compares the `type` bytes without making a string and builds no object.
 * It accepts exactly the bodies the msgpackr path (index.ts, each message's decode) accepts and reads the same from them; anything
 * it does not fully recognise (another type, an unusual encoding, a non-ASCII name, a value out of range) is
 * declined, and the msgpackr path decodes the body again and gives the precise error.
 * test/record-fast-path.test.ts checks the two agree on random bodies. The reader keeps only its cursor.
 */
export class RecordReader {
  private b: Buffer = Buffer.alloc(0);
  private at = 0;
  private end = 0;

  /** Decodes buf[start, end) into `into`; false (and `into` untouched) means "use the msgpackr path". */
  read(buf: Buffer, start: number, end: number, into: RecordCall): boolean {
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
      entries = (buf[start + 1]! << 8) | buf[start + 2]!;
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
    into.kind = kind;
    into.user = user;
    into.clientId = client;
    into.consumerGroup = kind === RECORD_CONSUME ? group : null;
    into.amount = amount;
    into.admit = admit;
    return true;
  }

  /**
   * The field a key names, picked by length and confirmed word by word against the names' words (a byte loop
   * over a second buffer cost a fifth of the whole read).
   */
  private fieldOf(start: number, len: number): number {
    const b = this.b;
    const w = word(b, start);
    if (len === 4) return w === W_TYPE ? F_TYPE : w === W_USER ? F_USER : 0;
    if (len === 5) {
      const last = b[start + 4];
      // the fifth letters: count's and admit's are both 't'
      if (w === W_COUN && last === T5) return F_COUNT;
      if (w === W_BYTE && last === S5) return F_BYTES;
      return w === W_ADMI && last === T5 ? F_ADMIT : 0;
    }
    if (len === 9) return w === W_CLIE && word(b, start + 4) === W_NT_I && b[start + 8] === CLIENT_8 ? F_CLIENT : 0;
    if (len === 14) {
      return w === W_CONS &&
        word(b, start + 4) === W_UMER &&
        word(b, start + 8) === W__GRO &&
        b[start + 12] === GROUP_12 &&
        b[start + 13] === GROUP_13
        ? F_GROUP
        : 0;
    }
    return 0;
  }

  /** The kind a type name names ("RecordProduce" / "RecordConsume" / "RecordRequest"), or 0. */
  private kindOf(start: number, len: number): number {
    const b = this.b;
    if (len !== 13 || word(b, start) !== W_RECO || b[start + 4] !== RECORD_4 || b[start + 5] !== RECORD_5) return 0;
    // "Record" then "Produce" / "Consume" / "Request": the last three words tell them apart.
    const tail = word(b, start + 9);
    const mid = word(b, start + 6) >>> 8; // bytes 6..8
    if (tail === W_DUCE && mid === M_PRO) return RECORD_PRODUCE;
    if (tail === W_SUME && mid === M_CON) return RECORD_CONSUME;
    if (tail === W_UEST && mid === M_REQ) return RECORD_REQUEST;
    return 0;
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
      return (b[at + 1]! << 8) | b[at + 2]!;
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
      return (b[at + 1]! << 8) | b[at + 2]!;
    }
    if (t === 0xce && at + 4 < end) {
      this.at = at + 5;
      return word(b, at + 1) >>> 0;
    }
    if (t === 0xcf && at + 8 < end) {
      const hi = word(b, at + 1) >>> 0;
      if (hi >= 0x200000) return BAD; // >= 2^53: the msgpackr path rejects it with its own message
      this.at = at + 9;
      return hi * 0x100000000 + (word(b, at + 5) >>> 0);
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
   * names go the msgpackr way, so every UTF-8 subtlety (invalid sequences, the byte limit) is decided in one place.
   */
  private name(): string | null | typeof NOT_A_NAME {
    if (this.b[this.at] === 0xc0) {
      this.at++;
      return null;
    }
    const len = this.strHeader();
    const at = this.at;
    if (len <= 0 || len > MAX_NAME_BYTES || at + len > this.end) return NOT_A_NAME;
    const name = internAscii(this.b, at, at + len);
    if (name === undefined) return NOT_A_NAME;
    this.at = at + len;
    return name;
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
