/**
 * Wire throughput and latency: the same load generator (its own process, pre-encoded frames) against the
 * sidecar (RecordRequest) and a private redis-server (INCR), N=50 connections, P in flight each.
 */
import { loadgen, startRedis, startSidecar } from '../test/helpers/procs.js';

export interface WireRow {
  pipeline: number;
  sidecar: { ops_per_sec: number; p50_us: number; p99_us: number };
  redis: { ops_per_sec: number; p50_us: number; p99_us: number };
  ratio: number;
}

type Run = Awaited<ReturnType<typeof loadgen>>;

/** The run with the median throughput (with its own latencies), of an odd number of runs. */
const median = (runs: Run[]): Run => [...runs].sort((a, b) => a.ops_per_sec - b.ops_per_sec)[runs.length >> 1]!;

/**
 * Loopback benchmarks on a shared 2-core machine vary by 20-40% run to run, so each cell is the median of
 * `repeats` runs, each on a fresh server, alternating which server goes first.
 */
export async function wire(
  opts: { connections?: number; pipelines?: number[]; warmupMs?: number; measureMs?: number; repeats?: number } = {},
): Promise<WireRow[]> {
  const n = opts.connections ?? 50;
  const warm = opts.warmupMs ?? 1500;
  const measure = opts.measureMs ?? 3000;
  const rows: WireRow[] = [];
  for (const p of opts.pipelines ?? [1, 16, 64]) {
    const sidecarRuns: Run[] = [];
    const redisRuns: Run[] = [];
    const once = async (which: 'rivven' | 'resp') => {
      const server = which === 'rivven' ? await startSidecar() : await startRedis();
      (which === 'rivven' ? sidecarRuns : redisRuns).push(await loadgen(which, server.port, n, p, warm, measure));
      await server.stop();
    };
    for (let i = 0; i < (opts.repeats ?? 3); i++) {
      const order: ('rivven' | 'resp')[] = i % 2 === 0 ? ['rivven', 'resp'] : ['resp', 'rivven'];
      for (const which of order) await once(which);
    }
    const s = median(sidecarRuns);
    const r = median(redisRuns);
    const pick = ({ ops_per_sec, p50_us, p99_us }: Run) => ({ ops_per_sec, p50_us, p99_us });
    rows.push({ pipeline: p, sidecar: pick(s), redis: pick(r), ratio: Math.round((s.ops_per_sec / r.ops_per_sec) * 100) / 100 });
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await wire(), null, 1));
}
