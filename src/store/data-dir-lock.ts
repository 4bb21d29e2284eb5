import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
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
 * (under /proc it spun a core without a word), and a step-by-step create names the level that failed.
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

function readHolder(path: string): Holder | undefined {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as Partial<Holder>;
    return typeof h.pid === 'number' && typeof h.host === 'string' ? (h as Holder) : undefined;
  } catch {
    return undefined;
  }
}

/** The held lock; `release` removes it (on stop). */
export interface DataDirLock {
  readonly path: string;
  release(): void;
}

/**
 * Takes storage.data_dir for this process: creates it if needed, proves it writable (the lock file is written
 * and fsynced), and refuses a directory another running sidecar holds, naming it. Two sidecars on one directory
 * would both append to quotas.log and violations.log, each seeing only its own changes until a restart.
 * A lock left by a process that no longer runs on this host is taken over; one held from another host (a shared
 * volume) is refused: only its holder, or an operator who deletes the file, can say it is free.
 */
export function lockDataDir(dir: string, address?: string): DataDirLock {
  makeDirectory(dir);
  const path = join(dir, LOCK_FILE);
  const me: Holder = { pid: process.pid, host: hostname(), since: new Date().toISOString(), ...(address ? { address } : {}) };
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o644);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw new Error(`storage.data_dir ${dir} is not writable: ${path}: ${code ?? (err as Error).message}`);
      const holder = readHolder(path);
      const stale = holder === undefined || (holder.host === me.host && !running(holder.pid));
      if (!stale || attempt > 0) {
        const who = holder
          ? `pid ${holder.pid} on ${holder.host}${holder.address ? ` (${holder.address})` : ''}, since ${holder.since}`
          : 'another process';
        throw new Error(
          `storage.data_dir ${dir} is in use by another sidecar: ${who}. Give each sidecar its own data directory; if that process is gone, delete ${path}`,
        );
      }
      unlinkSync(path);
      continue;
    }
    try {
      writeSync(fd, `${JSON.stringify(me)}\n`);
      fsyncSync(fd);
    } catch (err) {
      closeSync(fd);
      throw new Error(`storage.data_dir ${dir} is not writable: ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    closeSync(fd);
    return {
      path,
      release: () => {
        // Only our own lock: an operator may have deleted it and another sidecar taken the directory since.
        if (readHolder(path)?.pid === me.pid && readHolder(path)?.since === me.since) unlinkSync(path);
      },
    };
  }
}
