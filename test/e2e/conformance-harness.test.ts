// The conformance harness (conformance/harness.ts) that every language's tests drive: the Node client's reference
// answers match what scenarios.json expects, and the line protocol starts, signals and cleans up real sidecars.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import t from 'tap';
import { reference, SCENARIOS } from '../../conformance/harness.js';

const HARNESS = new URL('../../conformance/harness.ts', import.meta.url).pathname;

t.test("the Node client's answers to the fixed call sequence are the ones scenarios.json expects", async (t) => {
  const steps = SCENARIOS.scenarios.throttles!.steps as { expect: number }[];
  t.same(
    await reference('throttles'),
    steps.map((s) => s.expect),
  );
});

t.test('10,000 calls in flight: each gets its own answer, rising with its position on a frozen clock', async (t) => {
  const answers = await reference('in_flight');
  t.equal(answers.length, 10_000);
  const throttled = answers.findIndex((a) => a > 0);
  t.ok(throttled > 0, 'the first calls fit in the quota');
  let rising = true;
  for (let i = throttled + 1; i < answers.length; i++) if (answers[i]! < answers[i - 1]!) rising = false;
  t.ok(rising, 'past the quota every answer is at least the one before');
});

t.test('the line protocol: start, signal, request, errors, and everything killed at EOF', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', HARNESS], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => {
    lines.push(JSON.parse(l) as Record<string, unknown>);
    waiters.shift()?.();
  });
  const next = async (): Promise<Record<string, unknown>> => {
    while (lines.length === 0) await new Promise<void>((r) => waiters.push(r));
    return lines.shift()!;
  };
  const ask = async (req: Record<string, unknown>) => {
    child.stdin!.write(`${JSON.stringify(req)}\n`);
    return next();
  };
  t.same(await next(), { ready: true, format: 1 });
  const s = await ask({ id: 1, cmd: 'start_sidecar' });
  t.match(s, { id: 1, ok: true, sidecar: String, port: Number, pid: Number });
  t.match(await ask({ id: 2, cmd: 'signal', sidecar: s.sidecar, signal: 'STOP' }), { id: 2, ok: true });
  t.match(await ask({ id: 3, cmd: 'signal', sidecar: s.sidecar, signal: 'CONT' }), { id: 3, ok: true });
  t.match(await ask({ id: 4, cmd: 'request', sidecar: s.sidecar, body: { type: 'Ping' } }), { id: 4, ok: true, reply: { type: 'Pong' } });
  t.match(await ask({ id: 5, cmd: 'nonsense' }), { id: 5, ok: false, error: /unknown command/ });
  t.match(await ask({ id: 6, cmd: 'advance_clock', sidecar: s.sidecar, ms: 5 }), { id: 6, ok: false, error: /real clock/ });
  const h = await ask({ id: 7, cmd: 'start_hostile', mode: 'silent' });
  t.match(h, { id: 7, ok: true, hostile: String, port: Number });
  t.match(await ask({ id: 8, cmd: 'hostile_stats', hostile: h.hostile }), { ok: true, bytes_sent: 0, closed_by_peer: false });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.stdin!.end();
  await exited;
  t.throws(() => process.kill(s.pid as number, 0), 'the sidecar is gone once the harness saw EOF');
});
