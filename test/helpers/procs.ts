import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nothing listens on ${port}`);
}

export interface Proc {
  port: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

function handle(child: ChildProcess, port: number): Proc {
  return {
    port,
    child,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** The built sidecar (`node bin/rivven serve`), quotas high enough that nothing is throttled: every call still
 * resolves its limit and records into a tracked bucket. */
export async function startSidecar(env: Record<string, string> = {}): Promise<Proc> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(ROOT, 'bin/rivven'), 'serve', '--port', String(port), '--log-level', 'warn'], {
    cwd: mkdtempSync(join(tmpdir(), 'rivven-bench-')),
    env: { ...process.env, NODE_OPTIONS: '', RIVVEN_METRICS_PORT: '0', RIVVEN_QUOTAS_DEFAULTS_REQUEST_RATE: '1000000000000', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitForPort(port);
  return handle(child, port);
}

/** A private redis-server on a free port (or `port`, to restart one), no persistence; `args` are added. */
export async function startRedis(port?: number, args: string[] = []): Promise<Proc> {
  port ??= await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args], {
    stdio: 'ignore',
    cwd: mkdtempSync(join(tmpdir(), 'rivven-redis-')),
  });
  await waitForPort(port);
  return handle(child, port);
}

export async function redisVersion(): Promise<string> {
  const { stdout } = await run('redis-server', ['--version']);
  return /v=(\S+)/.exec(stdout)?.[1] ?? stdout.trim();
}

/** Runs the load generator in its own process and returns its JSON line. */
export async function loadgen(
  proto: 'rivven' | 'resp',
  port: number,
  n: number,
  p: number,
  warmupMs: number,
  measureMs: number,
  env: Record<string, string> = {},
) {
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'bench/loadgen.ts'), proto, String(port), String(n), String(p), String(warmupMs), String(measureMs)],
    {
      env: { ...process.env, NODE_OPTIONS: '', ...env },
    },
  );
  return JSON.parse(stdout) as { ops_per_sec: number; p50_us: number; p99_us: number; replies: number };
}

/** SIGSTOPs a process and waits (briefly, synchronously) until it is really stopped: a signal lands asynchronously. */
export function freeze(child: ChildProcess): void {
  child.kill('SIGSTOP');
  const stat = `/proc/${child.pid}/stat`;
  for (let i = 0; i < 100_000 && readFileSync(stat, 'utf8').split(') ')[1]![0] !== 'T'; i++);
}

/** A local Redis Cluster of three masters (no replicas) on free ports, made with `redis-cli --cluster create`. */
export async function startRedisCluster(): Promise<{ nodes: Proc[]; seeds: string[]; stop(): Promise<void> }> {
  const nodes: Proc[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    nodes.push(await startRedis(port, ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`]));
  }
  const seeds = nodes.map((n) => `127.0.0.1:${n.port}`);
  await run('redis-cli', ['--cluster', 'create', ...seeds, '--cluster-replicas', '0', '--cluster-yes']);
  // Every node must agree the slots are covered before a client can route by them.
  for (let i = 0; i < 200; i++) {
    const states = await Promise.all(nodes.map((n) => run('redis-cli', ['-p', String(n.port), 'CLUSTER', 'INFO'])));
    if (states.every((s) => s.stdout.includes('cluster_state:ok'))) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { nodes, seeds, stop: async () => void (await Promise.all(nodes.map((n) => n.stop()))) };
}

/** A Redis Sentinel watching the primary on `primaryPort` under `name` (quorum 1), on a free port. */
export async function startSentinel(primaryPort: number, name = 'rivven-primary'): Promise<Proc> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'rivven-sentinel-'));
  const conf = join(dir, 'sentinel.conf');
  // Quick to declare the primary down and fail over, for tests; quorum 1 (one sentinel).
  writeFileSync(
    conf,
    `port ${port}\nbind 127.0.0.1\nsentinel monitor ${name} 127.0.0.1 ${primaryPort} 1\n` +
      `sentinel down-after-milliseconds ${name} 500\nsentinel failover-timeout ${name} 2000\n`,
  );
  const child = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore', cwd: dir });
  await waitForPort(port);
  return handle(child, port);
}
