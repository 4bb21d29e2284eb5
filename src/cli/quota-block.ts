import { Command } from 'commander';
import type { Component } from '../quota/entity.js';
import { addConnectionFlags, type ConnectionFlags, run, withClient } from './connection.js';
import { addEntityFlags, once, showEntity, type EntityFlags } from './entity-flags.js';
import { UsageError } from './exit-codes.js';
import { requireEntity } from './quota-set.js';

// `rivven quota block`, `unblock` and `reset`: what an operator does to one principal.

/** A user or client-id entity (what block, unblock and reset act on). */
function principalEntity(flags: EntityFlags, what: string): Component[] {
  const entity = requireEntity(flags);
  if (entity.some(([type]) => type === 'default' || type === 'consumer-group') && what !== 'reset') {
    throw new UsageError(`${what} takes --user and/or --client-id`);
  }
  if (entity.some(([type]) => type === 'default')) throw new UsageError(`${what}: name a --user, --client-id or --consumer-group`);
  return entity;
}

export function blockCommand(): Command {
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

export function unblockCommand(): Command {
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

export function resetCommand(): Command {
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
