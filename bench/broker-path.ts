/**
 * The quota check as a broker sees it: one process, one connection, 256 concurrent callers each awaiting a
 * check and making the next, 64 principals. Against:
 *   rivven     BrokerQuotas.request over one QuotaClient to the sidecar (`node bin/rivven serve`)
 *   rlf-redis  rate-limiter-flexible's RateLimiterRedis.consume on ioredis, against a private redis-server
 *   incr       ioredis with auto-pipelining doing INCR (a floor: no quota logic at all)
 * and the outage case: the sidecar SIGSTOPped, resumed, SIGKILLed and restarted while the callers keep going.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { BrokerQuotas } from '../src/client/broker-quotas.js';
import { QuotaClient } from '../src/client/quota-client.js';
import { freePort, startRedis } from '../test/helpers/procs.js';

const ROOT = new URL('../', import.meta.url).pathname;
const CALLERS = 256;
const PRINCIPALS = 64;

function percentile(sorted: Float64Array, p: number): number {
  return sorted.length === 0 ? 0 : Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]! * 100) / 100;
}

/**
 * Runs CALLERS loops of `check` for `ms`; per-call latencies in ms. With `onTick` (the outage run) each caller
 * yields to the event loop between calls, as a broker's calls arrive from socket events: a check answered at
 * once (breaker open) must not let 256 loops spin on microtasks and starve every timer.
 */
async function drive(check: (principal: number) => Promise<unknown>, ms: number, onTick?: (elapsed: number) => void) {
  const lat: number[] = [];
  const times: number[] = [];
  const start = performance.now();
  const end = start + ms;
  let ticker: NodeJS.Timeout | undefined;
  if (onTick) ticker = setInterval(() => onTick(performance.now() - start), 50);
  await Promise.all(
    Array.from({ length: CALLERS }, async (_, c) => {
      let i = c;
      while (performance.now() < end) {
        const t0 = performance.now();
        await check(i++ % PRINCIPALS);
        const t1 = performance.now();
        lat.push(t1 - t0);
        times.push(t1 - start);
        if (onTick) await new Promise((r) => setImmediate(r));
      }
    }),
  );
  clearInterval(ticker);
  return { lat, times, seconds: (performance.now() - start) / 1000 };
}

function summary(lat: number[], seconds: number) {
  const sorted = Float64Array.from(lat).sort();
  return {
    checks_per_sec: Math.round(lat.length / seconds),
    p50_ms: percentile(sorted, 0.5),
    p99_ms: percentile(sorted, 0.99),
    max_ms: percentile(sorted, 1),
  };
}

async function sidecar(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [join(ROOT, 'bin/rivven'), 'serve', '--port', String(port), '--log-level', 'warn'], {
    cwd: mkdtempSync(join(tmpdir(), 'rivven-broker-path-')),
    env: { ...process.env, NODE_OPTIONS: '', RIVVEN_METRICS_PORT: '0', RIVVEN_QUOTAS_DEFAULTS_REQUEST_RATE: '1000000000' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; i < 200; i++) {
    const c = await QuotaClient.connect({ port, connectAttempts: 1 }).catch(() => null);
    if (c) {
      await c.close();
      return child;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the sidecar did not start');
}

export async function brokerPath(measureMs = 4000) {
  const port = await freePort();
  let child = await sidecar(port);
  const client = await QuotaClient.connect({ port, initialBackoffMs: 20, maxBackoffMs: 200 });
  const broker = new BrokerQuotas(client);
  const names = Array.from({ length: PRINCIPALS }, (_, i) => `tenant-${i}`);
  const results: Record<string, unknown> = {};
  try {
    await drive((p) => broker.request(names[p]!, 'app'), 500);
    const r = await drive((p) => broker.request(names[p]!, 'app'), measureMs);
    results.rivven = { ...summary(r.lat, r.seconds), failed_open: broker.failures };

    const redis = await startRedis();
    const io = new Redis({ port: redis.port, enableAutoPipelining: true, lazyConnect: false });
    try {
      const limiter = new RateLimiterRedis({ storeClient: io, points: 1e9, duration: 1, keyPrefix: 'bench' });
      await drive((p) => limiter.consume(names[p]!, 1), 500);
      const l = await drive((p) => limiter.consume(names[p]!, 1), measureMs);
      results.rlf_redis = summary(l.lat, l.seconds);
      await drive((p) => io.incr(names[p]!), 500);
      const n = await drive((p) => io.incr(names[p]!), measureMs);
      results.ioredis_incr = summary(n.lat, n.seconds);
    } finally {
      io.disconnect();
      await redis.stop();
    }
    const rv = results.rivven as { checks_per_sec: number };
    results.rivven_vs_rlf_redis =
      Math.round((rv.checks_per_sec / (results.rlf_redis as { checks_per_sec: number }).checks_per_sec) * 100) / 100;
    results.rivven_vs_ioredis_incr =
      Math.round((rv.checks_per_sec / (results.ioredis_incr as { checks_per_sec: number }).checks_per_sec) * 100) / 100;

    // The outage: 0-1 s normal, 1-2 s SIGSTOP, 2-3 s resumed, 3 s SIGKILL, restarted at 4 s, up to 6 s.
    const failuresBefore = broker.failures;
    const events: string[] = [];
    let stage = 0;
    let restarting: Promise<void> | undefined;
    const o = await drive(
      (p) => broker.request(names[p]!, 'app'),
      6000,
      (elapsed) => {
        const step = (next: number, signal: NodeJS.Signals, name: string) => {
          stage = next;
          child.kill(signal);
          events.push(name);
        };
        if (stage === 0 && elapsed > 1000) step(1, 'SIGSTOP', 'stop');
        if (stage === 1 && elapsed > 2000) step(2, 'SIGCONT', 'cont');
        if (stage === 2 && elapsed > 3000) step(3, 'SIGKILL', 'kill');
        if (stage === 3 && elapsed > 4000) {
          stage = 4;
          events.push('restart');
          restarting = sidecar(port).then((c) => {
            child = c;
          });
        }
      },
    );
    await restarting;
    const window = (from: number, to: number) => {
      const lat = o.lat.filter((_, i) => o.times[i]! >= from && o.times[i]! < to);
      return summary(lat, (to - from) / 1000);
    };
    results.outage = {
      events,
      breaker_opened: broker.breaker.opened,
      failed_open: broker.failures - failuresBefore,
      up: window(0, 1000),
      stopped: window(1000, 2000),
      resumed: window(2200, 3000),
      killed: window(3000, 4000),
      restarted_last_second: window(5000, 6000),
      state_at_end: broker.breaker.state,
    };
    return results;
  } finally {
    await client.close();
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(JSON.stringify(await brokerPath(), null, 1));
