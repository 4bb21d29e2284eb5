/**
 * Interns principal names straight from the bytes of a frame. The same client sends the same user and
 * client-id on every request; reusing one string object skips building a new string, and lets V8 reuse the
 * string's cached hash in every Map lookup that follows. Direct-mapped: a collision just replaces the entry.
 * ASCII only: a name with any other byte is undefined (its caller decodes it as UTF-8 the msgpackr way), so the
 * latin1 decoding is exact. The check rides on the hash's pass over the bytes.
 */
const SIZE = 4096; // entries; a power of two
/**
 * Bytes of a name kept in the arena, one fixed cell per entry: most names are shorter, and comparing against
 * one flat array costs no pointer chase to a Buffer of its own (which made a hit cost twice what it does).
 */
const INLINE = 48;
const strings: (string | undefined)[] = new Array(SIZE);
const lengths = new Int32Array(SIZE).fill(-1);
const arena = new Uint8Array(SIZE * INLINE);
/** The bytes of a longer name, by entry. */
const long: (Buffer | undefined)[] = new Array(SIZE);

/** Bytes i..i+3 as one 32-bit word. */
const word = (b: Uint8Array, i: number): number => (b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!;

export function internAscii(buf: Buffer, start: number, end: number): string | undefined {
  // A hash taken four bytes at a time (murmur3's mixing; names are mostly 5-40 bytes, so a byte-at-a-time
  // hash was a third of the interning), and the bytes' OR: a high bit anywhere means not ASCII.
  const len = end - start;
  let h = len;
  let any = 0;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const w = word(buf, i);
    any |= w;
    h = mix(h, w);
  }
  let tail = 0;
  for (; i < end; i++) {
    const c = buf[i]!;
    any |= c;
    tail = (tail << 8) | c;
  }
  if ((any & 0x80808080) !== 0) return undefined;
  h = mix(h, tail);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  const at = h & (SIZE - 1);
  if (lengths[at] === len) {
    const same = len <= INLINE ? sameBytes(arena, at * INLINE, buf, start, len) : sameBytes(long[at]!, 0, buf, start, len);
    if (same) return strings[at]!;
  }
  const s = buf.toString('latin1', start, end);
  if (len <= INLINE) {
    arena.set(buf.subarray(start, end), at * INLINE);
    long[at] = undefined;
  } else long[at] = Buffer.from(buf.subarray(start, end));
  lengths[at] = len;
  strings[at] = s;
  return s;
}

function mix(h: number, w: number): number {
  let k = Math.imul(w, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, 0x1b873593);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** key[from, from + len) and buf[start, start + len) hold the same bytes. */
function sameBytes(key: Uint8Array, from: number, buf: Buffer, start: number, len: number): boolean {
  let j = 0;
  for (; j + 4 <= len; j += 4) if (word(key, from + j) !== word(buf, start + j)) return false;
  for (; j < len; j++) if (key[from + j] !== buf[start + j]) return false;
  return true;
}
