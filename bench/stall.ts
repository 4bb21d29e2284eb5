/**
 * Does one request stall everyone else? A real sidecar process is loaded with 1,000,000 buckets and 100,000
 * configured entities; then, for the heaviest request of each type, another connection sends Pings back to back
 * and we report the worst and p99 Ping round trip while the heavy request runs, and the heavy request's own
 * time. Budget: no request may hold the event loop for more than 50 ms.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { QuotaClient } from '../src/client/quota-client.js';

const ROOT = new URL('../', import.meta.url).pathname;
const BUCKETS = 1_000_000;
const ENTITIES = 100_000;

async function startSidecar(): Promise<{ port: number; metricsPort: number; stop: () => void }> {
  const child = spawn(process.execPath, [join(ROOT, 'bin/rivven'), 'serve', '--port', '0', '--log-level', 'info'], {
    cwd: mkdtempSync(join(tmpdir(), 'rivven-stall-')),
    env: {
      ...process.env,
      NODE_OPTIONS: '',
      RIVVEN_METRICS_PORT: '0',
      RIVVEN_QUOTAS_DEFAULTS_REQUEST_RATE: '1000000',
      RIVVEN_QUOTAS_MAX_BUCKETS: String(BUCKETS * 2),
      RIVVEN_STORAGE_MAX_ENTITIES: String(ENTITIES * 2),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, string>;
      if (entry.msg !== 'rivven listening') return;
      resolve({
        port: Number(entry.address!.split(':').pop()),
        metricsPort: Number(new URL(entry.metrics!).port),
        stop: () => child.kill('SIGKILL'),
      });
    });
  });
}

/**
 * Another broker: a separate process (so decoding the heavy replies here cannot delay it) that Pings back to
 * back on its own connection between "start" and "stop" on its stdin, then prints the round trips in ms.
 */
function startPinger(port: number) {
  const code = `
    const { QuotaClient } = await import(${JSON.stringify(join(ROOT, 'src/client/quota-client.ts'))});
    const c = await QuotaClient.connect({ port: ${port} });
    let running = false, rtts = [], loop = Promise.resolve();
    const run = async () => { while (running) { const t0 = performance.now(); await c.ping(); rtts.push(performance.now() - t0); } };
    process.stdout.write('ready\\n');
    for await (const line of (await import('node:readline')).createInterface({ input: process.stdin })) {
      if (line === 'start') { rtts = []; running = true; loop = run(); process.stdout.write('started\\n'); }
      if (line === 'stop') { running = false; await loop; process.stdout.write(JSON.stringify(rtts) + '\\n'); }
      if (line === 'exit') { await c.close(); process.exit(0); }
    }`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: '' },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => String((await lines.next()).value);
  const say = (cmd: string) => child.stdin!.write(`${cmd}\n`);
  return {
    ready: next(),
    start: async () => {
      say('start');
      await next();
    },
    stop: async (): Promise<number[]> => {
      say('stop');
      return JSON.parse(await next()) as number[];
    },
    exit: () => say('exit'),
  };
}

const round = (n: number): number => Math.round(n * 10) / 10;

export async function stall() {
  const sidecar = await startSidecar();
  const admin = await QuotaClient.connect({ port: sidecar.port, requestTimeoutMs: 600_000 });
  const observer = startPinger(sidecar.port);
  await observer.ready;
  try {
    for (let i = 0; i < BUCKETS; i += 10_000) {
      await Promise.all(Array.from({ length: 10_000 }, (_, j) => admin.recordRequest({ user: `tenant-${i + j}`, clientId: 'app' })));
    }
    for (let i = 0; i < ENTITIES; i += 1000) {
      await admin.alterQuotas(
        Array.from({ length: 1000 }, (_, j) => ({
          entity: [['user', `configured-${i + j}`]],
          quota_key: 'request_rate' as const,
          quota_value: 1000 + j,
        })),
      );
    }
    const components = Array.from({ length: 1000 }, (_, i) => ['user', `tenant-${i * 997}`] as ['user', string]);
    const scrape = () =>
      new Promise<void>((resolve, reject) =>
        http.get({ port: sidecar.metricsPort, path: '/metrics' }, (res) => res.resume().on('end', () => resolve())).on('error', reject),
      );
    let alterRound = 0;
    const cases: [string, () => Promise<unknown>][] = [
      ['DescribeUsage top=10000, 1M buckets', () => admin.describeUsage({ top: 10_000 })],
      ['DescribeUsage top=10000, 1000 filters', () => admin.describeUsage({ top: 10_000, entities: components })],
      ['DescribeQuotas, all 100k entities', () => admin.describeQuotas()],
      ['DescribeQuotas, 1000 filters', () => admin.describeQuotas(components)],
      [
        'AlterQuotas, 1000 alterations at 100k entities',
        () =>
          admin.alterQuotas(
            Array.from({ length: 1000 }, (_, j) => ({
              entity: [['user', `configured-${j}`]],
              quota_key: 'request_rate' as const,
              quota_value: 5000 + alterRound++,
            })),
          ),
      ],
      ['GET /metrics, 1M buckets', scrape],
      ['ResetUsage of every user, 1M buckets', () => admin.resetUsage([['user', null]])],
      ['DescribeViolations, limit 10000', () => admin.describeViolations({ limit: 10_000 })],
    ];
    const results = [];
    for (const [name, heavy] of cases) {
      await new Promise((r) => setTimeout(r, 200));
      await observer.start();
      await new Promise((r) => setTimeout(r, 20));
      const t0 = performance.now();
      await heavy();
      const took = performance.now() - t0;
      const rtts = (await observer.stop()).sort((a, b) => a - b);
      results.push({
        request: name,
        request_ms: round(took),
        pings: rtts.length,
        ping_p99_ms: round(rtts[Math.floor(rtts.length * 0.99)] ?? 0),
        ping_max_ms: round(rtts[rtts.length - 1] ?? 0),
      });
    }
    return results;
  } finally {
    await admin.close();
    observer.exit();
    sidecar.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(JSON.stringify(await stall(), null, 1));
