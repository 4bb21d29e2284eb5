package rivven

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"time"
)

// conn is one TCP (or TLS) connection with two goroutines: a writer that sends whatever calls were queued
// since its last write in one write (callers never touch the socket), and a reader that answers the calls in
// the order they were sent (the server replies in request order) after checking each correlation id. A reply's
// length is checked before a byte of its body is buffered.
type conn struct {
	client *QuotaClient
	nc     net.Conn
	rd     *bufio.Reader

	mu     sync.Mutex
	out    []byte  // frames queued for the writer
	queue  []*call // sent, not yet answered, in order
	head   int
	nextID uint32
	dead   bool
	wake   chan struct{}
	closed chan struct{}
	wg     sync.WaitGroup
}

// dial connects, shakes hands (TLS) and says Hello, all within ConnectTimeout and ctx; then starts the reader
// and the writer. A socket whose Hello failed is closed before dial returns.
func dial(ctx context.Context, c *QuotaClient) (*conn, *Error) {
	o := &c.opts
	ctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()
	d := net.Dialer{}
	nc, err := d.DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, netError(ctx, err, "cannot connect to "+o.Addr)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	// Closes the socket if ctx ends mid-handshake (a cancelled Connect, or Close).
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if o.TLSConfig != nil {
		tc := tls.Client(nc, o.TLSConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, netError(ctx, err, "TLS handshake with "+o.Addr+" failed")
		}
		nc = tc
	}
	cn := &conn{client: c, nc: nc, rd: bufio.NewReaderSize(nc, 64<<10), nextID: 2,
		wake: make(chan struct{}, 1), closed: make(chan struct{})}
	body := []field{{"type", "Hello"}, {"protocol_version", 1}}
	if o.ClientName != "" {
		body = append(body, field{"client_name", o.ClientName})
	}
	if o.Token != "" {
		body = append(body, field{"token", o.Token})
	}
	frame, ferr := appendFrame(nil, 1, body)
	err = ferr
	if err == nil {
		_, err = nc.Write(frame)
	}
	var reply map[string]any
	if err == nil {
		reply, err = cn.readHello(ctx)
	}
	if err == nil {
		if t, _ := reply["type"].(string); t == "Error" {
			err = errorOf(reply)
		} else {
			_, err = parseHello(reply)
		}
	}
	if err != nil {
		_ = nc.Close()
		var e *Error
		if errors.As(err, &e) {
			return nil, e
		}
		return nil, netError(ctx, err, "Hello to "+o.Addr+" failed")
	}
	_ = nc.SetDeadline(time.Time{})
	cn.wg.Add(2)
	go cn.readLoop()
	go cn.writeLoop()
	return cn, nil
}

// netError names a failed connect: TIMEOUT when its deadline passed, else CONNECTION_CLOSED.
func netError(ctx context.Context, err error, what string) *Error {
	var ne net.Error
	if ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()) {
		return &Error{Code: CodeTimeout, Message: what + ": no answer within the connect timeout", Index: -1, cause: err}
	}
	return &Error{Code: CodeConnectionClosed, Message: what + ": " + err.Error(), Index: -1, cause: err}
}

// readHello reads frames until the Hello's reply (id 1) or a connection-level error (id 0).
func (cn *conn) readHello(ctx context.Context) (map[string]any, error) {
	var body []byte
	for {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		id, b, err := cn.readFrame(body)
		if err != nil {
			return nil, err
		}
		body = b
		if id == 1 || id == 0 {
			m, err := decodeBody(b)
			if err != nil {
				return nil, err
			}
			return m, nil
		}
	}
}

// readFrame reads one frame into buf (grown as needed); a length past MaxFrameBytes is refused unread.
func (cn *conn) readFrame(buf []byte) (uint32, []byte, error) {
	var h [headerBytes]byte
	if _, err := io.ReadFull(cn.rd, h[:]); err != nil {
		return 0, buf, err
	}
	length := binary.BigEndian.Uint32(h[:4])
	if length < 4 || int64(length)-4 > int64(cn.client.opts.MaxFrameBytes) {
		return 0, buf, newError(CodeConnectionClosed, "the server at %s sent a frame of %d bytes (MaxFrameBytes %d)",
			cn.client.opts.Addr, length, cn.client.opts.MaxFrameBytes)
	}
	n := int(length - 4)
	if cap(buf) < n {
		buf = make([]byte, n, max(n, 64<<10))
	}
	buf = buf[:n]
	if _, err := io.ReadFull(cn.rd, buf); err != nil {
		return 0, buf, err
	}
	return binary.BigEndian.Uint32(h[4:]), buf, nil
}

// send queues the call's frame for the writer's next write; false when the connection is dead.
func (cn *conn) send(c *call) bool {
	cn.mu.Lock()
	if cn.dead {
		cn.mu.Unlock()
		return false
	}
	wake := len(cn.out) == 0
	id := cn.nextID
	cn.nextID++
	if cn.nextID == 0 {
		cn.nextID = 1 // 0 is the connection-level errors' id
	}
	c.id = id
	if c.record() {
		cn.out = appendRecord(cn.out, id, &c.usage)
	} else {
		at := len(cn.out)
		cn.out = append(cn.out, c.frame...)
		binary.BigEndian.PutUint32(cn.out[at+4:], id)
	}
	c.sent.Store(true)
	if cn.head > 0 && len(cn.queue) == cap(cn.queue) {
		// Compact instead of growing: the queue holds at most MaxPending live calls.
		n := copy(cn.queue, cn.queue[cn.head:])
		clear(cn.queue[n:])
		cn.queue, cn.head = cn.queue[:n], 0
	}
	cn.queue = append(cn.queue, c)
	cn.mu.Unlock()
	cn.client.sent.Add(1)
	if wake {
		select {
		case cn.wake <- struct{}{}:
		default:
		}
	}
	return true
}

func (cn *conn) writeLoop() {
	defer cn.wg.Done()
	var spare []byte
	for {
		select {
		case <-cn.wake:
		case <-cn.closed:
			return
		}
		// Let the goroutines that are ready to run (callers the reader just answered) queue their next calls
		// first: one write of many frames costs far less than many writes of a few, on both ends.
		runtime.Gosched()
		cn.mu.Lock()
		batch := cn.out
		cn.out = spare[:0]
		cn.mu.Unlock()
		if len(batch) == 0 {
			spare = batch
			continue
		}
		if _, err := cn.nc.Write(batch); err != nil {
			cn.fail(&Error{Code: CodeConnectionClosed, Message: "connection to " + cn.client.opts.Addr + " failed: " + err.Error(), Index: -1, cause: err})
			return
		}
		// A burst's large buffer is not kept as the spare: it must not pin its memory.
		if cap(batch) <= 1<<20 {
			spare = batch
		} else {
			spare = nil
		}
	}
}

func (cn *conn) readLoop() {
	defer cn.wg.Done()
	var buf []byte
	for {
		id, body, err := cn.readFrame(buf)
		buf = body
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				msg := "connection to " + cn.client.opts.Addr + " closed"
				if !errors.Is(err, io.EOF) {
					msg = "connection to " + cn.client.opts.Addr + " failed: " + err.Error()
				}
				e = &Error{Code: CodeConnectionClosed, Message: msg, Index: -1, cause: err}
			}
			cn.fail(e)
			return
		}
		if cap(buf) > 1<<20 && len(body) < 64<<10 {
			buf = nil
		}
		if id == 0 {
			// A connection-level error (FRAME_TOO_LARGE, ...): the server closes; every call sent here fails with it.
			m, err := decodeBody(body)
			if err != nil {
				cn.fail(err.(*Error))
			} else {
				cn.fail(errorOf(m))
			}
			return
		}
		cn.mu.Lock()
		var c *call
		if cn.head < len(cn.queue) {
			c = cn.queue[cn.head]
			cn.queue[cn.head] = nil
			cn.head++
			if cn.head == len(cn.queue) {
				cn.queue, cn.head = cn.queue[:0], 0
			}
		}
		cn.mu.Unlock()
		if c == nil || c.id != id {
			if c != nil {
				cn.client.release(c)
				c.settle(RecordResult{}, nil, unexpected("a reply with correlation id %d, expected %d", id, c.id))
			}
			cn.fail(newError(CodeConnectionClosed, "the server at %s answered out of order (correlation id %d)", cn.client.opts.Addr, id))
			return
		}
		cn.client.release(c)
		c.answer(body)
	}
}

// fail marks the connection dead, closes it, fails the calls sent on it and tells the client (once).
func (cn *conn) fail(err *Error) {
	cn.mu.Lock()
	if cn.dead {
		cn.mu.Unlock()
		return
	}
	cn.dead = true
	calls := cn.queue[cn.head:]
	cn.queue, cn.head, cn.out = nil, 0, nil
	close(cn.closed)
	cn.mu.Unlock()
	_ = cn.nc.Close()
	for _, c := range calls {
		cn.client.release(c)
		c.settle(RecordResult{}, nil, err)
	}
	cn.client.lost(cn)
}

func (cn *conn) isDead() bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.dead
}
