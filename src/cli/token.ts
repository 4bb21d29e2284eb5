import { createHash, randomBytes } from 'node:crypto';
import { existsSync, openSync, readFileSync, renameSync, writeSync, closeSync, fsyncSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { ROLES, type Role } from '../auth/roles.js';
import { EXIT_OK, UsageError } from './exit-codes.js';

const parseRoles = (value: string): Role[] => {
  const roles = value.split(',').map((r) => r.trim());
  const unknown = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (unknown.length > 0 || roles.length === 0) throw new InvalidArgumentError(`roles are ${ROLES.join(', ')}; got ${value}`);
  return [...new Set(roles)] as Role[];
};

/**
 * Appends an entry to a tokens file, atomically (temp file, fsync, rename) and readable by its owner only.
 * Entries already there are kept as they are.
 */
async function appendEntry(file: string, entry: Record<string, unknown>): Promise<void> {
  // Loaded here, not at start: the quota commands start faster without it.
  const { parse: parseYaml, stringify } = await import('yaml');
  let doc: { tokens: unknown[] } = { tokens: [] };
  if (existsSync(file)) {
    const parsed = parseYaml(readFileSync(file, 'utf8')) as { tokens?: unknown } | null;
    if (parsed !== null && !Array.isArray(parsed?.tokens)) throw new UsageError(`${file} is not a tokens file (it has no tokens: list)`);
    doc = { tokens: (parsed?.tokens as unknown[] | undefined) ?? [] };
    const name = entry.name;
    if (doc.tokens.some((t) => (t as { name?: unknown }).name === name))
      throw new UsageError(`${file} already has an entry named ${String(name)}`);
  }
  doc.tokens.push(entry);
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, stringify(doc));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

export function tokenCommand(): Command {
  const create = new Command('create')
    .description('make a new random token (printed once) and add its SHA-256 to a tokens file')
    .requiredOption('--name <name>', 'who uses it: shows in the audit log (e.g. broker-1, ops-alice)')
    .requiredOption('--roles <roles>', `comma-separated: ${ROLES.join(', ')}`, parseRoles)
    .option('--file <file>', 'the tokens file to add the entry to (auth.tokens_file); without it, only print')
    .addHelpText(
      'after',
      `
The token is printed once and stored nowhere: only its SHA-256 goes into the file. Give it to the client
(--token, RIVVEN_TOKEN, QuotaClient's token option), then send the server SIGHUP to load the new entry.

Examples:
  rivven token create --name broker-1 --roles record --file /etc/rivven/tokens.yaml
  rivven token create --name ops --roles describe,alter --file /etc/rivven/tokens.yaml`,
    )
    .action(async (flags: { name: string; roles: Role[]; file?: string }) => {
      if (flags.name.length > 256) throw new UsageError('--name: at most 256 characters');
      // 256 bits of randomness, base64url: no character that needs quoting in a shell or a YAML file.
      const token = `rvn_${randomBytes(32).toString('base64url')}`;
      const entry = { name: flags.name, sha256: createHash('sha256').update(token, 'utf8').digest('hex'), roles: flags.roles };
      if (flags.file !== undefined) await appendEntry(flags.file, entry);
      process.stdout.write(`${token}\n`);
      process.stderr.write(
        flags.file !== undefined
          ? `added ${flags.name} (${flags.roles.join(', ')}) to ${flags.file}; send the server SIGHUP to load it. The token above is not stored anywhere.\n`
          : `entry for the tokens file:\n  - { name: ${JSON.stringify(flags.name)}, sha256: ${entry.sha256}, roles: [${flags.roles.join(', ')}] }\n`,
      );
      process.exitCode = EXIT_OK;
    });
  return new Command('token').description('manage authentication tokens').addCommand(create);
}
