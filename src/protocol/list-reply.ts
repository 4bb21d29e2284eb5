import { encodeBody, frame } from './codec.js';
import { RivvenError } from './error-codes.js';

/**
 * Builds a reply `{ type, <field>: [items...] }` one item at a time, so its size is known before it exists:
 * past `maxBytes` the builder stops with REPLY_TOO_LARGE instead of allocating the whole thing. The msgpack
 * map and array headers are written here; each item is encoded by msgpackr on its own.
 */
export class ListReplyBuilder {
  private readonly items: Buffer[] = [];
  private bytes = 0;

  constructor(
    private readonly type: string,
    private readonly field: string,
    private readonly maxBytes: number,
  ) {}

  /** Throws RivvenError REPLY_TOO_LARGE once the items exceed maxBytes. */
  add(item: unknown): void {
    const encoded = encodeBody(item);
    this.bytes += encoded.length;
    if (this.bytes > this.maxBytes) {
      throw new RivvenError(
        'REPLY_TOO_LARGE',
        `the reply would exceed server.max_reply_bytes (${this.maxBytes}) after ${this.items.length} ${this.field}; narrow the request`,
      );
    }
    this.items.push(encoded);
  }

  get count(): number {
    return this.items.length;
  }

  /** The whole frame: map32 of 2 entries { type, field: array32 }. */
  frame(correlationId: number): Buffer {
    const head = Buffer.concat([
      Buffer.from([0x82]),
      encodeBody('type'),
      encodeBody(this.type),
      encodeBody(this.field),
      arrayHeader(this.items.length),
    ]);
    return frame(correlationId, Buffer.concat([head, ...this.items], head.length + this.bytes));
  }
}

function arrayHeader(n: number): Buffer {
  if (n < 16) return Buffer.from([0x90 | n]);
  const b = Buffer.allocUnsafe(5);
  b[0] = 0xdd;
  b.writeUInt32BE(n, 1);
  return b;
}
