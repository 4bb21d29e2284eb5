// What the HTTP middleware's `bytes` option needs beside the plugin: the bytes of one request's bodies, and the
// throttle those bytes earn, carried to the tenant's next requests (recorded after the fact, as Kafka records a
// fetch, their throttle cannot delay the response that earned it: like Kafka, it delays what follows).
import { pipeline, Transform } from 'node:stream';
import type { Clock } from '../quota/clock.js';

/** What one request's bodies counted, recorded once its response has been sent. */
export interface Counted {
  tenant: string;
  clientId: string | null;
  /** Bytes of a request body without Content-Length, as read (one with it was recorded before the handler). */
  requestBytes: number;
  responseBytes: number;
  /** The request body was recorded before the handler (Content-Length). */
  upFront?: boolean;
}

/** `source` through a stream that tells `add` each chunk's size; the source's error reaches the returned stream. */
export function countStream(source: NodeJS.ReadableStream, add: (n: number) => void): NodeJS.ReadableStream {
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      add(chunk.length);
      done(null, chunk);
    },
  });
  return pipeline(source, counter, () => undefined);
}

/**
 * A Content-Length header's value when it is a plain decimal count (Node has already refused a malformed one).
 * Leading zeros are valid (RFC 9110: 1*DIGIT) and Node honours them, so they are read, not refused: a padded
 * header must not make a body uncounted. Past 2^53-1 it counts as 2^53-1 (the body limit refuses it anyway).
 */
export function contentLength(v: string | undefined): number | undefined {
  if (v === undefined || v.length > 1024 || !/^\d+$/.test(v)) return undefined;
  return Math.min(Number(v), Number.MAX_SAFE_INTEGER);
}

/** Adds a response payload's size to `counted`; a stream is returned wrapped in one that counts what passes. */
export function countPayload(counted: Counted, payload: unknown): unknown {
  if (payload === null || payload === undefined) return payload;
  if (typeof payload === 'string') counted.responseBytes += Buffer.byteLength(payload);
  else if (payload instanceof Uint8Array) counted.responseBytes += payload.byteLength;
  else if (typeof (payload as NodeJS.ReadableStream).pipe === 'function') {
    // Through countStream's pipeline, not pipe: a source that errors destroys the counter with its error, which
    // Fastify handles as it would the source's (pipe leaves the source's 'error' unheard: the process crashed).
    return countStream(payload as NodeJS.ReadableStream, (n) => {
      counted.responseBytes += n;
    });
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
