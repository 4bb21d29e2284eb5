import { RivvenError } from '../error-codes.js';
import { parseName } from '../../quota/entity.js';
import type { EntityError } from '../../quota/entity.js';

/** Field readers shared by the request modules. Each throws INVALID_REQUEST naming the field. */

export type Body = Record<string, unknown>;

const bad = (msg: string): RivvenError => new RivvenError('INVALID_REQUEST', msg);

/** A non-negative integer <= 2^53-1; msgpack int or a float64 holding an integer. */
export function uint(body: Body, field: string, fallback?: number): number {
  const v = body[field];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw bad(`${field} must be an integer from 0 to 2^53-1`);
  }
  return v;
}

export function bool(body: Body, field: string): boolean {
  const v = body[field];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw bad(`${field} must be a boolean`);
  return v;
}

export function optionalString(body: Body, field: string, maxLength: number): string | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw bad(`${field} must be a string`);
  if (v.length > maxLength) throw bad(`${field} is longer than ${maxLength} characters`);
  return v;
}

/**
 * A principal name: absent or null means none. A value that is not a string is a malformed request
 * (INVALID_REQUEST); a string that is not a valid name (empty, over 1024 bytes, not valid UTF-8) names no
 * valid entity (INVALID_ENTITY).
 */
export function principalName(body: Body, field: string): string | null {
  const v = body[field];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw bad(`${field} must be a string or null`);
  try {
    return parseName(v, field);
  } catch (err) {
    throw new RivvenError('INVALID_ENTITY', (err as EntityError).message);
  }
}

/** An optional string held to the rules of a name, such as Hello's client_name. */
export const optionalName = (body: Body, field: string): string | undefined => principalName(body, field) ?? undefined;

export function list(body: Body, field: string, max: number): unknown[] | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw bad(`${field} must be a list`);
  if (v.length > max) throw new RivvenError('TOO_MANY_ITEMS', `${field} has ${v.length} items; at most ${max} per request`);
  return v;
}
