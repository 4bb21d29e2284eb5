import os from 'node:os';
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { QuotaClient, type ClientTls, type QuotaEntry } from '../client/quota-client.js';
import { RivvenError } from '../protocol/error-codes.js';
import { VIOLATION_TYPES, type ViolationType } from '../protocol/messages/describe-violations.js';
import type { Component } from '../quota/entity.js';
import { BURST_KEYS, isAlterKey, LIMIT_KEYS, MAX_IN_FLIGHT, QUOTA_KEYS, type AlterKey, type QuotaKey } from '../quota/quota-key.js';
import { addEntityFlags, entityFromFlags, once, showEntity, type EntityFlags } from './entity-flags.js';
import { EXIT_FAILED, EXIT_OK, UsageError } from './exit-codes.js';
import { addLimitFlags, limitAlterations, noLimitGiven } from './limit-flags.js';
import { formatQuotaValue } from './quota-values.js';
import { showName, truncate } from './show-name.js';
import { textTable } from './text-table.js';
import { usageTable } from './usage-table.js';
import { escapeUnprintable } from '../util/printable.js';

export interface ConnectionFlags {
  server: string;
  token?: string;
  timeout: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

const DEFAULT_SERVER = '127.0.0.1:9190';

/** --server, --token, --timeout and the TLS files on every subcommand, so they may be written anywhere on the line. */
export function addConnectionFlags(cmd: Command): Command {
  return cmd
    .addOption(new Option('--server <host:port>', 'the rivven server').env('RIVVEN_SERVER').default(DEFAULT_SERVER))
    .addOption(new Option('--token <token>', 'authentication token (rivven token create)').env('RIVVEN_TOKEN'))
    .addOption(new Option('--tls-ca <file>', "connect with TLS, trusting this CA (PEM) for the server's certificate").env('RIVVEN_TLS_CA'))
    .addOption(new Option('--tls-cert <file>', 'client certificate (PEM), for servers that require mTLS').env('RIVVEN_TLS_CERT'))
    .addOption(new Option('--tls-key <file>', "the client certificate's key (PEM)").env('RIVVEN_TLS_KEY'))
    .option('--timeout <ms>', 'request timeout in milliseconds', '5000');
}

/** The TLS options the flags ask for, files read now; undefined for plaintext. */
function clientTls(flags: ConnectionFlags): ClientTls | undefined {
  if (flags.tlsCa === undefined && flags.tlsCert === undefined && flags.tlsKey === undefined) return undefined;
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) throw new UsageError('--tls-cert and --tls-key are given together');
  const file = (flag: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new UsageError(`${flag}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  };
  return {
    ...(flags.tlsCa !== undefined ? { ca: file('--tls-ca', flags.tlsCa) } : {}),
    ...(flags.tlsCert !== undefined ? { cert: file('--tls-cert', flags.tlsCert) } : {}),
    ...(flags.tlsKey !== undefined ? { key: file('--tls-key', flags.tlsKey) } : {}),
  };
}

function parseServer(server: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(server);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) throw new UsageError(`--server: "${server}" is not host:port`);
  return { host: m[1] ?? m[2]!, port };
}

/** Connects once (no long retries: a person is waiting), runs `fn`, maps failures to exit codes. */
export async function withClient(flags: ConnectionFlags, fn: (c: QuotaClient) => Promise<void>): Promise<number> {
  const { host, port } = parseServer(flags.server);
  const timeout = Number(flags.timeout);
  if (!Number.isInteger(timeout) || timeout <= 0) throw new UsageError(`--timeout: "${flags.timeout}" is not a positive integer`);
  const tlsOptions = clientTls(flags);
  let client: QuotaClient | undefined;
  try {
    client = await QuotaClient.connect({
      host,
      port,
      requestTimeoutMs: timeout,
      connectTimeoutMs: timeout,
      connectAttempts: 1,
      clientName: `rivven-cli ${os.userInfo().username}@${os.hostname()}`,
      ...(flags.token !== undefined ? { token: flags.token } : {}),
      ...(tlsOptions !== undefined ? { tls: tlsOptions } : {}),
    });
  } catch (err) {
    if (err instanceof RivvenError && (err.code === 'AUTHENTICATION_FAILED' || err.code === 'AUTHENTICATION_REQUIRED')) {
      process.stderr.write(`rivven: ${err.code}: ${escapeUnprintable(err.message)} (set --token or RIVVEN_TOKEN)\n`);
      return EXIT_FAILED;
    }
    const reason = escapeUnprintable(err instanceof Error ? err.message : String(err));
    // Only "cannot reach" may mean a stopped server or a wrong address; a TLS failure says what to change itself.
    const hint = reason.startsWith('cannot reach') ? '; is `rivven serve` running there? (set --server or RIVVEN_SERVER)' : '';
    process.stderr.write(`rivven: ${reason}${hint}\n`);
    return EXIT_FAILED;
  }
  try {
    await fn(client);
    return EXIT_OK;
  } catch (err) {
    if (!(err instanceof RivvenError)) throw err;
    const where = err.index !== undefined ? ` (alteration ${err.index})` : '';
    process.stderr.write(`rivven: ${err.code}: ${escapeUnprintable(err.message)}${where}\n`);
    return EXIT_FAILED;
  } finally {
    await client.close();
  }
}

export function run(fn: () => Promise<number>): Promise<void> {
  return fn().then((code) => {
    process.exitCode = code;
  });
}

const contains = (entity: Component[], [type, name]: Component): boolean => entity.some(([t, n]) => t === type && n === name);

/** Tier, bursts and block of an entry, for the POLICY column (shown only when some entry has one). */
function policy(e: QuotaEntry): string {
  const parts: string[] = [];
  if (e.quotas.tier !== undefined) parts.push(`tier ${showName(String(e.quotas.tier))}`);
  const bursts = BURST_KEYS.filter((k) => e.quotas[k] !== undefined).map((k) => `${k.split('_')[0]}=${formatQuotaValue(k, e.quotas[k])}`);
  if (bursts.length > 0) parts.push(`burst ${bursts.join(' ')}`);
  if (e.quotas.blocked !== undefined) parts.push(`BLOCKED: ${escapeUnprintable(JSON.stringify(e.quotas.blocked))}`);
  return parts.join(', ');
}

/** A rate cell; a shadow value is marked, since it is measured but not enforced. */
const rateCell = (e: QuotaEntry, k: QuotaKey | typeof MAX_IN_FLIGHT): string =>
  `${formatQuotaValue(k, e.quotas[k])}${e.shadow?.includes(k) ? ' (shadow)' : ''}`;

/** The table of `quota list`: IN-FLIGHT (max_in_flight) and POLICY appear only when some entry has one. */
export const quotaTable = (entries: QuotaEntry[]): string => {
  const policies = entries.map(policy);
  const withInFlight = entries.some((e) => e.quotas[MAX_IN_FLIGHT] !== undefined);
  const withPolicy =
    policies.some((p) => p !== '') ||
    entries.some((e) => e.shadow?.some((k) => !(QUOTA_KEYS as readonly string[]).includes(k) && k !== MAX_IN_FLIGHT));
  return textTable([
    ['ENTITY', 'PRODUCE', 'CONSUME', 'REQUESTS', ...(withInFlight ? ['IN-FLIGHT'] : []), ...(withPolicy ? ['POLICY'] : [])],
    ...entries.map((e, i) => [
      showEntity(e.entity),
      ...QUOTA_KEYS.map((k) => rateCell(e, k)),
      ...(withInFlight ? [rateCell(e, MAX_IN_FLIGHT)] : []),
      ...(withPolicy ? [policies[i]!] : []),
    ]),
  ]);
};

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
          process.stdout.write(flags.json ? `${JSON.stringify(entries, null, 2)}\n` : `${quotaTable(entries)}\n`);
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
  addLimitFlags(cmd);
  cmd.option('--tier <tier>', "assign a tier (rivven tier list); the entity's own values beat the tier's", once('--tier'));
  cmd.option('--dry-run', 'validate on the server, change nothing');
  addConnectionFlags(cmd);
  return cmd
    .addHelpText(
      'after',
      `
Examples:
  rivven quota set --user alice --produce-bytes-rate 10MB --consume-bytes-rate 20MB
  rivven quota set --client-id batch-processor --request-rate 100
  rivven quota set --user-default --client-id-default --produce-bytes-rate 5MiB
  rivven quota set --consumer-group etl --consume-bytes-rate unlimited --dry-run
  rivven quota set --user alice --tier pro
  rivven quota set --user bob --request-rate 50 --request-burst 200
  rivven quota set --client-id web --produce-bytes-rate 1MB --shadow    (counted, not enforced)`,
    )
    .action((flags: EntityFlags & ConnectionFlags & Record<string, string | boolean | undefined>) =>
      run(() => {
        const entity = requireEntity(flags);
        const alterations = limitAlterations(entity, flags);
        if (typeof flags.tier === 'string') alterations.push({ entity, quota_key: 'tier', quota_value: flags.tier });
        if (alterations.length === 0) throw noLimitGiven(', --tier');
        return withClient(flags, async (client) => {
          const n = await client.alterQuotas(alterations, { validateOnly: flags.dryRun === true });
          const what =
            alterations.map((a) => `${a.quota_key}=${formatQuotaValue(a.quota_key, a.quota_value!)}`).join(', ') +
            (flags.shadow ? ' (shadow)' : '');
          const verb = flags.dryRun ? `valid, nothing changed (dry run): ${n} alteration(s)` : `set ${n} quota(s)`;
          process.stdout.write(`${verb} for ${showEntity(entity)}: ${what}\n`);
        });
      }),
    );
}

function deleteCommand(): Command {
  const cmd = new Command('delete').description('remove quotas of an entity, so the next level applies');
  addEntityFlags(cmd);
  cmd.requiredOption(
    '--quota <keys>',
    `comma-separated, or repeated: ${LIMIT_KEYS.join(',')},tier`,
    (value: string, previous: string[] | undefined) => [...(previous ?? []), ...value.split(',')],
  );
  addConnectionFlags(cmd);
  return cmd
    .addHelpText(
      'after',
      `
Examples:
  rivven quota delete --user alice --quota produce_bytes_rate
  rivven quota delete --default --quota produce_bytes_rate,consume_bytes_rate   (back to rivven.yaml)`,
    )
    .action((flags: EntityFlags & ConnectionFlags & { quota: string[] }) =>
      run(() => {
        const entity = requireEntity(flags);
        const keys = flags.quota.map((k) => k.trim().replaceAll('-', '_'));
        if (keys.includes(''))
          throw new UsageError('--quota: an empty key (a stray comma?); give keys like produce_bytes_rate,request_rate');
        const unknown = keys.filter((k) => !isAlterKey(k) || k === 'blocked');
        if (unknown.length > 0)
          throw new UsageError(
            `--quota: unknown key ${unknown.join(', ')}; use ${[...LIMIT_KEYS, 'tier'].join(', ')} (unblock with rivven quota unblock)`,
          );
        const unique = [...new Set(keys)];
        const alterations = unique.map((k) => ({ entity, quota_key: k as AlterKey, quota_value: null }));
        return withClient(flags, async (client) => {
          const n = await client.alterQuotas(alterations);
          process.stdout.write(
            n === 0
              ? `nothing to remove: ${showEntity(entity)} has no ${unique.join(', ')} set\n`
              : `removed ${n} quota(s) from ${showEntity(entity)} (of ${unique.join(', ')})\n`,
          );
        });
      }),
    );
}

interface UsageFlags extends EntityFlags, ConnectionFlags {
  json?: boolean;
  top: string;
  sort: string;
  once?: boolean;
  interval: string;
}

function usageQuery(flags: UsageFlags) {
  const top = Number(flags.top);
  if (!Number.isInteger(top) || top < 1 || top > 10000) throw new UsageError(`--top: "${flags.top}" must be from 1 to 10000`);
  if (flags.sort !== 'utilization' && flags.sort !== 'rate') throw new UsageError(`--sort: use utilization or rate`);
  if (flags.default) throw new UsageError('usage is per bucket: name a --user, --client-id or --consumer-group');
  return { entities: entityFromFlags(flags), top, sortBy: flags.sort as 'utilization' | 'rate' };
}

function usageFlags(cmd: Command, defaultTop: string): Command {
  addEntityFlags(cmd);
  cmd.option('--top <n>', 'rows to show', defaultTop).option('--sort <key>', 'utilization or rate', 'utilization');
  return addConnectionFlags(cmd);
}

function usageCommand(): Command {
  return usageFlags(new Command('usage').description('live usage of the busiest buckets, highest utilization first'), '100')
    .option('--json', 'print the buckets as JSON')
    .addHelpText(
      'after',
      `
UTIL is outstanding usage / (quota x window): above 100% the bucket is in debt and its callers are throttled.

Examples:
  rivven quota usage
  rivven quota usage --user alice --json
  rivven quota usage --sort rate --top 10`,
    )
    .action((flags: UsageFlags) =>
      run(() => {
        const query = usageQuery(flags);
        return withClient(flags, async (client) => {
          const buckets = await client.describeUsage(query);
          process.stdout.write(
            flags.json ? `${JSON.stringify(buckets, null, 2)}\n` : `${usageTable(buckets, Date.now(), process.stdout.columns)}\n`,
          );
        });
      }),
    );
}

function topCommand(): Command {
  return usageFlags(new Command('top').description('a live view of the busiest buckets, refreshed every second'), '20')
    .option('--once', 'print one snapshot and exit (for scripts)')
    .option('--interval <ms>', 'refresh interval', '1000')
    .addHelpText(
      'after',
      `
Press q or Ctrl-C to quit. Without a terminal (piped), each refresh is printed as plain text.

Examples:
  rivven quota top
  rivven quota top --user alice --sort rate
  rivven quota top --once --top 5`,
    )
    .action((flags: UsageFlags) =>
      run(() => {
        const query = usageQuery(flags);
        const interval = Number(flags.interval);
        if (!Number.isInteger(interval) || interval < 100) throw new UsageError('--interval: at least 100 ms');
        return withClient(flags, (client) => liveTop(client, query, flags, interval));
      }),
    );
}

async function liveTop(client: QuotaClient, query: ReturnType<typeof usageQuery>, flags: UsageFlags, interval: number): Promise<void> {
  const tty = process.stdout.isTTY === true && !flags.once;
  const frame = async (): Promise<string> => {
    const buckets = await client.describeUsage(query);
    const head = `rivven top  ${flags.server}  ${new Date().toISOString().slice(11, 19)}  sorted by ${query.sortBy}  (q to quit)`;
    return `${tty ? head : head.replace('  (q to quit)', '')}\n\n${usageTable(buckets, Date.now(), process.stdout.columns)}\n`;
  };
  if (flags.once) {
    process.stdout.write(await frame());
    return;
  }
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const input = process.stdin;
  if (input.isTTY) {
    input.setRawMode(true);
    input.resume();
    input.on('data', (key: Buffer) => {
      // q, Q, Ctrl-C, Esc
      if ([0x71, 0x51, 0x03, 0x1b].includes(key[0]!)) stop();
    });
  }
  process.once('SIGINT', () => stop());
  try {
    if (tty) process.stdout.write('\x1b[?25l'); // hide the cursor while redrawing
    for (;;) {
      const text = await frame();
      process.stdout.write(tty ? `\x1b[H\x1b[2J${text}` : `${text}\n`);
      const tick = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), interval));
      if (await Promise.race([tick, stopped.then(() => true)])) break;
    }
  } finally {
    if (tty) process.stdout.write('\x1b[?25h\n');
    if (input.isTTY) {
      input.setRawMode(false);
      input.pause();
    }
  }
}

/** A user or client-id entity (what block, unblock and reset act on). */
function principalEntity(flags: EntityFlags, what: string): Component[] {
  const entity = requireEntity(flags);
  if (entity.some(([type]) => type === 'default' || type === 'consumer-group') && what !== 'reset') {
    throw new UsageError(`${what} takes --user and/or --client-id`);
  }
  if (entity.some(([type]) => type === 'default')) throw new UsageError(`${what}: name a --user, --client-id or --consumer-group`);
  return entity;
}

function blockCommand(): Command {
  const cmd = new Command('block').description('deny every record call of a user or client-id, with a reason (Denied replies)');
  addEntityFlags(cmd);
  cmd.requiredOption('--reason <text>', 'why: shown to operators and sent in every Denied reply', once('--reason'));
  addConnectionFlags(cmd);
  return cmd
    .addHelpText(
      'after',
      '\nExamples:\n  rivven quota block --user mallory --reason "abuse ticket 4711"\n  rivven quota unblock --user mallory\n',
    )
    .action((flags: EntityFlags & ConnectionFlags & { reason: string }) =>
      run(() => {
        const entity = principalEntity(flags, 'block');
        return withClient(flags, async (client) => {
          await client.alterQuotas([{ entity, quota_key: 'blocked', quota_value: flags.reason }]);
          process.stdout.write(`blocked ${showEntity(entity)}: every record call is answered Denied\n`);
        });
      }),
    );
}

function unblockCommand(): Command {
  const cmd = new Command('unblock').description('lift a block set with rivven quota block');
  addEntityFlags(cmd);
  addConnectionFlags(cmd);
  return cmd.addHelpText('after', '\nExample:\n  rivven quota unblock --user mallory\n').action((flags: EntityFlags & ConnectionFlags) =>
    run(() => {
      const entity = principalEntity(flags, 'unblock');
      return withClient(flags, async (client) => {
        const n = await client.alterQuotas([{ entity, quota_key: 'blocked', quota_value: null }]);
        process.stdout.write(n === 0 ? `${showEntity(entity)} was not blocked\n` : `unblocked ${showEntity(entity)}\n`);
      });
    }),
  );
}

function resetCommand(): Command {
  const cmd = new Command('reset').description("clear the measured usage and debt of a principal's buckets (its quotas stay)");
  addEntityFlags(cmd);
  addConnectionFlags(cmd);
  return cmd
    .addHelpText('after', '\nExamples:\n  rivven quota reset --user alice\n  rivven quota reset --consumer-group etl\n')
    .action((flags: EntityFlags & ConnectionFlags) =>
      run(() => {
        const entity = principalEntity(flags, 'reset');
        return withClient(flags, async (client) => {
          const n = await client.resetUsage(entity);
          process.stdout.write(`reset ${n} bucket(s) of ${showEntity(entity)}\n`);
        });
      }),
    );
}

/** "1h", "30m", "90s", "2d" -> milliseconds. */
function parseSince(text: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(text.trim());
  if (m === null) throw new UsageError(`--since: "${text}" is not a duration like 90s, 30m, 1h or 2d`);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

/** A --type value, checked here: the server would refuse it as an INVALID_REQUEST that names no flag. */
function violationType(text: string): ViolationType {
  const type = text.trim().toUpperCase().replaceAll('-', '_');
  if ((VIOLATION_TYPES as readonly string[]).includes(type)) return type as ViolationType;
  const hint = /THROTTL/.test(type) ? ' (a throttle is RATE_LIMIT_EXCEEDED)' : '';
  throw new UsageError(`--type: unknown type "${text}"${hint}; use ${VIOLATION_TYPES.join(', ')}`);
}

function violationsCommand(): Command {
  const cmd = new Command('violations').description('the violation log: throttle, block, lease and auth-failure episodes, with a summary');
  addEntityFlags(cmd);
  cmd
    .option('--since <duration>', 'only events this recent: 90s, 30m, 1h, 2d', once('--since'))
    .option('--type <type>', `${VIOLATION_TYPES.join(', ')} (repeatable, or comma-separated)`, (v: string, prev: string[] | undefined) => [
      ...(prev ?? []),
      ...v.split(','),
    ])
    .option('--limit <n>', 'events to show, newest', '50')
    .option('--json', 'print the events and the summary as JSON');
  addConnectionFlags(cmd);
  return cmd
    .addHelpText(
      'after',
      '\nExamples:\n  rivven quota violations --since 1h\n  rivven quota violations --user alice --type RATE_LIMIT_EXCEEDED --json\n',
    )
    .action((flags: EntityFlags & ConnectionFlags & { since?: string; type?: string[]; limit: string; json?: boolean }) =>
      run(() => {
        const limit = Number(flags.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new UsageError('--limit: from 1 to 10000');
        if (flags.default) throw new UsageError('violations are per principal: name a --user, --client-id or --consumer-group');
        const types = flags.type?.map(violationType);
        const since = flags.since === undefined ? undefined : Date.now() - parseSince(flags.since);
        const entities = entityFromFlags(flags);
        return withClient(flags, async (client) => {
          const r = await client.describeViolations({
            entities,
            limit,
            ...(since !== undefined ? { sinceMs: since } : {}),
            ...(types !== undefined ? { types } : {}),
          });
          if (flags.json) {
            process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
            return;
          }
          const rows = r.events.map((e) => [
            e.time.slice(0, 19).replace('T', ' '),
            e.type,
            truncate(escapeUnprintable(e.entity), 60),
            e.quota_type ?? '-',
            String(e.count),
            escapeUnprintable(e.detail),
          ]);
          const byType =
            Object.entries(r.summary.by_type)
              .map(([t, n]) => `${t} ${n}`)
              .join(', ') || 'none';
          const top =
            r.summary.top_entities
              .slice(0, 5)
              .map((e) => `${escapeUnprintable(e.entity)} (${e.count})`)
              .join(', ') || '-';
          process.stdout.write(
            `${textTable([['TIME', 'TYPE', 'ENTITY', 'QUOTA', 'COUNT', 'DETAIL'], ...rows])}\n\n${r.summary.total} event(s): ${byType}\ntop: ${top}\n`,
          );
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
    .addCommand(blockCommand())
    .addCommand(unblockCommand())
    .addCommand(resetCommand())
    .addCommand(violationsCommand())
    .addCommand(usageCommand())
    .addCommand(topCommand())
    .addHelpText('after', '\nExample:\n  rivven quota set --user alice --produce-bytes-rate 10MB\n');
}
