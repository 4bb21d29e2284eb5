package rivven

import (
	"sync/atomic"
	"time"
)

// call is one call in flight: what to write, how to read its reply, and where its caller waits. Whoever
// settles it first (the reply, its deadline, a lost connection) decides its outcome; the others are dropped.
type call struct {
	usage Usage  // record calls
	frame []byte // other calls: the whole frame, correlation id patched when sent
	parse func(map[string]any) (any, error)

	done    chan struct{}
	state   atomic.Uint32 // 0 pending, 1 settled
	holding atomic.Bool   // holds a MaxPending slot
	sent    atomic.Bool   // queued on a connection (else waiting for one)
	id      uint32
	at      int64         // when it times out, on the client's clock (expiry.go)
	timeout time.Duration // for the TIMEOUT's message

	result RecordResult
	value  any
	err    error
}

func (c *call) record() bool { return c.frame == nil }

// settle completes the call once; later outcomes are dropped.
func (c *call) settle(r RecordResult, v any, err error) bool {
	if !c.state.CompareAndSwap(0, 1) {
		return false
	}
	c.result, c.value, c.err = r, v, err
	close(c.done)
	return true
}

func (c *call) settled() bool { return c.state.Load() == 1 }

// answer settles the call from its reply body.
func (c *call) answer(body []byte) {
	if c.settled() {
		return // its caller stopped waiting: the late reply is dropped without decoding
	}
	if c.record() && isOk(body) {
		// The reply to nearly every record call: the same 29 bytes every time, so no decoding.
		c.settle(okResult, nil, nil)
		return
	}
	m, err := decodeBody(body)
	if err != nil {
		c.settle(RecordResult{}, nil, err)
		return
	}
	if t, _ := m["type"].(string); t == "Error" {
		c.settle(RecordResult{}, nil, errorOf(m))
		return
	}
	if c.record() {
		r, err := parseRecord(m)
		c.settle(r, nil, errOrNil(err))
		return
	}
	v, err := c.parse(m)
	c.settle(RecordResult{}, v, errOrNil(err))
}

// errOrNil keeps a nil *Error from becoming a non-nil error.
func errOrNil(err error) error {
	if e, ok := err.(*Error); ok && e == nil {
		return nil
	}
	return err
}
