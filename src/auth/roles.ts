/**
 * Roles, as bits so a connection's permissions are one integer and the check on the Record hot path is one AND.
 * record: Record* requests and leases; describe: DescribeQuotas, DescribeUsage, DescribeViolations, DescribeFleet; alter:
 * AlterQuotas. Hello and Ping need none.
 */
export const ROLES = ['record', 'describe', 'alter'] as const;
export type Role = (typeof ROLES)[number];

export const ROLE_RECORD = 1;
export const ROLE_DESCRIBE = 2;
export const ROLE_ALTER = 4;
/** What a connection may do on a server without a tokens file. */
export const ALL_ROLES = ROLE_RECORD | ROLE_DESCRIBE | ROLE_ALTER;

export const roleBits = (roles: readonly Role[]): number => roles.reduce((bits, r) => bits | (1 << ROLES.indexOf(r)), 0);

/** The role a request type needs; 0 for Hello, Ping and types the dispatcher will refuse anyway. */
export function roleFor(type: string): number {
  switch (type) {
    case 'RecordProduce':
    case 'RecordConsume':
    case 'RecordRequest':
    case 'RecordUsage':
    case 'AcquireLease':
    case 'ReleaseLease':
      return ROLE_RECORD;
    case 'DescribeQuotas':
    case 'DescribeUsage':
    case 'DescribeViolations':
    case 'DescribeFleet':
      return ROLE_DESCRIBE;
    case 'AlterQuotas':
    case 'ResetUsage':
      return ROLE_ALTER;
    default:
      return 0;
  }
}
