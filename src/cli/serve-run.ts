import { join } from 'node:path';
import { App } from '../app.js';
import { ConfigError, loadConfig, type LoadedConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createLogger } from '../observability/logger.js';
import { FileQuotaStore } from '../store/file-quota-store.js';
import type { QuotaStore } from '../store/quota-store.js';
import type { RedisQuotaStore } from '../store/redis-quota-store.js';
import { lockDataDir, type DataDirLock } from '../store/data-dir-lock.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from './exit-codes.js';
import type { ServeFlags } from './serve.js';

/** A flag that looks like a number becomes one, so the schema reports real type errors the same way. */
const numeric = (v: string | undefined): unknown => (v !== undefined && /^\d+$/.test(v) ? Number(v) : v);

/** Runs the sidecar until SIGTERM/SIGINT; resolves with the exit code. */
export async function serve(flags: ServeFlags): Promise<number> {
  let loaded: LoadedConfig;
  try {
    loaded = loadConfig({
      file: flags.config,
      flags: {
        server: { host: flags.host, port: numeric(flags.port) },
        metrics: { port: numeric(flags.metricsPort) },
        storage: { data_dir: flags.dataDir },
        log: { level: flags.logLevel },
      },
      flagNames: {
        'server.host': '--host',
        'server.port': '--port',
        'metrics.port': '--metrics-port',
        'storage.data_dir': '--data-dir',
        'log.level': '--log-level',
      },
    });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`rivven: ${err.message}\n`);
    return EXIT_USAGE;
  }
  const { config, file, warnings } = loaded;
  const logger = createLogger(config.log.level);
  // SIGHUP's default ends the process: from here on it only reloads, and before the app runs there is nothing
  // to reload (a SIGHUP sent as soon as "rivven listening" appeared once killed the sidecar).
  let app: App | undefined;
  const onHup = (): void => {
    if (app === undefined) return void logger.warn('SIGHUP before the start finished: nothing to reload yet');
    app.reload().then(
      () => logger.info('SIGHUP: log files reopened, tokens and certificates reloaded'),
      (err: unknown) => logger.error({ err: (err as Error).message }, 'SIGHUP: reload failed; what was loaded before stays in force'),
    );
  };
  process.on('SIGHUP', onHup);
  logger.info({ config_file: file ?? '(none: embedded defaults)' }, 'configuration loaded');
  for (const w of warnings) logger.warn(w);
  const s = config.storage;
  // Before anything opens a file there: the directory is ours alone, and writable.
  let lock: DataDirLock;
  try {
    lock = lockDataDir(s.data_dir);
  } catch (err) {
    process.off('SIGHUP', onHup);
    logger.fatal({ err: (err as Error).message }, 'cannot start');
    return EXIT_FAILED;
  }
  const redis = s.backend === 'redis' ? await openRedisStore(s.redis) : undefined;
  // Bad values read from Redis and a Redis that lost its data are errors the operator must see.
  if (redis !== undefined) redis.backend.log = (fields, msg) => logger.error(fields, msg);
  const store: QuotaStore =
    redis ??
    new FileQuotaStore(s.data_dir, {
      onCompactionError: (err) =>
        logger.error({ err: err.message, data_dir: s.data_dir }, 'quota snapshot compaction failed; the log keeps every change'),
      onTornLog: (file, droppedBytes) =>
        logger.warn(
          { file, dropped_bytes: droppedBytes },
          'quota log: a torn last change (a crash mid-write, never acknowledged) was cut off; the changes before it are loaded',
        ),
    });
  let started: App;
  try {
    // The constructor reads the tokens file and the certificates: a missing one is a failed start, not a crash.
    const fleet = redis && config.fleet.enabled ? { backend: redis.backend, configVersion: () => redis.appliedVersion } : undefined;
    started = new App(config, { logger, store, violationsFile: join(config.storage.data_dir, 'violations.log'), fleet });
    await started.start();
  } catch (err) {
    process.off('SIGHUP', onHup);
    lock.release();
    logger.fatal({ err: (err as Error).message }, 'cannot start');
    return EXIT_FAILED;
  }
  // SIGHUP from now on: reopen the log files (logrotate; a rotated audit.log is also noticed on the next append),
  // reload the tokens file and the certificates.
  app = started;
  return new Promise<number>((resolve) => {
    let stopping = false;
    // Handlers stay installed for the whole shutdown: a second signal must reach this code, not Node's default
    // (which would exit 128+n instead of the documented 1).
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting without finishing the shutdown');
        process.exit(EXIT_FAILED);
      }
      stopping = true;
      logger.info({ signal }, 'shutting down: answering what was read, accepting nothing new');
      started.stop().then(
        () => {
          logger.info('stopped');
          finish(EXIT_OK);
        },
        (err: unknown) => {
          logger.error({ err: (err as Error).message }, 'error while stopping');
          finish(EXIT_FAILED);
        },
      );
    };
    const finish = (code: number): void => {
      lock.release();
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      process.off('SIGHUP', onHup);
      resolve(code);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

/**
 * Loaded only when the backend is Redis: ioredis' RESP decoder subclasses String, and once a process has loaded
 * that, `s.charCodeAt(i)` costs about 5x on every string (the Record path hashes names).
 */
async function openRedisStore(r: Config['storage']['redis']): Promise<RedisQuotaStore> {
  const [{ RedisQuotaStore }, { redisTarget }] = await Promise.all([
    import('../store/redis-quota-store.js'),
    import('../store/redis-backend.js'),
  ]);
  return new RedisQuotaStore({ target: redisTarget(r), keyPrefix: r.key_prefix, commandTimeoutMs: r.command_timeout_ms });
}
