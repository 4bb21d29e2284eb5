/**
 * How many sidecars share the quotas, and what part of a quota each decision here takes: the fleet's one
 * fallback state (docs/algorithm.md, fleet fallback). The fleet's sync writes it; the fleet's buckets and the
 * in-flight leases read it. Without fleet mode nothing writes it and every decision takes the whole quota.
 */
export class FleetState {
  /** Sidecars whose heartbeat is recent, as of the last heartbeat that reached Redis (at least 1: this one). */
  live = 1;
  /**
   * 1 while the fleet syncs through Redis. While it decides alone (Redis out of reach): the live sidecars at the
   * last contact, and each decision takes quota / divisor (a bucket counts each unit `divisor` times).
   */
  divisor = 1;
  /** When the fallback began (clock ms), or -1 while the fleet syncs. */
  fallbackSince = -1;

  /** True while this sidecar decides alone. */
  get alone(): boolean {
    return this.fallbackSince >= 0;
  }

  /** Redis is out of reach from `now`: decide with quota / the live sidecars last seen. Returns the divisor. */
  fallBack(now: number): number {
    this.fallbackSince = now;
    this.divisor = Math.max(1, this.live);
    return this.divisor;
  }

  /** Redis answers again: the fallback's length and divisor (what the first sync forgives); whole quotas again. */
  recover(now: number): { ms: number; divisor: number } {
    const ended = { ms: now - this.fallbackSince, divisor: this.divisor };
    this.fallbackSince = -1;
    this.divisor = 1;
    return ended;
  }
}
