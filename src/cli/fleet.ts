import { Command } from 'commander';
import type { FleetDescribed } from '../protocol/messages/describe-fleet.js';
import { addConnectionFlags, type ConnectionFlags, run, withClient } from './connection.js';
import { escapeUnprintable, hasUnprintable } from '../util/printable.js';
import { formatCount, formatDuration } from './numbers.js';
import { textTable } from './text-table.js';

/** A node id as printed: host:port reads as itself; a control character is escaped (ids come from other hosts). */
const nodeName = (id: string): string => (hasUnprintable(id) ? escapeUnprintable(JSON.stringify(id)) : id);
/** Any other text of the reply: it came from Redis (other sidecars' heartbeats, Redis' error messages). */
const text = (s: unknown): string => escapeUnprintable(String(s));
const ago = (ms: number): string => formatDuration(ms, 'fine');
const lag = (ms: number): string => (ms < 0 ? 'never synced' : ago(ms));

/** The fleet as `rivven fleet status` prints it: a summary line, then one row per sidecar. */
export function fleetStatusText(f: FleetDescribed): string {
  if (!f.enabled) return 'fleet mode is off on this sidecar (fleet.enabled: false): its buckets are its own\n';
  const head =
    `this sidecar: ${nodeName(String(f.node_id ?? ''))}, breaker ${text(f.breaker)}, last sync ${lag(f.sync_lag_ms)} ago\n` +
    `redis: ${text(f.backend)}\n` +
    `live sidecars: ${formatCount(f.live)}${f.breaker === 'closed' ? '' : ` (deciding alone with quota / ${formatCount(f.live)})`}\n` +
    (f.last_error === null ? '' : `last error: ${text(f.last_error)}\n`);
  const rows = [['NODE', 'SEEN', 'SYNC LAG', 'BREAKER', 'BUCKETS', 'QUEUED', 'CONFIG VERSION', 'SETTINGS']];
  for (const s of f.sidecars) {
    rows.push([
      nodeName(String(s.node_id)),
      `${ago(s.seen_ms_ago)} ago`,
      lag(s.sync_lag_ms),
      text(s.breaker),
      formatCount(s.buckets),
      formatCount(s.queued),
      formatCount(s.config_version),
      text(s.settings),
    ]);
  }
  const settings = new Set(f.sidecars.map((s) => s.settings));
  const warning =
    settings.size > 1
      ? 'warning: the sidecars differ in the rivven.yaml settings that shape buckets (SETTINGS: quota defaults, window, debt, resolution order, tiers, sync interval); they count the same usage differently\n'
      : '';
  return `${head}\n${textTable(rows)}\n${warning}`;
}

function statusCommand(): Command {
  const cmd = new Command('status').description('the sidecars of the fleet (heartbeats), their sync lag and breaker state');
  cmd.option('--json', 'print the status as JSON');
  addConnectionFlags(cmd);
  return cmd
    .addHelpText('after', '\nExamples:\n  rivven fleet status\n  rivven fleet status --server broker-2:9190 --json\n')
    .action((flags: ConnectionFlags & { json?: boolean }) =>
      run(() =>
        withClient(flags, async (client) => {
          const f = await client.describeFleet();
          process.stdout.write(flags.json ? `${JSON.stringify(f, null, 2)}\n` : fleetStatusText(f));
        }),
      ),
    );
}

export function fleetCommand(): Command {
  return new Command('fleet')
    .description('fleet mode: every sidecar of one Redis key prefix shares quotas and usage buckets')
    .addCommand(statusCommand());
}
