import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import t from 'tap';
import { run, serve } from './helpers/cli.js';
import { startServer } from './helpers/server.js';

// The samples people copy from README and docs/protocol.md are checked against what the code really does.
const ROOT = new URL('../', import.meta.url).pathname;
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

t.test("README's quota list sample is what the four set commands produce", async (t) => {
  const s = await startServer();
  t.teardown(() => s.stop());
  const env = { RIVVEN_SERVER: `127.0.0.1:${s.port}` };
  const readme = read('README.md');
  const commands = blockAfter(readme, '## Changing quotas')
    .split('\n')
    .filter((l) => l.startsWith('node bin/rivven quota set'))
    .map((l) =>
      l
        .replace(/\s+#.*$/, '')
        .split(/\s+/)
        .slice(2),
    );
  t.equal(commands.length, 4);
  for (const args of commands) t.equal((await run(args, { env })).code, 0, args.join(' '));
  const list = await run(['quota', 'list'], { env });
  t.equal(list.stdout, blockAfter(readme, 'quota list` prints:'));
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
