// The QuotaManager: record, admit and throttle for each Record call, over the buckets its bases find
// (bucket-resolver), count (quota-counters) and report on (quota-usage); each of those says why it is apart.
import { bucketName, GROUP, keyOfKind, periodOfKind, resourceKind, keyPeriodOfKind } from './bucket-keeper.js';
import { admitWait, MULTI, overWait } from './bucket-groups.js';
import { BLOCKED, NONE } from './bucket-resolver.js';
import { bucketDisplay } from './entity.js';
import { CONSUME, PRODUCE, REQUEST, type RateKey } from './quota-key.js';
import { QuotaUsage } from './quota-usage.js';
import type { PeriodUnit } from './rate-value.js';
import { NO_VIOLATIONS, type ViolationSink } from './violations.js';
import { NEAR_LIMIT } from './usage-report.js';

/**
 * The answer to one Record* call; throttleMs 0 means Ok.
 * The manager reuses ONE instance for every answer (no allocation per call): copy what you need out of it
 * before the next call to the same manager.
 */
export interface Verdict {
  throttleMs: number;
  /** The rate key that binds: a built-in one, or a declared resource's `<name>_rate`. */
  quotaType: RateKey;
  entity: string;
  recorded: boolean;
  /** The principal is blocked: reject the request (Denied). `entity` names the blocked entity. */
  denied: boolean;
  reason: string;
  /** The period of the rate whose bucket binds (the longest wait): 's' unless the key has other periods. */
  period: PeriodUnit;
}

/** A violation's detail names a rate per minute, hour or day; a per-second one names no period. */
const perText = (period: PeriodUnit): string => (period === 's' ? '' : ` (the per-${period} rate)`);

/**
 * The quota policy: for each Record call, which buckets it lands in (resolution, cached per caller), record or
 * admit, the throttle, and the counters behind the metrics. It does not know how buckets are stored: that is
 * the BucketKeeper's (LocalBucketKeeper by default). Synchronous and without I/O: time comes from the injected
 * clock; the only timer is the optional cleanup interval.
 */
export class QuotaManager extends QuotaUsage {
  /** Where throttles, shadow violations and denials are reported as episodes (the violation log). */
  events: ViolationSink = NO_VIOLATIONS;

  private readonly verdict: Verdict = {
    throttleMs: 0,
    quotaType: 'produce_bytes_rate',
    entity: '',
    recorded: true,
    denied: false,
    reason: '',
    period: 's',
  };
  /** The bucket that binds in the last wait computed over one bucket or a group (the longest wait). */
  private bound = -1;

  // `now` defaults to the injected clock; a server answering a batch of requests passes one reading for all.
  recordProduce(user: string | null, client: string | null, bytes: number, admit: boolean, now = this.clock.now()): Verdict {
    return this.recordOne(PRODUCE, user, client, bytes, admit, now);
  }

  recordRequest(user: string | null, client: string | null, count: number, admit: boolean, now = this.clock.now()): Verdict {
    return this.recordOne(REQUEST, user, client, count, admit, now);
  }

  /** A declared resource's usage (RecordUsage): `resource` is its index in quotas.resources. */
  recordUsage(
    resource: number,
    user: string | null,
    client: string | null,
    amount: number,
    admit: boolean,
    now = this.clock.now(),
  ): Verdict {
    return this.recordOne(resourceKind(resource), user, client, amount, admit, now);
  }

  recordConsume(
    user: string | null,
    client: string | null,
    group: string | null,
    bytes: number,
    admit: boolean,
    now = this.clock.now(),
  ): Verdict {
    if (group === null) return this.recordOne(CONSUME, user, client, bytes, admit, now);
    const a = this.bucketFor(CONSUME, user, client, now);
    if (a === BLOCKED) return this.deny(user, client);
    const b = this.bucketFor(GROUP, group, null, now);
    if (a === NONE && b === NONE) return this.ok();
    // a and b are each one bucket or a group of them (several rates); `bound` names the one that binds.
    if (admit) {
      const waitA = a === NONE ? 0 : this.enforce(this.admitWaitOf(a, bytes));
      const boundA = this.bound;
      const waitB = b === NONE ? 0 : this.enforce(this.admitWaitOf(b, bytes));
      const boundB = this.bound;
      if (waitA === 0 && waitB === 0) {
        if (a !== NONE) this.chargeOf(a, bytes, now);
        if (b !== NONE) this.chargeOf(b, bytes, now);
        return this.ok();
      }
      return waitA >= waitB ? this.throttled(boundA, waitA, false) : this.throttled(boundB, waitB, false);
    }
    const waitA = a === NONE ? 0 : this.enforce(this.recordWaitOf(a, bytes, now));
    const boundA = this.bound;
    const waitB = b === NONE ? 0 : this.enforce(this.recordWaitOf(b, bytes, now));
    const boundB = this.bound;
    if (waitA === 0 && waitB === 0) return this.ok();
    // Both buckets may be over: each counts its throttle, the reply names the longer wait.
    if (waitA > 0 && waitB > 0) this.buckets.countThrottle(waitA >= waitB ? boundB : boundA);
    return waitA >= waitB ? this.throttled(boundA, waitA, true) : this.throttled(boundB, waitB, true);
  }

  private recordOne(k: number, user: string | null, client: string | null, amount: number, admit: boolean, now: number) {
    const id = this.bucketFor(k, user, client, now);
    if (id < 0) {
      if (id <= MULTI) return this.recordGroup(id, amount, admit, now);
      return id === BLOCKED ? this.deny(user, client) : this.ok();
    }
    if (admit) {
      const wait = this.enforced(id, admitWait(this.buckets, id, amount));
      if (wait === 0) {
        this.charge(id, amount, now);
        return this.ok();
      }
      return this.throttled(id, wait, false);
    }
    const wait = this.enforced(id, this.recordAndWait(id, amount, now));
    return wait === 0 ? this.ok() : this.throttled(id, wait, true);
  }

  /**
   * A call of a key with several rates (docs/algorithm.md, section 7): the wait is the longest among its
   * buckets; record mode records into every bucket, admit mode into all of them or (refused) none.
   */
  private recordGroup(ref: number, amount: number, admit: boolean, now: number): Verdict {
    if (admit) {
      const wait = this.enforce(this.admitWaitOf(ref, amount));
      if (wait === 0) {
        this.chargeOf(ref, amount, now);
        return this.ok();
      }
      return this.throttled(this.bound, wait, false);
    }
    const wait = this.enforce(this.recordWaitOf(ref, amount, now));
    return wait === 0 ? this.ok() : this.throttled(this.bound, wait, true);
  }

  /** `enforced` for the bucket that bound the last wait computed (`bound`). */
  private enforce(wait: number): number {
    return this.enforced(this.bound, wait);
  }

  /** The admit-mode wait of one bucket or a group (the longest; `bound` names its bucket). Changes nothing. */
  private admitWaitOf(ref: number, amount: number): number {
    if (ref >= 0) {
      this.bound = ref;
      return admitWait(this.buckets, ref, amount);
    }
    const wait = this.groups.admitWait(ref, amount);
    this.bound = this.groups.bound;
    return wait;
  }

  /** Records into one bucket or every bucket of a group, and returns the longest wait (`bound` names its bucket). */
  private recordWaitOf(ref: number, amount: number, now: number): number {
    if (ref >= 0) {
      this.bound = ref;
      return this.recordAndWait(ref, amount, now);
    }
    this.chargeOf(ref, amount, now);
    const wait = this.groups.overWait(ref);
    this.bound = this.groups.bound;
    return wait;
  }

  /** Records `amount` into one bucket or into every bucket of a group; a near-limit call counts once. */
  private chargeOf(ref: number, amount: number, now: number): void {
    if (ref >= 0) this.charge(ref, amount, now);
    else {
      const near = this.groups.record(ref, amount, now, NEAR_LIMIT);
      if (near >= 0) this.nearLimitByPeriod[keyPeriodOfKind(this.buckets.kind(near))]!++;
    }
  }

  /**
   * The wait a bucket imposes: `wait` itself, or 0 for a shadow limit, whose would-be throttle is counted
   * (rivven_quota_shadow_violations_total) and not enforced.
   */
  private enforced(id: number, wait: number): number {
    if (wait === 0 || !this.buckets.isShadow(id)) return wait;
    const k = keyOfKind(this.buckets.kind(id));
    this.shadowByPeriod[keyPeriodOfKind(this.buckets.kind(id))]!++;
    this.buckets.countThrottle(id);
    const period = periodOfKind(this.buckets.kind(id));
    this.events.violation(
      'SHADOW_VIOLATION',
      this.display(id),
      this.keyNames[k]!,
      `a shadow limit would have throttled ${wait} ms${perText(period)}`,
      period,
    );
    return 0;
  }

  /** Denied: the principal is blocked (the rare path: the blocking entity and reason are looked up again). */
  private deny(user: string | null, client: string | null): Verdict {
    const blocked = this.table.blockedFor(user, client);
    this.denied++;
    const v = this.verdict;
    v.throttleMs = 0;
    v.recorded = false;
    v.denied = true;
    v.entity = blocked?.entity ?? bucketDisplay(user, client);
    v.reason = blocked?.reason ?? '';
    this.events.violation('BLOCKED', v.entity, null, `denied: ${v.reason}`);
    return v;
  }

  private recordAndWait(id: number, amount: number, now: number): number {
    this.charge(id, amount, now);
    return overWait(this.buckets, id);
  }

  /** Records `amount` in the bucket (both modes, once a call is let through) and counts a near-limit call. */
  private charge(id: number, amount: number, now: number): void {
    const b = this.buckets;
    b.record(id, amount, now);
    if (b.outstanding(id) > NEAR_LIMIT * b.capacity(id)) this.nearLimitByPeriod[keyPeriodOfKind(b.kind(id))]!++;
  }

  private ok(): Verdict {
    const v = this.verdict;
    v.throttleMs = 0;
    v.recorded = true;
    v.denied = false;
    return v;
  }

  private throttled(id: number, waitMs: number, recorded: boolean): Verdict {
    const ms = Math.min(waitMs, this.options.maxThrottleMs);
    const kind = this.buckets.kind(id);
    const k = keyOfKind(kind);
    this.violationsByPeriod[keyPeriodOfKind(kind)]!++;
    this.buckets.countThrottle(id);
    this.throttleTimeMsTotal += ms;
    const v = this.verdict;
    v.throttleMs = ms;
    v.quotaType = this.keyNames[k]!;
    v.entity = this.display(id);
    v.recorded = recorded;
    v.denied = false;
    v.period = periodOfKind(kind);
    this.events.violation(
      'RATE_LIMIT_EXCEEDED',
      v.entity,
      v.quotaType,
      `throttled ${ms} ms${perText(v.period)}${recorded ? '' : ' (admit mode: refused)'}`,
      v.period,
    );
    return v;
  }

  /** The display form of a bucket (docs/protocol.md), built when asked (Throttled replies): never stored. */
  private display(id: number): string {
    const b = this.buckets;
    return bucketName(b.kind(id), b.a(id), b.b(id));
  }
}
