import { MemoryQuotaStore, type AuditRecord, type QuotaChange, type StoredQuota } from '../../src/store/quota-store.js';

/** A real in-memory store whose saves wait until the test opens the gate: a slow disk, on demand. */
export class GateStore extends MemoryQuotaStore {
  private gate: Promise<void> = Promise.resolve();
  private open: () => void = () => undefined;
  failNext: Error | undefined;

  closeGate(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  openGate(): void {
    this.open();
  }

  override async load(): Promise<StoredQuota[]> {
    await this.gate;
    return super.load();
  }

  override async apply(changes: QuotaChange[], audit: AuditRecord[]): Promise<void> {
    await this.gate;
    const err = this.failNext;
    this.failNext = undefined;
    if (err) throw err;
    return super.apply(changes, audit);
  }
}
