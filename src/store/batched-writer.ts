import { constants } from 'node:fs';
import { appendFile, rename, stat } from 'node:fs/promises';

/**
 * Opened without blocking: a FIFO put where the file was (no reader) fails at once (ENXIO) instead of holding a
 * thread of the pool and the writer for ever (SIGTERM then never finished its flush); on a regular file it
 * changes nothing.
 */
const APPEND = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK;

export interface BatchedWriterOptions {
  /** The file lines are appended to (0600 when created). */
  path: string;
  /** Past this size the file is renamed to `<path>.1` (replacing it) and a new one starts. */
  maxFileBytes: number;
  /** Bytes of lines waiting to be written at most; a line past it is dropped and counted. */
  maxPendingBytes: number;
  /** Bytes one write carries at most (many lines); never more than maxFileBytes. @default 1 MiB */
  maxWriteBytes?: number;
}

export const DEFAULT_BATCHED_WRITER_OPTIONS: Readonly<Required<Pick<BatchedWriterOptions, 'maxWriteBytes'>>> = Object.freeze({
  maxWriteBytes: 1024 * 1024,
});

/**
 * A log file written behind a bounded queue (docs/operations.md, limits): `write` never waits and never fails;
 * lines wait in memory up to maxPendingBytes, past which they are dropped and counted, and one writer appends
 * whatever has gathered, many lines per write, rotating by size. The file is found by its path each write, so
 * logrotate's renames are followed. Not for records that must be durable before a reply (those use AppendFile).
 */
export class BatchedWriter {
  private pending: string[] = [];
  /** The byte length of each pending line. */
  private sizes: number[] = [];
  private pendingBytes = 0;
  private running: Promise<void> | null = null;
  /** Lines dropped because maxPendingBytes were waiting. */
  dropped = 0;
  /** Writes that failed (their lines are lost; the next write tries again). */
  writeFailures = 0;
  /** Appends made (each carries every line that had gathered, up to maxWriteBytes). */
  writes = 0;
  private readonly maxWriteBytes: number;

  constructor(readonly options: BatchedWriterOptions) {
    // A write never carries more than the file may hold, so rotation keeps the file under maxFileBytes.
    this.maxWriteBytes = Math.min(options.maxWriteBytes ?? DEFAULT_BATCHED_WRITER_OPTIONS.maxWriteBytes, options.maxFileBytes);
  }

  /** Bytes waiting to be written. */
  get queuedBytes(): number {
    return this.pendingBytes;
  }

  /** Queues one line (with its newline); false when it was dropped. */
  write(line: string): boolean {
    const bytes = Buffer.byteLength(line);
    if (this.pendingBytes + bytes > this.options.maxPendingBytes) {
      this.dropped++;
      return false;
    }
    this.pending.push(line);
    this.sizes.push(bytes);
    this.pendingBytes += bytes;
    this.running ??= this.writeQueued();
    return true;
  }

  /** Resolves once every line queued so far is written (or failed). */
  async flushed(): Promise<void> {
    while (this.running !== null) await this.running;
  }

  private async writeQueued(): Promise<void> {
    // Let the current burst gather first: one write for what a whole batch of requests produced.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.pending.length > 0) {
      const lines = this.pending;
      const sizes = this.sizes;
      this.pending = [];
      this.sizes = [];
      let i = 0;
      while (i < lines.length) {
        let bytes = 0;
        const start = i;
        while (i < lines.length && (i === start || bytes + sizes[i]! <= this.maxWriteBytes)) bytes += sizes[i++]!;
        await this.append(lines.slice(start, i).join(''), bytes);
        this.pendingBytes -= bytes;
      }
    }
    this.running = null;
  }

  private async append(text: string, bytes: number): Promise<void> {
    const { path, maxFileBytes } = this.options;
    try {
      const size = await stat(path).then(
        (s) => {
          // A directory, FIFO, socket or device where the log was: not written (counted), never waited on.
          if (!s.isFile()) throw new Error(`${path} is not a regular file`);
          return s.size;
        },
        (err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return 0;
          throw err;
        },
      );
      if (size > 0 && size + bytes > maxFileBytes) await rename(path, `${path}.1`);
      this.writes++;
      await appendFile(path, text, { mode: 0o600, flag: APPEND });
    } catch {
      this.writeFailures++;
    }
  }
}
