/**
 * Wire throughput and latency: the same load generator (its own process, pre-encoded frames) against the
 * sidecar (RecordRequest) and a private redis-server (INCR), N=50 connections, P in flight each.
 */
import { loadgen, startRedis, startSidecar } from './lib/procs.js';

export interface WireRow {
  pipeline: number;
  sidecar: { ops_per_sec: number; p50_us: number; p99_us: number };
  redis: { ops_per_sec: number; p50_us: number; p99_us: number };
  ratio: number;
}

export async function wire(opts: { connections?: number; pipelines?: number[]; warmupMs?: number; measureMs?: number } = {}): Promise<WireRow[]> {
  const n = opts.connections ?? 50;
  const rows: WireRow[] = [];
  for (const p of opts.pipelines ?? [1, 16, 64]) {
    // Fresh servers per row, alternating which goes first, so neither gets a warmer machine.
    const sidecar = await startSidecar();
    const s = await loadgen('rivven', sidecar.port, n, p, opts.warmupMs ?? 1500, opts.measureMs ?? 4000);
    await sidecar.stop();
    const redis = await startRedis();
    const r = await loadgen('resp', redis.port, n, p, opts.warmupMs ?? 1500, opts.measureMs ?? 4000);
    await redis.stop();
    const pick = ({ ops_per_sec, p50_us, p99_us }: typeof s) => ({ ops_per_sec, p50_us, p99_us });
    rows.push({ pipeline: p, sidecar: pick(s), redis: pick(r), ratio: Math.round((s.ops_per_sec / r.ops_per_sec) * 100) / 100 });
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await wire(), null, 1));
}
