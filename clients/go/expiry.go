package rivven

import (
	"sync"
	"time"
)

// expiry ends calls with TIMEOUT when their timeout passes: one goroutine and one timer per timeout value in
// use (RequestTimeout, each BrokerQuotas' RecordDeadline) instead of a timer per call, which cost a third of
// a call's allocations and most of its scheduler work. Calls with the same timeout expire in the order they
// were made, so the queue is a FIFO and only its head needs a timer.
type expiry struct {
	client  *QuotaClient
	timeout time.Duration

	mu   sync.Mutex
	q    []deadline
	head int
	wake chan struct{} // the queue was empty and is not
}

type deadline struct {
	at time.Time
	c  *call
}

// expiryFor returns the client's queue for this timeout, started on first use.
func (c *QuotaClient) expiryFor(timeout time.Duration) *expiry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.expiries[timeout]; e != nil {
		return e
	}
	e := &expiry{client: c, timeout: timeout, wake: make(chan struct{}, 1)}
	if c.expiries == nil {
		c.expiries = map[time.Duration]*expiry{}
	}
	c.expiries[timeout] = e
	if !c.closed {
		c.wg.Add(1)
		go e.run()
	}
	return e
}

// add makes cl fail with TIMEOUT if it is not settled within the timeout.
func (e *expiry) add(cl *call) {
	e.mu.Lock()
	// Read under the lock, so the deadlines in the queue never go backwards.
	at := time.Now().Add(e.timeout)
	// Answered calls leave from the head as new ones come: the queue holds about the calls in flight.
	e.dropSettled()
	empty := e.head == len(e.q)
	if empty {
		e.q, e.head = e.q[:0], 0
	} else if e.head > 0 && len(e.q) == cap(e.q) {
		n := copy(e.q, e.q[e.head:])
		clear(e.q[n:])
		e.q, e.head = e.q[:n], 0
	}
	e.q = append(e.q, deadline{at, cl})
	e.mu.Unlock()
	if empty {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
}

// dropSettled pops the settled calls at the head; e.mu is held.
func (e *expiry) dropSettled() {
	for e.head < len(e.q) && e.q[e.head].c.settled() {
		e.q[e.head] = deadline{}
		e.head++
	}
}

// run fails the calls whose deadline passed, then sleeps until the next deadline (or a first call).
func (e *expiry) run() {
	c := e.client
	defer c.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var due []*call
	for {
		now := time.Now()
		next := time.Duration(-1)
		e.mu.Lock()
		for e.dropSettled(); e.head < len(e.q); e.dropSettled() {
			d := e.q[e.head]
			if d.at.After(now) {
				next = d.at.Sub(now)
				break
			}
			due = append(due, d.c)
			e.q[e.head] = deadline{}
			e.head++
		}
		e.mu.Unlock()
		for i, cl := range due {
			c.abandon(cl, newError(CodeTimeout, "no reply from %s within %v", c.opts.Addr, e.timeout))
			due[i] = nil
		}
		due = due[:0]
		if next < 0 {
			select {
			case <-e.wake:
			case <-c.closeCtx.Done():
				return
			}
			continue
		}
		timer.Reset(next)
		select {
		case <-timer.C:
		case <-c.closeCtx.Done():
			timer.Stop()
			return
		}
	}
}
