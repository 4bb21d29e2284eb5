/**
 * The timings the tests once asserted (test/ asserts behaviour only; how long it took is measured here, printed,
 * never a pass/fail bound), each a median or p99 over real processes:
 *   record_p99_ms          RecordRequest p99 over 3 fleet sidecar processes while their Redis is SIGSTOPped (a
 *                          call that waited on it would take command_timeout_ms, 100 ms)
 *   alter_spread_ms        an AlterQuotas on one of 3 sidecar processes until both others apply it (was "< 1 s")
 *   alter_refused_ms       an AlterQuotas against a SIGSTOPped Redis until STORAGE_ERROR (was "< 1 s")
 *   broker_slowest_ms      the slowest of 1000 BrokerQuotas calls (deadline 25 ms) with the sidecar SIGSTOPped
 *                          (was "< 1000 ms"; before the deadline every call took 5001 ms)
 *   serve_no_redis_ms      `rivven serve` with Redis unreachable until it exits 1 (was "< 5 s")
 *   headers_timeout_ms     an HTTP client trickling headers to /healthz (idle timeout 300 ms) until closed (was "< 5 s")
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { BrokerQuotas } from '../src/client/broker-quotas.js';
import { QuotaClient } from '../src/client/quota-client.js';
import { HealthServer } from '../src/observability/http.js';
import { freeze, type Proc, startRedis, startSidecar } from '../test/helpers/procs.js';

const ROOT = new URL('../', import.meta.url).pathname;
const exec = promisify(execFile);
const ms = (t0: number): number => Math.round((performance.now() - t0) * 100) / 100;
const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

async function until(cond: () => Promise<boolean>): Promise<void> {
  while (!(await cond())) await new Promise((r) => setTimeout(r, 2));
}

async function fleetOfThree(redis: Proc): Promise<{ procs: Proc[]; clients: QuotaClient[]; stop(): Promise<void> }> {
  const env = {
    RIVVEN_STORAGE_BACKEND: 'redis',
    RIVVEN_STORAGE_REDIS_URL: `redis://127.0.0.1:${redis.port}/0`,
    RIVVEN_FLEET_ENABLED: 'true',
    RIVVEN_QUOTAS_DEFAULTS_REQUEST_RATE: '100',
  };
  const procs = await Promise.all([0, 1, 2].map(() => startSidecar(env)));
  const clients = await Promise.all(procs.map((p) => QuotaClient.connect({ port: p.port })));
  return {
    procs,
    clients,
    stop: async () => {
      await Promise.all(clients.map((c) => c.close()));
      await Promise.all(procs.map((p) => p.stop()));
    },
  };
}

export async function outage() {
  const result: Record<string, number> = {};
  const redis = await startRedis();
  const fleet = await fleetOfThree(redis);
  try {
    const [a, b, c] = fleet.clients as [QuotaClient, QuotaClient, QuotaClient];
    const spread: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await a.alterQuotas([{ entity: [['user', `spread-${i}`]], quota_key: 'request_rate', quota_value: 42 }]);
      const seen = async (x: QuotaClient) => (await x.describeQuotas([['user', `spread-${i}`]]))[0]?.quotas.request_rate === 42;
      await until(async () => (await seen(b)) && (await seen(c)));
      spread.push(ms(t0));
    }
    result.alter_spread_ms = pct(spread, 0.5);

    freeze(redis.child);
    const latencies: number[] = [];
    for (let i = 0; i < 1500; i++) {
      const t0 = performance.now();
      await fleet.clients[i % 3]!.recordRequest({ user: 'through-the-outage' });
      latencies.push(ms(t0));
    }
    result.record_p99_ms = pct(latencies, 0.99);
    const t0 = performance.now();
    await a.alterQuotas([{ entity: [['user', 'during']], quota_key: 'request_rate', quota_value: 1 }]).catch(() => undefined);
    result.alter_refused_ms = ms(t0);
  } finally {
    redis.child.kill('SIGCONT');
    await fleet.stop();
    await redis.stop();
  }

  const sidecar = await startSidecar();
  const client = await QuotaClient.connect({ port: sidecar.port, initialBackoffMs: 10, maxBackoffMs: 50 });
  const broker = new BrokerQuotas(client, { recordDeadlineMs: 25, breaker: { failureThreshold: 5, resetTimeoutMs: 50 } });
  try {
    freeze(sidecar.child);
    let slowest = 0;
    for (let i = 0; i < 1000; i += 10) {
      await Promise.all(
        Array.from({ length: 10 }, async (_, j) => {
          const t1 = performance.now();
          await broker.produce(`u${(i + j) % 64}`, 'app', 1);
          slowest = Math.max(slowest, ms(t1));
        }),
      );
    }
    result.broker_slowest_ms = slowest;
  } finally {
    sidecar.child.kill('SIGCONT');
    await client.close();
    await sidecar.stop();
  }

  const t2 = performance.now();
  await exec(process.execPath, [join(ROOT, 'bin/rivven'), 'serve', '--port', '0'], {
    cwd: mkdtempSync(join(tmpdir(), 'rivven-bench-')),
    env: {
      ...process.env,
      NODE_OPTIONS: '',
      RIVVEN_METRICS_PORT: '0',
      RIVVEN_STORAGE_BACKEND: 'redis',
      RIVVEN_STORAGE_REDIS_URL: 'redis://127.0.0.1:1/0',
      RIVVEN_FLEET_ENABLED: 'true',
    },
  }).catch(() => undefined);
  result.serve_no_redis_ms = ms(t2);

  const h = new HealthServer(new Registry(), () => true, { idleTimeoutMs: 300 });
  const { port } = await h.listen('127.0.0.1', 0);
  try {
    const socket = net.connect(port, '127.0.0.1').resume();
    socket.on('error', () => undefined);
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    const trickle = setInterval(() => socket.write('X-A: b\r\n'), 100);
    const t3 = performance.now();
    await new Promise((resolve) => socket.once('close', resolve));
    result.headers_timeout_ms = ms(t3);
    clearInterval(trickle);
  } finally {
    await h.close();
  }
  return result;
}
