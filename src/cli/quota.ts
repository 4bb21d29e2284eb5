import { Command } from 'commander';
import { blockCommand, resetCommand, unblockCommand } from './quota-block.js';
import { listCommand } from './quota-list.js';
import { deleteCommand, setCommand } from './quota-set.js';
import { topCommand, usageCommand } from './quota-top.js';
import { violationsCommand } from './quota-violations.js';

// `rivven quota`: each subcommand lives in its own file; this one only puts them together.

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
