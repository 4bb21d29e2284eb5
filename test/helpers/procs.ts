import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitUntil } from './wait.js';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;

/**
 * A port free a moment ago, for the benches that restart a sidecar on a port they chose. Tests never use it:
 * between its close and the next bind anything may take the port (a sidecar listens on port 0 and says which
 * port it got; a redis-server is started by `startRedis`, which knows when its bind failed).
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts `cmd args(port)` and resolves once a line of its stdout matches `ready` (the process itself says it
 * listens: a connect could reach another process on the port). When `port` is not given, a free one is tried,
 * and another when the bind fails: redis-server cannot listen on port 0 and say which port it got.
 */
async function startListening(
  cmd: string,
  args: (port: number) => string[],
  ready: RegExp,
  cwd: string,
  port?: number,
): Promise<{ child: ChildProcess; port: number }> {
  for (let attempt = 0; ; attempt++) {
    const p = port ?? (await freePort());
    const child = spawn(cmd, args(p), { stdio: ['ignore', 'pipe', 'ignore'], cwd });
    const lines: string[] = [];
    const up = await new Promise<boolean>((resolve) => {
      const rl = createInterface({ input: child.stdout! });
      rl.on('line', (line) => {
        lines.push(line);
        if (ready.test(line)) {
          rl.close();
          child.stdout!.resume(); // read and dropped from now on: a full pipe would stop the process
          resolve(true);
        }
      });
      child.once('exit', () => resolve(false));
    });
    if (up) return { child, port: p };
    const inUse = lines.some((l) => /Address already in use/.test(l));
    if (!inUse || port !== undefined || attempt >= 5) throw new Error(`${cmd} did not start on ${p}: ${lines.slice(-3).join(' | ')}`);
  }
}

export interface Proc {
  port: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Every process started here that is still running: killed when this test process exits, however it exits
 * (a failed teardown, an uncaught error), so no redis-server or sidecar outlives the test file that made it.
 */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Kills `child` when this test process exits, should it still run then. */
export function killOnExit(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
}

function handle(child: ChildProcess, port: number): Proc {
  killOnExit(child);
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

/** The built sidecar (`node bin/rivven serve`) on port 0, quotas high enough that nothing is throttled: every call
 * still resolves its limit and records into a tracked bucket. Its port is read from its start log line. */
export async function startSidecar(env: Record<string, string> = {}): Promise<Proc> {
  const child = spawn(process.execPath, [join(ROOT, 'bin/rivven'), 'serve', '--port', '0', '--log-level', 'info'], {
    cwd: mkdtempSync(join(tmpdir(), 'rivven-bench-')),
    env: { ...process.env, NODE_OPTIONS: '', RIVVEN_METRICS_PORT: '0', RIVVEN_QUOTAS_DEFAULTS_REQUEST_RATE: '1000000000000', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      const entry = JSON.parse(line) as { msg?: string; address?: string };
      if (entry.msg !== 'rivven listening') return;
      rl.close();
      child.stdout!.resume(); // the rest is read and dropped: a full pipe would stop the sidecar
      resolve(Number(String(entry.address).split(':').pop()));
    });
    child.once('exit', (code) => reject(new Error(`the sidecar exited ${code} before listening`)));
  });
  return handle(child, port);
}

/** A private redis-server on a port of its own (or `port`, to restart one), no persistence; `args` are added. */
export async function startRedis(port?: number, args: string[] = []): Promise<Proc> {
  const started = await startListening(
    'redis-server',
    (p) => ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args],
    /Ready to accept connections/,
    mkdtempSync(join(tmpdir(), 'rivven-redis-')),
    port,
  );
  return handle(started.child, started.port);
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

/** A local Redis Cluster of three masters (no replicas), made with `redis-cli --cluster create`. */
export async function startRedisCluster(): Promise<{ nodes: Proc[]; seeds: string[]; stop(): Promise<void> }> {
  const nodes: Proc[] = [];
  // Each node runs in a directory of its own, so its nodes.conf is its own.
  for (let i = 0; i < 3; i++) nodes.push(await startRedis(undefined, ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf']));
  const seeds = nodes.map((n) => `127.0.0.1:${n.port}`);
  await run('redis-cli', ['--cluster', 'create', ...seeds, '--cluster-replicas', '0', '--cluster-yes']);
  // Every node must agree the slots are covered before a client can route by them.
  await waitUntil(
    async () => {
      const states = await Promise.all(nodes.map((n) => run('redis-cli', ['-p', String(n.port), 'CLUSTER', 'INFO'])));
      return states.every((s) => s.stdout.includes('cluster_state:ok'));
    },
    'the cluster to cover every slot',
    { everyMs: 50 },
  );
  return { nodes, seeds, stop: async () => void (await Promise.all(nodes.map((n) => n.stop()))) };
}

/** A Redis Sentinel watching the primary on `primaryPort` under `name` (quorum 1), on a port of its own. */
export async function startSentinel(primaryPort: number, name = 'rivven-primary'): Promise<Proc> {
  const dir = mkdtempSync(join(tmpdir(), 'rivven-sentinel-'));
  const conf = join(dir, 'sentinel.conf');
  const started = await startListening(
    'redis-server',
    (port) => {
      // Quick to declare the primary down and fail over, for tests; quorum 1 (one sentinel). Written for each
      // try: a sentinel rewrites its file.
      writeFileSync(
        conf,
        `port ${port}\nbind 127.0.0.1\nsentinel monitor ${name} 127.0.0.1 ${primaryPort} 1\n` +
          `sentinel down-after-milliseconds ${name} 500\nsentinel failover-timeout ${name} 2000\n`,
      );
      return [conf, '--sentinel'];
    },
    /Sentinel ID is|Ready to accept connections/,
    dir,
  );
  return handle(started.child, started.port);
}
