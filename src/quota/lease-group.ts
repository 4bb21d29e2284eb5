import { randomFillSync } from 'node:crypto';
import { IndexedHeap } from '../util/indexed-heap.js';

// The records the LeaseManager keeps: one per lease, one per group sharing a max_in_flight limit, each in heaps
// by expiry; and the lease ids it hands out.

export interface Lease {
  id: string;
  group: Group;
  principal: string;
  expiresAt: number;
  connection: number;
  /** Position in the group's heap and in the heap of all leases (IndexedHeap positions). */
  inGroup: number;
  inAll: number;
}

export const byExpiry = (l: Lease): number => l.expiresAt;

/**
 * Lease ids are 12 random bytes (unguessable: ReleaseLease trusts them), cut from a pool filled 4096 ids at a
 * time, so a grant costs no call into the random source of its own.
 */
const ID_BYTES = 12;
const idPool = Buffer.alloc(ID_BYTES * 4096);
let idNext = idPool.length;
export function leaseId(): string {
  if (idNext === idPool.length) {
    randomFillSync(idPool);
    idNext = 0;
  }
  idNext += ID_BYTES;
  return idPool.toString('base64url', idNext - ID_BYTES, idNext);
}

/** The leases of one group (who shares a max_in_flight limit, decided by the level that set it), soonest to end first. */
export interface Group {
  key: string;
  limit: number;
  leases: IndexedHeap<Lease>;
  /** The group's parts, so DescribeUsage can filter and show them without parsing the display name. */
  user: string | null;
  client: string | null;
}

export const newGroup = (key: string, limit: number, user: string | null, client: string | null): Group => ({
  key,
  limit,
  user,
  client,
  leases: new IndexedHeap<Lease>(
    byExpiry,
    (l) => l.inGroup,
    (l, i) => {
      l.inGroup = i;
    },
  ),
});
