import t from 'tap';
import { run, runInProcess, type RunResult } from './cli.js';
import { startServer, type TestServer } from './server.js';

export interface QuotaCli {
  /** The server this file's CLI runs talk to (started before the file's first test). */
  server(): TestServer;
  /** `rivven quota ...args` against it, parsed and run in this process (see runInProcess). */
  quota(...args: string[]): Promise<RunResult>;
  /** `rivven quota ...args` against it, by the real bin/rivven in a process of its own. */
  spawned(...args: string[]): Promise<RunResult>;
  /** `rivven quota list ...entity --json`, parsed. */
  listJson(...entity: string[]): Promise<unknown[]>;
}

/** One server for the CLI tests of a file: started before its first test, stopped after its last. */
export function quotaCliAgainstServer(): QuotaCli {
  let server: TestServer | undefined;
  let env: Record<string, string> = {};
  t.before(async () => {
    server = await startServer();
    env = { RIVVEN_SERVER: `127.0.0.1:${server.port}` };
  });
  t.teardown(() => server?.stop());
  const quota = (...args: string[]) => runInProcess(['quota', ...args], { env });
  return {
    server: () => server!,
    quota,
    spawned: (...args) => run(['quota', ...args], { env }),
    listJson: async (...entity) => JSON.parse((await quota('list', ...entity, '--json')).stdout) as unknown[],
  };
}
