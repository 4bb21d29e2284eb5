import { Command } from 'commander';
import type { QuotaClient } from '../client/quota-client.js';
import { addConnectionFlags, type ConnectionFlags, run, withClient } from './connection.js';
import { addEntityFlags, entityFromFlags, type EntityFlags } from './entity-flags.js';
import { UsageError } from './exit-codes.js';
import { usageTable } from './usage-table.js';

// `rivven quota usage` (one snapshot of the busiest buckets) and `rivven quota top` (the same, refreshed every second).

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

export function usageCommand(): Command {
  return usageFlags(new Command('usage').description('current usage of the busiest buckets, highest utilization first'), '100')
    .option('--json', 'print the buckets as JSON')
    .addHelpText(
      'after',
      `
UTIL is outstanding usage / (quota x window): above 100% the bucket is in debt and its callers are throttled.
A key with several rates (5/s,20/min) has a bucket per rate: a row per period, LIMIT in its unit (20/min).

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

export function topCommand(): Command {
  return usageFlags(new Command('top').description('the busiest buckets, refreshed every second'), '20')
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
