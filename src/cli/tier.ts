import { Command } from 'commander';
import type { Component } from '../quota/entity.js';
import { LIMIT_KEYS } from '../quota/quota-key.js';
import { UsageError } from './exit-codes.js';
import { addLimitFlags, limitAlterations, noLimitGiven } from './limit-flags.js';
import { addConnectionFlags, type ConnectionFlags, run, withClient } from './connection.js';
import { quotaTable } from './quota-list.js';
import { showName } from './show-name.js';

const tierEntity = (name: string): Component[] => {
  if (name.length === 0) throw new UsageError('a tier has a name');
  return [['tier', name]];
};

function setCommand(): Command {
  const cmd = new Command('set')
    .description('create or change a tier: a named set of rates and bursts that users and client-ids are assigned')
    .argument('<tier>', 'the tier name, e.g. pro');
  addLimitFlags(cmd);
  cmd.option('--dry-run', 'validate on the server, change nothing');
  addConnectionFlags(cmd);
  return cmd
    .addHelpText(
      'after',
      `
Examples:
  rivven tier set pro --request-rate 60 --produce-bytes-rate 10MB --request-burst 120
  rivven tier set free --request-rate 20/min --produce-bytes-rate 1MB/s,10GB/d
  rivven tier set pro --rate orders=60/min --burst orders=10 --max-in-flight 25   (quotas.resources)
  rivven quota set --user alice --tier pro          (alice now gets pro's values where she sets none)`,
    )
    .action((name: string, flags: ConnectionFlags & Record<string, unknown>) =>
      run(() => {
        const alterations = limitAlterations(tierEntity(name), flags);
        if (alterations.length === 0) throw noLimitGiven();
        return withClient(flags, async (client) => {
          const n = await client.alterQuotas(alterations, { validateOnly: flags.dryRun === true });
          process.stdout.write(`${flags.dryRun ? 'valid, nothing changed (dry run)' : `set ${n} value(s)`} of tier ${showName(name)}\n`);
        });
      }),
    );
}

function listCommand(): Command {
  const cmd = new Command('list').description('show the tiers set at run time (rivven.yaml tiers are per sidecar)').argument('[tier]');
  cmd.option('--json', 'print the entries as JSON');
  addConnectionFlags(cmd);
  return cmd
    .addHelpText('after', '\nExamples:\n  rivven tier list\n  rivven tier list pro --json\n')
    .action((name: string | undefined, flags: ConnectionFlags & { json?: boolean }) =>
      run(() =>
        withClient(flags, async (client) => {
          const all = await client.describeQuotas(name === undefined ? [] : tierEntity(name));
          const tiers = all.filter((e) => e.entity[0]?.[0] === 'tier');
          process.stdout.write(flags.json ? `${JSON.stringify(tiers, null, 2)}\n` : `${quotaTable(tiers)}\n`);
        }),
      ),
    );
}

function deleteCommand(): Command {
  const cmd = new Command('delete').description('delete a tier (refused while users or client-ids are assigned to it)').argument('<tier>');
  addConnectionFlags(cmd);
  return cmd.addHelpText('after', '\nExample:\n  rivven tier delete pro\n').action((name: string, flags: ConnectionFlags) =>
    run(() => {
      const entity = tierEntity(name);
      return withClient(flags, async (client) => {
        const [entry] = (await client.describeQuotas(entity)).filter((e) => e.entity[0]?.[0] === 'tier');
        const keys = LIMIT_KEYS.filter((k) => entry?.quotas[k] !== undefined);
        if (keys.length === 0) {
          process.stdout.write(`nothing to delete: tier ${showName(name)} has no run-time values\n`);
          return;
        }
        await client.alterQuotas(keys.map((k) => ({ entity, quota_key: k, quota_value: null })));
        process.stdout.write(`deleted tier ${showName(name)}\n`);
      });
    }),
  );
}

export function tierCommand(): Command {
  return new Command('tier')
    .description('named sets of quotas (free, basic, pro, enterprise ...) assigned with rivven quota set --tier')
    .addCommand(setCommand())
    .addCommand(listCommand())
    .addCommand(deleteCommand())
    .addHelpText('after', '\nExample:\n  rivven tier set pro --request-rate 60 --produce-bytes-rate 10MB\n');
}
