import { MESSAGES } from '../protocol/messages/index.js';
import { ROLES, type Role } from '../protocol/messages/message.js';

/**
 * Roles, as bits so a connection's permissions are one integer and the check on the Record hot path is one AND.
 * Each message declares the role it needs (protocol/messages/index.ts lists them; docs/security.md has the table).
 */
export { ROLES, type Role };

export const ROLE_RECORD = 1;
export const ROLE_DESCRIBE = 2;
export const ROLE_ALTER = 4;
/** What a connection may do on a server without a tokens file. */
export const ALL_ROLES = ROLE_RECORD | ROLE_DESCRIBE | ROLE_ALTER;

export const roleBits = (roles: readonly Role[]): number => roles.reduce((bits, r) => bits | (1 << ROLES.indexOf(r)), 0);

const roleByType = new Map<string, number>(MESSAGES.map((m) => [m.type, m.role === null ? 0 : roleBits([m.role])]));

/** The role a request type needs; 0 for Hello, Ping and types the dispatcher will refuse anyway. */
export const roleFor = (type: string): number => roleByType.get(type) ?? 0;
