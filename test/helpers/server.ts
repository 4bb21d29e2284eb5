import { App, type AppDeps } from '../../src/app.js';
import { QuotaClient, type QuotaClientOptions } from '../../src/client/quota-client.js';
import { loadConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/observability/logger.js';
import { ManualClock } from '../../src/quota/clock.js';
import { MemoryQuotaStore, type QuotaStore } from '../../src/store/quota-store.js';

export interface TestServer {
  app: App;
  port: number;
  clock: ManualClock;
  stop(): Promise<void>;
}

/** A real server on 127.0.0.1 port 0 with a manual clock; `yaml` overrides the config like a file would. */
export async function startServer(
  overrides: Record<string, Record<string, unknown>> = {},
  store: QuotaStore = new MemoryQuotaStore(),
  deps: Partial<AppDeps> = {},
): Promise<TestServer> {
  const { config } = loadConfig({
    env: {},
    cwd: '/nonexistent',
    flags: { ...overrides, server: { port: 0, ...overrides.server }, metrics: { port: 0, ...overrides.metrics } },
  });
  const clock = new ManualClock(1_000_000);
  const app = new App(config, { logger: silentLogger(), store, clock, ...deps });
  const address = await app.start();
  return { app, port: address.port, clock, stop: () => app.stop(1000) };
}

/** A test server and a QuotaClient connected to it, both closed when the test `t` ends. */
export async function serverWithClient(
  t: { teardown(fn: () => unknown): void },
  overrides: Record<string, Record<string, unknown>> = {},
  store?: QuotaStore,
  clientOptions: Partial<QuotaClientOptions> = {},
): Promise<{ s: TestServer; c: QuotaClient }> {
  const s = await startServer(overrides, store);
  const c = await QuotaClient.connect({ port: s.port, ...clientOptions });
  t.teardown(async () => {
    await c.close();
    await s.stop();
  });
  return { s, c };
}
