import os from 'node:os';
import { Command, Option } from 'commander';
import { QuotaClient, type QuotaAlteration, type QuotaEntry } from '../client/quota-client.js';
import { RivvenError } from '../protocol/error-codes.js';
import type { Component } from '../quota/entity.js';
import { QUOTA_KEYS, isQuotaKey, type QuotaKey } from '../quota/quota-key.js';
import { addEntityFlags, entityFromFlags, showEntity, type EntityFlags } from './entity-flags.js';
import { EXIT_FAILED, EXIT_OK, UsageError } from './exit-codes.js';
import { formatQuotaValue, parseQuotaValue } from './quota-values.js';

interface ConnectionFlags {
  server: string;
  token?: string;
  timeout: string;
}

const DEFAULT_SERVER = '127.0.0.1:9190';

/** --server, --token, --timeout on every subcommand, so they may be written anywhere on the line. */
function addConnectionFlags(cmd: Command): Command {
  return cmd
    .addOption(new Option('--server <host:port>', 'the rivven server').env('RIVVEN_SERVER').default(DEFAULT_SERVER))
    .addOption(new Option('--token <token>', 'authentication token').env('RIVVEN_TOKEN'))
    .option('--timeout <ms>', 'request timeout in milliseconds', '5000');
}

function parseServer(server: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(server);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) throw new UsageError(`--server: "${server}" is not host:port`);
  return { host: m[1] ?? m[2]!, port };
}

/** Connects once (no long retries: a person is waiting), runs `fn`, maps failures to exit codes. */
async function withClient(flags: ConnectionFlags, fn: (c: QuotaClient) => Promise<void>): Promise<number> {
  const { host, port } = parseServer(flags.server);
  const timeout = Number(flags.timeout);
  if (!Number.isInteger(timeout) || timeout <= 0) throw new UsageError(`--timeout: "${flags.timeout}" is not a positive integer`);
  let client: QuotaClient | undefined;
  try {
    client = await QuotaClient.connect({
      host,
      port,
      requestTimeoutMs: timeout,
      connectAttempts: 1,
      clientName: `rivven-cli ${os.userInfo().username}@${os.hostname()}`,
      ...(flags.token !== undefined ? { token: flags.token } : {}),
    });
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    process.stderr.write(`rivven: ${reason}; is \`rivven serve\` running there? (set --server or RIVVEN_SERVER)\n`);
    return EXIT_FAILED;
  }
  try {
    await fn(client);
    return EXIT_OK;
  } catch (err) {
    if (!(err instanceof RivvenError)) throw err;
    const where = err.index !== undefined ? ` (alteration ${err.index})` : '';
    process.stderr.write(`rivven: ${err.code}: ${err.message}${where}\n`);
    return EXIT_FAILED;
  } finally {
    await client.close();
  }
}

function run(fn: () => Promise<number>): Promise<void> {
  return fn().then((code) => {
    process.exitCode = code;
  });
}

const RATE_FLAGS: [QuotaKey, string][] = [
  ['produce_bytes_rate', 'produceBytesRate'],
  ['consume_bytes_rate', 'consumeBytesRate'],
  ['request_rate', 'requestRate'],
];

const contains = (entity: Component[], [type, name]: Component): boolean =>
  entity.some(([t, n]) => t === type && n === name);

function table(entries: QuotaEntry[]): string {
  const rows = [
    ['ENTITY', 'PRODUCE', 'CONSUME', 'REQUESTS'],
    ...entries.map((e) => [showEntity(e.entity), ...QUOTA_KEYS.map((k) => formatQuotaValue(k, e.quotas[k]))]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

function listCommand(): Command {
  const cmd = new Command('list')
    .description('show configured quotas: all of them, or those of one entity')
    .option('--json', 'print the entries as JSON');
  addEntityFlags(cmd);
  addConnectionFlags(cmd);
  return cmd
    .addHelpText(
      'after',
      `
Examples:
  rivven quota list
  rivven quota list --user alice
  rivven quota list --user alice --client-id app-1 --json`,
    )
    .action((flags: EntityFlags & ConnectionFlags & { json?: boolean }) =>
      run(() => {
        const entity = entityFromFlags(flags);
        return withClient(flags, async (client) => {
          const entries = (await client.describeQuotas(entity)).filter((e) => entity.every((c) => contains(e.entity, c)));
          process.stdout.write(flags.json ? `${JSON.stringify(entries, null, 2)}\n` : `${table(entries)}\n`);
        });
      }),
    );
}

function requireEntity(flags: EntityFlags): Component[] {
  const entity = entityFromFlags(flags);
  if (entity.length === 0) {
    throw new UsageError('name an entity: --user, --client-id, --consumer-group, their -default forms, or --default');
  }
  return entity;
}

function setCommand(): Command {
  const cmd = new Command('set').description('set one or more quotas of an entity (takes effect at once, survives restarts)');
  addEntityFlags(cmd);
  cmd
    .option('--produce-bytes-rate <rate>', 'bytes/s produced: 10MB, 10MiB, 5000000, unlimited')
    .option('--consume-bytes-rate <rate>', 'bytes/s consumed')
    .option('--request-rate <rate>', 'requests/s')
    .option('--dry-run', 'validate on the server, change nothing');
  addConnectionFlags(cmd);
  return cmd
    .addHelpText(
      'after',
      `
Examples:
  rivven quota set --user alice --produce-bytes-rate 10MB --consume-bytes-rate 20MB
  rivven quota set --client-id batch-processor --request-rate 100
  rivven quota set --user-default --client-id-default --produce-bytes-rate 5MiB
  rivven quota set --consumer-group etl --consume-bytes-rate unlimited --dry-run`,
    )
    .action((flags: EntityFlags & ConnectionFlags & Record<string, string | boolean | undefined>) =>
      run(() => {
        const entity = requireEntity(flags);
        const alterations: QuotaAlteration[] = [];
        for (const [key, prop] of RATE_FLAGS) {
          const raw = flags[prop];
          if (typeof raw === 'string') {
            const flag = `--${key.replaceAll('_', '-')}`;
            alterations.push({ entity, quota_key: key, quota_value: parseQuotaValue(raw, flag) });
          }
        }
        if (alterations.length === 0) {
          throw new UsageError('give at least one of --produce-bytes-rate, --consume-bytes-rate, --request-rate');
        }
        return withClient(flags, async (client) => {
          const n = await client.alterQuotas(alterations, { validateOnly: flags.dryRun === true });
          const what = alterations.map((a) => `${a.quota_key}=${formatQuotaValue(a.quota_key, a.quota_value!)}`).join(', ');
          const verb = flags.dryRun ? `valid, nothing changed (dry run): ${n} alteration(s)` : `set ${n} quota(s)`;
          process.stdout.write(`${verb} for ${showEntity(entity)}: ${what}\n`);
        });
      }),
    );
}

function deleteCommand(): Command {
  const cmd = new Command('delete').description('remove quotas of an entity, so the next level applies');
  addEntityFlags(cmd);
  cmd.requiredOption('--quota <keys>', 'comma-separated: produce_bytes_rate,consume_bytes_rate,request_rate');
  addConnectionFlags(cmd);
  return cmd
    .addHelpText(
      'after',
      `
Examples:
  rivven quota delete --user alice --quota produce_bytes_rate
  rivven quota delete --default --quota produce_bytes_rate,consume_bytes_rate   (back to rivven.yaml)`,
    )
    .action((flags: EntityFlags & ConnectionFlags & { quota: string }) =>
      run(() => {
        const entity = requireEntity(flags);
        const keys = flags.quota.split(',').map((k) => k.trim().replaceAll('-', '_'));
        const unknown = keys.filter((k) => !isQuotaKey(k));
        if (unknown.length > 0) throw new UsageError(`--quota: unknown key ${unknown.join(', ')}; use ${QUOTA_KEYS.join(', ')}`);
        const alterations = keys.map((k) => ({ entity, quota_key: k as QuotaKey, quota_value: null }));
        return withClient(flags, async (client) => {
          const n = await client.alterQuotas(alterations);
          process.stdout.write(`removed ${n} quota(s) from ${showEntity(entity)}: ${keys.join(', ')}\n`);
        });
      }),
    );
}

export function quotaCommand(): Command {
  return new Command('quota')
    .description('read and change quotas on a running server')
    .addCommand(listCommand())
    .addCommand(setCommand())
    .addCommand(deleteCommand())
    .addHelpText('after', '\nExample:\n  rivven quota set --user alice --produce-bytes-rate 10MB\n');
}
