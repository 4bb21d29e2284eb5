import { open, stat, type FileHandle } from 'node:fs/promises';

/** The one write an AppendFile makes; tests pass one that fails part-way, as a full disk does. */
export type WriteAll = (handle: FileHandle, data: Buffer, position: number) => Promise<void>;

export const writeAll: WriteAll = async (handle, data, position) => {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
};

/**
 * A file that only grows by whole records: each append is written at the end and fsynced, or, if any part of
 * it fails (ENOSPC, EIO), cut back to where it started, so the file never holds a torn line that the next
 * record would be glued onto.
 *
 * It follows its path, as logrotate expects: before each append (and on reopen(), for SIGHUP) it checks that
 * the path still names the file it has open; if the file was deleted or renamed away, it opens the path anew.
 * An acknowledged record therefore always lands in the file an operator finds at that path.
 */
export class AppendFile {
  private handle: FileHandle | undefined;
  private ino = -1;
  private size = 0;

  constructor(
    readonly path: string,
    private readonly write: WriteAll = writeAll,
  ) {}

  /** Appends durably; resolves with the offset the data starts at (for truncateTo). */
  async append(data: Buffer): Promise<number> {
    const handle = await this.current();
    const start = this.size;
    try {
      await this.write(handle, data, start);
      await handle.sync();
    } catch (err) {
      // Cut the partial record off; if even that fails, the next append must not trust `size`.
      try {
        await handle.truncate(start);
        await handle.sync();
      } catch {
        await this.reopen();
      }
      throw err;
    }
    this.size = start + data.length;
    return start;
  }

  /** Cuts what was appended from `offset` on (undoing an append whose companion write failed). */
  async truncateTo(offset: number): Promise<void> {
    const handle = await this.current();
    if (offset >= this.size) return;
    await handle.truncate(offset);
    await handle.sync();
    this.size = offset;
  }

  /** Closes the handle; the next append opens the path afresh. */
  async reopen(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    await h?.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.reopen();
  }

  private async current(): Promise<FileHandle> {
    if (this.handle !== undefined) {
      const onDisk = await stat(this.path).catch(() => undefined);
      if (onDisk !== undefined && onDisk.ino === this.ino) return this.handle;
      await this.reopen();
    }
    const handle = await open(this.path, 'a+', 0o600);
    const st = await handle.stat();
    this.handle = handle;
    this.ino = st.ino;
    this.size = st.size;
    return handle;
  }
}
