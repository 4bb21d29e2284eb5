import { Command } from 'commander';
import { VIOLATION_TYPES, type ViolationType } from '../protocol/messages/describe-violations.js';
import { escapeUnprintable } from '../util/printable.js';
import { addConnectionFlags, type ConnectionFlags, run, withClient } from './connection.js';
import { addEntityFlags, entityFromFlags, once, type EntityFlags } from './entity-flags.js';
import { UsageError } from './exit-codes.js';
import { formatCount } from './numbers.js';
import { truncate } from './show-name.js';
import { textTable } from './text-table.js';

// `rivven quota violations`: the violation log's events and summary.

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

export function violationsCommand(): Command {
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
            // A throttle of a rate per minute, hour or day names its period: request_rate/min.
            e.quota_type === null ? '-' : e.period === undefined ? e.quota_type : `${e.quota_type}/${e.period}`,
            formatCount(e.count),
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
