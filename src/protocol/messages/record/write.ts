// The client writes Record requests straight into its outgoing buffer: no msgpackr, no object per call. The
// server's in-place reader (read.ts) takes exactly this encoding.
import { HEADER_BYTES } from '../../frame-decoder.js';
import type { FrameWriter } from '../../frame-writer.js';
import { K_ADMIT, K_BYTES, K_CLIENT, K_COUNT, K_GROUP, K_TYPE, K_USER, RECORD_CONSUME, RECORD_REQUEST, TYPE_NAMES } from './names.js';

/**
 * Writes a Record request frame. Absent names are left out, not written as nil; an amount that is not an
 * integer from 0 to 2^53-1 goes as a float64, which the server refuses.
 */
export function writeRecord(
  out: FrameWriter,
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
  const b = out.room(HEADER_BYTES + 96 + 3 * names);
  const start = out.end;
  let at = start + HEADER_BYTES + 1;
  let fields = 2;
  at = writeKey(b, at, K_TYPE);
  at = writeKey(b, at, TYPE_NAMES[kind - 1]!);
  if (user != null) {
    at = writeStr(b, writeKey(b, at, K_USER), user);
    fields++;
  }
  if (clientId != null) {
    at = writeStr(b, writeKey(b, at, K_CLIENT), clientId);
    fields++;
  }
  if (group != null && kind === RECORD_CONSUME) {
    at = writeStr(b, writeKey(b, at, K_GROUP), group);
    fields++;
  }
  at = writeUint(b, writeKey(b, at, kind === RECORD_REQUEST ? K_COUNT : K_BYTES), amount);
  if (admit) {
    at = writeKey(b, at, K_ADMIT);
    b[at++] = 0xc3;
    fields++;
  }
  b[start + HEADER_BYTES] = 0x80 | fields;
  // Byte by byte: Buffer's writeUInt32BE and copy spend more on checking their arguments than on these bytes.
  writeU32(b, start, at - start - 4);
  writeU32(b, start + 4, correlationId >>> 0);
  out.advance(at);
}

function writeU32(b: Buffer, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = v >>> 16;
  b[at + 2] = v >>> 8;
  b[at + 3] = v;
}

/** A short ASCII str (a key or a type name: fixstr). */
function writeKey(b: Buffer, at: number, key: Buffer): number {
  const n = key.length;
  b[at++] = 0xa0 | n;
  for (let i = 0; i < n; i++) b[at + i] = key[i]!;
  return at + n;
}

/** A msgpack str (fixstr, str8 or str16: names are at most 1024 bytes, the server refuses longer ones). */
function writeStr(b: Buffer, at: number, s: string): number {
  // Most names are short ASCII: written as they are read, without a second pass to count UTF-8 bytes.
  const len = s.length;
  if (len < 32) {
    let i = 0;
    for (; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      b[at + 1 + i] = c;
    }
    if (i === len) {
      b[at] = 0xa0 | len;
      return at + 1 + len;
    }
  }
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

/** A msgpack uint in its shortest form; a value past 2^53-1 or not an integer goes as a float64. */
function writeUint(b: Buffer, at: number, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > Number.MAX_SAFE_INTEGER) {
    b[at] = 0xcb;
    b.writeDoubleBE(v, at + 1);
    return at + 9;
  }
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
