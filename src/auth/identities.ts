import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { roleBits, ROLES } from './roles.js';

/** Who a connection is, once authenticated. */
export interface Identity {
  name: string;
  /** Role bits (roles.ts). */
  roles: number;
}

const MAX_ENTRIES = 10_000;
const name = z.string().min(1).max(256);
const roles = z.array(z.enum(ROLES)).max(ROLES.length);
const tokenEntry = z.strictObject({ name, sha256: z.string().regex(/^[0-9a-f]{64}$/, 'sha256 must be 64 lowercase hex digits'), roles });
const certEntry = z.strictObject({ name, cn: z.string().min(1).max(256), roles });
const tokensFile = z.strictObject({ tokens: z.array(z.union([tokenEntry, certEntry])).max(MAX_ENTRIES) });

export type TokenEntry = z.infer<typeof tokenEntry> | z.infer<typeof certEntry>;

export const sha256 = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest();

/**
 * The identities of a tokens file (docs/security.md): `{ tokens: [{ name, sha256, roles } | { name, cn, roles }] }`.
 * Tokens are never stored, only their SHA-256 digests; a token is checked against every digest with a
 * constant-time compare and no early exit, so neither the answer time nor its position tells anything.
 */
export class Identities {
  private constructor(
    private readonly digests: { digest: Buffer; identity: Identity }[],
    private readonly certs: Map<string, Identity>,
  ) {}

  /** Reads and validates the file; throws an Error naming the file and every problem. */
  static load(path: string): Identities {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(`tokens file ${path}: ${(err as Error).message.split('\n')[0]}`);
    }
    return Identities.parse(text, path);
  }

  /** Validates the text of a tokens file read by the caller (checked first: security-files.ts); `path` names it. */
  static parse(text: string, path: string): Identities {
    let parsed: unknown;
    try {
      parsed = parseYaml(text);
    } catch (err) {
      throw new Error(`tokens file ${path}: ${(err as Error).message.split('\n')[0]}`);
    }
    const result = tokensFile.safeParse(parsed);
    if (!result.success) {
      const problems = result.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`);
      throw new Error(`tokens file ${path} is not valid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    }
    return Identities.from(result.data.tokens);
  }

  static from(entries: TokenEntry[]): Identities {
    const digests: { digest: Buffer; identity: Identity }[] = [];
    const certs = new Map<string, Identity>();
    for (const e of entries) {
      const identity = { name: e.name, roles: roleBits(e.roles) };
      if ('sha256' in e) digests.push({ digest: Buffer.from(e.sha256, 'hex'), identity });
      else certs.set(e.cn, identity);
    }
    return new Identities(digests, certs);
  }

  /** The identity a token stands for, or undefined. Time depends only on the number of entries. */
  byToken(token: string): Identity | undefined {
    return matchDigest(sha256(token), this.digests);
  }

  /** The identity of a client certificate's common name (mTLS), or undefined. */
  byCertificate(cn: string): Identity | undefined {
    return this.certs.get(cn);
  }
}

/** Compares `digest` with every entry in constant time per entry, without stopping at a match. */
export function matchDigest(digest: Buffer, entries: readonly { digest: Buffer; identity: Identity }[]): Identity | undefined {
  let found: Identity | undefined;
  for (const e of entries) {
    if (timingSafeEqual(e.digest, digest) && found === undefined) found = e.identity;
  }
  return found;
}
