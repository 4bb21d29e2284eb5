import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.js';
import { EXIT_USAGE, UsageError } from './exit-codes.js';
import { serveCommand } from './serve.js';

export function program(): Command {
  const root = new Command('rivven')
    .description('rivven quota sidecar: per-principal produce, consume and request quotas for Kafka-style brokers')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  root.addCommand(serveCommand());
  return root;
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
