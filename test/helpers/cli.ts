import { spawn, type ChildProcess } from 'node:child_process';
import { AsyncLocalStorage } from 'node:async_hooks';
import { createInterface } from 'node:readline';
import { killOnExit } from './procs.js';

export const BIN = new URL('../../bin/rivven', import.meta.url).pathname;

/** The environment a person's shell would give: without the test runner's loader hooks or RIVVEN_* settings. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'NODE_OPTIONS' || k.startsWith('RIVVEN_') || k.startsWith('TAP') || k.startsWith('_TAPJS')) continue;
    env[k] = v;
  }
  // Servers started by tests must not contend for the default metrics port.
  return { ...env, RIVVEN_METRICS_PORT: '0', ...extra };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI to completion. */
export function run(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<RunResult> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, env: cleanEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

export interface Served {
  child: ChildProcess;
  port: number;
  logs: Record<string, unknown>[];
  exited: Promise<number | null>;
}

/** Runs the real `bin/rivven serve` on port 0 and learns its port from the start log line. */
export function serve(args: string[], cwd: string, opts: { env?: Record<string, string>; wrapper?: string[] } = {}): Promise<Served> {
  // `wrapper` runs the server under another command, e.g. prlimit to give it a small open-file limit.
  const [cmd, ...pre] = [...(opts.wrapper ?? []), process.execPath];
  const child = spawn(cmd!, [...pre, BIN, 'serve', '--port', '0', ...args], {
    cwd,
    env: cleanEnv(opts.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killOnExit(child);
  const logs: Record<string, unknown>[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      logs.push(entry);
      if (entry.msg === 'rivven listening') resolve({ child, port: Number(String(entry.address).split(':').pop()), logs, exited });
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    void exited.then((code) => reject(new Error(`rivven serve exited ${code} before listening: ${stderr}`)));
  });
}

type Write = typeof process.stdout.write;
const capture = new AsyncLocalStorage<{ stdout: string; stderr: string }>();
let queue: Promise<unknown> = Promise.resolve();

/** Routes a stream's writes made inside a `runInProcess` call to that call's buffer; every other write passes. */
function routeWrites(stream: NodeJS.WriteStream, name: 'stdout' | 'stderr'): void {
  const original = stream.write.bind(stream) as Write;
  stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const out = capture.getStore();
    if (out === undefined) return (original as (...a: unknown[]) => boolean)(chunk, ...rest);
    out[name] += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    const done = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    if (done) queueMicrotask(done);
    return true;
  }) as Write;
}
let routed = false;

/**
 * Runs a command line in this process: the same commander program and error handling as `bin/rivven`, with
 * its output and exit code captured, without a process start per case. `env` is what the command reads of the
 * environment (no RIVVEN_* from outside). Calls run one at a time: the exit code and environment are the
 * process's own.
 */
export function runInProcess(args: string[], opts: { env?: Record<string, string> } = {}): Promise<RunResult> {
  if (!routed) {
    routeWrites(process.stdout, 'stdout');
    routeWrites(process.stderr, 'stderr');
    routed = true;
  }
  const next = queue.then(async () => {
    const { runCli } = await import('../../src/cli/main.js');
    const saved = { ...process.env };
    const savedCode = process.exitCode;
    for (const k of Object.keys(process.env)) if (k.startsWith('RIVVEN_')) delete process.env[k];
    Object.assign(process.env, opts.env);
    process.exitCode = undefined;
    const out = { stdout: '', stderr: '' };
    try {
      await capture.run(out, () => runCli([process.execPath, BIN, ...args]));
      return { code: process.exitCode ?? 0, ...out };
    } finally {
      process.exitCode = savedCode;
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });
  queue = next.catch(() => undefined);
  return next;
}
