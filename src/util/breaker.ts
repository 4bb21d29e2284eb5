/** closed: calls pass. open: calls fail at once. half-open: one probe call tests recovery, the others fail. */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Consecutive failures that open the breaker. @default 5 */
  failureThreshold: number;
  /** Time open before one probe is let through. @default 1000 */
  resetTimeoutMs: number;
}

export const DEFAULT_BREAKER_OPTIONS: Readonly<BreakerOptions> = Object.freeze({ failureThreshold: 5, resetTimeoutMs: 1000 });

/**
 * A circuit breaker: after failureThreshold consecutive failures it opens and calls fail at once (no timeout
 * to wait out); after resetTimeoutMs the next call is a probe, and only one probe is out at a time. The probe's
 * success closes the breaker, its failure opens it for another resetTimeoutMs. `now` is injected for tests.
 */
export class CircuitBreaker {
  private failures = 0;
  private openedAt = 0;
  private probing = false;
  private current: BreakerState = 'closed';
  /** Times the breaker opened. */
  opened = 0;

  constructor(
    readonly options: Readonly<BreakerOptions> = DEFAULT_BREAKER_OPTIONS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get state(): BreakerState {
    return this.current;
  }

  /** Whether a call may go out now; a true answer in half-open state makes that call the probe. */
  allow(): boolean {
    if (this.current === 'closed') return true;
    if (this.current === 'open') {
      if (this.now() - this.openedAt < this.options.resetTimeoutMs) return false;
      this.current = 'half-open';
    }
    if (this.probing) return false;
    this.probing = true;
    return true;
  }

  success(): void {
    this.failures = 0;
    this.probing = false;
    this.current = 'closed';
  }

  failure(): void {
    this.probing = false;
    if (this.current === 'half-open' || ++this.failures >= this.options.failureThreshold) this.open();
  }

  private open(): void {
    if (this.current !== 'open') this.opened++;
    this.current = 'open';
    this.openedAt = this.now();
    this.failures = 0;
  }
}
