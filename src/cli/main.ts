import { Command, CommanderError } from 'commander';
import { nearMisses } from '../util/did-you-mean.js';
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
  suggestFlags(cmd);
  for (const sub of cmd.commands) configureTree(sub);
}

/**
 * commander suggests a flag only within a small edit distance, so `--produce-rate` gets no hint; ours also
 * finds a flag with a word left out. (unknownOption is commander's one hook for this message.)
 */
function suggestFlags(cmd: Command): void {
  const hooked = cmd as unknown as { unknownOption(flag: string): void };
  const original = hooked.unknownOption.bind(cmd);
  hooked.unknownOption = (flag: string) => {
    const longs = cmd.options.map((o) => o.long).filter((l): l is string => l !== undefined);
    const near = flag.startsWith('--') ? nearMisses(flag, longs) : [];
    if (near.length === 0) return original(flag);
    cmd.error(`error: unknown option '${flag}'\n(Did you mean ${near.join(' or ')}?)`, {
      code: 'commander.unknownOption',
    });
  };
}

/**
 * A reader that goes away (`rivven --help | head -1`) is a normal end for a command-line tool, as SIGPIPE is
 * for C ones: exit quietly instead of crashing with an unhandled EPIPE and a stack trace.
 */
function exitQuietlyOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(process.exitCode ?? 0);
  });
}

export async function main(argv: string[]): Promise<void> {
  exitQuietlyOnClosedPipe(process.stdout);
  exitQuietlyOnClosedPipe(process.stderr);
  await runCli(argv);
}

/**
 * Parses `argv` and runs its command, leaving the exit code in process.exitCode. Apart from `main` so that the
 * tests can run a command line in their own process (the pipe handlers above belong to a process of its own).
 */
export async function runCli(argv: string[]): Promise<void> {
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
