import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { LOCK_FILE, lockDataDir } from '../../src/store/data-dir-lock.js';
import { run, serve } from '../helpers/cli.js';

const fresh = () => join(mkdtempSync(join(tmpdir(), 'rivven-lock-')), 'data');

t.test('a data directory is held by one sidecar; the second is refused with the holder named', async (t) => {
  const dir = fresh();
  const lock = lockDataDir(dir, '127.0.0.1:9190');
  t.ok(existsSync(join(dir, LOCK_FILE)), 'created the directory and the lock');
  // The holder must be a live process other than this one: a child that waits.
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  t.teardown(() => other.kill());
  lock.release();
  t.notOk(existsSync(join(dir, LOCK_FILE)), 'release removes it');
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: other.pid, host: hostname(), since: 'then', address: '127.0.0.1:9190' }));
  t.throws(
    () => lockDataDir(dir),
    new RegExp(`in use by another sidecar: pid ${other.pid} on ${hostname()} \\(127\\.0\\.0\\.1:9190\\), since then`),
  );
});

t.test('a lock left by a process that no longer runs is taken over', async (t) => {
  const dir = fresh();
  const gone = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((resolve) => gone.once('exit', resolve));
  lockDataDir(dir).release();
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: gone.pid, host: hostname(), since: 'then' }));
  const lock = lockDataDir(dir);
  t.equal(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid, process.pid);
  lock.release();
});

t.test('a lock from another host (a shared volume) is not taken over', async (t) => {
  const dir = fresh();
  lockDataDir(dir).release();
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: 1, host: 'some-other-host', since: 'then' }));
  t.throws(() => lockDataDir(dir), /pid 1 on some-other-host/);
});

t.test('a directory that cannot be created or written is found at start, with its name', async (t) => {
  t.throws(() => lockDataDir('/proc/rivven/data'), /storage\.data_dir \/proc\/rivven\/data cannot be created: \/proc\/rivven: ENOENT/);
  const file = join(mkdtempSync(join(tmpdir(), 'rivven-lock-')), 'plain-file');
  writeFileSync(file, '');
  t.throws(() => lockDataDir(join(file, 'data')), /not a directory|ENOTDIR/);
});

t.test('rivven serve: a second sidecar on the same --data-dir exits 1 naming the first', async (t) => {
  const dir = fresh();
  const first = await serve(['--data-dir', dir], tmpdir());
  t.teardown(async () => {
    first.child.kill('SIGTERM');
    await first.exited;
  });
  const second = await run(['serve', '--port', '0', '--data-dir', dir], { env: { RIVVEN_METRICS_PORT: '0' } });
  t.equal(second.code, 1);
  t.match(second.stdout + second.stderr, /in use by another sidecar: pid \d+/);
  const proc = await run(['serve', '--port', '0', '--data-dir', '/proc/rivven'], { env: { RIVVEN_METRICS_PORT: '0' } });
  t.equal(proc.code, 1, '/proc/rivven: a clear failure, not a spinning start');
  t.match(proc.stdout + proc.stderr, /storage\.data_dir \/proc\/rivven cannot be created/);
});

t.test('a lock rivven cannot read is not taken over; a lock that is a directory is named', async (t) => {
  const dir = fresh();
  lockDataDir(dir).release();
  writeFileSync(join(dir, LOCK_FILE), 'garbage');
  t.throws(() => lockDataDir(dir), /in use by another sidecar: a lock file rivven cannot read.*delete/);
  const other = fresh();
  lockDataDir(other).release();
  mkdirSync(join(other, LOCK_FILE));
  t.throws(() => lockDataDir(other), /rivven\.lock cannot be read \(EISDIR\)/);
});
