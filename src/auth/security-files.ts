import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
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

/**
 * A PEM file checked as what its key says it is: OpenSSL's own error ("PEM routines::no start line") names
 * neither the file nor which of cert, key and ca it was, and on SIGHUP that is all an operator would see.
 */
function pem(key: string, path: string, kind: 'certificate' | 'private key'): Buffer {
  const data = read(key, path);
  try {
    if (kind === 'certificate') new X509Certificate(data);
    else createPrivateKey(data);
  } catch (err) {
    throw new Error(`${key} ${path} is not a PEM ${kind}: ${(err as Error).message}`);
  }
  return data;
}

/** server.tls as the listener needs it, read from disk now (at start, and again on SIGHUP); undefined when off. */
export function serverTls(config: Config): ServerTls | undefined {
  const t = config.server.tls;
  if (t.cert === null || t.key === null) return undefined;
  return {
    cert: pem('server.tls.cert', t.cert, 'certificate'),
    key: pem('server.tls.key', t.key, 'private key'),
    ca: t.ca === null ? undefined : pem('server.tls.ca', t.ca, 'certificate'),
    clientAuth: t.client_auth,
  };
}

export function metricsTls(config: Config): { cert: Buffer; key: Buffer } | undefined {
  const t = config.metrics.tls;
  if (t.cert === null || t.key === null) return undefined;
  return { cert: pem('metrics.tls.cert', t.cert, 'certificate'), key: pem('metrics.tls.key', t.key, 'private key') };
}

/** The identities of auth.tokens_file, or null when there is none (an open server). */
export function identities(config: Config): Identities | null {
  return config.auth.tokens_file === null ? null : Identities.load(config.auth.tokens_file);
}

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost|::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;

/** True for an address only this machine can reach. */
export const isLoopback = (host: string): boolean => LOOPBACK.test(host.replace(/^\[|\]$/g, ''));
