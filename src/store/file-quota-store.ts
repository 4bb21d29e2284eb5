import { mkdir, open, readFile, rename, rm, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { forEachSliced } from '../util/slices.js';
import { AppendFile, writeAll, type WriteAll } from './append-file.js';
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

export const STATE_FILE = 'quotas.json';
export const LOG_FILE = 'quotas.log';
export const AUDIT_FILE = 'audit.log';
const STATE_VERSION = 2;

export interface FileQuotaStoreOptions {
  /** Changes in the log after which the snapshot is rewritten in the background. @default 1000 */
  compactAfterChanges: number;
  /** The write used for the log and the audit log (tests inject a failing disk). */
  write: WriteAll;
  /** Told about a background compaction that failed (the log keeps everything; it is retried later). */
  onCompactionError: (err: Error) => void;
  /**
   * Told when load cut a torn last change off the log (a crash mid-append: that change was never
   * acknowledged), so the start can say so, as Redis does for a truncated AOF.
   */
  onTornLog: (file: string, droppedBytes: number) => void;
}

export const DEFAULT_FILE_STORE_OPTIONS: Readonly<FileQuotaStoreOptions> = Object.freeze({
  compactAfterChanges: 1000,
  write: writeAll,
  onCompactionError: () => undefined,
  onTornLog: () => undefined,
});

/**
 * Run-time quotas in `<data_dir>`: a snapshot `quotas.json` ({version, seq, quotas}), a log `quotas.log` of
 * the changes since (one JSON line per AlterQuotas: {seq, changes}), and `audit.log` (JSON lines).
 *
 * apply(): the audit lines are appended and fsynced, then the change line is appended and fsynced: a cost
 * that does not grow with the number of configured entities. If the log append fails, the audit lines are cut
 * back too, so a failed change leaves no trace. After a crash, a change whose line is whole is applied; a torn
 * last line (the change was never acknowledged) is cut off at load.
 *
 * Compaction runs in the background after compactAfterChanges changes: the snapshot is serialized in slices,
 * written to a temp file, fsynced and renamed (then the directory fsynced); the log is then rewritten, the same
 * way, to hold only the lines that arrived meanwhile. Each step is atomic; a crash between them leaves log
 * lines the snapshot already covers, which load skips by seq.
 */
export class FileQuotaStore implements QuotaStore {
  readonly statePath: string;
  readonly logPath: string;
  readonly auditPath: string;
  readonly options: Readonly<FileQuotaStoreOptions>;
  private readonly state = new Map<string, StoredQuota>();
  private readonly listeners = new ChangeListeners();
  private readonly log: AppendFile;
  private readonly audit: AppendFile;
  private seq = 0;
  private changesSinceSnapshot = 0;
  /** Log lines appended while a compaction runs: what the rewritten log must keep. */
  private tail: string[] | null = null;
  private compacting: Promise<void> | null = null;
  /** Serializes log appends with the log rewrite at the end of a compaction. */
  private lock: Promise<unknown> = Promise.resolve();
  /** Bytes cut off the end of the log at load (a change torn by a crash, never acknowledged). */
  repairedBytes = 0;
  compactions = 0;

  constructor(
    readonly dataDir: string,
    options: Partial<FileQuotaStoreOptions> = {},
  ) {
    this.options = Object.freeze({ ...DEFAULT_FILE_STORE_OPTIONS, ...options });
    this.statePath = join(dataDir, STATE_FILE);
    this.logPath = join(dataDir, LOG_FILE);
    this.auditPath = join(dataDir, AUDIT_FILE);
    this.log = new AppendFile(this.logPath, this.options.write);
    this.audit = new AppendFile(this.auditPath, this.options.write);
  }

  /** Both files: the snapshot and the log of changes since (most changes stay in the log until a compaction). */
  get description(): string {
    return `file ${this.statePath} + ${this.logPath}`;
  }

  async load(): Promise<StoredQuota[]> {
    await mkdir(this.dataDir, { recursive: true });
    await rm(`${this.statePath}.tmp`, { force: true });
    await rm(`${this.logPath}.tmp`, { force: true });
    const snapshot = await this.readSnapshot();
    this.seq = snapshot.seq;
    for (const q of snapshot.quotas) applyChanges(this.state, [q]);
    await this.replayLog(snapshot.seq);
    return [...this.state.values()];
  }

  apply(changes: QuotaChange[], audit: AuditRecord[]): Promise<void> {
    const run = this.lock.then(() => this.append(changes, audit));
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** Audit lines only (ResetUsage): appended and fsynced in turn with the changes, under the same lock. */
  recordAudit(records: ResetAuditRecord[]): Promise<void> {
    const run = this.lock.then(() => this.audit.append(Buffer.from(records.map((r) => `${JSON.stringify(r)}\n`).join(''))));
    this.lock = run.catch(() => undefined);
    return run.then(() => undefined);
  }

  onChange(listener: ChangeListener): () => void {
    return this.listeners.add(listener);
  }

  async reopen(): Promise<void> {
    await this.audit.reopen();
    await this.log.reopen();
  }

  async close(): Promise<void> {
    await this.compacting;
    await this.lock;
    await this.audit.close();
    await this.log.close();
  }

  /** Waits for a compaction in progress, if any (tests). */
  async settled(): Promise<void> {
    await this.compacting;
  }

  private async append(changes: QuotaChange[], audit: AuditRecord[]): Promise<void> {
    const line = `${JSON.stringify({ seq: this.seq + 1, changes })}\n`;
    const auditStart = await this.audit.append(Buffer.from(audit.map((r) => `${JSON.stringify(r)}\n`).join('')));
    try {
      await this.log.append(Buffer.from(line));
    } catch (err) {
      await this.audit.truncateTo(auditStart).catch(() => undefined);
      throw err;
    }
    this.seq++;
    applyChanges(this.state, changes);
    this.listeners.emit(changes);
    this.changesSinceSnapshot++;
    this.tail?.push(line);
    if (this.changesSinceSnapshot >= this.options.compactAfterChanges && this.compacting === null) {
      this.compacting = this.compact()
        .catch((err: Error) => this.options.onCompactionError(err))
        .finally(() => {
          this.compacting = null;
        });
    }
  }

  private async compact(): Promise<void> {
    const seq = this.seq;
    this.tail = [];
    try {
      const parts: string[] = [`{"version":${STATE_VERSION},"seq":${seq},"quotas":[`];
      let first = true;
      // Changes applied while this runs may show up in the snapshot; replaying their log lines is idempotent.
      await forEachSliced(this.state.values(), (q) => {
        parts.push(`${first ? '\n' : ',\n'}${JSON.stringify(q)}`);
        first = false;
      });
      parts.push('\n]}\n');
      await this.replaceFile(this.statePath, parts.join(''));
      const rewrite = this.lock.then(async () => {
        const keep = this.tail ?? [];
        await this.replaceFile(this.logPath, keep.join(''));
        await this.log.reopen();
        this.changesSinceSnapshot = keep.length;
      });
      this.lock = rewrite.catch(() => undefined);
      await rewrite;
      this.compactions++;
    } finally {
      this.tail = null;
    }
  }

  /** Temp file, fsync, rename over `path`, fsync of the directory: `path` is the old or the new text. */
  private async replaceFile(path: string, text: string): Promise<void> {
    const tmp = `${path}.tmp`;
    const file = await open(tmp, 'w', 0o600);
    try {
      await file.writeFile(text);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
    const dir = await open(this.dataDir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  private async readSnapshot(): Promise<{ seq: number; quotas: StoredQuota[] }> {
    let text: string;
    try {
      text = await readFile(this.statePath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { seq: 0, quotas: [] };
      throw new Error(`cannot read quota state file ${this.statePath}: ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new Error(
        `quota state file ${this.statePath} is corrupt (${(err as Error).message}); restore it from a backup or move it away to start empty`,
      );
    }
    const state = parsed as { version?: unknown; seq?: unknown; quotas?: unknown } | null;
    // Version 1 (a snapshot rewritten on every change) has no log and no seq.
    const seq = state?.version === 1 ? 0 : state?.seq;
    if ((state?.version !== 1 && state?.version !== STATE_VERSION) || !Array.isArray(state.quotas) || !Number.isSafeInteger(seq)) {
      throw new Error(`quota state file ${this.statePath} is not a version ${STATE_VERSION} rivven state file`);
    }
    for (const [i, q] of state.quotas.entries()) checkStored(q, `${this.statePath}: entry ${i}`);
    return { seq: seq as number, quotas: state.quotas as StoredQuota[] };
  }

  private async replayLog(after: number): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.logPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new Error(`cannot read quota log ${this.logPath}: ${(err as Error).message}`);
    }
    let offset = 0;
    let lineNo = 0;
    while (offset < text.length) {
      lineNo++;
      const nl = text.indexOf('\n', offset);
      const raw = text.slice(offset, nl === -1 ? text.length : nl);
      const last = nl === -1 || nl === text.length - 1;
      let entry: { seq?: unknown; changes?: unknown } | undefined;
      try {
        entry = nl === -1 ? undefined : (JSON.parse(raw) as typeof entry);
      } catch {
        entry = undefined;
      }
      if (entry === undefined && last) {
        // A crash mid-append: that change was never acknowledged. Cut it off so the next line starts clean.
        const keep = Buffer.byteLength(text.slice(0, offset));
        this.repairedBytes = Buffer.byteLength(text) - keep;
        await truncate(this.logPath, keep);
        this.options.onTornLog(this.logPath, this.repairedBytes);
        return;
      }
      const where = `${this.logPath}: line ${lineNo}`;
      if (entry === undefined || !Number.isSafeInteger(entry.seq) || !Array.isArray(entry.changes)) {
        throw new Error(`quota log ${where} is corrupt; restore the data directory from a backup`);
      }
      for (const c of entry.changes as unknown[]) checkStored(c, where, true);
      const seq = entry.seq as number;
      if (seq > after) {
        applyChanges(this.state, entry.changes as QuotaChange[]);
        this.seq = seq;
        this.changesSinceSnapshot++;
      }
      offset = nl + 1;
    }
  }
}

/**
 * The shape of a stored value (its meaning is checked by whoever loads it: QuotaAdmin.load, the one validation
 * of quota values); a list of rates is a stored value too. Throws naming `where`.
 */
function checkStored(q: unknown, where: string, removal = false): void {
  const v = q as Partial<QuotaChange> | null;
  const ok =
    typeof v === 'object' &&
    v !== null &&
    Array.isArray(v.entity) &&
    typeof v.quota_key === 'string' &&
    (typeof v.quota_value === 'number' ||
      typeof v.quota_value === 'string' ||
      Array.isArray(v.quota_value) ||
      (removal && v.quota_value === null));
  if (!ok) throw new Error(`${where} is not a valid quota: ${JSON.stringify(q)?.slice(0, 200)}`);
}
