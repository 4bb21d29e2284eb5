import { createPrivateKey, X509Certificate } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Config } from '../config/schema.js';
import type { ServerTls } from '../server/options.js';
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
 * Reads a file holding secrets (a tokens file, a private key), checked as sshd's StrictModes checks: refused when
 * its group or others can write it, when another user than this one (or root) owns it, or when others can write
 * its directory without its sticky bit (they could rename another file over it); a warning when others can read
 * it. The checks are made on the descriptor that is then read, so the file cannot be swapped in between.
 */
export function checkSecretsFile(key: string, path: string, warn: Warn): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new Error(`cannot read ${key} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    const octal = (st.mode & 0o777).toString(8).padStart(3, '0');
    if ((st.mode & 0o022) !== 0) {
      throw new Error(
        `${key} ${path} is writable by ${(st.mode & 0o002) !== 0 ? 'others' : 'its group'} (mode ${octal}); refused: run chmod go-w ${path}`,
      );
    }
    const me = process.getuid?.();
    if (me !== undefined && st.uid !== me && st.uid !== 0) {
      throw new Error(`${key} ${path} is owned by uid ${st.uid}, not by this user (uid ${me}) or root; refused: its owner can rewrite it`);
    }
    const dir = dirname(realpathSync(path));
    const d = statSync(dir);
    if ((d.mode & 0o022) !== 0 && (d.mode & 0o1000) === 0) {
      throw new Error(
        `${key} ${path} is in ${dir}, which others can write (mode ${(d.mode & 0o777).toString(8)}, no sticky bit); refused: they could replace the file`,
      );
    }
    if ((st.mode & 0o004) !== 0)
      warn(`${key} ${path} is readable by others (mode ${octal}); chmod o-r ${path} keeps its secrets to this user`);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * A PEM file checked as what its key says it is: OpenSSL's own error ("PEM routines::no start line") names
 * neither the file nor which of cert, key and ca it was, and on SIGHUP that is all an operator would see.
 */
function pem(key: string, path: string, kind: 'certificate' | 'private key', data: Buffer = read(key, path)): Buffer {
  try {
    if (kind === 'certificate') new X509Certificate(data);
    else createPrivateKey(data);
  } catch (err) {
    throw new Error(`${key} ${path} is not a PEM ${kind}: ${(err as Error).message}`);
  }
  return data;
}

/** server.tls as the listener needs it, read from disk now (at start, and again on SIGHUP); undefined when off. */
export function serverTls(config: Config, warn: Warn = () => undefined): ServerTls | undefined {
  const t = config.server.tls;
  if (t.cert === null || t.key === null) return undefined;
  return {
    cert: pem('server.tls.cert', t.cert, 'certificate'),
    key: pem('server.tls.key', t.key, 'private key', checkSecretsFile('server.tls.key', t.key, warn)),
    ca: t.ca === null ? undefined : pem('server.tls.ca', t.ca, 'certificate'),
    clientAuth: t.client_auth,
  };
}

export function metricsTls(config: Config, warn: Warn = () => undefined): { cert: Buffer; key: Buffer } | undefined {
  const t = config.metrics.tls;
  if (t.cert === null || t.key === null) return undefined;
  return {
    cert: pem('metrics.tls.cert', t.cert, 'certificate'),
    key: pem('metrics.tls.key', t.key, 'private key', checkSecretsFile('metrics.tls.key', t.key, warn)),
  };
}

/** The identities of auth.tokens_file, or null when there is none (an open server). */
export function identities(config: Config, warn: Warn = () => undefined): Identities | null {
  const file = config.auth.tokens_file;
  if (file === null) return null;
  return Identities.parse(checkSecretsFile('auth.tokens_file', file, warn).toString('utf8'), file);
}

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost|::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;

/** True for an address only this machine can reach. */
export const isLoopback = (host: string): boolean => LOOPBACK.test(host.replace(/^\[|\]$/g, ''));
