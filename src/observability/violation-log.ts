import { readFile, stat } from 'node:fs/promises';
import type { Clock } from '../quota/clock.js';
import { BatchedWriter } from '../store/batched-writer.js';
import { forEachSliced, forRangeSliced, runSlice, yieldToEventLoop } from '../util/slices.js';

import type { ViolationEvent } from '../protocol/messages/describe-violations.js';
import type { PeriodUnit } from '../quota/rate-value.js';
import type { ViolationSink, ViolationType } from '../quota/violations.js';
import { DEFAULT_VIOLATION_LOG_OPTIONS, type ViolationLogOptions } from './options.js';

export { DEFAULT_VIOLATION_LOG_OPTIONS, type ViolationLogOptions } from './options.js';

/** An event in the ring, with its time as a number (filters compare it without parsing). */
interface Entry {
  event: ViolationEvent;
  timeMs: number;
}

/** The principal an entity belongs to, for the episode share: its first component. */
const principalOf = (entity: string): string => {
  const slash = entity.indexOf('/');
  return slash < 0 ? entity : entity.slice(0, slash);
};

/** An open episode: its key fields, and who reported its first violation. */
interface Episode {
  reportedBy: string;
  principal: string;
  type: ViolationType;
  entity: string;
  quotaType: string | null;
  period: PeriodUnit;
  startedAt: number;
  lastAt: number;
  count: number;
}

/**
 * The violation log (docs/operations.md): each episode of a bucket being throttled, of a blocked principal
 * being denied, of a lease group refused, of a shadow limit exceeded, of failed authentication from one address
 * is two events, its start and its end with the count; never one per call, so a sustained throttle cannot flood
 * it. Events go to a bounded ring (DescribeViolations) and to violations.log (JSON lines, size-rotated), which
 * refills the ring at start. Writes are serialized and never awaited by the request path; a failed write is
 * counted, not fatal.
 */
export class ViolationLog implements ViolationSink {
  /** A circular buffer of maxEvents: `next` is where the next event goes, `size` how many it holds. */
  private readonly ring: Entry[] = [];
  private next = 0;
  private size = 0;
  private readonly episodes = new Map<string, Episode>();
  /** Open episodes per principal (the share); a principal with none has no entry. */
  private readonly perPrincipal = new Map<string, number>();
  private readonly writer: BatchedWriter | null;
  private readonly share: number;
  /** Violations that could not open an episode (maxEpisodes open, or the principal's share). */
  dropped = 0;
  /**
   * The authenticated name of the connection whose request is being handled; the dispatcher sets it before
   * each request (one assignment), so events say which broker or operator reported them.
   */
  reporter = 'anonymous';
  /** The tick running, if one is (sliced: it may span many turns of the event loop). */
  private ticking: Promise<void> | null = null;

  constructor(
    private readonly clock: Clock,
    readonly options: ViolationLogOptions,
  ) {
    this.share = options.maxEpisodesPerPrincipal ?? Math.max(1, Math.floor(options.maxEvents / 10));
    this.writer =
      options.file === null
        ? null
        : new BatchedWriter({
            path: options.file,
            maxFileBytes: options.maxFileBytes,
            maxPendingBytes: options.maxQueuedBytes ?? DEFAULT_VIOLATION_LOG_OPTIONS.maxQueuedBytes,
          });
  }

  /** Appends to violations.log that failed (the events stay in the ring). */
  get writeFailures(): number {
    return this.writer?.writeFailures ?? 0;
  }

  /** Events not written to violations.log because the queue was full (they stay in the ring). */
  get writesDropped(): number {
    return this.writer?.dropped ?? 0;
  }

  /** Refills the ring from the end of violations.log (the events survive a restart). */
  async load(): Promise<void> {
    if (this.options.file === null) return;
    // Only a regular file is read: a FIFO put in its place would hold the start for ever.
    const isFile = await stat(this.options.file).then(
      (s) => s.isFile(),
      () => false,
    );
    const text = isFile ? await readFile(this.options.file, 'utf8').catch(() => '') : '';
    const lines = text.split('\n').filter((l) => l !== '');
    for (const line of lines.slice(-this.options.maxEvents)) {
      try {
        this.remember(JSON.parse(line) as ViolationEvent);
      } catch {
        // A torn last line (a crash mid-write) is skipped.
      }
    }
  }

  violation(type: ViolationType, entity: string, quotaType: string | null, detail: string, period: PeriodUnit = 's'): void {
    const now = this.clock.now();
    // A per-second key has no suffix (the key a reader that knows no periods expects): the common case builds the same string.
    const key = `${type}\u0000${entity}\u0000${quotaType ?? ''}${period === 's' ? '' : `\u0000${period}`}`;
    const open = this.episodes.get(key);
    if (open !== undefined) {
      open.count++;
      open.lastAt = now;
      return;
    }
    const principal = principalOf(entity);
    const held = this.perPrincipal.get(principal) ?? 0;
    if (this.episodes.size >= this.options.maxEpisodes || held >= this.share) {
      this.dropped++;
      return;
    }
    this.perPrincipal.set(principal, held + 1);
    this.episodes.set(key, {
      reportedBy: this.reporter,
      principal,
      type,
      entity,
      quotaType,
      period,
      startedAt: now,
      lastAt: now,
      count: 1,
    });
    this.emit(type, entity, quotaType, period, `started: ${detail}`, 1, this.reporter);
  }

  /**
   * Ends every episode quiet for episodeGapMs; the server runs it on a timer, tests with an injected clock. Sliced
   * (open episodes are bounded by quotas.max_buckets, a million by default, and ending one costs an event): a
   * flood of distinct principals ending together ended 200,000 episodes in one 2.2 s hold. A call while one runs
   * joins it.
   */
  tick(): Promise<void> {
    if (this.ticking !== null) return this.ticking;
    const now = this.clock.now();
    // The Map's iterator stays valid across the slices: episodes ended meanwhile are skipped, new ones are not quiet.
    const it = this.episodes.entries();
    const end = ([key, e]: [string, Episode]) => this.endIfQuiet(key, e, now);
    // A small pass ends synchronously (its effects are seen at once); a big one goes on in slices.
    if (runSlice(it, end)) return Promise.resolve();
    this.ticking = (async () => {
      do await yieldToEventLoop();
      while (!runSlice(it, end));
      this.ticking = null;
    })();
    return this.ticking;
  }

  private endIfQuiet(key: string, e: Episode, now: number): void {
    if (now - e.lastAt < this.options.episodeGapMs) return;
    this.episodes.delete(key);
    const left = this.perPrincipal.get(e.principal)! - 1;
    if (left === 0) this.perPrincipal.delete(e.principal);
    else this.perPrincipal.set(e.principal, left);
    this.emit(
      e.type,
      e.entity,
      e.quotaType,
      e.period,
      `ended after ${e.lastAt - e.startedAt} ms: ${e.count} violation(s)`,
      e.count,
      e.reportedBy,
    );
  }

  /**
   * Events matching the query, newest last, and a summary of all that match. Filters are set lookups per event
   * (describe-violations.ts, entityMatcher), and the ring is read in slices, so a full ring of a million events
   * holds the event loop no longer than any other request.
   */
  async query(q: { sinceMs?: number; types?: ViolationType[]; matches?: (entity: string) => boolean; limit: number }): Promise<{
    events: ViolationEvent[];
    summary: { total: number; by_type: Record<string, number>; top_entities: { entity: string; count: number }[] };
  }> {
    const since = q.sinceMs ?? 0;
    const types = q.types !== undefined && q.types.length > 0 ? new Set(q.types) : undefined;
    const matching: ViolationEvent[] = [];
    const cap = this.options.maxEvents;
    // The ring as it is now, oldest first; events added meanwhile are not part of this answer.
    const size = this.size;
    const oldest = (this.next - size + cap) % cap;
    const snapshot = size < cap ? this.ring.slice(0, size) : [...this.ring.slice(oldest), ...this.ring.slice(0, oldest)];
    const byType: Record<string, number> = {};
    const byEntity = new Map<string, number>();
    await forRangeSliced(snapshot.length, (i) => {
      const { event: e, timeMs } = snapshot[i]!;
      if (timeMs < since || (types !== undefined && !types.has(e.type)) || (q.matches !== undefined && !q.matches(e.entity))) return;
      matching.push(e);
      byType[e.type] = (byType[e.type] ?? 0) + 1;
      byEntity.set(e.entity, (byEntity.get(e.entity) ?? 0) + 1);
    });
    const top: [string, number][] = [];
    await forEachSliced(byEntity, (entry) => keepTop(top, entry, 10));
    return {
      events: matching.slice(-q.limit),
      summary: { total: matching.length, by_type: byType, top_entities: top.map(([entity, count]) => ({ entity, count })) },
    };
  }

  /** Waits for the writes queued so far (tests, shutdown). */
  async flushed(): Promise<void> {
    await this.writer?.flushed();
  }

  get openEpisodes(): number {
    return this.episodes.size;
  }

  private emit(
    type: ViolationType,
    entity: string,
    quotaType: string | null,
    period: PeriodUnit,
    detail: string,
    count: number,
    reportedBy: string,
  ): void {
    const time = new Date(this.clock.wall()).toISOString();
    // `period` only for a longer one: a per-second event is the line of violations.log a reader that knows no periods expects.
    const event: ViolationEvent =
      period === 's'
        ? { time, type, entity, quota_type: quotaType, detail, count, reported_by: reportedBy }
        : { time, type, entity, quota_type: quotaType, period, detail, count, reported_by: reportedBy };
    this.remember(event);
    this.writer?.write(`${JSON.stringify(event)}\n`);
  }

  private remember(event: ViolationEvent): void {
    const entry: Entry = { event, timeMs: Date.parse(event.time) };
    const cap = this.options.maxEvents;
    if (this.ring.length < cap) this.ring.push(entry);
    else this.ring[this.next] = entry;
    this.next = (this.next + 1) % cap;
    if (this.size < cap) this.size++;
  }
}

/** Keeps `top` the n entries with the highest counts, highest first (n is small: one pass, no sort of all). */
function keepTop(top: [string, number][], entry: [string, number], n: number): void {
  if (top.length === n && entry[1] <= top[n - 1]![1]) return;
  let i = top.length < n ? top.length : n - 1;
  top[i] = entry;
  while (i > 0 && top[i - 1]![1] < entry[1]) {
    top[i] = top[i - 1]!;
    top[i - 1] = entry;
    i--;
  }
}
