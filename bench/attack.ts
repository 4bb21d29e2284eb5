/**
 * The hardening probes, rerun against a real sidecar process on its default limits: what one unauthenticated
 * client can make it hold. Each probe reports the sidecar's RSS growth (from /proc) and whether it survived.
 * Run: npm run build && node --import tsx bench/attack.ts (every probe of bench/attacks/ too; about 2 minutes)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { encodeFrame } from '../src/protocol/codec.js';

const ROOT = new URL('../', import.meta.url).pathname;

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(m![1]) / 1024);
}

async function sidecar(dir: string) {
  const child = spawn(process.execPath, [join(ROOT, 'bin/rivven'), 'serve', '--port', '0', '--data-dir', join(dir, 'data')], {
    cwd: dir,
    env: { ...process.env, NODE_OPTIONS: '', RIVVEN_METRICS_PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve) =>
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const e = JSON.parse(line) as Record<string, string>;
      if (e.msg !== 'rivven listening') return;
      metricsPort = Number(new URL(e.metrics!).port);
      resolve(Number(e.address!.split(':').pop()));
    }),
  );
  return { child, port, alive: () => child.exitCode === null && child.signalCode === null };
}

const connect = (port: number): Promise<net.Socket> =>
  new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
let metricsPort = 0;
async function metric(_: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function attack() {
  const dir = mkdtempSync(join(tmpdir(), 'rivven-attack-'));
  const s = await sidecar(dir);
  const results: Record<string, unknown>[] = [];
  const probe = async (name: string, fn: () => Promise<string>) => {
    const before = rssMiB(s.child.pid!);
    const detail = await fn();
    await settle(500);
    results.push({ probe: name, rss_before_mib: before, rss_after_mib: rssMiB(s.child.pid!), alive: s.alive(), detail });
  };
  const admin = await connect(s.port);
  admin.write(
    encodeFrame(1, {
      type: 'AlterQuotas',
      alterations: Array.from({ length: 200 }, (_, i) => ({ entity: [['user', `user-${i}`]], quota_key: 'request_rate', quota_value: 1 })),
    }),
  );
  await settle(300);

  await probe('reply amplification: 64 KB of DescribeQuotas on a socket that never reads (200 quotas)', async () => {
    const sock = await connect(s.port);
    sock.pause();
    const one = encodeFrame(1, { type: 'DescribeQuotas' });
    sock.write(Buffer.concat(Array.from({ length: Math.floor(65536 / one.length) }, () => one)));
    await settle(2000);
    sock.destroy();
    return `${Math.floor(65536 / one.length)} requests`;
  });
  await probe('Hello with a 1 MB client_name on 500 connections', async () => {
    const socks = await Promise.all(Array.from({ length: 500 }, () => connect(s.port)));
    const hello = encodeFrame(1, { type: 'Hello', protocol_version: 1, client_name: 'n'.repeat(1_000_000) });
    socks.forEach((k) => {
      k.write(hello);
    });
    await settle(2000);
    socks.forEach((k) => {
      k.destroy();
    });
    return 'each refused with INVALID_ENTITY';
  });
  await probe('audit fill: 80 alterations from a connection whose client_name is 1 MB', async () => {
    const sock = await connect(s.port);
    sock.write(encodeFrame(1, { type: 'Hello', protocol_version: 1, client_name: 'n'.repeat(1_000_000) }));
    sock.write(
      encodeFrame(2, {
        type: 'AlterQuotas',
        alterations: Array.from({ length: 80 }, (_, i) => ({ entity: [['user', `a${i}`]], quota_key: 'request_rate', quota_value: 1 })),
      }),
    );
    await settle(1000);
    sock.destroy();
    return `audit.log is ${statSync(join(dir, 'data/audit.log')).size} bytes`;
  });
  await probe('1000 connections each holding a 1 MiB frame less one byte', async () => {
    const socks = await Promise.all(Array.from({ length: 1000 }, () => connect(s.port)));
    const head = Buffer.alloc(8);
    head.writeUInt32BE(1024 * 1024, 0);
    const body = Buffer.alloc(1024 * 1024 - 5);
    let closed = 0;
    socks.forEach((k) => {
      k.on('close', () => closed++);
      k.on('error', () => undefined);
      k.resume(); // read, so the server's close is seen
      k.write(Buffer.concat([head, body]));
    });
    // Until every byte is written (1 GB through loopback) or the server has closed the socket.
    for (let i = 0; i < 600 && socks.some((k) => !k.destroyed && k.writableLength > 0); i++) await settle(100);
    await settle(1500);
    const held = await metric(s.port + 0, 'rivven_partial_frame_bytes');
    socks.forEach((k) => {
      k.destroy();
    });
    return `${closed} of 1000 refused with OVERLOADED; ${Math.round(held / 2 ** 20)} MiB of unfinished frames held (server.max_partial_frame_bytes 256 MiB)`;
  });
  admin.destroy();
  s.child.kill('SIGTERM');
  const code = await new Promise((r) => s.child.once('exit', r));
  return { results, exit_code: code };
}

/**
 * Every attack of rounds two and three: the round-two probes above (held: the sidecar survived with its memory
 * bounded), then each module of bench/attacks/ (each exports `probes()`). Prints one line per probe, held or
 * FAILED, and exits 1 if any failed.
 */
async function all(): Promise<boolean> {
  let ok = true;
  const round2 = await attack();
  for (const r of round2.results) {
    const held = r.alive === true && Number(r.rss_after_mib) - Number(r.rss_before_mib) < 512;
    ok &&= held;
    console.log(`${held ? 'held  ' : 'FAILED'} ${r.probe}\n       ${r.detail}; RSS ${r.rss_before_mib} -> ${r.rss_after_mib} MiB`);
  }
  console.log(`${round2.exit_code === 0 ? 'held  ' : 'FAILED'} SIGTERM after the round-two probes\n       exit code ${round2.exit_code}`);
  ok &&= round2.exit_code === 0;
  const dir = join(ROOT, 'bench/attacks');
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .sort()) {
    const mod = (await import(join(dir, file))) as { probes(): Promise<{ name: string; held: boolean; detail: string }[]> };
    for (const r of await mod.probes()) {
      ok &&= r.held;
      console.log(`${r.held ? 'held  ' : 'FAILED'} ${r.name}\n       ${r.detail}`);
    }
  }
  return ok;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = (await all()) ? 0 : 1;
