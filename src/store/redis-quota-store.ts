import type { Redis } from 'ioredis';
import { RedisBackend, type RedisClient, type RedisTarget } from './redis-backend.js';
import {
  applyChanges,
  ChangeListeners,
  type AuditRecord,
  type ChangeListener,
  type QuotaChange,
  type QuotaStore,
  type ResetAuditRecord,
  type StoredQuota,
} from './quota-store.js';
import { parseChanges, parseStored, parseVersion } from './redis-values.js';
import { applyQuotaChanges, withApplyScript, type QuotaKeys, type ScriptClient } from './apply-quota-changes.js';
import { valueKey } from '../quota/entity.js';

export interface RedisQuotaStoreOptions {
  /** Where Redis is: a redis:// or rediss:// URL, a Cluster seed list, or Sentinel. */
  target: RedisTarget;
  /** Prefix of every key; sidecars with the same prefix share their configs. @default "rivven:" */
  keyPrefix: string;
  /** An AlterQuotas not acknowledged by Redis within this is STORAGE_ERROR, and never applied later. @default 100 */
  commandTimeoutMs: number;
  /** How often the version is polled, in case a notification was lost. @default 500 */
  pollIntervalMs: number;
  /** Entries kept in the changes stream; a sidecar further behind reloads everything. @default 10000 */
  maxChanges: number;
  /** Audit records kept in the audit stream. @default 100000 */
  maxAudit: number;
}

export const DEFAULT_REDIS_STORE_OPTIONS: Readonly<Omit<RedisQuotaStoreOptions, 'target'>> = Object.freeze({
  keyPrefix: 'rivven:',
  commandTimeoutMs: 100,
  pollIntervalMs: 500,
  maxChanges: 10_000,
  maxAudit: 100_000,
});

/**
 * Run-time quotas shared by every sidecar with the same key prefix (docs/operations.md, fleet). One Lua
 * script applies an AlterQuotas all-or-nothing, bumps a version, appends the change to a changes stream and
 * its audit records to a capped audit stream, and publishes the version. Every sidecar applies every version
 * in order: told by pub/sub, found by a version poll (pub/sub loses messages), and on reconnect; a sidecar
 * further behind than the changes stream reaches reloads the whole configs hash.
 *
 * All keys share one hash tag, so the script's keys are in one Redis Cluster slot.
 */
export class RedisQuotaStore implements QuotaStore {
  readonly shared = true;
  readonly options: Readonly<RedisQuotaStoreOptions>;
  /** The connection, shared with the fleet's bucket sync. */
  readonly backend: RedisBackend;
  private readonly redis: ScriptClient;
  private readonly subscriber: RedisClient;
  private readonly keys: QuotaKeys;
  private readonly listeners = new ChangeListeners();
  /** What this sidecar has applied: the configs as of `version`. */
  private readonly mirror = new Map<string, StoredQuota>();
  private version = 0;
  private catching: Promise<void> = Promise.resolve();
  private poll: NodeJS.Timeout | undefined;
  private polls = 0;
  private polling = false;
  /** Background catch-ups that failed (Redis unreachable); the next poll retries. */
  syncFailures = 0;
  /** Full reloads because Redis's version went backwards (a restart without persistence, a lagging replica). */
  reloads = 0;
  /** Versions found by the poll rather than by a notification (each one a notification that was lost or late). */
  foundByPoll = 0;
  /** The subscriber connection's client id (tests kill it to lose notifications). */
  subscriberId: number | undefined;

  constructor(options: Partial<Omit<RedisQuotaStoreOptions, 'target'>> & ({ url: string } | { target: RedisTarget })) {
    const target = 'target' in options ? options.target : { url: options.url };
    this.options = Object.freeze({ ...DEFAULT_REDIS_STORE_OPTIONS, ...options, target });
    const tag = `${this.options.keyPrefix}{quotas}`;
    this.keys = {
      configs: `${tag}:configs`,
      version: `${tag}:version`,
      changes: `${tag}:changes`,
      audit: `${tag}:audit`,
      channel: `${tag}:notify`,
    };
    this.backend = new RedisBackend(target, this.options.commandTimeoutMs);
    this.redis = withApplyScript(this.backend.client);
    this.subscriber = this.backend.subscriber();
  }

  get description(): string {
    return `redis ${this.backend.description} prefix ${this.options.keyPrefix}`;
  }

  async load(): Promise<StoredQuota[]> {
    try {
      await this.backend.connect();
    } catch (err) {
      throw new Error(`cannot reach Redis (${this.backend.description}): ${(err as Error).message}`);
    }
    await this.catching;
    await this.reload(false);
    if (this.subscriber.status !== 'wait') return [...this.mirror.values()];
    await this.subscriber.connect();
    if (!this.backend.cluster) this.subscriberId = Number(await (this.subscriber as Redis).call('CLIENT', 'ID'));
    await this.subscriber.subscribe(this.keys.channel);
    this.subscriber.on('message', () => this.catchUpInBackground());
    if (!this.backend.cluster) this.subscriber.on('ready', () => this.resubscribe(this.subscriber as Redis));
    // A reconnect may have missed notifications: catch up at once.
    this.redis.on('ready', () => this.catchUpInBackground());
    this.poll = setInterval(() => void this.pollVersion(), this.options.pollIntervalMs);
    this.poll.unref();
    return [...this.mirror.values()];
  }

  async apply(changes: QuotaChange[], audit: AuditRecord[]): Promise<void> {
    await applyQuotaChanges(this.backend, this.redis, this.keys, this.options, changes, audit);
    // The contract: listeners hear of it (and of any version before it) before apply resolves. The change is
    // durable already; should this read fail, the next poll delivers it.
    await this.catchUp().catch(() => this.catchUpInBackground());
  }

  /** Audit records only (ResetUsage), to the same capped audit stream as the changes' (field r). */
  async recordAudit(records: ResetAuditRecord[]): Promise<void> {
    for (const r of records)
      await this.backend.timed(this.redis.xadd(this.keys.audit, 'MAXLEN', '~', this.options.maxAudit, '*', 'r', JSON.stringify(r)));
  }

  onChange(listener: ChangeListener): () => void {
    return this.listeners.add(listener);
  }

  async reopen(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.poll);
    // A catch-up under way may finish, but a Redis that stopped answering (paused, partitioned: its reads are
    // not timed, and a disconnect does not fail them while the socket stays half-open) must not hold the
    // sidecar's shutdown: wait commandTimeoutMs at most.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.catching, new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.commandTimeoutMs)))]);
    clearTimeout(timer);
    this.subscriber.disconnect();
    this.backend.close();
  }

  /** The version this sidecar has applied (tests, fleet status). */
  get appliedVersion(): number {
    return this.version;
  }

  /** The safety net under pub/sub: a version ahead of ours means a notification never came. */
  private async pollVersion(): Promise<void> {
    // One poll at a time: two that overlap would both see one step back and report it twice.
    if (this.polling) return;
    this.polling = true;
    try {
      // A drifting clock must not stretch the window in which a change the client gave up on could still apply.
      if (++this.polls % 20 === 0) await this.backend.measureClock();
      const current = await this.readVersion();
      if (current === undefined || current === this.version) return;
      await this.catching;
      if (current > this.version) {
        this.foundByPoll++;
        await this.catchUp();
      } else if (current < this.version) {
        // Redis went back in time: flushed, restarted without persistence, replaced, or failed over to a replica
        // that missed the last writes. Redis is the fleet's truth: every sidecar follows it, so they agree again.
        this.lostData(current);
        await this.reload(true);
      }
    } catch {
      this.syncFailures++;
    } finally {
      this.polling = false;
    }
  }

  /**
   * The subscriber reconnected (standalone or Sentinel; see RedisBackend.subscriber): subscribe again, then catch
   * up on what was published meanwhile. Should the connection drop again first, the next 'ready' does it.
   */
  private resubscribe(s: Redis): void {
    // CLIENT ID first (a subscribed RESP2 connection takes no other command); only tests need it, so a refusal
    // (an ACL without +client) does not stop the subscription.
    s.call('CLIENT', 'ID')
      .then(
        (id) => {
          this.subscriberId = Number(id);
        },
        () => undefined,
      )
      .then(() => s.subscribe(this.keys.channel))
      .then(() => this.catchUpInBackground())
      .catch(() => undefined);
  }

  private catchUpInBackground(): void {
    this.catchUp().catch(() => {
      this.syncFailures++;
    });
  }

  /** Applies every version after ours, in order; one catch-up at a time. */
  private catchUp(): Promise<void> {
    const run = this.catching.then(() => this.readChanges());
    this.catching = run.catch(() => undefined);
    return run;
  }

  /** The version key, validated: a bad one is reported and read as undefined (no news; the configs hash stays the truth). */
  private async readVersion(): Promise<number | undefined> {
    let raw: string | null;
    try {
      raw = await this.redis.get(this.keys.version);
    } catch (err) {
      if (!/WRONGTYPE/.test((err as Error).message)) throw err;
      raw = 'a key of another type';
    }
    const v = parseVersion(raw);
    if (typeof v === 'number') return v;
    this.backend.badValue('version', this.keys.version, v);
    return undefined;
  }

  /** Redis' version is behind ours: it lost what we applied (counted, logged as an error). */
  private lostData(current: number): void {
    this.reloads++;
    this.backend.lostData(`the shared config version went back from ${this.version} to ${current}`);
  }

  private async readChanges(): Promise<void> {
    let entries: [string, string[]][];
    try {
      entries = await this.redis.xrange(this.keys.changes, `(${this.version}-0`, '+');
    } catch (err) {
      if (!/WRONGTYPE/.test((err as Error).message)) throw err;
      // Not a stream: the configs hash still holds every change.
      this.backend.badValue('change', this.keys.changes, 'not a stream');
      await this.reload(true);
      return;
    }
    if (entries.length === 0) {
      const current = await this.readVersion();
      if (current === undefined) return;
      // Trimmed away (we are too far behind), or Redis went back in time (see pollVersion): reload.
      if (current < this.version) this.lostData(current);
      if (current !== this.version) await this.reload(true);
      return;
    }
    const first = Number(entries[0]![0].split('-')[0]);
    if (first !== this.version + 1) {
      await this.reload(true);
      return;
    }
    for (const [id, fields] of entries) {
      const version = Number(id.split('-')[0]);
      const changes = fields[0] === 'c' ? parseChanges(fields[1]) : 'no field c';
      if (typeof changes === 'string' || version !== this.version + 1) {
        // Skipped, never a stop: the configs hash holds what this version changed, so a reload takes it (and
        // every later version goes on from there).
        this.backend.badValue('change', `${this.keys.changes} ${id}`, typeof changes === 'string' ? changes : 'out of order');
        await this.reload(true);
        return;
      }
      applyChanges(this.mirror, changes);
      this.version = version;
      this.listeners.emit(changes);
    }
  }

  /** Reads the whole configs hash; with `notify`, tells listeners the difference from what they had. */
  private async reload(notify: boolean): Promise<void> {
    const [version, all] = await Promise.all([this.readVersion(), this.readConfigs()]);
    const next = new Map<string, StoredQuota>();
    for (const [id, json] of Object.entries(all)) {
      const q = parseStored(json);
      if (typeof q === 'string') this.backend.badValue('config', `${this.keys.configs} ${id}`, q);
      else next.set(valueKey(q.entity, q.quota_key), q);
    }
    const diff: QuotaChange[] = [];
    for (const [id, q] of this.mirror) if (!next.has(id)) diff.push({ entity: q.entity, quota_key: q.quota_key, quota_value: null });
    for (const [id, q] of next) if (JSON.stringify(this.mirror.get(id)) !== JSON.stringify(q)) diff.push(q);
    this.mirror.clear();
    for (const [id, q] of next) this.mirror.set(id, q);
    if (version !== undefined) this.version = version;
    if (notify && diff.length > 0) this.listeners.emit(diff);
  }

  /** The configs hash; a key of another type is reported and read as empty (it is not ours to delete). */
  private async readConfigs(): Promise<Record<string, string>> {
    try {
      return await this.redis.hgetall(this.keys.configs);
    } catch (err) {
      if (!/WRONGTYPE/.test((err as Error).message)) throw err;
      this.backend.badValue('config', this.keys.configs, 'not a hash');
      return {};
    }
  }
}
