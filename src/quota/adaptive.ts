import os from 'node:os';
import { performance } from 'node:perf_hooks';

export interface AdaptiveOptions {
  /** Load (0..1) above which quotas are scaled down. @default 0.8 */
  cpuThreshold: number;
  /** The factor at full load (1.0). @default 0.5 */
  minFactor: number;
  /** How often the load is read. @default 5000 */
  checkIntervalMs: number;
}

/** The scale factor for a load: 1 up to the threshold, then linearly down to minFactor at full load. */
export function factorFor(load: number, o: Pick<AdaptiveOptions, 'cpuThreshold' | 'minFactor'>): number {
  if (!(load > o.cpuThreshold)) return 1;
  const over = Math.min(1, (load - o.cpuThreshold) / (1 - o.cpuThreshold));
  return 1 - over * (1 - o.minFactor);
}

/**
 * The host's load since the last reading: the larger of the CPU use of all cores (os.cpus() deltas) and this
 * process's event-loop utilization. The second matters on its own: a sidecar whose loop is saturated answers
 * late whatever the host's idle cores.
 */
export function systemLoad(): () => number {
  let last = os.cpus();
  let lastElu = performance.eventLoopUtilization();
  return () => {
    const now = os.cpus();
    let busy = 0;
    let total = 0;
    now.forEach((cpu, i) => {
      const before = last[i]?.times;
      if (before === undefined) return;
      const t = cpu.times;
      const idle = t.idle - before.idle;
      const all = t.user + t.nice + t.sys + t.irq + t.idle - (before.user + before.nice + before.sys + before.irq + before.idle);
      busy += all - idle;
      total += all;
    });
    last = now;
    const elu = performance.eventLoopUtilization(lastElu);
    lastElu = performance.eventLoopUtilization();
    return Math.max(total > 0 ? busy / total : 0, elu.utilization);
  };
}

/** Reads the load on a timer that does not keep the process alive, and hands each new factor to `apply`. */
export class AdaptiveScaler {
  factor = 1;
  load = 0;

  constructor(
    readonly options: AdaptiveOptions,
    private readonly readLoad: () => number,
    private readonly apply: (factor: number) => void,
  ) {}

  /** One reading (the timer's; tests call it with an injected load). */
  check(): number {
    this.load = this.readLoad();
    const f = factorFor(this.load, this.options);
    if (f !== this.factor) {
      this.factor = f;
      this.apply(f);
    }
    return f;
  }

  start(): () => void {
    const timer = setInterval(() => this.check(), this.options.checkIntervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }
}
