import type net from 'node:net';

/** A socket counted from accept; `counted` until its place is given back (at close, or when it is evicted). */
export interface Admitted {
  socket: net.Socket;
  /** "address:port", its key among the unauthenticated. */
  key: string;
  address: string;
  since: number;
  counted: boolean;
}

/**
 * The sockets the server accepted and that have not authenticated yet (a TLS handshake in progress counts), with
 * the index eviction reads; the QuotaServer decides when to add, forget and evict (its connection limits).
 */
export class UnauthenticatedSockets {
  /**
   * Oldest first, by remote address and port (unique among open sockets; the TLS socket handed over after the
   * handshake has the same).
   */
  private readonly sockets = new Map<string, Admitted>();
  /**
   * The same sockets by source address, each address's oldest first, and the addresses by how many they hold:
   * eviction takes from the address holding the most, so that one source flooding sockets evicts its own and
   * not a broker's handshake from another address.
   */
  private readonly unauthByAddress = new Map<string, Set<Admitted>>();
  private readonly addressesHolding: Set<string>[] = [];
  private mostHeld = 0;

  get size(): number {
    return this.sockets.size;
  }

  /** Oldest first. */
  values(): IterableIterator<Admitted> {
    return this.sockets.values();
  }

  get(key: string): Admitted | undefined {
    return this.sockets.get(key);
  }

  /** Adds a socket just accepted; one still held under its key (the same address and port) is forgotten. */
  add(admitted: Admitted): void {
    const previous = this.sockets.get(admitted.key);
    if (previous !== undefined) this.forget(previous);
    this.sockets.set(admitted.key, admitted);
    this.index(admitted, true);
  }

  forget(a: Admitted): void {
    if (this.sockets.get(a.key) === a) this.sockets.delete(a.key);
    this.index(a, false);
  }

  /**
   * The socket to close to make room: the oldest of the source address holding the most of them (the oldest
   * overall once every address holds one), so a flood from one address cannot evict a broker connecting from
   * another however fast it opens sockets. Undefined when there is none.
   */
  evictable(): Admitted | undefined {
    const address = this.addressesHolding[this.mostHeld]?.values().next().value;
    if (address === undefined) return undefined;
    return this.mostHeld > 1 ? this.unauthByAddress.get(address)!.values().next().value! : this.sockets.values().next().value!;
  }

  /** Adds or removes one unauthenticated socket of `a`'s address in the per-address index (O(1)). */
  private index(a: Admitted, add: boolean): void {
    let mine = this.unauthByAddress.get(a.address);
    const before = mine?.size ?? 0;
    if (add) {
      if (mine === undefined) {
        mine = new Set();
        this.unauthByAddress.set(a.address, mine);
      }
      mine.add(a);
    } else {
      if (mine === undefined || !mine.delete(a)) return;
      if (mine.size === 0) this.unauthByAddress.delete(a.address);
    }
    const after = mine.size;
    if (before > 0) this.addressesHolding[before]!.delete(a.address);
    if (after > 0) {
      const holding = this.addressesHolding[after] ?? new Set<string>();
      this.addressesHolding[after] = holding;
      holding.add(a.address);
    }
    if (after > this.mostHeld) this.mostHeld = after;
    while (this.mostHeld > 0 && (this.addressesHolding[this.mostHeld]?.size ?? 0) === 0) this.mostHeld--;
  }
}
