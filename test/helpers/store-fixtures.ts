import type { AuditRecord, QuotaChange } from '../../src/store/quota-store.js';

/** A request_rate change of one user (null removes it), and an audit record for it: the stores' test fixtures. */
export const set = (user: string, v: number | null): QuotaChange => ({
  entity: [['user', user]],
  quota_key: 'request_rate',
  quota_value: v,
});

export const audit = (user: string): AuditRecord => ({
  time: 't',
  principal: 'p',
  client: null,
  entity: [['user', user]],
  quota_key: 'request_rate',
  old: null,
  new: 1,
});
