// What the HTTP middleware's `bytes` option needs beside the plugin: the bytes of one request's bodies, and the
// throttle those bytes earn, carried to the tenant's next requests (recorded after the fact, as Kafka records a
// fetch, their throttle cannot delay the response that earned it: KIP-219 delays what follows).
import { Transform } from 'node:stream';
import type { Clock } from '../quota/clock.js';

/** What one request's bodies counted, recorded once its response has been sent. */
export interface Counted {
  tenant: string;
  clientId: string | null;
  /** Bytes of a request body without Content-Length, as read (one with it was recorded before the handler). */
  requestBytes: number;
  responseBytes: number;
}

/** A Content-Length header's value when it is a plain decimal count (Node has already refused a malformed one). */
export function contentLength(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d{1,15}$/.test(v)) return undefined;
  return Number(v);
}

/** Adds a response payload's size to `counted`; a stream is returned wrapped in one that counts what passes. */
export function countPayload(counted: Counted, payload: unknown): unknown {
  if (payload === null || payload === undefined) return payload;
  if (typeof payload === 'string') counted.responseBytes += Buffer.byteLength(payload);
  else if (payload instanceof Uint8Array) counted.responseBytes += payload.byteLength;
  else if (typeof (payload as NodeJS.ReadableStream).pipe === 'function') {
    const counter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        counted.responseBytes += chunk.length;
        done(null, chunk);
      },
    });
    return (payload as NodeJS.ReadableStream).pipe(counter);
  }
  return payload;
}

/** tenant -> when the throttle its counted bytes earned ends; at most `max` tenants, the oldest forgotten first. */
export class ThrottledAfter {
  private readonly until = new Map<string, number>();

  constructor(
    private readonly clock: Clock,
    private readonly max: number,
  ) {}

  /** How long the tenant is still refused, in ms; 0 when it is not. */
  remaining(tenant: string): number {
    const until = this.until.get(tenant);
    if (until === undefined) return 0;
    const left = until - this.clock.now();
    if (left > 0) return Math.ceil(left);
    this.until.delete(tenant);
    return 0;
  }

  throttle(tenant: string, ms: number): void {
    const until = this.clock.now() + ms;
    if ((this.until.get(tenant) ?? 0) >= until) return;
    this.until.delete(tenant);
    this.until.set(tenant, until);
    if (this.until.size > this.max) this.until.delete(this.until.keys().next().value as string);
  }
}
