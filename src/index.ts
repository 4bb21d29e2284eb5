// The package's public surface: what a broker or a tool embeds.
export { App } from './app.js';
export { loadConfig, ConfigError } from './config/load.js';
export type { Config } from './config/schema.js';
export { ManualClock, systemClock, type Clock } from './quota/clock.js';
export { QuotaManager, type Verdict } from './quota/quota-manager.js';
export { DEFAULT_QUOTA_OPTIONS, type QuotaManagerOptions } from './quota/options.js';
export { QuotaTable } from './quota/quota-table.js';
export { QUOTA_KEYS, type QuotaKey, type QuotaValue } from './quota/quota-key.js';
export type { Entity, Component, EntityType } from './quota/entity.js';
export { FileQuotaStore } from './store/file-quota-store.js';
export { MemoryQuotaStore, type QuotaStore, type StoredQuota, type AuditRecord } from './store/quota-store.js';
export * from './client/index.js';
