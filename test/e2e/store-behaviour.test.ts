import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { freeze, startRedis, startRedisCluster, type Proc } from '../helpers/procs.js';
import { RedisQuotaStore } from '../../src/store/redis-quota-store.js';
import { audit, set } from '../helpers/store-fixtures.js';
import { parseEntity } from '../../src/quota/entity.js';
import { REQUEST } from '../../src/quota/quota-key.js';
import { QuotaTable } from '../../src/quota/quota-table.js';
import { QuotaAdmin } from '../../src/server/quota-admin.js';
import { writeAll, type WriteAll } from '../../src/store/append-file.js';
import { FileQuotaStore } from '../../src/store/file-quota-store.js';
import type { QuotaChange, QuotaStore } from '../../src/store/quota-store.js';
import { GateStore } from '../helpers/gate-store.js';

/**
 * The QuotaStore contract (src/store/quota-store.ts), run on every store. A backend joins by adding a factory:
 * how to open its store (again, for durable ones), how to make its next write fail, and how many audit records
 * it holds.
 */
interface StoreUnderTest {
  open(): Promise<QuotaStore>;
  /** True when a store opened again sees what the previous one stored. */
  durable: boolean;
  failNextWrite(): void;
  auditCount(store: QuotaStore): number;
}

/** A private redis-server for the Redis store: the fault injected is this process being stopped (SIGSTOP). */
let privateRedis: Proc | undefined;
/** A local 3-master Redis Cluster, for the same suite through a seed list. */
let cluster: { nodes: Proc[]; seeds: string[]; stop(): Promise<void> } | undefined;
t.before(async () => {
  [privateRedis, cluster] = await Promise.all([startRedis(), startRedisCluster()]);
});
t.teardown(async () => {
  privateRedis?.child.kill('SIGCONT');
  for (const n of cluster?.nodes ?? []) n.child.kill('SIGCONT');
  await Promise.all([privateRedis?.stop(), cluster?.stop()]);
});

// A command timeout a loaded machine's Redis Cluster meets (100 ms failed a CI run), and a freeze well past it.
const COMMAND_TIMEOUT_MS = 1000;
const FROZEN_MS = 3 * COMMAND_TIMEOUT_MS;

const factories: Record<string, () => StoreUnderTest> = {
  redis: () => {
    const prefix = `test-${randomBytes(6).toString('hex')}:`;
    const proc = privateRedis!;
    return {
      open: async () =>
        new RedisQuotaStore({ url: `redis://127.0.0.1:${proc.port}/0`, keyPrefix: prefix, commandTimeoutMs: COMMAND_TIMEOUT_MS }),
      durable: true,
      // Redis hangs past the command timeout: the client gives up, and the script, run late, applies nothing.
      failNextWrite: () => {
        freeze(proc.child);
        setTimeout(() => proc.child.kill('SIGCONT'), FROZEN_MS);
      },
      auditCount: () =>
        Number(
          execFileSync('redis-cli', ['-p', String(proc.port), 'XLEN', `${prefix}{quotas}:audit`])
            .toString()
            .trim(),
        ),
    };
  },
  'redis cluster': () => {
    const prefix = `test-${randomBytes(6).toString('hex')}:`;
    const { nodes, seeds } = cluster!;
    return {
      open: async () => new RedisQuotaStore({ target: { cluster: seeds }, keyPrefix: prefix, commandTimeoutMs: COMMAND_TIMEOUT_MS }),
      durable: true,
      // Every node hangs past the command timeout (whichever owns the configs' slot).
      failNextWrite: () => {
        for (const n of nodes) freeze(n.child);
        setTimeout(() => {
          for (const n of nodes) n.child.kill('SIGCONT');
        }, FROZEN_MS);
      },
      auditCount: () =>
        Number(
          execFileSync('redis-cli', ['-c', '-p', String(nodes[0]!.port), 'XLEN', `${prefix}{quotas}:audit`])
            .toString()
            .trim(),
        ),
    };
  },
  memory: () => {
    const store = new GateStore();
    return {
      open: async () => store,
      durable: false,
      failNextWrite: () => (store.failNext = new Error('injected failure')),
      auditCount: () => store.audit.length,
    };
  },
  file: () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'rivven-behaviour-')), 'data');
    let fail = false;
    const write: WriteAll = async (handle, data, position) => {
      if (fail) {
        fail = false;
        await writeAll(handle, data.subarray(0, 3), position); // a torn write, as a full disk leaves
        throw new Error('injected failure');
      }
      return writeAll(handle, data, position);
    };
    return {
      open: async () => new FileQuotaStore(dir, { write, compactAfterChanges: 3 }),
      durable: true,
      failNextWrite: () => (fail = true),
      auditCount: () =>
        readFileSync(join(dir, 'audit.log'), 'utf8')
          .split('\n')
          .filter((l) => l !== '').length,
    };
  },
};

const users = (stored: { entity: unknown[] }[]) => stored.map((q) => (q.entity[0] as [string, string])[1]).sort();

for (const [name, make] of Object.entries(factories)) {
  t.test(`${name} store`, async (t) => {
    t.test('starts empty; changes add up in order; removals remove', async (t) => {
      const sut = make();
      const store = await sut.open();
      t.same(await store.load(), []);
      await store.apply([set('a', 1), set('b', 2)], [audit('a'), audit('b')]);
      await store.apply([set('a', null), set('c', 3)], [audit('a'), audit('c')]);
      await store.apply([set('b', 5)], [audit('b')]);
      t.same(users(await store.load()), ['b', 'c']);
      t.same((await store.load()).find((q) => q.entity[0]![1] === 'b')?.quota_value, 5, 'the last change wins');
      t.equal(sut.auditCount(store), 5, 'every audit record kept');
      await store.close();
      if (sut.durable) {
        const again = await sut.open();
        t.same(users(await again.load()), ['b', 'c'], 'a store opened again loads the same');
        await again.close();
      }
    });

    t.test('recordAudit adds audit records (ResetUsage) and changes no quota', async (t) => {
      const sut = make();
      const store = await sut.open();
      await store.load();
      await store.apply([set('a', 1)], [audit('a')]);
      await store.recordAudit([
        { time: new Date(0).toISOString(), principal: 'op', client: null, action: 'reset_usage', entities: [['user', 'a']] },
      ]);
      t.equal(sut.auditCount(store), 2);
      t.same(users(await store.load()), ['a']);
      await store.close();
    });

    t.test('listeners hear of each durable change once, in order, before apply resolves', async (t) => {
      const store = await make().open();
      await store.load();
      const heard: QuotaChange[][] = [];
      const off = store.onChange((c) => heard.push(c));
      await store.apply([set('a', 1)], []);
      t.same(heard, [[set('a', 1)]], 'heard before apply resolved');
      await store.apply([set('a', null), set('b', 2)], []);
      off();
      await store.apply([set('c', 3)], []);
      t.same(heard, [[set('a', 1)], [set('a', null), set('b', 2)]], 'in order; nothing after unsubscribing');
      await store.close();
    });

    t.test('a failed write applies nothing: not in the store, not to listeners, not after a restart', async (t) => {
      const sut = make();
      const store = await sut.open();
      await store.load();
      await store.apply([set('kept', 1)], [audit('kept')]);
      const heard: QuotaChange[][] = [];
      store.onChange((c) => heard.push(c));
      sut.failNextWrite();
      await t.rejects(store.apply([set('lost', 1), set('kept', null)], [audit('lost')]), 'the write fails');
      t.same(heard, [], 'no listener heard of it');
      t.same(users(await store.load()), ['kept'], 'the store is as before');
      t.equal(sut.auditCount(store), 1, 'no audit record of it');
      await store.apply([set('next', 1)], [audit('next')]);
      t.same(users(await store.load()), ['kept', 'next'], 'the next change applies normally');
      await store.close();
      if (sut.durable) {
        const again = await sut.open();
        t.same(users(await again.load()), ['kept', 'next'], 'and after a restart');
        await again.close();
      }
    });

    t.test('through QuotaAdmin: a failed write leaves the quota table as it was', async (t) => {
      const sut = make();
      const store = await sut.open();
      const table = new QuotaTable();
      const admin = new QuotaAdmin(table, store);
      await admin.load();
      const alteration = (user: string, limit: number | undefined) =>
        ({ ref: parseEntity([['user', user]]), key: 'request_rate', value: limit, shadow: false }) as const;
      t.equal(await admin.alter([alteration('x', 7)], false, 'op'), 1);
      t.equal(table.get(parseEntity([['user', 'x']]), REQUEST), 7, 'applied once durable');
      const generation = table.generation;
      sut.failNextWrite();
      await t.rejects(admin.alter([alteration('x', 9), alteration('y', 1)], false, 'op'), { code: 'STORAGE_ERROR' });
      t.equal(table.get(parseEntity([['user', 'x']]), REQUEST), 7, 'x keeps its value');
      t.equal(table.get(parseEntity([['user', 'y']]), REQUEST), undefined, 'y was not set');
      t.equal(table.generation, generation, 'no resolution was invalidated');
      await store.close();
    });
  });
}
