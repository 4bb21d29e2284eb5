import os from 'node:os';
import type { AdaptiveOptions } from './options.js';

/** What the host is using, each a fraction 0..1. */
export interface HostLoad {
  cpu: number;
  memory: number;
}

/** The scale factor for one reading: 1 up to the threshold, then linearly down to minFactor at full use. */
export function scaleFor(use: number, threshold: number, minFactor: number): number {
  if (!(use > threshold)) return 1;
  const over = Math.min(1, (use - threshold) / (1 - threshold));
  return 1 - over * (1 - minFactor);
}

/** The scale factor for a CPU load (kept for the single-reading case). */
export const factorFor = (load: number, o: Pick<AdaptiveOptions, 'cpuThreshold' | 'minFactor'>): number =>
  scaleFor(load, o.cpuThreshold, o.minFactor);

/** The factor for a host reading: the smaller of the CPU's and the memory's. */
export const factorForHost = (load: HostLoad, o: Omit<AdaptiveOptions, 'checkIntervalMs'>): number =>
  Math.min(scaleFor(load.cpu, o.cpuThreshold, o.minFactor), scaleFor(load.memory, o.memoryThreshold, o.minFactor));

/** Where a host reading comes from (tests inject an idle or a busy host). */
export interface HostSources {
  cpus: () => os.CpuInfo[];
  /** Memory in use, 0..1. */
  memory: () => number;
}

const HOST: HostSources = {
  cpus: () => os.cpus(),
  // freemem is MemAvailable on Linux: page cache that can be dropped counts as free.
  memory: () => 1 - os.freemem() / os.totalmem(),
};

/**
 * The host's load since the last reading: CPU use of all cores (os.cpus() deltas) and memory in use. Only the
 * host: the sidecar's own event-loop use is not read, because one client flooding it with requests would then
 * lower every tenant's quota (docs/operations.md, load-based adjustment).
 */
export function systemLoad(sources: HostSources = HOST): () => HostLoad {
  let last = sources.cpus();
  return () => {
    const now = sources.cpus();
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
    return { cpu: total > 0 ? busy / total : 0, memory: sources.memory() };
  };
}

/** Reads the load on a timer that does not keep the process alive, and hands each new factor to `apply`. */
export class AdaptiveScaler {
  factor = 1;
  load: HostLoad = { cpu: 0, memory: 0 };

  constructor(
    readonly options: AdaptiveOptions,
    private readonly readLoad: () => HostLoad,
    private readonly apply: (factor: number) => void,
  ) {}

  /** One reading (the timer's; tests call it with an injected load). */
  check(): number {
    this.load = this.readLoad();
    const f = factorForHost(this.load, this.options);
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
