package rivven

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// QuotaClient is a connection to one rivven sidecar, safe for concurrent use: typed record and admin calls,
// each taking a context first.
//
// Calls are pipelined on one connection and matched to replies by correlation id; calls made while the writer
// is busy go out together in its next write. In-flight calls are bounded (Options.MaxPending: past it a call
// fails at once with OVERLOADED). A call ends at its context's deadline or Options.RequestTimeout, whichever
// comes first, with TIMEOUT; a late reply is dropped. When the connection drops, the calls sent on it fail with
// CONNECTION_CLOSED and the client reconnects in the background with backoff; calls made meanwhile wait for the
// connection within their deadline. Brokers use it through BrokerQuotas, which never lets a call stall them.
type QuotaClient struct {
	opts     Options
	inFlight atomic.Int64
	sent     atomic.Uint64
	conn     atomic.Pointer[conn]

	mu           sync.Mutex
	waiting      []*call // calls waiting for a connection, in order
	reconnecting bool
	closed       bool        // guarded by mu
	shut         atomic.Bool // closed, read without the lock on every call
	closeCtx     context.Context
	cancel       context.CancelFunc
	wg           sync.WaitGroup
	epoch        time.Time    // the deadlines' clock starts here
	sweepAt      atomic.Int64 // when the sweeper scans next (expiry.go)
	sweepWake    chan struct{}
}

// Stats is a snapshot of a client's counters.
type Stats struct {
	// InFlight is calls sent or waiting and not yet answered (bounded by MaxPending).
	InFlight int
	// Sent is frames queued on a connection since the client was made (Hello excluded).
	Sent uint64
	// Connected tells whether a connection is up.
	Connected bool
}

// Connect connects (trying up to Options.ConnectAttempts times, with backoff) and says Hello. It fails with
// CONNECTION_CLOSED when the sidecar cannot be reached, or with the code the server gave (AUTHENTICATION_FAILED,
// UNSUPPORTED_VERSION, ...); on failure nothing is left running. ctx bounds the whole connect.
func Connect(ctx context.Context, opts *Options) (*QuotaClient, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &QuotaClient{opts: o, epoch: time.Now(), sweepWake: make(chan struct{}, 1)}
	c.closeCtx, c.cancel = context.WithCancel(context.Background())
	delay := o.MinRetryBackoff
	var last *Error
	for attempt := 1; ; attempt++ {
		cn, err := dial(ctx, c)
		if err == nil {
			c.conn.Store(cn)
			c.wg.Add(1)
			go c.sweep()
			return c, nil
		}
		if !err.Retriable() {
			c.cancel()
			return nil, err
		}
		last = err
		if attempt >= o.ConnectAttempts || ctx.Err() != nil {
			break
		}
		if !sleep(ctx, delay) {
			break
		}
		delay = min(delay*2, o.MaxRetryBackoff)
	}
	c.cancel()
	return nil, &Error{Code: CodeConnectionClosed, Message: "cannot reach the rivven server at " + o.Addr + " (" + last.Message + ")", Index: -1, cause: last}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Options returns the options in force (defaults filled in).
func (c *QuotaClient) Options() Options { return c.opts }

// Stats returns the client's counters now.
func (c *QuotaClient) Stats() Stats {
	cn := c.conn.Load()
	return Stats{InFlight: int(c.inFlight.Load()), Sent: c.sent.Load(), Connected: cn != nil && !cn.isDead()}
}

// Hello says Hello again on the connection: the server's protocol and version.
func (c *QuotaClient) Hello(ctx context.Context) (HelloOk, error) {
	body := []field{{"type", "Hello"}, {"protocol_version", 1}}
	if c.opts.ClientName != "" {
		body = append(body, field{"client_name", c.opts.ClientName})
	}
	if c.opts.Token != "" {
		body = append(body, field{"token", c.opts.Token})
	}
	v, err := c.request(ctx, body, func(m map[string]any) (any, error) { return parseHello(m) })
	if err != nil {
		return HelloOk{}, err
	}
	return v.(HelloOk), nil
}

// Ping returns nil when the sidecar answers Pong.
func (c *QuotaClient) Ping(ctx context.Context) error {
	_, err := c.request(ctx, []field{{"type", "Ping"}}, expect("Pong"))
	return err
}

// RecordProduce records bytes produced by (user, clientID); "" is none.
func (c *QuotaClient) RecordProduce(ctx context.Context, user, clientID string, bytes int64) (RecordResult, error) {
	return c.Record(ctx, Usage{Kind: Produce, User: user, ClientID: clientID, Amount: bytes})
}

// RecordConsume records bytes fetched by (user, clientID), held against consumerGroup's quota too ("": none).
func (c *QuotaClient) RecordConsume(ctx context.Context, user, clientID, consumerGroup string, bytes int64) (RecordResult, error) {
	return c.Record(ctx, Usage{Kind: Consume, User: user, ClientID: clientID, ConsumerGroup: consumerGroup, Amount: bytes})
}

// RecordRequest records one request of (user, clientID), for request_rate.
func (c *QuotaClient) RecordRequest(ctx context.Context, user, clientID string) (RecordResult, error) {
	return c.Record(ctx, Usage{Kind: Request, User: user, ClientID: clientID, Amount: 1})
}

// RecordUsage records amount (0 means 1) units of the named resource (declared in the sidecar's
// quotas.resources) for (user, clientID), held against <resource>_rate; answered like the other record calls.
// An undeclared resource is INVALID_REQUEST from the sidecar; a name outside the grammar (1-32 of a-z, 0-9, _,
// starting with a letter) fails here, unsent. Admit mode: Record with Usage{Kind: Resource, Admit: true}.
func (c *QuotaClient) RecordUsage(ctx context.Context, user, clientID, resource string, amount int64) (RecordResult, error) {
	return c.Record(ctx, Usage{Kind: Resource, User: user, ClientID: clientID, Resource: resource, Amount: amount})
}

// Record makes any record call, admit mode and request counts included.
func (c *QuotaClient) Record(ctx context.Context, u Usage) (RecordResult, error) {
	return c.record(ctx, &u, c.opts.RequestTimeout, false)
}

func (c *QuotaClient) record(ctx context.Context, u *Usage, timeout time.Duration, failFast bool) (RecordResult, error) {
	if u.Kind < Produce || u.Kind > Resource {
		return RecordResult{}, newError(CodeInvalidRequest, "unknown record kind %d", u.Kind)
	}
	if u.Kind == Resource && !isResourceName(u.Resource) {
		return RecordResult{}, newError(CodeInvalidRequest, "resource must be 1-32 characters of a-z, 0-9 and _, starting with a letter")
	}
	if u.Amount < 0 || u.Amount > maxInt {
		return RecordResult{}, newError(CodeInvalidRequest, "amount must be an integer from 0 to 2^53-1")
	}
	cl := newCall()
	cl.usage = *u
	if err := c.do(ctx, cl, timeout, failFast); err != nil {
		return RecordResult{}, err
	}
	r, err := cl.result, cl.err
	cl.free()
	return r, err
}

// DescribeQuotas returns the configured entities containing any of entities (none: all, the global default
// first).
func (c *QuotaClient) DescribeQuotas(ctx context.Context, entities ...Component) ([]QuotaEntry, error) {
	if entities == nil {
		entities = []Component{}
	}
	v, err := c.request(ctx, []field{{"type", "DescribeQuotas"}, {"entities", entities}}, func(m map[string]any) (any, error) { return parseQuotas(m) })
	if err != nil {
		return nil, err
	}
	return v.([]QuotaEntry), nil
}

// AlterQuotas applies every alteration or none (validateOnly: checks only) and returns how many were (or
// would be) applied. A bad alteration fails the call with its code and Error.Index.
func (c *QuotaClient) AlterQuotas(ctx context.Context, alterations []QuotaAlteration, validateOnly bool) (int64, error) {
	if alterations == nil {
		alterations = []QuotaAlteration{}
	}
	body := []field{{"type", "AlterQuotas"}, {"alterations", alterations}, {"validate_only", validateOnly}}
	v, err := c.request(ctx, body, intReply("QuotasAltered", "altered_count"))
	if err != nil {
		return 0, err
	}
	return v.(int64), nil
}

// UsageQuery narrows DescribeUsage; its zero value asks for the server's defaults (every bucket, top 100 by
// utilization).
type UsageQuery struct {
	Entities []Component
	Top      int    // 1..10000; 0: the server's default
	SortBy   string // "utilization" or "rate"; "": the server's default
}

// DescribeUsage returns the live buckets, highest first.
func (c *QuotaClient) DescribeUsage(ctx context.Context, q UsageQuery) ([]BucketUsage, error) {
	entities := q.Entities
	if entities == nil {
		entities = []Component{}
	}
	body := []field{{"type", "DescribeUsage"}, {"entities", entities}}
	if q.Top > 0 {
		body = append(body, field{"top", q.Top})
	}
	if q.SortBy != "" {
		body = append(body, field{"sort_by", q.SortBy})
	}
	v, err := c.request(ctx, body, func(m map[string]any) (any, error) { return parseUsage(m) })
	if err != nil {
		return nil, err
	}
	return v.([]BucketUsage), nil
}

// ResetUsage clears usage and debt of the listed principals' buckets; it returns how many were reset.
func (c *QuotaClient) ResetUsage(ctx context.Context, entities ...Component) (int64, error) {
	if entities == nil {
		entities = []Component{}
	}
	v, err := c.request(ctx, []field{{"type", "ResetUsage"}, {"entities", entities}}, intReply("UsageReset", "buckets"))
	if err != nil {
		return 0, err
	}
	return v.(int64), nil
}

// AcquireLease takes an in-flight lease (max_in_flight) of (user, clientID), or learns how long until one
// frees up. ttl 0: the server's default (30 s).
func (c *QuotaClient) AcquireLease(ctx context.Context, user, clientID string, ttl time.Duration) (LeaseResult, error) {
	body := []field{{"type", "AcquireLease"}}
	if user != "" {
		body = append(body, field{"user", user})
	}
	if clientID != "" {
		body = append(body, field{"client_id", clientID})
	}
	if ttl > 0 {
		body = append(body, field{"ttl_ms", ttl.Milliseconds()})
	}
	v, err := c.request(ctx, body, func(m map[string]any) (any, error) { return parseLease(m) })
	if err != nil {
		return LeaseResult{}, err
	}
	return v.(LeaseResult), nil
}

// ReleaseLease ends a lease (idempotent).
func (c *QuotaClient) ReleaseLease(ctx context.Context, leaseID string) error {
	_, err := c.request(ctx, []field{{"type", "ReleaseLease"}, {"lease_id", leaseID}}, expect("Ok"))
	return err
}

// ViolationQuery narrows DescribeViolations; its zero value asks for the newest 100 events of every kind.
type ViolationQuery struct {
	SinceMs  int64 // epoch ms; 0: all
	Entities []Component
	Types    []string
	Limit    int // 1..10000; 0: the server's default
}

// DescribeViolations reads the violation log.
func (c *QuotaClient) DescribeViolations(ctx context.Context, q ViolationQuery) (Violations, error) {
	body := []field{{"type", "DescribeViolations"}}
	if q.SinceMs > 0 {
		body = append(body, field{"since_ms", q.SinceMs})
	}
	if len(q.Entities) > 0 {
		body = append(body, field{"entities", q.Entities})
	}
	if len(q.Types) > 0 {
		body = append(body, field{"types", q.Types})
	}
	if q.Limit > 0 {
		body = append(body, field{"limit", q.Limit})
	}
	v, err := c.request(ctx, body, func(m map[string]any) (any, error) { return parseViolations(m) })
	if err != nil {
		return Violations{}, err
	}
	return v.(Violations), nil
}

// DescribeFleet returns the fleet as the sidecar saw it at its last heartbeat: the FleetDescribed body
// (docs/protocol.md).
func (c *QuotaClient) DescribeFleet(ctx context.Context) (map[string]any, error) {
	v, err := c.request(ctx, []field{{"type", "DescribeFleet"}}, func(m map[string]any) (any, error) {
		if err := expectType(m, "FleetDescribed"); err != nil {
			return nil, err
		}
		if _, err := list(m, "sidecars"); err != nil {
			return nil, err
		}
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

// Do sends any request body (it must have a string "type") and returns the reply body; an Error reply fails
// it with its code.
func (c *QuotaClient) Do(ctx context.Context, body map[string]any) (map[string]any, error) {
	t, ok := body["type"].(string)
	if !ok {
		return nil, newError(CodeInvalidRequest, "the body has no string type")
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		if k != "type" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	fields := []field{{"type", t}}
	for _, k := range keys {
		fields = append(fields, field{k, body[k]})
	}
	v, err := c.request(ctx, fields, func(m map[string]any) (any, error) { return m, nil })
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

func expect(t string) func(map[string]any) (any, error) {
	return func(m map[string]any) (any, error) { return nil, errOrNil(expectType(m, t)) }
}

func intReply(t, k string) func(map[string]any) (any, error) {
	return func(m map[string]any) (any, error) {
		if err := expectType(m, t); err != nil {
			return nil, err
		}
		n, err := integer(m, k)
		return n, errOrNil(err)
	}
}

func (c *QuotaClient) request(ctx context.Context, body []field, parse func(map[string]any) (any, error)) (any, error) {
	frame, err := appendFrame(nil, 0, body)
	if err != nil {
		return nil, &Error{Code: CodeInvalidRequest, Message: "cannot encode the request: " + err.Error(), Index: -1, cause: err}
	}
	cl := newCall()
	cl.frame, cl.parse = frame, parse
	if err := c.do(ctx, cl, c.opts.RequestTimeout, false); err != nil {
		return nil, err
	}
	v, err := cl.value, cl.err
	cl.free()
	return v, err
}

// do sends the call (or queues it for a connection) and waits for its outcome, its deadline or ctx. A nil
// error means the call settled: its own error is in cl.err.
func (c *QuotaClient) do(ctx context.Context, cl *call, timeout time.Duration, failFast bool) error {
	if ctx.Err() != nil {
		return ctxError(ctx)
	}
	if c.isClosed() {
		return newError(CodeConnectionClosed, "the client is closed")
	}
	if n := c.inFlight.Add(1); n > int64(c.opts.MaxPending) {
		c.inFlight.Add(-1)
		return newError(CodeOverloaded, "%d calls are in flight to %s (MaxPending)", c.opts.MaxPending, c.opts.Addr)
	}
	cl.holding.Store(true)
	c.timeAfter(cl, timeout)
	if cn := c.conn.Load(); cn == nil || !cn.send(cl) {
		if failFast {
			c.release(cl)
			c.reconnect()
			return newError(CodeUnavailable, "not connected to %s", c.opts.Addr)
		}
		if !c.enqueue(cl) {
			c.release(cl)
			return newError(CodeConnectionClosed, "the client is closed")
		}
	}
	c.watch(cl)
	done := ctx.Done()
	if done == nil {
		// A context that never ends (context.Background): only the reply or the timeout settles the call.
		<-cl.done
		return nil
	}
	select {
	case <-cl.done:
		return nil
	case <-done:
		c.abandon(cl, ctxError(ctx))
	}
	<-cl.done
	return nil
}

// abandon settles a call its caller stopped waiting for. A sent call keeps its MaxPending slot until its reply
// (or its connection's end) comes: the bound counts what the connection still holds.
func (c *QuotaClient) abandon(cl *call, err *Error) { c.abandonUse(cl, cl.state.Load()&^1, err) }

// abandonUse abandons use number use of the call (the sweeper's pointer may be to a later use).
func (c *QuotaClient) abandonUse(cl *call, use uint32, err *Error) {
	if cl.settleUse(use, RecordResult{}, nil, err, false) && !cl.sent.Load() {
		c.mu.Lock()
		sent := cl.sent.Load()
		c.mu.Unlock()
		if !sent {
			c.release(cl)
		}
	}
}

// release gives back the call's MaxPending slot (once).
func (c *QuotaClient) release(cl *call) {
	if cl.holding.CompareAndSwap(true, false) {
		c.inFlight.Add(-1)
	}
}

// enqueue sends the call on the connection if one is up now, else queues it for the next one.
func (c *QuotaClient) enqueue(cl *call) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	if cn := c.conn.Load(); cn != nil && cn.send(cl) {
		c.mu.Unlock()
		return true
	}
	if len(c.waiting) >= c.opts.MaxPending {
		// Calls that timed out while waiting are dropped here, so the queue holds at most MaxPending live calls.
		live := c.waiting[:0]
		for _, w := range c.waiting {
			if !w.settled() {
				live = append(live, w)
			}
		}
		clear(c.waiting[len(live):])
		c.waiting = live
	}
	c.waiting = append(c.waiting, cl)
	c.mu.Unlock()
	c.reconnect()
	return true
}

func (c *QuotaClient) isClosed() bool { return c.shut.Load() }

// lost is told by a dying connection; the client reconnects in the background.
func (c *QuotaClient) lost(cn *conn) {
	c.conn.CompareAndSwap(cn, nil)
	c.reconnect()
}

// reconnect starts the background reconnect unless one runs, a connection is up or the client is closed.
func (c *QuotaClient) reconnect() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.reconnecting {
		return
	}
	if cn := c.conn.Load(); cn != nil && !cn.isDead() {
		return
	}
	c.reconnecting = true
	c.wg.Add(1)
	go c.reconnectLoop()
}

func (c *QuotaClient) reconnectLoop() {
	defer c.wg.Done()
	delay := c.opts.MinRetryBackoff
	for {
		cn, err := dial(c.closeCtx, c)
		if err == nil {
			c.mu.Lock()
			c.reconnecting = false
			if c.closed {
				c.mu.Unlock()
				cn.fail(newError(CodeConnectionClosed, "the client was closed"))
				cn.wg.Wait()
				return
			}
			c.conn.Store(cn)
			// Calls that waited for a connection go out now, in the order they were made.
			waiting := c.waiting
			c.waiting = nil
			for _, w := range waiting {
				if !w.settled() && !cn.send(w) {
					c.release(w)
					w.settle(RecordResult{}, nil, newError(CodeConnectionClosed, "connection to %s closed", c.opts.Addr))
				}
			}
			c.mu.Unlock()
			return
		}
		if !err.Retriable() {
			// A revoked token: the waiting calls fail with it; attempts go on, with backoff.
			c.failWaiting(err)
		}
		if !sleep(c.closeCtx, delay) {
			c.mu.Lock()
			c.reconnecting = false
			c.mu.Unlock()
			return
		}
		delay = min(delay*2, c.opts.MaxRetryBackoff)
	}
}

func (c *QuotaClient) failWaiting(err *Error) {
	c.mu.Lock()
	waiting := c.waiting
	c.waiting = nil
	c.mu.Unlock()
	for _, w := range waiting {
		c.release(w)
		w.settle(RecordResult{}, nil, err)
	}
}

// Close fails every pending call with CONNECTION_CLOSED, stops reconnecting, closes the connection and waits
// for the client's goroutines to end. It is idempotent.
func (c *QuotaClient) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.shut.Store(true)
	c.mu.Unlock()
	c.cancel()
	err := newError(CodeConnectionClosed, "the client was closed")
	c.failWaiting(err)
	if cn := c.conn.Swap(nil); cn != nil {
		cn.fail(err)
		cn.wg.Wait()
	}
	c.wg.Wait()
	return nil
}

func isResourceName(s string) bool {
	if s == "" || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if ch := s[i]; !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '_') {
			return false
		}
	}
	return true
}
