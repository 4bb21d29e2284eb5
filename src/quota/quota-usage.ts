// The QuotaManager's reads and upkeep of its buckets off the Record path: usage reports (DescribeUsage, the
// metrics' utilization), ResetUsage and the idle sweep; apart so the Record path's module holds only that path.
import { BucketResolver } from './bucket-resolver.js';
import { componentMatcher, type BucketReport, type UsageQuery, usageReport, utilizationSummary } from './usage-report.js';

/** Usage reports, resets and the idle sweep of the buckets the resolver tracks. */
export class QuotaUsage extends BucketResolver {
  private sweeping = false;

  /**
   * Drops buckets and cached resolutions idle for idleTimeoutMs (and lets the bucket keeper compact), so memory
   * taken by a burst of principals is given back. Runs in slices; one sweep at a time. Resolves with the
   * buckets dropped.
   */
  async sweep(): Promise<number> {
    if (this.sweeping) return 0;
    this.sweeping = true;
    try {
      const cutoff = this.clock.now() - this.options.idleTimeoutMs;
      await this.cache.sweep(cutoff);
      return await this.buckets.sweep(cutoff);
    } finally {
      this.sweeping = false;
    }
  }

  /** Runs sweep() every cleanupIntervalMs on a timer that does not keep the process alive. */
  startCleanup(): () => void {
    const timer = setInterval(() => void this.sweep(), this.options.cleanupIntervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** The `top` buckets held, by utilization or rate (docs/protocol.md, DescribeUsage). */
  usage(query: UsageQuery): Promise<BucketReport[]> {
    return usageReport(this.buckets.view(), this.clock, query, this.keyNames);
  }

  /** Highest utilization and buckets above NEAR_LIMIT per quota key and period (keyPeriodOfKind), for metrics. */
  utilizationSummary(): Promise<{ max: number[]; nearLimit: number[] }> {
    return utilizationSummary(this.buckets.view(), this.clock);
  }

  /**
   * Clears the fill, debt and measured usage of every bucket a component matches (ResetUsage); their limits
   * stay. Resolves with the number of buckets reset.
   */
  resetUsage(components: [string, string | null][]): Promise<number> {
    return this.buckets.resetWhere(componentMatcher(components) ?? (() => true), this.clock.now());
  }
}
