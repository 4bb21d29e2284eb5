import type { FleetSidecar } from '../protocol/messages/describe-fleet.js';
import type { Clock } from '../quota/clock.js';
import type { FleetState } from '../quota/fleet-state.js';
import type { RedisBackend } from '../store/redis-backend.js';

/** One sidecar as its heartbeat stored it: DescribeFleet's row, with the Redis time it was written. */
export type SidecarStatus = Omit<FleetSidecar, 'seen_ms_ago'> & {
  /** Redis time of its last heartbeat (epoch ms). */
  seen: number;
};

/** A sidecar is live while its last heartbeat is this many intervals old at most. */
export const LIVE_HEARTBEATS = 3;
/** A sidecar silent for this many heartbeat intervals is removed from the list. */
const FORGET_HEARTBEATS = 60;

/**
 * This sidecar's heartbeat (lua/heartbeat-1.lua): it says it is alive, reads every sidecar's status, and counts
 * the live ones into the fleet state (the fallback's divisor). It also notices another sidecar writing under
 * the same node_id.
 */
export class Heartbeat {
  /** Script calls sent. */
  sent = 0;
  /** Every sidecar of the fleet as of the last heartbeat, this one included. */
  sidecars: SidecarStatus[] = [];
  /** When the last heartbeat was answered (clock ms). */
  at = Number.NEGATIVE_INFINITY;
  /** Redis time of the last heartbeat's reply, which `sidecars` are as of. */
  redisNow = 0;
  /** Heartbeats that found another sidecar's entry under this node_id. */
  nodeIdClashes = 0;
  /** When the last one did (clock ms). */
  lastClashAt = Number.NEGATIVE_INFINITY;
  private clashing = false;
  /** The status this sidecar wrote with its last heartbeat (without its time), to notice another writer. */
  private lastWritten: string | null = null;
  private readonly key: string;
  private readonly script: (...args: (string | number)[]) => Promise<(number | string | null)[]>;

  constructor(
    private readonly backend: RedisBackend,
    private readonly fleet: FleetState,
    private readonly clock: Clock,
    keyPrefix: string,
    private readonly nodeId: string,
    private readonly intervalMs: number,
    /** Told when another sidecar starts writing under this node_id (true), and when none has for a while (false). */
    private readonly onClash: (nodeId: string, clashing: boolean) => void,
  ) {
    this.key = `${keyPrefix}{fleet}:sidecars`;
    this.script = backend.script('rivvenHeartbeat', new URL('./lua/heartbeat-1.lua', import.meta.url));
  }

  /** True while another sidecar was seen writing under this node_id within the last LIVE_HEARTBEATS heartbeats. */
  clashSeen(now = this.clock.now()): boolean {
    return now - this.lastClashAt <= LIVE_HEARTBEATS * this.intervalMs;
  }

  /** Writes `status` and reads the fleet's. Throws when Redis fails or answers in a shape this version does not know. */
  async beat(status: Omit<SidecarStatus, 'seen'>): Promise<void> {
    const hb = this.intervalMs;
    // The script closes the object with the Redis time it was written.
    const open = JSON.stringify(status).slice(0, -1);
    this.sent++;
    const reply = await this.backend.timed(this.script(this.key, this.nodeId, open, hb * FORGET_HEARTBEATS, hb * LIVE_HEARTBEATS));
    const previousAt = this.at;
    this.at = this.clock.now();
    const now = Number(reply[0]);
    if (!Number.isSafeInteger(now) || now <= 0) throw new Error('the heartbeat script answered without a Redis time');
    this.redisNow = now;
    const bad = Number(reply[2]);
    if (bad > 0)
      this.backend.badValue(
        'heartbeat',
        this.key,
        `${bad} entry(ies) unparsable, stamped ahead of Redis time, or a key of another type: removed`,
      );
    // Our own entry gone although we wrote it within the time Redis keeps entries: Redis lost its keys.
    if (reply[1] === null && this.lastWritten !== null && this.at - previousAt < hb * FORGET_HEARTBEATS)
      this.backend.lostData(`this sidecar's heartbeat entry (${this.key}) is gone ${this.at - previousAt} ms after it was written`);
    this.checkNodeId(reply[1], open);
    const sidecars: SidecarStatus[] = [];
    // Judged by Redis time: an entry seen ahead of it (the script removes those far ahead) or long ago is not live.
    const newest = now + hb * LIVE_HEARTBEATS;
    const oldest = now - hb * FORGET_HEARTBEATS;
    for (let i = 3; i < reply.length; i++) {
      const status = parseStatus(String(reply[i]));
      if (status === undefined || status.seen > newest || status.seen < oldest) {
        this.backend.badValue('heartbeat', this.key, 'an entry this version does not write (fields, types or sizes): ignored');
        continue;
      }
      sidecars.push(status);
    }
    sidecars.sort((a, b) => (a.node_id < b.node_id ? -1 : a.node_id > b.node_id ? 1 : 0));
    this.sidecars = sidecars;
    this.fleet.live = Math.max(1, sidecars.filter((s) => s.seen >= now - hb * LIVE_HEARTBEATS).length);
  }

  /** Takes this sidecar out of the list, so the others count one live sidecar less at once. Never throws. */
  async leave(): Promise<void> {
    await this.backend.timed(this.backend.client.hdel(this.key, this.nodeId)).catch(() => undefined);
  }

  /**
   * Another sidecar writing under this node_id would merge two sidecars into one: one live sidecar fewer in the
   * fallback's divisor, and lease counts that overwrite each other. So each heartbeat checks that the entry
   * still holds what this sidecar wrote last (its status carries a random instance id).
   */
  private checkNodeId(previous: unknown, mine: string): void {
    const written = this.lastWritten;
    this.lastWritten = mine;
    const now = this.clock.now();
    if (written !== null && typeof previous === 'string' && !previous.startsWith(`${written},"seen":`)) {
      this.nodeIdClashes++;
      this.lastClashAt = now;
    }
    // The same window describe() uses: the other's last write is still seen once after it stopped.
    const clashing = this.clashSeen(now);
    if (clashing === this.clashing) return;
    this.clashing = clashing;
    this.onClash(this.nodeId, clashing);
  }
}

const BREAKER_STATES: readonly string[] = ['closed', 'open', 'half-open'];
/** The longest text a heartbeat entry may carry per field (a node_id is host:port; settings a short digest). */
const MAX_TEXT = 256;

/** A heartbeat entry as written by this version, or undefined: the CLI prints what comes from here. */
function parseStatus(json: string): SidecarStatus | undefined {
  let s: Record<string, unknown>;
  try {
    s = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof s !== 'object' || s === null || typeof s.node_id !== 'string' || !BREAKER_STATES.includes(s.breaker as string))
    return undefined;
  if (typeof s.settings !== 'string' || typeof s.instance !== 'string') return undefined;
  if (s.node_id.length > MAX_TEXT || s.settings.length > MAX_TEXT || s.instance.length > MAX_TEXT) return undefined;
  const numbers = ['seen', 'buckets', 'queued', 'config_version', 'sync_interval_ms'] as const;
  if (!numbers.every((k) => Number.isSafeInteger(s[k]) && (s[k] as number) >= 0)) return undefined;
  if (!Number.isSafeInteger(s.sync_lag_ms) || (s.sync_lag_ms as number) < -1) return undefined;
  // Only what this version writes: no extra fields to carry into DescribeFleet.
  const { node_id, sync_lag_ms, breaker, buckets, queued, config_version, sync_interval_ms, settings, instance, seen } =
    s as unknown as SidecarStatus;
  return { node_id, sync_lag_ms, breaker, buckets, queued, config_version, sync_interval_ms, settings, instance, seen };
}
