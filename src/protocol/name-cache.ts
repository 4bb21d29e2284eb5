/**
 * Interns principal names straight from the bytes of a frame. The same client sends the same user and
 * client-id on every request; reusing one string object skips building a new string, and lets V8 reuse the
 * string's cached hash in every Map lookup that follows. Direct-mapped: a collision just replaces the entry.
 * Only ASCII names come here (the caller checks), so the latin1 decoding is exact.
 */
const SIZE = 4096; // entries; a power of two
const strings: (string | undefined)[] = new Array(SIZE);
const keys: (Buffer | undefined)[] = new Array(SIZE);

export function internAscii(buf: Buffer, start: number, end: number): string {
  // FNV-1a over the bytes
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  const at = (h >>> 0) & (SIZE - 1);
  const key = keys[at];
  const len = end - start;
  if (key !== undefined && key.length === len) {
    let same = true;
    for (let i = 0; i < len; i++) {
      if (key[i] !== buf[start + i]) {
        same = false;
        break;
      }
    }
    if (same) return strings[at]!;
  }
  const s = buf.toString('latin1', start, end);
  keys[at] = Buffer.from(buf.subarray(start, end));
  strings[at] = s;
  return s;
}
