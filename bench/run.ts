/**
 * `npm run bench`: every scenario, each in its own process (memory needs --expose-gc; none shares a warm JIT
 * with another), a table on stdout, and JSON in bench/results/<scenario>.json plus bench/results/latest.json
 * (every scenario's last result).
 *
 *   npm run bench                  # all scenarios
 *   npm run bench -- wire memory   # some of them
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { textTable as table } from '../src/cli/text-table.js';
import { redisVersion } from '../test/helpers/procs.js';

const run = promisify(execFile);
const ROOT = new URL('../', import.meta.url).pathname;
const RESULTS = join(ROOT, 'bench/results');

const SCENARIOS: Record<string, { file: string; call: string; nodeArgs?: string[] }> = {
  wire: { file: 'wire.ts', call: 'wire' },
  'in-process': { file: 'in-process.ts', call: 'inProcess' },
  memory: { file: 'memory.ts', call: 'memory', nodeArgs: ['--expose-gc'] },
  accuracy: { file: 'accuracy.ts', call: 'accuracy' },
  stall: { file: 'stall.ts', call: 'stall' },
  'broker-path': { file: 'broker-path.ts', call: 'brokerPath' },
  tls: { file: 'tls.ts', call: 'tlsCost' },
  leases: { file: 'leases.ts', call: 'leases' },
  fleet: { file: 'fleet.ts', call: 'fleet' },
  outage: { file: 'outage.ts', call: 'outage' },
};

async function scenario(name: string): Promise<unknown> {
  const s = SCENARIOS[name]!;
  const code = `const m = await import(${JSON.stringify(join(ROOT, 'bench', s.file))}); console.log(JSON.stringify(await m.${s.call}()));`;
  const { stdout } = await run(process.execPath, [...(s.nodeArgs ?? []), '--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: '' },
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

const fmt = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(0)}k` : String(n));

function print(name: string, data: any): void {
  console.log(`\n## ${name}\n`);
  if (name === 'wire') {
    console.log(
      table([
        ['N', 'P', 'rivven ops/s', 'p50', 'p99', 'redis INCR ops/s', 'p50', 'p99', 'rivven/redis'],
        ...data.map((r: any) => [
          '50',
          String(r.pipeline),
          fmt(r.sidecar.ops_per_sec),
          `${r.sidecar.p50_us}us`,
          `${r.sidecar.p99_us}us`,
          fmt(r.redis.ops_per_sec),
          `${r.redis.p50_us}us`,
          `${r.redis.p99_us}us`,
          `${r.ratio}x`,
        ]),
      ]),
    );
  } else if (name === 'in-process') {
    console.log(
      table([
        ['principals', 'rivven ops/s', 'rivven batched clock', 'rate-limiter-flexible', 'ratio', 'ratio batched'],
        ...data.map((r: any) => [
          fmt(r.principals),
          fmt(r.rivven_ops_per_sec),
          fmt(r.rivven_batched_ops_per_sec),
          fmt(r.rlf_ops_per_sec),
          `${r.ratio}x`,
          `${r.ratio_batched}x`,
        ]),
      ]),
    );
  } else if (name === 'accuracy') {
    console.log(
      table([
        ['call size (% of quota x window)', 'callers', 'achieved / quota'],
        ...data.map((r: any) => [`${r.size_percent}%`, String(r.callers), String(r.achieved_over_quota)]),
      ]),
    );
  } else if (name === 'broker-path') {
    const row = (who: string, r: any) => [who, fmt(r.checks_per_sec), `${r.p50_ms} ms`, `${r.p99_ms} ms`];
    console.log(
      table([
        ['256 callers, one connection', 'checks/s', 'p50', 'p99'],
        row('rivven BrokerQuotas', data.rivven),
        row('RateLimiterRedis (rate-limiter-flexible)', data.rlf_redis),
        row('ioredis auto-pipelined INCR', data.ioredis_incr),
      ]),
    );
    console.log(`\nrivven / RateLimiterRedis ${data.rivven_vs_rlf_redis}x, rivven / INCR ${data.rivven_vs_ioredis_incr}x`);
    const o = data.outage;
    console.log(
      `\n${table([
        ['outage phase', 'checks/s', 'p99', 'max'],
        ...['up', 'stopped', 'resumed', 'killed', 'restarted_last_second'].map((k) => [
          k,
          fmt(o[k].checks_per_sec),
          `${o[k].p99_ms} ms`,
          `${o[k].max_ms} ms`,
        ]),
      ])}\nbreaker opened ${o.breaker_opened} times, state at the end: ${o.state_at_end}`,
    );
  } else if (name === 'fleet') {
    const t = data.throughput;
    console.log(
      table([
        ['RecordRequest, N=50 P=16', 'ops/s', 'p99'],
        ['fleet off', fmt(t.off_ops_per_sec), `${t.off_p99_us}us`],
        ['fleet on (sync 100 ms)', fmt(t.on_ops_per_sec), `${t.on_p99_us}us`],
      ]),
    );
    console.log(
      `\non / off ${t.on_over_off}x; Redis per sidecar: ${t.redis_scripts_per_sec} script calls/s, ${t.redis_commands_per_sec} commands/s` +
        `\nat ${fmt(t.at_p1.ops_per_sec)} record calls/s (P=1): ${t.at_p1.redis_scripts_per_sec} script calls/s, ${t.at_p1.redis_commands_per_sec} commands/s\n`,
    );
    console.log(
      table([
        ['3 sidecars, greedy principal', 'achieved / quota (10 windows)', 'worst window overshoot', 'derived bound', 'overshoot / bound'],
        ...data.accuracy.map((r: any) => [
          `sync ${r.sync_ms} ms, window ${r.window_ms} ms`,
          String(r.achieved_over_quota),
          `${fmt(r.worst_window_overshoot_bytes)} B`,
          `${fmt(r.bound_bytes)} B`,
          String(r.overshoot_over_bound),
        ]),
      ]),
    );
    console.log(
      `\n${table([
        ['one sync of', 'took', 'buckets/s', 'worst event-loop stall'],
        ...data.big_sync.map((r: any) => [
          `${fmt(r.buckets)} buckets`,
          `${r.sync_ms} ms`,
          fmt(r.buckets_per_sec),
          `${r.worst_loop_stall_ms} ms`,
        ]),
      ])}`,
    );
  } else if (name === 'stall') {
    console.log(
      table([
        ['heaviest request', 'its time', 'pings meanwhile', 'ping p99', 'ping max'],
        ...data.map((r: any) => [r.request, `${r.request_ms} ms`, String(r.pings), `${r.ping_p99_ms} ms`, `${r.ping_max_ms} ms`]),
      ]),
    );
  } else {
    console.log(table([Object.keys(data), Object.values(data).map(String)]));
  }
}

const wanted = process.argv.slice(2).length > 0 ? process.argv.slice(2) : Object.keys(SCENARIOS);
const machine = {
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cores: os.cpus().length,
  memory_gib: Math.round(os.totalmem() / 2 ** 30),
  node: process.version,
  redis: await redisVersion().catch(() => 'not installed'),
  msgpackr_native: (await import('msgpackr')).isNativeAccelerationEnabled,
  date: new Date().toISOString(),
};
console.log(`# rivven bench: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, redis ${machine.redis}`);
mkdirSync(RESULTS, { recursive: true });
// latest.json keeps every scenario's last result: a run of some scenarios updates those and keeps the others.
const latest = join(RESULTS, 'latest.json');
const previous = (): Record<string, unknown> => {
  try {
    return existsSync(latest) ? (JSON.parse(readFileSync(latest, 'utf8')) as Record<string, unknown>) : {};
  } catch {
    return {}; // a run cut off mid-write: start afresh
  }
};
const results: Record<string, unknown> = { ...previous(), machine };
for (const name of wanted) {
  if (!SCENARIOS[name]) throw new Error(`unknown scenario ${name}; have ${Object.keys(SCENARIOS).join(', ')}`);
  const data = await scenario(name);
  results[name] = data;
  writeFileSync(join(RESULTS, `${name}.json`), `${JSON.stringify({ machine, results: data }, null, 2)}\n`);
  print(name, data);
}
writeFileSync(latest, `${JSON.stringify(results, null, 2)}\n`);
