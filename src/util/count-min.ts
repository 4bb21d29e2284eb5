/**
 * A count-min sketch of counts by key: fixed memory whatever the number of keys, and an estimate that is never
 * below the true count (other keys sharing a cell can only add). Used where a count per principal is needed
 * only to tell whether it is far above a share: one Map entry per principal cost ~60 bytes per bucket, a third
 * of a bucket's whole cost.
 */
/** Called through this reference: `key.charCodeAt(i)` is 5x slower once a loaded module subclasses String (keyed-ids.ts). */
const charCodeAt = String.prototype.charCodeAt;

export class CountMinSketch {
  private readonly cells: Uint32Array;
  private readonly mask: number;

  constructor(
    /** Cells per row, rounded up to a power of two. */
    width: number,
    private readonly depth = 4,
  ) {
    let w = 1;
    while (w < width) w <<= 1;
    this.mask = w - 1;
    this.cells = new Uint32Array(w * depth);
  }

  /** The estimate for `key`: at least its true count. */
  estimate(key: string): number {
    let min = Number.MAX_SAFE_INTEGER;
    this.each(key, (i) => {
      const c = this.cells[i]!;
      if (c < min) min = c;
    });
    return min;
  }

  add(key: string, delta: 1 | -1): void {
    this.each(key, (i) => {
      const c = this.cells[i]! + delta;
      this.cells[i] = Math.max(c, 0);
    });
  }

  /** The key's cell in each row: two FNV-1a hashes combined (Kirsch-Mitzenmacher). */
  private each(key: string, visit: (index: number) => void): void {
    let h1 = 0x811c9dc5;
    let h2 = 0x01000193;
    for (let i = 0; i < key.length; i++) {
      const c = charCodeAt.call(key, i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995);
    }
    h2 |= 1;
    const w = this.mask + 1;
    for (let row = 0; row < this.depth; row++) visit(row * w + (((h1 + Math.imul(row, h2)) >>> 0) & this.mask));
  }
}
