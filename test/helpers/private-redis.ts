import t from 'tap';
import { startRedis } from './procs.js';

/**
 * A redis-server of this test file's own, stopped when the file's tests end: nothing is started for the tests
 * on a fresh machine, and a Redis the tests did not start is never touched. Its URL, for the tests that once
 * used the machine's shared Redis.
 */
export async function privateRedisUrl(): Promise<string> {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  return `redis://127.0.0.1:${redis.port}/0`;
}
