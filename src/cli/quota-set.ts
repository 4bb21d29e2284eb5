import { Command } from 'commander';
import type { Component } from '../quota/entity.js';
import { isAlterKey, LIMIT_KEYS, resourceKeyShape, type AlterKey } from '../quota/quota-key.js';
import { addConnectionFlags, type ConnectionFlags, run, withClient } from './connection.js';
import { addEntityFlags, entityFromFlags, once, showEntity, type EntityFlags } from './entity-flags.js';
import { UsageError } from './exit-codes.js';
import { addLimitFlags, limitAlterations, noLimitGiven } from './limit-flags.js';
import { formatConfigured } from './quota-values.js';

// `rivven quota set` and `rivven quota delete`: the commands that change an entity's values.

/** The entity the flags name; a usage error when they name none. */
export function requireEntity(flags: EntityFlags): Component[] {
  const entity = entityFromFlags(flags);
  if (entity.length === 0) {
    throw new UsageError('name an entity: --user, --client-id, --consumer-group, their -default forms, or --default');
  }
  return entity;
}

export function setCommand(): Command {
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
  rivven quota set --user carol --request-rate 10/min
  rivven quota set --user dave --produce-bytes-rate 10MB/s,100GB/d
  rivven quota set --user-default --client-id-default --produce-bytes-rate 5MiB
  rivven quota set --consumer-group etl --consume-bytes-rate unlimited --dry-run
  rivven quota set --user alice --tier pro
  rivven quota set --user bob --request-rate 50 --request-burst 200
  rivven quota set --user alice --rate orders=10/min --burst orders=10 --rate services=5/h   (quotas.resources)
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
            alterations.map((a) => `${a.quota_key}=${formatConfigured(a.quota_key, a.quota_value!)}`).join(', ') +
            (flags.shadow ? ' (shadow)' : '');
          const verb = flags.dryRun ? `valid, nothing changed (dry run): ${n} alteration(s)` : `set ${n} quota(s)`;
          process.stdout.write(`${verb} for ${showEntity(entity)}: ${what}\n`);
        });
      }),
    );
}

export function deleteCommand(): Command {
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
        // A resource's key (orders_rate) is checked against quotas.resources by the server.
        const unknown = keys.filter((k) => (!isAlterKey(k) && !resourceKeyShape(k)) || k === 'blocked');
        if (unknown.length > 0)
          throw new UsageError(
            `--quota: unknown key ${unknown.join(', ')}; use ${[...LIMIT_KEYS, 'tier'].join(', ')} or a resource's <name>_rate, <name>_burst (unblock with rivven quota unblock)`,
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
