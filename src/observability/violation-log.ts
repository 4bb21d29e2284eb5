import { appendFile, readFile, rename, stat } from 'node:fs/promises';
import type { Clock } from '../quota/clock.js';

import type { ViolationEvent, ViolationType } from '../protocol/messages/describe-violations.js';

export { VIOLATION_TYPES, type ViolationEvent, type ViolationType } from '../protocol/messages/describe-violations.js';

/** Where the hot path reports a violation; the log turns them into episodes. */
export interface ViolationSink {
  violation(type: ViolationType, entity: string, quotaType: string | null, detail: string): void;
}

export const NO_VIOLATIONS: ViolationSink = { violation: () => undefined };

export interface ViolationLogOptions {
  /** Events kept in memory for DescribeViolations. @default 10000 */
  maxEvents: number;
  /** violations.log; null: memory only. */
  file: string | null;
  /** Past this size the file is renamed to violations.log.1 (replacing it) and a new one starts. @default 16 MiB */
  maxFileBytes: number;
  /** An episode ends once this long passes without a violation of it. */
  episodeGapMs: number;
  /** Open episodes at most; past it violations are counted but start no new episode. @default 100000 */
  maxEpisodes: number;
}

/** An open episode: its key fields, and who reported its first violation. */
interface Episode {
  reportedBy: string;
  type: ViolationType;
  entity: string;
  quotaType: string | null;
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
  private readonly ring: ViolationEvent[] = [];
  private readonly episodes = new Map<string, Episode>();
  private writing: Promise<void> = Promise.resolve();
  /** Violations that could not open an episode (maxEpisodes open). */
  dropped = 0;
  writeFailures = 0;
  /**
   * The authenticated name of the connection whose request is being handled; the dispatcher sets it before
   * each request (one assignment), so events say which broker or operator reported them.
   */
  reporter = 'anonymous';

  constructor(
    private readonly clock: Clock,
    readonly options: ViolationLogOptions,
  ) {}

  /** Refills the ring from the end of violations.log (the events survive a restart). */
  async load(): Promise<void> {
    if (this.options.file === null) return;
    const text = await readFile(this.options.file, 'utf8').catch(() => '');
    const lines = text.split('\n').filter((l) => l !== '');
    for (const line of lines.slice(-this.options.maxEvents)) {
      try {
        this.remember(JSON.parse(line) as ViolationEvent);
      } catch {
        // A torn last line (a crash mid-write) is skipped.
      }
    }
  }

  violation(type: ViolationType, entity: string, quotaType: string | null, detail: string): void {
    const now = this.clock.now();
    const key = `${type}\u0000${entity}\u0000${quotaType ?? ''}`;
    const open = this.episodes.get(key);
    if (open !== undefined) {
      open.count++;
      open.lastAt = now;
      return;
    }
    if (this.episodes.size >= this.options.maxEpisodes) {
      this.dropped++;
      return;
    }
    this.episodes.set(key, { reportedBy: this.reporter, type, entity, quotaType, startedAt: now, lastAt: now, count: 1 });
    this.emit(type, entity, quotaType, `started: ${detail}`, 1, this.reporter);
  }

  /** Ends every episode quiet for episodeGapMs; the server runs it on a timer, tests with an injected clock. */
  tick(): void {
    const now = this.clock.now();
    for (const [key, e] of this.episodes) {
      if (now - e.lastAt < this.options.episodeGapMs) continue;
      this.episodes.delete(key);
      this.emit(e.type, e.entity, e.quotaType, `ended after ${e.lastAt - e.startedAt} ms: ${e.count} violation(s)`, e.count, e.reportedBy);
    }
  }

  /** Events matching the query, newest last, and a summary of all that match. */
  query(q: { sinceMs?: number; types?: ViolationType[]; matches?: (entity: string) => boolean; limit: number }): {
    events: ViolationEvent[];
    summary: { total: number; by_type: Record<string, number>; top_entities: { entity: string; count: number }[] };
  } {
    const since = q.sinceMs ?? 0;
    const types = q.types !== undefined && q.types.length > 0 ? new Set(q.types) : undefined;
    const matching = this.ring.filter(
      (e) => Date.parse(e.time) >= since && (types === undefined || types.has(e.type)) && (q.matches === undefined || q.matches(e.entity)),
    );
    const byType: Record<string, number> = {};
    const byEntity = new Map<string, number>();
    for (const e of matching) {
      byType[e.type] = (byType[e.type] ?? 0) + 1;
      byEntity.set(e.entity, (byEntity.get(e.entity) ?? 0) + 1);
    }
    const top = [...byEntity].sort((a, b) => b[1] - a[1]).slice(0, 10);
    return {
      events: matching.slice(-q.limit),
      summary: { total: matching.length, by_type: byType, top_entities: top.map(([entity, count]) => ({ entity, count })) },
    };
  }

  /** Waits for the writes queued so far (tests, shutdown). */
  flushed(): Promise<void> {
    return this.writing;
  }

  get openEpisodes(): number {
    return this.episodes.size;
  }

  private emit(type: ViolationType, entity: string, quotaType: string | null, detail: string, count: number, reportedBy: string): void {
    const event: ViolationEvent = {
      time: new Date(this.clock.wall()).toISOString(),
      type,
      entity,
      quota_type: quotaType,
      detail,
      count,
      reported_by: reportedBy,
    };
    this.remember(event);
    const file = this.options.file;
    if (file === null) return;
    const line = `${JSON.stringify(event)}\n`;
    this.writing = this.writing.then(async () => {
      try {
        const size = await stat(file).then(
          (s) => s.size,
          () => 0,
        );
        if (size + line.length > this.options.maxFileBytes) await rename(file, `${file}.1`);
        await appendFile(file, line, { mode: 0o600 });
      } catch {
        this.writeFailures++;
      }
    });
  }

  private remember(event: ViolationEvent): void {
    this.ring.push(event);
    if (this.ring.length > this.options.maxEvents) this.ring.splice(0, this.ring.length - this.options.maxEvents);
  }
}
