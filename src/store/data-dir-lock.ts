import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';

/** The lock's file name inside storage.data_dir. */
export const LOCK_FILE = 'rivven.lock';

/** Who holds a data directory: written into the lock file as JSON. */
interface Holder {
  pid: number;
  host: string;
  since: string;
  address?: string;
}

/**
 * Creates `dir` one level at a time: `mkdir -p` of Node loops forever on some paths that can never be created
 * (under /proc it spins a core without a word), and a step-by-step create names the level that failed.
 */
function makeDirectory(dir: string): void {
  const missing: string[] = [];
  let at = resolve(dir);
  for (;;) {
    try {
      if (!statSync(at).isDirectory()) throw new Error(`storage.data_dir ${dir}: ${at} exists and is not a directory`);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        if ((err as NodeJS.ErrnoException).code === undefined) throw err;
        throw new Error(`storage.data_dir ${dir} cannot be used: ${at}: ${(err as NodeJS.ErrnoException).code}`);
      }
      missing.unshift(at);
      const up = dirname(at);
      if (up === at) break;
      at = up;
    }
  }
  for (const d of missing) {
    try {
      mkdirSync(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw new Error(`storage.data_dir ${dir} cannot be created: ${d}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
}

/** True while process `pid` of this host runs (EPERM: it runs under another user). */
function running(pid: number): boolean {
  if (pid === process.pid) return false; // our own pid in a file left before a restart (pid 1 in a container)
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The held lock; `release` removes it (on stop). */
export interface DataDirLock {
  readonly path: string;
  release(): void;
}

const code = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? (err as Error).message;

/**
 * Creates the lock with `content`, atomically: written and fsynced under a name of its own, then hard-linked to
 * the lock's name, so the lock is never seen empty or half written. False when a lock exists.
 */
function link(dir: string, path: string, content: string): boolean {
  const tmp = join(dir, `${LOCK_FILE}.${process.pid}.${randomBytes(6).toString('hex')}`);
  try {
    const fd = openSync(tmp, 'wx', 0o644);
    try {
      writeSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new Error(`storage.data_dir ${dir} is not writable: ${tmp}: ${code(err)}`);
  }
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new Error(`storage.data_dir ${dir} is not writable: ${path}: ${code(err)}`);
  } finally {
    rmSync(tmp, { force: true });
  }
}

function readLock(dir: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw new Error(`storage.data_dir ${dir}: ${path} cannot be read (${code(err)}); remove it if no sidecar uses this directory`);
  }
}

function parseHolder(content: string): Holder | undefined {
  try {
    const h = JSON.parse(content) as Partial<Holder>;
    return typeof h.pid === 'number' && typeof h.host === 'string' && typeof h.since === 'string' ? (h as Holder) : undefined;
  } catch {
    return undefined;
  }
}

function inUse(dir: string, path: string, holder: Holder | undefined): Error {
  const who = holder
    ? `pid ${holder.pid} on ${holder.host}${holder.address ? ` (${holder.address})` : ''}, since ${holder.since}`
    : 'a lock file rivven cannot read';
  return new Error(
    `storage.data_dir ${dir} is in use by another sidecar: ${who}. Give each sidecar its own data directory; if that process is gone, delete ${path}`,
  );
}

/**
 * Takes storage.data_dir for this process: creates it if needed, proves it writable (the lock is written and
 * fsynced), and refuses a directory another running sidecar holds, naming it. Two sidecars on one directory
 * would both append to quotas.log and violations.log, each seeing only its own changes until a restart.
 * A lock left by a process that no longer runs on this host is taken over: renamed aside first, and taken only
 * if what was renamed is the lock judged stale (two sidecars starting at once over a stale lock: one wins). A
 * lock from another host (a shared volume), or one that cannot be read, is refused: only its holder, or an
 * operator who deletes the file, can say it is free.
 */
export function lockDataDir(dir: string, address?: string): DataDirLock {
  makeDirectory(dir);
  const path = join(dir, LOCK_FILE);
  const me: Holder = { pid: process.pid, host: hostname(), since: new Date().toISOString(), ...(address ? { address } : {}) };
  const mine = `${JSON.stringify(me)}\n`;
  for (let attempt = 0; attempt < 3; attempt++) {
    if (link(dir, path, mine)) {
      return {
        path,
        release: () => {
          // Only our own lock: an operator may have deleted it and another sidecar taken the directory since.
          if (readLock(dir, path) === mine) rmSync(path, { force: true });
        },
      };
    }
    const content = readLock(dir, path);
    if (content === '') continue; // removed meanwhile: try again
    const holder = parseHolder(content);
    if (holder === undefined || holder.host !== me.host || running(holder.pid)) throw inUse(dir, path, holder);
    const aside = `${path}.stale.${process.pid}.${randomBytes(6).toString('hex')}`;
    try {
      renameSync(path, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new Error(`storage.data_dir ${dir} is not writable: ${path}: ${code(err)}`);
    }
    if (readLock(dir, aside) !== content) {
      // Another sidecar replaced the stale lock between our read and our rename: give its lock back.
      try {
        linkSync(aside, path);
      } catch {
        // a third process holds the name now; the lock we moved is no one's
      }
      rmSync(aside, { force: true });
      throw inUse(dir, path, parseHolder(readLock(dir, path)));
    }
    rmSync(aside, { force: true });
  }
  throw inUse(dir, path, parseHolder(readLock(dir, path)));
}
