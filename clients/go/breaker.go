package rivven

import (
	"sync"
	"sync/atomic"
	"time"
)

// BreakerState is a circuit breaker's state.
type BreakerState int32

const (
	// BreakerClosed: calls pass.
	BreakerClosed BreakerState = iota
	// BreakerOpen: calls fail at once until ResetTimeout has passed.
	BreakerOpen
	// BreakerHalfOpen: one probe call is let through; the others fail at once.
	BreakerHalfOpen
)

func (s BreakerState) String() string {
	return [...]string{"closed", "open", "half-open"}[s]
}

// Breaker is a circuit breaker: after FailureThreshold consecutive failures it opens and calls fail at once (no
// deadline to wait out); after ResetTimeout the next call is a probe, and only one probe is out at a time. The
// probe's success closes it, its failure opens it for another ResetTimeout. Safe for concurrent use; the closed
// state, where nearly every call is made, is read without a lock.
type Breaker struct {
	threshold int
	reset     time.Duration
	now       func() time.Time

	state    atomic.Int32
	failures atomic.Int32
	mu       sync.Mutex
	openedAt time.Time
	probing  bool
	opened   int64
}

// NewBreaker makes a breaker; now is its clock (nil: time.Now).
func NewBreaker(failureThreshold int, resetTimeout time.Duration, now func() time.Time) *Breaker {
	if now == nil {
		now = time.Now
	}
	return &Breaker{threshold: max(failureThreshold, 1), reset: resetTimeout, now: now}
}

// State returns the state now.
func (b *Breaker) State() BreakerState { return BreakerState(b.state.Load()) }

// Opened returns how many times the breaker has opened.
func (b *Breaker) Opened() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.opened
}

// Allow reports whether a call may go out now; true in half-open state makes that call the probe.
func (b *Breaker) Allow() bool {
	if b.State() == BreakerClosed {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.State() {
	case BreakerClosed:
		return true
	case BreakerOpen:
		if b.now().Sub(b.openedAt) < b.reset {
			return false
		}
		b.state.Store(int32(BreakerHalfOpen))
	}
	if b.probing {
		return false
	}
	b.probing = true
	return true
}

// Success records a call that succeeded (or failed for a reason that says nothing about the sidecar's health).
func (b *Breaker) Success() {
	if b.State() == BreakerClosed && b.failures.Load() == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures.Store(0)
	b.probing = false
	b.state.Store(int32(BreakerClosed))
}

// Failure records a failed call: a timeout, a lost connection, an overloaded sidecar.
func (b *Breaker) Failure() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	if b.State() == BreakerHalfOpen || int(b.failures.Add(1)) >= b.threshold {
		if b.State() != BreakerOpen {
			b.opened++
		}
		b.state.Store(int32(BreakerOpen))
		b.openedAt = b.now()
		b.failures.Store(0)
	}
}
