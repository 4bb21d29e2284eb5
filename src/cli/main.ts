import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.js';
import { EXIT_USAGE, UsageError } from './exit-codes.js';
import { quotaCommand } from './quota.js';
import { serveCommand } from './serve.js';
import { tierCommand } from './tier.js';
import { fleetCommand } from './fleet.js';
import { tokenCommand } from './token.js';

export function program(): Command {
  const root = new Command('rivven')
    .description('rivven quota sidecar: per-principal produce, consume and request quotas for Kafka-style brokers')
    .version(VERSION)
    .addHelpText(
      'after',
      '\nExamples:\n  rivven serve --config rivven.yaml\n  rivven quota list\n  rivven quota set --user alice --produce-bytes-rate 10MB\n',
    );
  root.addCommand(serveCommand());
  root.addCommand(quotaCommand());
  root.addCommand(tierCommand());
  root.addCommand(fleetCommand());
  root.addCommand(tokenCommand());
  configureTree(root);
  return root;
}

/** Commands attached with addCommand() do not inherit these settings, so every command gets them here. */
function configureTree(cmd: Command): void {
  cmd.showHelpAfterError('(run with --help for usage)').exitOverride();
  for (const sub of cmd.commands) configureTree(sub);
}

export async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has printed the reason already; --help and --version end here with exit code 0.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
      return;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`rivven: ${err.message}\n`);
      process.exitCode = EXIT_USAGE;
      return;
    }
    throw err;
  }
}
