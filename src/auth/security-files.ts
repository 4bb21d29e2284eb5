import { readFileSync, statSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import type { ServerTls } from '../server/server.js';
import { Identities } from './identities.js';

/** Reads a file named by a config key; the error names both. */
function read(key: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read ${key} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Where a warning about a secrets file goes (the logger); it never carries the file's content. */
export type Warn = (message: string) => void;

/**
 * Checks a file holding secrets (a tokens file, a private key) as sshd's StrictModes does: one that the group or
 * others can write is refused (whoever can write it can grant themselves any role, or swap the key), and one
 * that others can read is worth a warning.
 */
export function checkSecretsFile(key: string, path: string, warn: Warn): void {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (err) {
    throw new Error(`cannot read ${key} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const octal = (mode & 0o777).toString(8).padStart(3, '0');
  if ((mode & 0o022) !== 0) {
    throw new Error(
      `${key} ${path} is writable by ${(mode & 0o002) !== 0 ? 'others' : 'its group'} (mode ${octal}); refused: run chmod go-w ${path}`,
    );
  }
  if ((mode & 0o004) !== 0) warn(`${key} ${path} is readable by others (mode ${octal}); chmod o-r ${path} keeps its secrets to this user`);
}

/** server.tls as the listener needs it, read from disk now (at start, and again on SIGHUP); undefined when off. */
export function serverTls(config: Config, warn: Warn = () => undefined): ServerTls | undefined {
  const t = config.server.tls;
  if (t.cert === null || t.key === null) return undefined;
  checkSecretsFile('server.tls.key', t.key, warn);
  return {
    cert: read('server.tls.cert', t.cert),
    key: read('server.tls.key', t.key),
    ca: t.ca === null ? undefined : read('server.tls.ca', t.ca),
    clientAuth: t.client_auth,
  };
}

export function metricsTls(config: Config, warn: Warn = () => undefined): { cert: Buffer; key: Buffer } | undefined {
  const t = config.metrics.tls;
  if (t.cert === null || t.key === null) return undefined;
  checkSecretsFile('metrics.tls.key', t.key, warn);
  return { cert: read('metrics.tls.cert', t.cert), key: read('metrics.tls.key', t.key) };
}

/** The identities of auth.tokens_file, or null when there is none (an open server). */
export function identities(config: Config, warn: Warn = () => undefined): Identities | null {
  const file = config.auth.tokens_file;
  if (file === null) return null;
  checkSecretsFile('auth.tokens_file', file, warn);
  return Identities.load(file);
}

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost|::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;

/** True for an address only this machine can reach. */
export const isLoopback = (host: string): boolean => LOOPBACK.test(host.replace(/^\[|\]$/g, ''));
