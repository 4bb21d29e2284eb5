import { mkdir, open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditRecord, QuotaStore, StoredQuota } from './quota-store.js';

export const STATE_FILE = 'quotas.json';
export const AUDIT_FILE = 'audit.log';
const STATE_VERSION = 1;

/**
 * Run-time quotas in `<data_dir>/quotas.json`, alterations appended to `<data_dir>/audit.log` (JSON lines).
 *
 * save(): the whole snapshot goes to a temp file that is fsynced, the audit lines are appended and fsynced,
 * the temp file is renamed over the state file and the directory is fsynced. After a crash the state file is
 * either the old or the new snapshot, never a mix; an audit line can exist for a change that crashed before
 * its rename (and so was never acknowledged), but an acknowledged change always has its audit line.
 */
export class FileQuotaStore implements QuotaStore {
  readonly statePath: string;
  readonly auditPath: string;
  private audit: FileHandle | undefined;

  constructor(readonly dataDir: string) {
    this.statePath = join(dataDir, STATE_FILE);
    this.auditPath = join(dataDir, AUDIT_FILE);
  }

  get description(): string {
    return `file ${this.statePath}`;
  }

  async load(): Promise<StoredQuota[]> {
    await mkdir(this.dataDir, { recursive: true });
    await rm(`${this.statePath}.tmp`, { force: true });
    let text: string;
    try {
      text = await readFile(this.statePath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new Error(`cannot read quota state file ${this.statePath}: ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new Error(`quota state file ${this.statePath} is corrupt (${(err as Error).message}); restore it from a backup or move it away to start empty`);
    }
    const state = parsed as { version?: unknown; quotas?: unknown };
    if (state?.version !== STATE_VERSION || !Array.isArray(state.quotas)) {
      throw new Error(`quota state file ${this.statePath} is not a version ${STATE_VERSION} rivven state file`);
    }
    return state.quotas as StoredQuota[];
  }

  async save(snapshot: StoredQuota[], audit: AuditRecord[]): Promise<void> {
    const tmp = `${this.statePath}.tmp`;
    const file = await open(tmp, 'w', 0o600);
    try {
      await file.writeFile(`${JSON.stringify({ version: STATE_VERSION, quotas: snapshot }, null, 1)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    this.audit ??= await open(this.auditPath, 'a', 0o600);
    await this.audit.appendFile(audit.map((r) => `${JSON.stringify(r)}\n`).join(''));
    await this.audit.sync();
    await rename(tmp, this.statePath);
    const dir = await open(this.dataDir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  async close(): Promise<void> {
    await this.audit?.close();
    this.audit = undefined;
  }
}
