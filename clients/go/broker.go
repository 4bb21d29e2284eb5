package rivven

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// BrokerOptions says how BrokerQuotas answers. The zero value of every field means its default.
type BrokerOptions struct {
	// RecordDeadline: a record call not answered within it is answered 0 (fail open). Zero: 25 ms.
	RecordDeadline time.Duration
	// FailureThreshold: consecutive failures that open the breaker. Zero: 5.
	FailureThreshold int
	// ResetTimeout: how long the breaker stays open before one call probes the sidecar. Zero: 1 s.
	ResetTimeout time.Duration
	// OnError is told about each call answered 0 because the sidecar could not answer (rate-limit your
	// logging). Zero: ignore.
	OnError func(error)
	// OnDenied is told about each call answered Denied: the blocked entity and the operator's reason.
	// Zero: ignore.
	OnDenied func(entity, reason string)
	// Now is the breaker's clock. Zero: time.Now.
	Now func() time.Time
}

// DefaultBrokerOptions holds the defaults the zero fields stand for.
var DefaultBrokerOptions = BrokerOptions{RecordDeadline: 25 * time.Millisecond, FailureThreshold: 5, ResetTimeout: time.Second}

// BrokerQuotas is what a broker calls on each client request: it records the usage and answers how many
// milliseconds to delay that client (0: none), the way a Kafka broker applies throttle_time_ms, or Denied (-1)
// for a blocked principal.
//
// It never stalls the broker. Every answer comes within RecordDeadline (or the context's deadline, if
// earlier), or is 0 (fail open). Without a connection it answers 0 at once (the client reconnects in the
// background) instead of waiting for a reconnect. After FailureThreshold consecutive failures (timeouts, lost
// connections, an overloaded sidecar) the breaker opens and calls answer 0 at once, without being sent; after
// ResetTimeout one call probes the sidecar and, if it answers, closes the breaker. Every 0 given for a failure
// is counted in Failures, those not even sent in ShortCircuited. Safe for concurrent use.
type BrokerQuotas struct {
	client         *QuotaClient
	opts           BrokerOptions
	breaker        *Breaker
	failures       atomic.Int64
	shortCircuited atomic.Int64
}

// NewBrokerQuotas wraps client; opts may be nil (every default).
func NewBrokerQuotas(client *QuotaClient, opts *BrokerOptions) *BrokerQuotas {
	var o BrokerOptions
	if opts != nil {
		o = *opts
	}
	if o.RecordDeadline <= 0 {
		o.RecordDeadline = DefaultBrokerOptions.RecordDeadline
	}
	if o.FailureThreshold <= 0 {
		o.FailureThreshold = DefaultBrokerOptions.FailureThreshold
	}
	if o.ResetTimeout <= 0 {
		o.ResetTimeout = DefaultBrokerOptions.ResetTimeout
	}
	return &BrokerQuotas{client: client, opts: o, breaker: NewBreaker(o.FailureThreshold, o.ResetTimeout, o.Now)}
}

// Client returns the client calls go through.
func (b *BrokerQuotas) Client() *QuotaClient { return b.client }

// Breaker returns the breaker.
func (b *BrokerQuotas) Breaker() *Breaker { return b.breaker }

// Failures counts calls answered 0 because the sidecar could not answer (failed, late, or not tried).
func (b *BrokerQuotas) Failures() int64 { return b.failures.Load() }

// ShortCircuited counts, of those, the calls not sent because the breaker was open.
func (b *BrokerQuotas) ShortCircuited() int64 { return b.shortCircuited.Load() }

// Produce answers a produce request of bytes from (user, clientID) ("": none): the delay in ms, 0, or Denied.
func (b *BrokerQuotas) Produce(ctx context.Context, user, clientID string, bytes int64) int64 {
	return b.answer(ctx, Usage{Kind: Produce, User: user, ClientID: clientID, Amount: bytes})
}

// Fetch answers a fetch of bytes by a consumer, held against its group's quota too when it has one.
func (b *BrokerQuotas) Fetch(ctx context.Context, user, clientID, consumerGroup string, bytes int64) int64 {
	return b.answer(ctx, Usage{Kind: Consume, User: user, ClientID: clientID, ConsumerGroup: consumerGroup, Amount: bytes})
}

// Request answers any request, for request_rate.
func (b *BrokerQuotas) Request(ctx context.Context, user, clientID string) int64 {
	return b.answer(ctx, Usage{Kind: Request, User: user, ClientID: clientID, Amount: 1})
}

// Usage answers amount (0 means 1) units of a named resource (orders, API calls: declared in the sidecar's
// quotas.resources), for <resource>_rate: the delay in ms, 0, or Denied, as for the other calls.
func (b *BrokerQuotas) Usage(ctx context.Context, user, clientID, resource string, amount int64) int64 {
	return b.answer(ctx, Usage{Kind: Resource, User: user, ClientID: clientID, Resource: resource, Amount: amount})
}

func (b *BrokerQuotas) answer(ctx context.Context, u Usage) int64 {
	if !b.breaker.Allow() {
		b.failures.Add(1)
		b.shortCircuited.Add(1)
		return 0
	}
	r, err := b.client.record(ctx, &u, b.opts.RecordDeadline, true)
	if err == nil {
		b.breaker.Success()
		if !r.IsDenied() {
			return r.ThrottleTimeMs
		}
		if b.opts.OnDenied != nil {
			b.opts.OnDenied(r.Entity, r.DeniedReason)
		}
		return Denied
	}
	b.failures.Add(1)
	// A non-retriable error is a bad call, not a sick sidecar: it does not move the breaker.
	var e *Error
	if errors.As(err, &e) && !e.Retriable() {
		b.breaker.Success()
	} else {
		b.breaker.Failure()
	}
	if b.opts.OnError != nil {
		b.opts.OnError(err)
	}
	return 0
}

// Options returns the options in force (defaults filled in).
func (b *BrokerQuotas) Options() BrokerOptions { return b.opts }
