/**
 * The script calls of one sync, a few out at once, each with its own deadline: a big sync (after an outage, say)
 * sent all at once would queue on Redis past the deadlines of its own later calls. The first failure is kept;
 * senders stop sending once it is `failed`.
 */
export class CallWindow {
  /** Calls sent. */
  sent = 0;
  failed = false;
  private failure: unknown;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly max: number) {}

  /** Sends `call`; resolves once fewer than `max` calls are out. */
  async send(call: () => Promise<void>): Promise<void> {
    this.sent++;
    const p: Promise<void> = call().then(
      () => void this.inFlight.delete(p),
      (err: unknown) => {
        if (!this.failed) this.failure = err;
        this.failed = true;
        this.inFlight.delete(p);
      },
    );
    this.inFlight.add(p);
    while (this.inFlight.size >= this.max) await Promise.race(this.inFlight);
  }

  /** Waits for every call out. */
  async settled(): Promise<void> {
    await Promise.all(this.inFlight);
  }

  /** Throws the first failure, if any. */
  check(): void {
    if (this.failed) throw this.failure;
  }
}
