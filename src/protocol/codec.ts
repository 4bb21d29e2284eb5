import { Packr, Unpackr } from 'msgpackr';
import { HEADER_BYTES } from './frame-decoder.js';

// Plain maps both ways: records/structures are a msgpackr extension other clients would not understand.
// int64AsType 'number': a uint64-encoded 5 is a valid int (it arrived as a BigInt otherwise); values of 2^53 and
// above become unsafe numbers that validation rejects.
const unpackr = new Unpackr({ mapsAsObjects: true, useRecords: false, int64AsType: 'number' });
const packr = new Packr({ useRecords: false });

/** Decodes one msgpack value; throws on malformed or trailing bytes. */
export const decodeBody = (body: Buffer): unknown => unpackr.unpack(body);

export const encodeBody = (value: unknown): Buffer => packr.pack(value);

/** One whole frame: header + body. */
export function frame(correlationId: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  out.writeUInt32BE(body.length + 4, 0);
  out.writeUInt32BE(correlationId >>> 0, 4);
  body.copy(out, HEADER_BYTES);
  return out;
}

export const encodeFrame = (correlationId: number, value: unknown): Buffer => frame(correlationId, encodeBody(value));

/** A plain msgpack map, as opposed to arrays, nil, or extension objects msgpackr turns into instances. */
export function isPlainMap(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
