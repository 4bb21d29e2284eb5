import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import t from 'tap';
import { runInProcess, serve } from '../helpers/cli.js';
import { startServer } from '../helpers/server.js';

// The samples people copy from README and docs/protocol.md are checked against what the code really does.
const ROOT = new URL('../../', import.meta.url).pathname;
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

/** The fenced block that follows `marker` in `text`. */
function blockAfter(text: string, marker: string, fence = '```'): string {
  const from = text.indexOf(marker);
  if (from < 0) throw new Error(`marker not found: ${marker}`);
  const start = text.indexOf('\n', text.indexOf(fence, from)) + 1;
  return text.slice(start, text.indexOf('\n```', start) + 1);
}

t.test('the minimal wire client of README and docs/protocol.md handles split frames and finishes', async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  const readme = blockAfter(read('README.md'), '## The wire, by hand');
  const protocol = blockAfter(read('docs/protocol.md'), '## A minimal client');
  t.equal(readme, protocol, 'README shows the same client as docs/protocol.md');
  // Written inside the repository so `msgpackr` resolves from node_modules, as it would in a user's project.
  const file = join(ROOT, `.readme-client-${process.pid}.mjs`);
  writeFileSync(file, readme.replace('9190', String(s.port)));
  t.teardown(() => rmSync(file, { force: true }));
  const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.equal(code, 0, 'it exits by itself once every reply is in');
  t.match(out, /^1 \{ type: 'Ok', throttle_time_ms: 0 \}\n2 \{\n?\s*type: 'QuotasDescribed'/);
});

/**
 * A command line of the README as argv for runInProcess (bin/rivven's own program, parsed in this process):
 * without `node bin/rivven` and without a trailing comment.
 */
const argv = (line: string): string[] =>
  line
    .replace(/^\$ /, '')
    .replace(/\s+#.*$/, '')
    .split(/\s+/)
    .slice(2);

t.test("README's quota commands run as shown, in order, and quota list prints the sample", async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  const env = { RIVVEN_SERVER: `127.0.0.1:${s.port}` };
  const readme = read('README.md');
  const lines = blockAfter(readme, '## Changing quotas')
    .split('\n')
    .filter((l) => l !== '');
  t.ok(
    lines.every((l) => l.startsWith('node bin/rivven ')),
    'every line is a command runnable in a checkout',
  );
  let firstList: string | undefined;
  for (const line of lines) {
    const r = await runInProcess(argv(line), { env });
    t.equal(r.code, 0, `${line}: ${r.stderr}`);
    t.notMatch(r.stdout, /nothing to remove/, `${line}: removes something that an earlier line set`);
    if (line === 'node bin/rivven quota list') firstList ??= r.stdout;
  }
  t.equal(firstList, blockAfter(readme, 'quota list` prints:'));
  const after = await runInProcess(['quota', 'list', '--default', '--json'], { env });
  t.match(JSON.parse(after.stdout), [{ quotas: { request_rate: 1000 } }], 'the default is back to the rivven.yaml value');
});

t.test("README's tier transcript is what the commands print against a fresh server", async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  const env = { RIVVEN_SERVER: `127.0.0.1:${s.port}` };
  const transcript = blockAfter(read('README.md'), 'Run against a fresh server');
  const steps = transcript.split(/^(?=\$ )/m).map((step) => {
    const [command, ...output] = step.split('\n');
    return { command: command!, output: output.join('\n') };
  });
  t.equal(steps.length, 10, 'every step of the transcript');
  for (const { command, output } of steps) {
    t.match(command, /^\$ node bin\/rivven /, 'runnable in a checkout as shown');
    const r = await runInProcess(argv(command), { env });
    t.equal(r.stdout + r.stderr, output, command);
  }
});

t.test("README's broker sample refuses a blocked principal, throttles with a delay, and passes others", async (t) => {
  const s = await startServer({ quotas: { defaults: { produce_bytes_rate: 1000 } } });
  t.teardown(() => s.stop());
  const sample = blockAfter(read('README.md'), '## From a broker');
  // What a broker has around the sample: its connections, its log, its error codes.
  const prelude = `
const log = { warn: (fields: unknown, msg: string) => warnings.push({ fields, msg }) };
export const warnings: unknown[] = [];
export const sent: { user: string; reply: Record<string, unknown> }[] = [];
export const muted: { user: string; ms: number }[] = [];
const CLUSTER_AUTHORIZATION_FAILED = 31;
interface ProduceRequest { sizeInBytes: number }
interface ClientConnection { user: string; clientId: string; send(r: Record<string, unknown>): void; muteFor(ms: number): void }
const appendToLog = async (_req: ProduceRequest) => ({ base_offset: 0 });
`;
  const exercise = `
export async function exercise(): Promise<void> {
  await client.alterQuotas([{ entity: [['user', 'mallory']], quota_key: 'blocked', quota_value: 'abuse' }]);
  for (const [user, bytes] of [['mallory', 10], ['alice', 10], ['greedy', 5000]] as const) {
    const conn: ClientConnection = { user, clientId: 'app', send: (reply) => sent.push({ user, reply }), muteFor: (ms) => muted.push({ user, ms }) };
    await onProduce(conn, { sizeInBytes: bytes });
  }
  await client.close();
}
`;
  t.ok(sample.includes('recordDeadlineMs: 25,'), "the sample's deadline is where the test widens it");
  const code =
    prelude +
    sample
      .replace("from 'rivven-quota/client'", `from '${new URL('../../src/client/index.js', import.meta.url).pathname}'`)
      .replace('port: 9190', `port: ${s.port}`)
      // The sample's 25 ms deadline is a broker's; on a loaded test machine a first call missed it and failed
      // open (throttle 0), which is right for a broker and no answer for this test.
      .replace('recordDeadlineMs: 25,', 'recordDeadlineMs: 10_000,') +
    exercise;
  const file = join(ROOT, `.readme-broker-${process.pid}.ts`);
  writeFileSync(file, code);
  t.teardown(() => rmSync(file, { force: true }));
  const mod = (await import(file)) as {
    exercise(): Promise<void>;
    sent: { user: string; reply: Record<string, unknown> }[];
    muted: { user: string; ms: number }[];
    warnings: unknown[];
  };
  await mod.exercise();
  t.same(mod.sent[0], { user: 'mallory', reply: { error_code: 31, throttle_time_ms: 0 } }, 'the blocked principal is refused, not delayed');
  t.match(mod.warnings, [{ fields: { entity: 'user:mallory', reason: 'abuse' }, msg: 'blocked principal refused' }], 'onDenied told');
  t.same(mod.sent[1], { user: 'alice', reply: { base_offset: 0, throttle_time_ms: 0 } });
  t.match(mod.sent[2], { user: 'greedy', reply: { base_offset: 0 } });
  t.ok((mod.sent[2]!.reply.throttle_time_ms as number) > 0, 'past its quota: appended, with a throttle time');
  t.equal(mod.muted.length, 1);
  t.equal(mod.muted[0]!.user, 'greedy');
  t.notOk(
    mod.sent.some((x) => (x.reply.throttle_time_ms as number) < 0),
    'no negative throttle time reaches a client',
  );
});

t.test("README's start line has the fields and order of the real one", async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'rivven-readme-'));
  const s = await serve(['--data-dir', 'data'], cwd);
  const real = s.logs.find((l) => l.msg === 'rivven listening')!;
  s.child.kill('SIGTERM');
  await s.exited;
  const sample = JSON.parse(blockAfter(read('README.md'), 'the second naming the address').trim()) as Record<string, unknown>;
  t.same(Object.keys(sample), Object.keys(real), 'the same fields in the same order');
  t.same(
    { ...sample, time: 0, address: 0, metrics: 0 },
    { ...real, time: 0, address: 0, metrics: 0 },
    'the same values but for time and ports',
  );
});
