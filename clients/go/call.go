package rivven

import (
	"sync"
	"sync/atomic"
	"time"
)

// call is one call in flight: what to write, how to read its reply, and where its caller waits. Whoever
// settles it first (the reply, its deadline, a lost connection) decides its outcome; the others are dropped.
//
// Calls are reused (callPool): two allocations fewer per call. A call goes back to the pool only when its reply
// settled it, since the reader has then taken it off its connection's queue and nothing but its caller and
// the sweeper can still point at it; the sweeper settles only the use it saw (state counts the uses).
type call struct {
	usage Usage  // record calls
	frame []byte // other calls: the whole frame, correlation id patched when sent
	parse func(map[string]any) (any, error)

	done     chan struct{} // one token when settled
	state    atomic.Uint32 // even: pending, odd: settled; +1 when reused
	answered bool          // settled by its reply (written by the settler before the token)
	holding  atomic.Bool   // holds a MaxPending slot
	sent     atomic.Bool   // queued on a connection (else waiting for one)
	id       uint32
	at       int64         // when it times out, on the client's clock (expiry.go)
	timeout  time.Duration // for the TIMEOUT's message

	result RecordResult
	value  any
	err    error
}

func (c *call) record() bool { return c.frame == nil }

var callPool = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

func newCall() *call { return callPool.Get().(*call) }

// free gives the call back to the pool after its caller has read its outcome, if its reply settled it.
func (c *call) free() {
	if !c.answered {
		return // a connection's queue may still hold it: left to the garbage collector
	}
	c.usage, c.frame, c.parse = Usage{}, nil, nil
	c.answered = false
	c.holding.Store(false)
	c.sent.Store(false)
	c.result, c.value, c.err = RecordResult{}, nil, nil
	c.state.Add(1) // settled (odd) to pending (even): a stale settleUse of the last use fails
	callPool.Put(c)
}

// settle completes the call once; later outcomes are dropped.
func (c *call) settle(r RecordResult, v any, err error) bool {
	return c.settleUse(c.state.Load()&^1, r, v, err, false)
}

// settleUse settles use number `use` (an even state) of the call, if it is still that use and pending.
func (c *call) settleUse(use uint32, r RecordResult, v any, err error, answered bool) bool {
	if !c.state.CompareAndSwap(use, use|1) {
		return false
	}
	c.result, c.value, c.err, c.answered = r, v, err, answered
	c.done <- struct{}{}
	return true
}

func (c *call) settled() bool { return c.state.Load()&1 == 1 }

// reply settles the call from its reply.
func (c *call) reply(r RecordResult, v any, err error) {
	c.settleUse(c.state.Load()&^1, r, v, err, true)
}

// answer settles the call from its reply body.
func (c *call) answer(body []byte) {
	if c.settled() {
		return // its caller stopped waiting: the late reply is dropped without decoding
	}
	if c.record() && isOk(body) {
		// The reply to nearly every record call: the same 29 bytes every time, so no decoding.
		c.reply(okResult, nil, nil)
		return
	}
	m, err := decodeBody(body)
	if err != nil {
		c.reply(RecordResult{}, nil, err)
		return
	}
	if t, _ := m["type"].(string); t == "Error" {
		c.reply(RecordResult{}, nil, errorOf(m))
		return
	}
	if c.record() {
		r, err := parseRecord(m, &c.usage)
		c.reply(r, nil, errOrNil(err))
		return
	}
	v, err := c.parse(m)
	c.reply(RecordResult{}, v, errOrNil(err))
}

// errOrNil keeps a nil *Error from becoming a non-nil error.
func errOrNil(err error) error {
	if e, ok := err.(*Error); ok && e == nil {
		return nil
	}
	return err
}
