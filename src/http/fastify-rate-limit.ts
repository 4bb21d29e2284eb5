// `rivven-quota/fastify`: per-tenant rate limits and concurrency limits for an HTTP service on Fastify
// (DESIGN section 19), decided by the sidecar. Imports only Fastify's types: Fastify itself is the app's.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CircuitBreaker } from '../util/breaker.js';
import { isRetriable, RivvenError } from '../protocol/error-codes.js';
import { resourceNameError } from '../quota/quota-key.js';
import { contentLength, type Counted, countPayload, countStream, ThrottledAfter } from './counted-bytes.js';
import { OK_RESULT, type RecordResult } from '../protocol/messages/record/index.js';
import { DEFAULT_RATE_LIMIT_OPTIONS, type RateLimitOptions, type RateLimitStats } from './rate-limit-options.js';

// The options are part of the package's `rivven-quota/fastify` entry point, which is this file.
export { DEFAULT_RATE_LIMIT_OPTIONS, type RateLimitOptions, type RateLimitStats } from './rate-limit-options.js';

const LEASE = Symbol('rivven lease');
const COUNTED = Symbol('rivven bytes');
/** ask()'s answer when the sidecar refuses the tenant or client-id as a name (INVALID_ENTITY). */
const INVALID = Symbol('invalid name');
type WithLease = FastifyRequest & { [LEASE]?: string; [COUNTED]?: Counted };

/**
 * The plugin. Per request with a tenant: RecordRequest in admit mode (a refused request records nothing, so its
 * Retry-After is exact), as the `user` of the quota entities (`rivven quota set --user T --tier free`):
 * - Throttled: 429, `Retry-After` (whole seconds, rounded up), `X-RateLimit-Limit`, `-Remaining: 0`, `-Reset`;
 * - Denied (the tenant is blocked): 403 with the operator's reason;
 * - a tenant or client-id the sidecar refuses as a name (longer than 1024 bytes): 400 (never let through unlimited);
 * - with `leases`, over max_in_flight: 429; the lease is released when the response is sent, or the client leaves;
 * - the sidecar away (late, unreachable, breaker open): the request passes, counted in `stats.failures`.
 * Registered with `app.register(rivvenRateLimit, options)`; it applies to the whole app (not encapsulated).
 */
export function rivvenRateLimit(
  app: FastifyInstance,
  options: Partial<RateLimitOptions> & Pick<RateLimitOptions, 'client' | 'tenant'>,
  done: (err?: Error) => void,
): void {
  const o: RateLimitOptions = { ...DEFAULT_RATE_LIMIT_OPTIONS, ...options };
  const badResource = o.resource === undefined ? undefined : resourceNameError(o.resource);
  if (badResource !== undefined) {
    done(new Error(`rivvenRateLimit: resource ${JSON.stringify(o.resource).slice(0, 64)}: ${badResource}`));
    return;
  }
  const limiter = new Limiter(o);
  app.decorate('rivvenRateLimit', limiter.stats);
  app.addHook('onRequest', (req, reply) => limiter.onRequest(req, reply));
  if (o.bytes) {
    app.addHook('onSend', async (req, _reply, payload) => limiter.countResponse(req as WithLease, payload));
    // The body as Fastify reads it: a 'data' listener on req.raw would switch it to flowing mode, and chunks that
    // come before Fastify's own listener (any async hook between) would be lost to the handler.
    app.addHook('preParsing', async (req, _reply, payload) => limiter.countRequestBody(req as WithLease, payload));
  }
  app.addHook('onResponse', async (req) => {
    limiter.release(req as WithLease);
    limiter.recordCounted(req as WithLease);
  });
  done();
}
// As fastify-plugin does: the hooks apply to every route of the app, not only inside this plugin's scope.
Object.assign(rivvenRateLimit, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'rivven-rate-limit' });

class Limiter {
  readonly stats: RateLimitStats = { failures: 0, throttled: 0, denied: 0 };
  private readonly breaker: CircuitBreaker;
  private readonly call: { timeoutMs: number; failFast: boolean };
  /** tenant -> [fetched at, limit per second, measured rate], oldest first. */
  private readonly usage = new Map<string, [number, number, number]>();
  private readonly refreshing = new Set<string>();
  private readonly throttledAfter: ThrottledAfter;
  private describeAllowed = true;
  /** The rate the X-RateLimit headers report: request_rate, or the resource's. */
  private readonly rateKey: string;

  constructor(private readonly o: RateLimitOptions) {
    this.rateKey = o.resource === undefined ? 'request_rate' : `${o.resource}_rate`;
    this.breaker = new CircuitBreaker(o.breaker);
    this.throttledAfter = new ThrottledAfter(o.clock, o.maxTenants);
    this.call = Object.freeze({ timeoutMs: o.recordDeadlineMs, failFast: true });
  }

  async onRequest(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const tenant = typeof this.o.tenant === 'string' ? header(req, this.o.tenant) : this.o.tenant(req);
    if (tenant === undefined || tenant === '') return;
    const clientId = this.o.clientId?.(req) ?? null;
    const owed = this.o.bytes ? this.throttledAfter.remaining(tenant) : 0;
    if (owed > 0) {
      this.stats.throttled++;
      await this.tooMany(reply, tenant, owed, 'rate_limited');
      return;
    }
    const cost = this.o.cost?.(req) ?? 1;
    const resource = this.o.resource;
    let r = await this.ask(() =>
      resource === undefined
        ? this.o.client.recordRequest({ user: tenant, clientId, count: cost, admit: true }, this.call)
        : this.o.client.recordUsage({ user: tenant, clientId, resource, amount: cost, admit: true }, this.call),
    );
    if (this.o.bytes && r !== undefined && r !== INVALID && r.denied === undefined && r.throttleTimeMs === 0) {
      r = await this.countRequest(req as WithLease, tenant, clientId);
    }
    if (r === undefined) return;
    if (r === INVALID) {
      await reply.code(400).send({ error: 'invalid_tenant', reason: 'the sidecar refuses this tenant or client-id as a name' });
      return;
    }
    if (r.denied !== undefined) {
      this.stats.denied++;
      await reply.code(403).send({ error: 'forbidden', reason: r.denied.reason });
      return;
    }
    if (r.throttleTimeMs > 0) {
      this.stats.throttled++;
      await this.tooMany(reply, tenant, r.throttleTimeMs, 'rate_limited');
      return;
    }
    if (this.o.leases) {
      const lease = await this.ask(() => this.o.client.acquireLease({ user: tenant, clientId, ttlMs: this.o.leaseTtlMs }, this.call));
      if (lease !== undefined && lease !== INVALID && !lease.granted) {
        this.stats.throttled++;
        await this.tooMany(reply, tenant, lease.throttleTimeMs, 'too_many_in_flight');
        return;
      }
      if (lease !== undefined && lease !== INVALID && lease.granted) {
        (req as WithLease)[LEASE] = lease.leaseId;
        // onResponse never runs for a client that goes away before its response is sent: the lease was held for
        // its whole ttl, refusing the tenant's requests meanwhile. 'close' comes in both cases (release is once).
        reply.raw.once('close', () => this.release(req as WithLease));
      }
    }
    if (this.o.rateLimitHeaders) {
      const snap = this.snapshot(tenant);
      if (snap !== undefined) {
        reply.header('x-ratelimit-limit', String(Math.floor(snap[0])));
        reply.header('x-ratelimit-remaining', String(Math.max(0, Math.floor(snap[0] - snap[1]))));
        reply.header('x-ratelimit-reset', '1');
      }
    }
  }

  /** Records a Content-Length body up front (admit mode); a chunked one is counted as it is read. */
  private async countRequest(req: WithLease, tenant: string, clientId: string | null) {
    const counted: Counted = { tenant, clientId, requestBytes: 0, responseBytes: 0 };
    req[COUNTED] = counted;
    const length = contentLength(req.headers['content-length']);
    // Without a Content-Length the body is counted as Fastify reads it (preParsing) and recorded after the response.
    if (length === undefined || length === 0) return NOTHING_COUNTED;
    counted.upFront = true;
    return this.ask(() => this.o.client.recordProduce({ user: tenant, clientId, bytes: length, admit: true }, this.call));
  }

  /** preParsing: a body not recorded up front is counted as it is read. */
  countRequestBody(req: WithLease, payload: NodeJS.ReadableStream): NodeJS.ReadableStream {
    const counted = req[COUNTED];
    if (counted === undefined || counted.upFront === true) return payload;
    return countStream(payload, (n) => {
      counted.requestBytes += n;
    });
  }

  /** onSend: the response body's size, or a stream that counts what passes through it. */
  countResponse(req: WithLease, payload: unknown): unknown {
    const counted = req[COUNTED];
    return counted === undefined ? payload : countPayload(counted, payload);
  }

  /** After the response: what was counted, recorded as Kafka records a fetch; its throttle refuses what follows. */
  recordCounted(req: WithLease): void {
    const c = req[COUNTED];
    if (c === undefined) return;
    req[COUNTED] = undefined;
    const after = (r: RecordResult | undefined | typeof INVALID) => {
      if (r !== undefined && r !== INVALID && r.denied === undefined && r.throttleTimeMs > 0)
        this.throttledAfter.throttle(c.tenant, r.throttleTimeMs);
    };
    const who = { user: c.tenant, clientId: c.clientId };
    if (c.requestBytes > 0) void this.ask(() => this.o.client.recordProduce({ ...who, bytes: c.requestBytes }, this.call)).then(after);
    if (c.responseBytes > 0) void this.ask(() => this.o.client.recordConsume({ ...who, bytes: c.responseBytes }, this.call)).then(after);
  }

  release(req: WithLease): void {
    const id = req[LEASE];
    if (id === undefined) return;
    req[LEASE] = undefined;
    // Not awaited: the response is sent; a release the sidecar misses ends with the lease's ttl.
    this.o.client.releaseLease(id, { timeoutMs: this.o.leaseTtlMs }).catch((err: Error) => this.o.onError(err));
  }

  /** The sidecar's answer; undefined when it could not give one in time (the request passes); INVALID: 400. */
  private async ask<T>(call: () => Promise<T>): Promise<T | undefined | typeof INVALID> {
    if (!this.breaker.allow()) {
      this.stats.failures++;
      return undefined;
    }
    try {
      const r = await call();
      this.breaker.success();
      return r;
    } catch (err) {
      // A name the sidecar refuses (longer than 1024 bytes) is a bad request, not a sidecar away: let through, any
      // tenant would escape its limits by a long enough name.
      if (err instanceof RivvenError && err.code === 'INVALID_ENTITY') {
        this.breaker.success();
        return INVALID;
      }
      this.stats.failures++;
      // A non-retriable error is a bad call, not a sick sidecar: it does not open the breaker.
      if (err instanceof RivvenError && !isRetriable(err.code)) this.breaker.success();
      else this.breaker.failure();
      this.o.onError(err as Error);
      return undefined;
    }
  }

  private async tooMany(reply: FastifyReply, tenant: string, waitMs: number, error: string): Promise<void> {
    // Whole seconds strictly past the wait: a wait of exactly 2000 ms said 2, and a retry at that instant could
    // find the bucket exactly full.
    const retryAfter = Math.floor(waitMs / 1000) + 1;
    reply.header('retry-after', String(retryAfter));
    const snap = this.o.rateLimitHeaders ? this.snapshot(tenant) : undefined;
    if (snap !== undefined) reply.header('x-ratelimit-limit', String(Math.floor(snap[0])));
    reply.header('x-ratelimit-remaining', '0');
    reply.header('x-ratelimit-reset', String(retryAfter));
    await reply.code(429).send({ error, retry_after_ms: waitMs });
  }

  /** The tenant's last known [limit, rate]; refreshed in the background when stale, never waited for. */
  private snapshot(tenant: string): [number, number] | undefined {
    const s = this.usage.get(tenant);
    const now = performance.now();
    if ((s === undefined || now - s[0] > this.o.usageRefreshMs) && this.describeAllowed && this.refreshing.size < 64) {
      this.refreshing.add(tenant);
      this.o.client
        .describeUsage({ entities: [['user', tenant]] })
        .then(
          (rows) => {
            // The per-second bucket's row (no `period`): a key with several rates has a row per period, and the
            // headers' limit and remaining are per second. A key with only longer periods gives no headers.
            const row = rows.find((b) => b.quota_type === this.rateKey && b.period === undefined);
            // Only finite numbers: the headers said `Infinity` or `NaN` for a reply that had them.
            if (row === undefined || !Number.isFinite(row.limit) || !Number.isFinite(row.rate)) return;
            this.usage.delete(tenant);
            this.usage.set(tenant, [performance.now(), row.limit, row.rate]);
            if (this.usage.size > this.o.maxTenants) this.usage.delete(this.usage.keys().next().value as string);
          },
          (err: unknown) => {
            // A token without the describe role: no limit headers, and no more asking.
            if (err instanceof RivvenError && err.code === 'AUTHORIZATION_FAILED') this.describeAllowed = false;
          },
        )
        .finally(() => this.refreshing.delete(tenant));
    }
    return s === undefined ? undefined : [s[1], s[2]];
  }
}

/** countRequest's answer when there was nothing to record before the handler: let the request on. */
const NOTHING_COUNTED = OK_RESULT;

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}
