/**
 * A binary min-heap of items by a numeric key, each item knowing its own position (through `positionOf` and `setPosition`), so any item
 * can be removed in O(log n), not only the least: leases leave their heaps on release as well as on expiry.
 * One item may sit in several heaps at once, each with its own position.
 */
export class IndexedHeap<T> {
  private readonly items: T[] = [];

  constructor(
    private readonly key: (item: T) => number,
    /** The item's position in this heap, as setPosition last wrote it. */
    private readonly positionOf: (item: T) => number,
    /** Records the item's position in this heap; -1 when it leaves it. */
    private readonly setPosition: (item: T, position: number) => void,
  ) {}

  get size(): number {
    return this.items.length;
  }

  /** The item with the least key, or undefined when empty. */
  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    this.items.push(item);
    this.up(this.items.length - 1, item);
  }

  /** Removes `item` (which must be in this heap). */
  remove(item: T): void {
    const i = this.positionOf(item);
    const last = this.items.pop()!;
    this.setPosition(item, -1);
    if (last === item) return;
    this.items[i] = last;
    this.setPosition(last, i);
    // The moved item may belong above or below its new place.
    if (i > 0 && this.key(this.items[(i - 1) >> 1]!) > this.key(last)) this.up(i, last);
    else this.down(i, last);
  }

  private up(i: number, item: T): void {
    const k = this.key(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = this.items[parent]!;
      if (this.key(p) <= k) break;
      this.items[i] = p;
      this.setPosition(p, i);
      i = parent;
    }
    this.items[i] = item;
    this.setPosition(item, i);
  }

  private down(i: number, item: T): void {
    const k = this.key(item);
    const n = this.items.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.key(this.items[r]!) < this.key(this.items[l]!) ? r : l;
      const child = this.items[c]!;
      if (this.key(child) >= k) break;
      this.items[i] = child;
      this.setPosition(child, i);
      i = c;
    }
    this.items[i] = item;
    this.setPosition(item, i);
  }
}
