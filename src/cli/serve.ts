import { Command } from 'commander';

export interface ServeFlags {
  config?: string;
  host?: string;
  port?: string;
  metricsPort?: string;
  dataDir?: string;
  logLevel?: string;
}

export function serveCommand(): Command {
  return new Command('serve')
    .description('run the quota sidecar (embedded defaults when no config file is given)')
    .option('--config <file>', 'rivven.yaml to read (default: ./rivven.yaml if present)')
    .option('--host <host>', 'listen address (server.host)')
    .option('--port <port>', 'listen port (server.port)')
    .option('--metrics-port <port>', 'the /metrics, /healthz, /readyz port (metrics.port); 0 picks a free one')
    .option('--data-dir <dir>', 'where run-time quotas and the audit log are kept (storage.data_dir)')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (log.level)')
    .addHelpText(
      'after',
      '\nExamples:\n  rivven serve\n  rivven serve --config /etc/rivven/rivven.yaml --port 9190\n  rivven serve --port 9290 --metrics-port 9291    (a second sidecar on this host)\n',
    )
    .action(async (flags: ServeFlags) => {
      // Loaded on demand: the quota commands start faster without the server's dependencies.
      const { serve } = await import('./serve-run.js');
      process.exitCode = await serve(flags);
    });
}
