import os from 'node:os';
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { QuotaClient, type ClientTls } from '../client/quota-client.js';
import { RivvenError } from '../protocol/error-codes.js';
import { escapeUnprintable } from '../util/printable.js';
import { EXIT_FAILED, EXIT_OK, UsageError } from './exit-codes.js';

// How every client command of the CLI reaches a server: the connection flags, one connect, failures as exit codes.

export interface ConnectionFlags {
  server: string;
  token?: string;
  timeout: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

const DEFAULT_SERVER = '127.0.0.1:9190';

/** --server, --token, --timeout and the TLS files on every subcommand, so they may be written anywhere on the line. */
export function addConnectionFlags(cmd: Command): Command {
  return cmd
    .addOption(new Option('--server <host:port>', 'the rivven server').env('RIVVEN_SERVER').default(DEFAULT_SERVER))
    .addOption(new Option('--token <token>', 'authentication token (rivven token create)').env('RIVVEN_TOKEN'))
    .addOption(new Option('--tls-ca <file>', "connect with TLS, trusting this CA (PEM) for the server's certificate").env('RIVVEN_TLS_CA'))
    .addOption(new Option('--tls-cert <file>', 'client certificate (PEM), for servers that require mTLS').env('RIVVEN_TLS_CERT'))
    .addOption(new Option('--tls-key <file>', "the client certificate's key (PEM)").env('RIVVEN_TLS_KEY'))
    .option('--timeout <ms>', 'request timeout in milliseconds', '5000');
}

/** The TLS options the flags ask for, files read now; undefined for plaintext. */
function clientTls(flags: ConnectionFlags): ClientTls | undefined {
  if (flags.tlsCa === undefined && flags.tlsCert === undefined && flags.tlsKey === undefined) return undefined;
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) throw new UsageError('--tls-cert and --tls-key are given together');
  const file = (flag: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new UsageError(`${flag}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  };
  return {
    ...(flags.tlsCa !== undefined ? { ca: file('--tls-ca', flags.tlsCa) } : {}),
    ...(flags.tlsCert !== undefined ? { cert: file('--tls-cert', flags.tlsCert) } : {}),
    ...(flags.tlsKey !== undefined ? { key: file('--tls-key', flags.tlsKey) } : {}),
  };
}

function parseServer(server: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(server);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) throw new UsageError(`--server: "${server}" is not host:port`);
  return { host: m[1] ?? m[2]!, port };
}

/** Connects once (no long retries: a person is waiting), runs `fn`, maps failures to exit codes. */
export async function withClient(flags: ConnectionFlags, fn: (c: QuotaClient) => Promise<void>): Promise<number> {
  const { host, port } = parseServer(flags.server);
  const timeout = Number(flags.timeout);
  if (!Number.isInteger(timeout) || timeout <= 0) throw new UsageError(`--timeout: "${flags.timeout}" is not a positive integer`);
  const tlsOptions = clientTls(flags);
  let client: QuotaClient | undefined;
  try {
    client = await QuotaClient.connect({
      host,
      port,
      requestTimeoutMs: timeout,
      connectTimeoutMs: timeout,
      connectAttempts: 1,
      clientName: `rivven-cli ${os.userInfo().username}@${os.hostname()}`,
      ...(flags.token !== undefined ? { token: flags.token } : {}),
      ...(tlsOptions !== undefined ? { tls: tlsOptions } : {}),
    });
  } catch (err) {
    if (err instanceof RivvenError && (err.code === 'AUTHENTICATION_FAILED' || err.code === 'AUTHENTICATION_REQUIRED')) {
      process.stderr.write(`rivven: ${err.code}: ${escapeUnprintable(err.message)} (set --token or RIVVEN_TOKEN)\n`);
      return EXIT_FAILED;
    }
    const reason = escapeUnprintable(err instanceof Error ? err.message : String(err));
    // Only "cannot reach" may mean a stopped server or a wrong address; a TLS failure says what to change itself.
    const hint = reason.startsWith('cannot reach') ? '; is `rivven serve` running there? (set --server or RIVVEN_SERVER)' : '';
    process.stderr.write(`rivven: ${reason}${hint}\n`);
    return EXIT_FAILED;
  }
  try {
    await fn(client);
    return EXIT_OK;
  } catch (err) {
    if (!(err instanceof RivvenError)) throw err;
    const where = err.index !== undefined ? ` (alteration ${err.index})` : '';
    process.stderr.write(`rivven: ${err.code}: ${escapeUnprintable(err.message)}${where}\n`);
    return EXIT_FAILED;
  } finally {
    await client.close();
  }
}

export function run(fn: () => Promise<number>): Promise<void> {
  return fn().then((code) => {
    process.exitCode = code;
  });
}
