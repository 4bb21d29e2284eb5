import { Command } from 'commander';
import type { QuotaEntry } from '../client/quota-client.js';
import type { Component } from '../quota/entity.js';
import { BURST_KEYS, isAlterKey, MAX_IN_FLIGHT, QUOTA_KEYS, type QuotaKey, type ResourceKey } from '../quota/quota-key.js';
import { escapeUnprintable } from '../util/printable.js';
import { addConnectionFlags, type ConnectionFlags, run, withClient } from './connection.js';
import { addEntityFlags, entityFromFlags, showEntity, type EntityFlags } from './entity-flags.js';
import { formatConfigured } from './quota-values.js';
import { showName } from './show-name.js';
import { textTable } from './text-table.js';

// `rivven quota list`, and the table of configured quotas it shares with `rivven tier list`.

const contains = (entity: Component[], [type, name]: Component): boolean => entity.some(([t, n]) => t === type && n === name);

/** Tier, bursts and block of an entry, for the POLICY column (shown only when some entry has one). */
function policy(e: QuotaEntry): string {
  const parts: string[] = [];
  if (e.quotas.tier !== undefined) parts.push(`tier ${showName(String(e.quotas.tier))}`);
  const bursts = BURST_KEYS.filter((k) => e.quotas[k] !== undefined).map((k) => `${k.split('_')[0]}=${formatConfigured(k, e.quotas[k])}`);
  if (bursts.length > 0) parts.push(`burst ${bursts.join(' ')}`);
  const resourceBursts = resourceKeys(e, '_burst').map((k) => `${k.slice(0, -6)}=${formatConfigured(k, e.quotas[k])}`);
  if (resourceBursts.length > 0) parts.push(`burst ${resourceBursts.join(' ')}`);
  if (e.quotas.blocked !== undefined) parts.push(`BLOCKED: ${escapeUnprintable(JSON.stringify(e.quotas.blocked))}`);
  return parts.join(', ');
}

/** An entry's keys of named resources (quotas.resources) ending in `suffix`, in the order given. */
const resourceKeys = (e: QuotaEntry, suffix: '_rate' | '_burst'): ResourceKey[] =>
  (Object.keys(e.quotas) as ResourceKey[]).filter((k) => k.endsWith(suffix) && !isAlterKey(k));

/** The RESOURCES cell: each named resource's rate in the operator's unit (`orders=10/min`), shadow marked. */
const resourcesCell = (e: QuotaEntry): string =>
  resourceKeys(e, '_rate')
    .map((k) => `${k.slice(0, -5)}=${formatConfigured(k, e.quotas[k])}${e.shadow?.includes(k) ? ' (shadow)' : ''}`)
    .join(' ');

/** A rate cell; a shadow value is marked, since it is measured but not enforced. */
const rateCell = (e: QuotaEntry, k: QuotaKey | typeof MAX_IN_FLIGHT): string =>
  `${formatConfigured(k, e.quotas[k])}${e.shadow?.includes(k) ? ' (shadow)' : ''}`;

/** The table of `quota list`: IN-FLIGHT (max_in_flight) and POLICY appear only when some entry has one. */
export const quotaTable = (entries: QuotaEntry[]): string => {
  const policies = entries.map(policy);
  const withInFlight = entries.some((e) => e.quotas[MAX_IN_FLIGHT] !== undefined);
  const resources = entries.map(resourcesCell);
  const withResources = resources.some((r) => r !== '');
  const withPolicy =
    policies.some((p) => p !== '') ||
    entries.some((e) =>
      e.shadow?.some((k) => !(QUOTA_KEYS as readonly string[]).includes(k) && k !== MAX_IN_FLIGHT && !k.endsWith('_rate')),
    );
  return textTable([
    [
      'ENTITY',
      'PRODUCE',
      'CONSUME',
      'REQUESTS',
      ...(withInFlight ? ['IN-FLIGHT'] : []),
      ...(withResources ? ['RESOURCES'] : []),
      ...(withPolicy ? ['POLICY'] : []),
    ],
    ...entries.map((e, i) => [
      showEntity(e.entity),
      ...QUOTA_KEYS.map((k) => rateCell(e, k)),
      ...(withInFlight ? [rateCell(e, MAX_IN_FLIGHT)] : []),
      ...(withResources ? [resources[i]!] : []),
      ...(withPolicy ? [policies[i]!] : []),
    ]),
  ]);
};

export function listCommand(): Command {
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
