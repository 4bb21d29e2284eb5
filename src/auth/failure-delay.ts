/**
 * When each failed authentication from one source address may be answered (Kafka's
 * connection.failed.authentication.delay.ms, made per address): the failures of one address are answered one
 * `delayMs` apart, and while one is scheduled, every further token from that address waits for its own turn
 * before it is even checked (`queue`). Delaying only the refusals would not slow guessing: a right token is
 * answered at once, so a guesser on fresh connections learns it without waiting for any refusal. So guessing
 * tokens from one address costs `delayMs` a guess however many connections it opens. The connections kept
 * waiting are unauthenticated, so their number is bounded by server.max_unauthenticated_connections and their
 * time by server.auth_timeout_ms; past `horizonMs` a Hello is not checked or answered at all (the dispatcher
 * leaves it to the auth timeout).
 */
export class FailureDelay {
  /** Address -> when its last scheduled refusal goes out (ms, the caller's clock). Oldest first. */
  private readonly next = new Map<string, number>();

  constructor(
    readonly delayMs: number,
    /** Addresses remembered at once; past it the one remembered longest is forgotten. @default 10000 */
    private readonly maxAddresses = 10_000,
    /** How far ahead one address's queue may reach (half of server.auth_timeout_ms). @default 5000 */
    private readonly horizonMs = 5000,
  ) {}

  /** How long to hold the refusal of a failure from `address` seen at `nowMs`. */
  delayFor(address: string, nowMs: number): number {
    if (this.delayMs <= 0) return 0;
    const last = this.next.get(address);
    const at = Math.max(nowMs, last ?? 0) + this.delayMs;
    // Re-inserted so the map stays ordered by last use: the first entries are the ones to forget.
    this.next.delete(address);
    this.next.set(address, at);
    this.forgetStale(nowMs);
    return at - nowMs;
  }

  /**
   * How long a Hello with a token from `address` must wait before its token is checked: 0 when the address has
   * no refusal scheduled after `nowMs`, otherwise its turn in the address's queue (taken now), success or not.
   */
  queue(address: string, nowMs: number): number {
    if (this.delayMs <= 0) return 0;
    const last = this.next.get(address);
    if (last === undefined || last <= nowMs) return 0;
    // A queue longer than the horizon is left as it is and the Hello is never checked: the queue cannot grow
    // without end (1,600 guesses once pushed an address out for 160 s), and such a guess learns nothing.
    if (last - nowMs > this.horizonMs) return Number.POSITIVE_INFINITY;
    return this.delayFor(address, nowMs);
  }

  get size(): number {
    return this.next.size;
  }

  private forgetStale(nowMs: number): void {
    for (const [address, at] of this.next) {
      if (this.next.size <= this.maxAddresses && at > nowMs) return;
      this.next.delete(address);
    }
  }
}
