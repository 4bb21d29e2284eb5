/**
 * Small integer ids for keys (kind, a, b), where kind is a small integer and a, b are strings or null: an
 * open-addressing hash index (linear probing, backward-shift deletion) over an Int32Array, with the keys in
 * parallel arrays. Unlike a Map of Maps it makes no object per entry, which is what keeps a tracked bucket
 * under 200 bytes. Ids are dense and reused, so owners keep per-id state in typed arrays of `capacity`.
 */
import { randomBytes } from 'node:crypto';

const FREE = 0xff;
const NULL_HASH = 0x9e3779b9;
/**
 * Ends every string's characters, as NULL_HASH stands for null: neither fits in a character (16 bits), so (a, b)
 * is read back from the hashed sequence alone, and no two keys are one sequence. Without it ('ab', 'c') and
 * ('a', 'bc') were one pass over the same characters: one hash under every seed.
 */
const END_HASH = 0x7f4a7c15;
/**
 * Called through this reference, not as `s.charCodeAt(i)`: once any loaded module subclasses String (ioredis
 * does, for RESP3 verbatim strings), V8 stops inlining the method looked up on a primitive string and this hash,
 * two per Record request, became 5x slower (the wire benchmark lost a fifth of its throughput).
 */
const charCodeAt = String.prototype.charCodeAt;

/**
 * This process's hash seed. Names come from clients (a Kafka client picks its own client.id): with a hash they
 * could compute, they could pick thousands of names with one home and make every lookup walk that chain
 * (hash flooding). Unseeded, the home's low bits depend only on the names' bytes.
 */
const PROCESS_SEED = randomBytes(4).readInt32LE(0);

function hashString(s: string | null, h: number): number {
  if (s === null) return Math.imul(h ^ NULL_HASH, 0x01000193);
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ charCodeAt.call(s, i), 0x01000193);
  return Math.imul(h ^ END_HASH, 0x01000193);
}

/**
 * The hash of a key under `seed`: FNV-1a over the kind and both names from the seed, then murmur3's finalizer.
 * The kind is a step of its own: xored in with a's first character, kind k and character c would be kind k ^ d
 * and character c ^ d, under every seed.
 */
export function keyHash(seed: number, kind: number, a: string | null, b: string | null): number {
  let h = hashString(b, hashString(a, Math.imul(seed ^ kind, 0x01000193)));
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

export class KeyedIds {
  private cells: Int32Array; // 0 = empty, else id + 1
  private mask: number;
  private kinds: Uint8Array;
  private as: (string | null)[] = [];
  private bs: (string | null)[] = [];
  private freeIds: Int32Array;
  private freeCount = 0;
  private next = 0;
  private count = 0;

  constructor(
    initialCapacity = 1024,
    /** The hash seed: the process's random one; a test passes its own. */
    private readonly seed = PROCESS_SEED,
  ) {
    // A power of two, so `& mask` wraps probes around the whole cell array (cells double from here).
    const cap = 2 ** Math.ceil(Math.log2(Math.max(16, initialCapacity)));
    this.kinds = new Uint8Array(cap).fill(FREE);
    this.freeIds = new Int32Array(cap);
    this.cells = new Int32Array(cap * 2);
    this.mask = cap * 2 - 1;
  }

  /** Ids below this bound exist or existed; per-id arrays must be at least this long. */
  get capacity(): number {
    return this.kinds.length;
  }

  /** One past the highest id ever handed out: iterate ids below it and skip free ones. */
  get highWater(): number {
    return this.next;
  }

  get size(): number {
    return this.count;
  }

  isLive(id: number): boolean {
    return this.kinds[id] !== FREE;
  }

  kind(id: number): number {
    return this.kinds[id]!;
  }

  a(id: number): string | null {
    return this.as[id]!;
  }

  b(id: number): string | null {
    return this.bs[id]!;
  }

  find(kind: number, a: string | null, b: string | null): number {
    const mask = this.mask;
    for (let i = this.home(kind, a, b); ; i = (i + 1) & mask) {
      const v = this.cells[i]!;
      if (v === 0) return -1;
      const id = v - 1;
      if (this.kinds[id] === kind && this.as[id] === a && this.bs[id] === b) return id;
    }
  }

  /** Adds a key that is not present; returns its id. The id may exceed the old capacity: owners grow first. */
  add(kind: number, a: string | null, b: string | null): number {
    let id: number;
    if (this.freeCount > 0) id = this.freeIds[--this.freeCount]!;
    else {
      id = this.next++;
      if (id >= this.kinds.length) this.growIds();
    }
    this.kinds[id] = kind;
    this.as[id] = a;
    this.bs[id] = b;
    this.count++;
    if (this.count * 2 > this.cells.length) this.rehash(this.cells.length * 2);
    else this.place(id);
    return id;
  }

  remove(id: number): void {
    const mask = this.mask;
    let i = this.home(this.kinds[id]!, this.as[id]!, this.bs[id]!);
    while (this.cells[i] !== id + 1) i = (i + 1) & mask;
    // Backward-shift deletion keeps every probe chain unbroken without tombstones.
    let hole = i;
    for (let j = (i + 1) & mask; this.cells[j] !== 0; j = (j + 1) & mask) {
      const other = this.cells[j]! - 1;
      const h = this.home(this.kinds[other]!, this.as[other]!, this.bs[other]!);
      const between = hole <= j ? hole < h && h <= j : hole < h || h <= j;
      if (!between) {
        this.cells[hole] = this.cells[j]!;
        hole = j;
      }
    }
    this.cells[hole] = 0;
    this.kinds[id] = FREE;
    this.as[id] = null;
    this.bs[id] = null;
    this.freeIds[this.freeCount++] = id;
    this.count--;
  }

  // The last key hashed and its hash: the requests of one socket read mostly come from one client, so the same
  // key is looked up several times in a row, and a comparison (the same interned strings: a pointer each) costs
  // less than hashing both names again.
  private lastKind = -1;
  private lastA: string | null = null;
  private lastB: string | null = null;
  private lastHash = 0;

  private home(kind: number, a: string | null, b: string | null): number {
    if (kind !== this.lastKind || a !== this.lastA || b !== this.lastB) {
      this.lastHash = keyHash(this.seed, kind, a, b);
      this.lastKind = kind;
      this.lastA = a;
      this.lastB = b;
    }
    return this.lastHash & this.mask;
  }

  private place(id: number): void {
    const mask = this.mask;
    let i = this.home(this.kinds[id]!, this.as[id]!, this.bs[id]!);
    while (this.cells[i] !== 0) i = (i + 1) & mask;
    this.cells[i] = id + 1;
  }

  private rehash(size: number): void {
    this.cells = new Int32Array(size);
    this.mask = size - 1;
    for (let id = 0; id < this.next; id++) if (this.kinds[id] !== FREE) this.place(id);
  }

  private growIds(): void {
    const cap = this.kinds.length * 2;
    const kinds = new Uint8Array(cap).fill(FREE);
    kinds.set(this.kinds);
    this.kinds = kinds;
    const free = new Int32Array(cap);
    free.set(this.freeIds);
    this.freeIds = free;
  }
}
