package rivven

import (
	"math"
	"time"
)

// Timeouts: each call carries its deadline (at) and one goroutine per client, the sweeper, sleeps until the
// earliest deadline among the calls not settled, then fails those past it with TIMEOUT. A timer per call made
// more than half of a call's allocations and took the runtime's timer locks twice a call; a shared queue of
// deadlines cost a lock per call. Here a call costs a clock read and one atomic load: the sweeper finds the
// calls where they already are (the connection's queue of sent calls, the client's list of calls waiting for a
// connection), and with replies coming well within their deadlines it wakes about once per deadline, to scan
// only the calls in flight.

// minSweep is the least time between two scans, so that a hung server holding MaxPending calls with deadlines
// microseconds apart costs at most 1000 scans a second; a call then times out at most that much late.
const minSweep = time.Millisecond

// now is the client's clock in ns: monotonic, for deadlines.
func (c *QuotaClient) now() int64 { return int64(time.Since(c.epoch)) }

// timeAfter sets the call's deadline; called before the call is queued anywhere the sweeper looks.
func (c *QuotaClient) timeAfter(cl *call, timeout time.Duration) {
	cl.timeout = timeout
	cl.at = c.now() + int64(timeout)
}

// watch wakes the sweeper if the call, now queued, is due before the sweeper's next scan.
func (c *QuotaClient) watch(cl *call) {
	if cl.at < c.sweepAt.Load() {
		select {
		case c.sweepWake <- struct{}{}:
		default:
		}
	}
}

func (c *QuotaClient) sweep() {
	defer c.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	type expired struct {
		cl      *call
		use     uint32
		timeout time.Duration
	}
	var due []expired
	for {
		// While scanning, every new call wakes the sweeper (so it scans again): a call queued behind the scan
		// is never missed.
		c.sweepAt.Store(math.MaxInt64)
		now := c.now()
		next := int64(math.MaxInt64)
		visit := func(cl *call) {
			use := cl.state.Load()
			if use&1 == 1 {
				return // settled
			}
			if cl.at <= now {
				due = append(due, expired{cl, use, cl.timeout})
			} else if cl.at < next {
				next = cl.at
			}
		}
		c.mu.Lock()
		for _, cl := range c.waiting {
			visit(cl)
		}
		c.mu.Unlock()
		if cn := c.conn.Load(); cn != nil {
			cn.mu.Lock()
			for _, cl := range cn.queue[cn.head:] {
				visit(cl)
			}
			cn.mu.Unlock()
		}
		c.sweepAt.Store(next)
		for i, d := range due {
			// The call may have been answered and reused since the scan: only the use seen then is abandoned.
			c.abandonUse(d.cl, d.use, newError(CodeTimeout, "no reply from %s within %v", c.opts.Addr, d.timeout))
			due[i] = expired{}
		}
		due = due[:0]
		if next == math.MaxInt64 {
			select {
			case <-c.sweepWake:
			case <-c.closeCtx.Done():
				return
			}
			continue
		}
		timer.Reset(max(time.Duration(next-c.now()), minSweep))
		select {
		case <-timer.C:
		case <-c.sweepWake:
			timer.Stop()
		case <-c.closeCtx.Done():
			timer.Stop()
			return
		}
	}
}
