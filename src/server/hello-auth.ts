import { FailureDelay } from '../auth/failure-delay.js';
import type { Guard, Peer } from '../auth/guard.js';
import type { Logger } from '../observability/logger.js';
import type { ViolationLog } from '../observability/violation-log.js';
import type { RivvenError } from '../protocol/error-codes.js';
import { systemClock, type TimerClock } from '../quota/clock.js';

/**
 * Hello's token check, slowed per source address (docs/security.md): a refused token is answered only after the
 * address's failure delay (auth.failure_delay_ms), and further Hellos from that address wait for their turn, so
 * guesses cost the delay. A failure is counted and logged with the peer's address, never with the token.
 */
export class HelloAuth {
  /** When each source address's next refused Hello may be answered. */
  private readonly failureDelay: FailureDelay;

  constructor(
    private readonly guard: Guard,
    private readonly violations: ViolationLog,
    private readonly logger: Logger,
    failureDelayMs: number,
    authTimeoutMs: number,
    /** The delays' time and timers: the system's; a ManualClock in tests. @default systemClock */
    private readonly clock: TimerClock = systemClock,
  ) {
    // An address's queue of Hellos waiting for their turn reaches at most half of server.auth_timeout_ms.
    this.failureDelay = new FailureDelay(failureDelayMs, 10_000, authTimeoutMs / 2);
  }

  /**
   * Checks `token` for `peer`: undefined when it passed now (a refusal now throws), or a promise that settles
   * once the token was checked in its address's turn (rejected when refused), or never (the queue is full).
   */
  authenticate(peer: Peer, token: string | undefined): Promise<void> | undefined {
    const wait = token === undefined ? 0 : this.failureDelay.queue(sourceAddress(peer.remote), this.clock.now());
    if (wait === Number.POSITIVE_INFINITY) {
      // The address's queue is full: the token is never looked at and the Hello never answered. The socket
      // stays unauthenticated until server.auth_timeout_ms closes it (or a newer socket of the same address
      // evicts it): answering at once would make refusals free (thousands a second from one address).
      this.guard.failures++;
      peer.closeAfterReply = true;
      return new Promise<void>(() => undefined);
    }
    // This address has a refusal pending: the token is checked in its turn, so guesses cost the delay.
    if (wait > 0) return new Promise<void>((resolve) => this.clock.after(wait, resolve)).then(() => this.check(peer, token, false));
    return this.check(peer, token, true);
  }

  /**
   * The guard's verdict on the token. A refusal throws at once, or (`delay`, and the address owes a delay) is
   * returned as a promise rejected after it: the connection reads nothing more meanwhile, and closes once the
   * refusal is sent.
   */
  private check(peer: Peer, token: string | undefined, delay: boolean): Promise<void> | undefined {
    try {
      this.guard.hello(peer, token);
      return undefined;
    } catch (err) {
      const code = (err as RivvenError).code;
      const address = sourceAddress(peer.remote);
      this.logger.warn({ conn: peer.id, remote: peer.remote, code }, 'authentication failed');
      // One episode per address, not per port: a client retrying from new ports is one source.
      this.violations.violation('AUTHENTICATION_FAILED', address, null, code);
      // A Hello that already waited for its turn (queue) is refused at once: the wait was its delay.
      if (code !== 'AUTHENTICATION_FAILED' || !delay) throw err;
      const ms = this.failureDelay.delayFor(address, this.clock.now());
      if (ms <= 0) throw err;
      return new Promise<void>((_, reject) => this.clock.after(ms, () => reject(err)));
    }
  }
}

/** The address part of a peer's "address:port" (failures are slowed per source address, whatever its port). */
const sourceAddress = (remote: string): string => remote.replace(/:\d+$/, '');
