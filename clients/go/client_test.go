package rivven_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rivven "github.com/rivven/rivven-quota/clients/go"
	"github.com/vmihailenco/msgpack/v5"
)

var okFrame = mustFrame(0, "\xde\x00\x02\xa4type\xa2Ok\xb0throttle_time_ms\x00")

func answerOk(id uint32, _ []byte) []byte { return withID(okFrame, id) }
func silent(uint32, []byte) []byte        { return nil }

func connect(t *testing.T, o *rivven.Options) *rivven.QuotaClient {
	t.Helper()
	c, err := rivven.Connect(ctx10s(t), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitFor polls a condition, bounded.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	until := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(until) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestBreakerOpensProbesOnceAndCloses(t *testing.T) {
	now := time.Unix(0, 0)
	b := rivven.NewBreaker(3, time.Second, func() time.Time { return now })
	for range 2 {
		b.Failure()
	}
	if b.State() != rivven.BreakerClosed || !b.Allow() {
		t.Fatal("two failures of three keep it closed")
	}
	b.Failure()
	if b.State() != rivven.BreakerOpen || b.Allow() || b.Opened() != 1 {
		t.Fatalf("the third failure opens it: %v", b.State())
	}
	now = now.Add(999 * time.Millisecond)
	if b.Allow() {
		t.Fatal("open until ResetTimeout has passed")
	}
	now = now.Add(time.Millisecond)
	if !b.Allow() || b.State() != rivven.BreakerHalfOpen {
		t.Fatal("after ResetTimeout one probe goes out")
	}
	if b.Allow() {
		t.Fatal("only one probe at a time")
	}
	b.Failure()
	if b.State() != rivven.BreakerOpen || b.Opened() != 2 || b.Allow() {
		t.Fatal("a failed probe opens it again")
	}
	now = now.Add(time.Second)
	if !b.Allow() {
		t.Fatal("the next probe")
	}
	b.Success()
	if b.State() != rivven.BreakerClosed || !b.Allow() || !b.Allow() {
		t.Fatal("a good probe closes it")
	}
}

func TestMaxPendingRefusesAtOnceWithOverloaded(t *testing.T) {
	f := newFakeServer(t, silent)
	o := f.options()
	o.MaxPending = 2
	c := connect(t, o)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = c.RecordProduce(ctx, "alice", "", 1)
		}()
	}
	waitFor(t, "two calls in flight", func() bool { return c.Stats().InFlight == 2 })
	start := time.Now()
	_, err := c.RecordProduce(context.Background(), "alice", "", 1)
	if !errors.Is(err, rivven.ErrOverloaded) || time.Since(start) > time.Second {
		t.Fatalf("the third call: %v after %v", err, time.Since(start))
	}
	b := rivven.NewBrokerQuotas(c, nil)
	if got := b.Produce(context.Background(), "alice", "", 1); got != 0 || b.Failures() != 1 {
		t.Fatalf("the broker fails open: %d, %d failures", got, b.Failures())
	}
	if _, err := c.DescribeQuotas(context.Background()); !errors.Is(err, rivven.ErrOverloaded) {
		t.Fatalf("admin calls reject with OVERLOADED: %v", err)
	}
	cancel()
	wg.Wait()
	// Calls whose callers gave up still hold their slots until the connection answers or ends.
	if got := c.Stats().InFlight; got != 2 {
		t.Fatalf("%d in flight after the callers gave up, want 2", got)
	}
}

func TestContextDeadlineEndsACallWithTimeout(t *testing.T) {
	c := connect(t, newFakeServer(t, silent).options())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.RecordRequest(ctx, "alice", "")
	if !errors.Is(err, rivven.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 4*time.Second {
		t.Fatalf("%v after %v", err, time.Since(start))
	}
	var e *rivven.Error
	if !errors.As(err, &e) || !e.Retriable() {
		t.Fatalf("TIMEOUT is retriable: %v", err)
	}
}

func TestRequestTimeoutEndsACall(t *testing.T) {
	o := newFakeServer(t, silent).options()
	o.RequestTimeout = 30 * time.Millisecond
	c := connect(t, o)
	if err := c.Ping(context.Background()); !errors.Is(err, rivven.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v", err)
	}
}

func TestAFailedConnectLeavesNothingRunning(t *testing.T) {
	// A server that is down and keeps its port: a closed listener's port could be anyone's by the time we dial.
	f := newFakeServer(t, answerOk)
	f.setDown(true)
	before := runtime.NumGoroutine()
	_, err := rivven.Connect(context.Background(), &rivven.Options{Addr: f.addr(), ConnectAttempts: 2, MinRetryBackoff: time.Millisecond})
	if !errors.Is(err, rivven.ErrClosed) {
		t.Fatalf("connect: %v", err)
	}
	waitFor(t, "no goroutine left", func() bool { return runtime.NumGoroutine() <= before })
}

func TestCloseFailsPendingCallsAndEndsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	c, err := rivven.Connect(ctx10s(t), newFakeServer(t, silent).options())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.RecordProduce(context.Background(), "alice", "", 1)
		done <- err
	}()
	waitFor(t, "the call in flight", func() bool { return c.Stats().InFlight == 1 })
	_ = c.Close()
	if err := <-done; !errors.Is(err, rivven.ErrClosed) {
		t.Fatalf("pending call: %v", err)
	}
	if _, err := c.RecordProduce(context.Background(), "alice", "", 1); !errors.Is(err, rivven.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	waitFor(t, "the client's goroutines to end", func() bool { return runtime.NumGoroutine() <= before+2 })
}

func TestReconnectsInTheBackgroundAndWaitingCallsGoOut(t *testing.T) {
	f := newFakeServer(t, answerOk)
	o := f.options()
	o.MinRetryBackoff, o.MaxRetryBackoff = time.Millisecond, 5*time.Millisecond
	c := connect(t, o)
	if _, err := c.RecordProduce(ctx10s(t), "alice", "", 1); err != nil {
		t.Fatal(err)
	}
	f.setDown(true)
	waitFor(t, "the client to see the loss", func() bool { return !c.Stats().Connected })
	// Not fail-fast: the call waits for the background reconnect, within its deadline.
	done := make(chan error, 1)
	go func() {
		r, err := c.RecordProduce(ctx10s(t), "alice", "", 1)
		if err == nil && (r.ThrottleTimeMs != 0 || !r.Recorded) {
			err = errors.New("not the Ok answer")
		}
		done <- err
	}()
	waitFor(t, "the call to wait", func() bool { return c.Stats().InFlight == 1 })
	f.setDown(false)
	if err := <-done; err != nil {
		t.Fatalf("after reconnecting: %v", err)
	}
	if !c.Stats().Connected {
		t.Fatal("connected again")
	}
	if got := f.helloCount(); got != 2 {
		t.Fatalf("%d connections said Hello, want 2: the waiting call went out on a second one", got)
	}
}

func TestBrokerFailsFastWithoutAConnection(t *testing.T) {
	f := newFakeServer(t, answerOk)
	o := f.options()
	o.MinRetryBackoff = time.Hour // the reconnect waits: the connection stays down for this test
	c := connect(t, o)
	f.close()
	waitFor(t, "the client to see the loss", func() bool { return !c.Stats().Connected })
	b := rivven.NewBrokerQuotas(c, &rivven.BrokerOptions{RecordDeadline: 5 * time.Second, FailureThreshold: 2})
	start := time.Now()
	for range 3 {
		if got := b.Request(context.Background(), "alice", ""); got != 0 {
			t.Fatalf("answered %d", got)
		}
	}
	if time.Since(start) > time.Second || b.Failures() != 3 || b.ShortCircuited() != 1 || b.Breaker().State() != rivven.BreakerOpen {
		t.Fatalf("after %v: %d failures, %d short-circuited, breaker %v", time.Since(start), b.Failures(), b.ShortCircuited(), b.Breaker().State())
	}
}

func TestOptionsDefaultsAndChecks(t *testing.T) {
	if _, err := rivven.Connect(context.Background(), &rivven.Options{MaxPending: -1}); err == nil {
		t.Fatal("a negative MaxPending is refused")
	}
	if _, err := rivven.Connect(context.Background(), &rivven.Options{Addr: "no-port"}); err == nil {
		t.Fatal("an address without a port is refused")
	}
	c := connect(t, newFakeServer(t, answerOk).options())
	o := c.Options()
	d := rivven.DefaultOptions
	if o.RequestTimeout != d.RequestTimeout || o.MaxPending != d.MaxPending || o.ConnectTimeout != d.ConnectTimeout || o.MaxFrameBytes != d.MaxFrameBytes {
		t.Fatalf("zero fields take the defaults: %+v", o)
	}
}

func TestErrorsCompareWithErrorsIs(t *testing.T) {
	c := connect(t, newFakeServer(t, func(id uint32, _ []byte) []byte {
		return withID(mustFrame(0, "\x84\xa4type\xa5Error\xa4code\xb3INVALID_QUOTA_VALUE\xa7message\xa3bad\xa5index\x02"), id)
	}).options())
	_, err := c.AlterQuotas(ctx10s(t), []rivven.QuotaAlteration{rivven.Set([]rivven.Component{rivven.User("a")}, "request_rate", 1)}, false)
	var e *rivven.Error
	if !errors.As(err, &e) || e.Index != 2 || e.Retriable() || !errors.Is(err, rivven.CodeInvalidQuotaValue) || errors.Is(err, rivven.ErrTimeout) {
		t.Fatalf("%#v", err)
	}
}

// Calls are reused once answered (callPool): a call whose deadline races its reply must never get another
// call's outcome. The fake server answers each record with its own bytes as throttle_time_ms, some after a
// pause longer than the deadline, so replies, deadlines and reuse interleave.
func TestRacingDeadlinesNeverCrossAnswers(t *testing.T) {
	var n atomic.Int64
	f := newFakeServer(t, func(id uint32, frame []byte) []byte {
		m, err := rivven.DecodeBody(frame[8:])
		if err != nil {
			return nil
		}
		if n.Add(1)%7 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
		body, _ := msgpack.Marshal(map[string]any{"type": "Throttled", "throttle_time_ms": m["bytes"],
			"quota_type": "produce_bytes_rate", "entity": "user=a", "recorded": true})
		return withID(mustFrame(0, string(body)), id)
	})
	c := connect(t, f.options())
	var answered, failed, crossed, other atomic.Int64
	b := rivven.NewBrokerQuotas(c, &rivven.BrokerOptions{RecordDeadline: time.Millisecond, FailureThreshold: 1 << 30,
		OnError: func(err error) {
			if !errors.Is(err, rivven.ErrTimeout) {
				other.Add(1) // a lost connection: a reused call confused the reader
			}
		}})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				want := int64(g*1000 + i + 1)
				switch got := b.Produce(context.Background(), "a", "", want); got {
				case want:
					answered.Add(1)
				case 0:
					failed.Add(1)
				default:
					crossed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if crossed.Load() != 0 || other.Load() != 0 || answered.Load() == 0 || failed.Load() == 0 {
		t.Fatalf("answered %d, failed open %d (not for a timeout: %d), another call's answer %d", answered.Load(),
			failed.Load(), other.Load(), crossed.Load())
	}
}

// A usage call outside the protocol (a resource name off the grammar, an amount past 2^53-1) fails with
// INVALID_REQUEST and is never sent.
func TestUsageOutsideTheProtocolIsRefusedUnsent(t *testing.T) {
	f := newFakeServer(t, answerOk)
	c := connect(t, f.options())
	for _, bad := range []string{"", "Orders", "1orders", "or-ders", "o23456789012345678901234567890123"} {
		if _, err := c.RecordUsage(ctx10s(t), "a", "", bad, 1); !errors.Is(err, rivven.CodeInvalidRequest) {
			t.Fatalf("resource %q: %v", bad, err)
		}
	}
	if _, err := c.RecordUsage(ctx10s(t), "a", "", "orders", 1<<53); !errors.Is(err, rivven.CodeInvalidRequest) {
		t.Fatalf("amount 2^53: %v", err)
	}
	if r, err := c.RecordUsage(ctx10s(t), "a", "", "orders", 0); err != nil || r.ThrottleTimeMs != 0 {
		t.Fatalf("a valid call: %+v %v", r, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.frames) != 1 {
		t.Fatalf("%d frames sent, want only the valid call's", len(f.frames))
	}
}
