package rivven

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"
)

// Options says how a QuotaClient connects and calls. The zero value of every field means its default, named
// on the field; Connect reads the options once (later changes have no effect).
type Options struct {
	// Addr is the sidecar's "host:port". Zero: "127.0.0.1:9190".
	Addr string
	// ClientName is sent in Hello (shown in the sidecar's audit log). Zero: none.
	ClientName string
	// Token authenticates the connection on a sidecar with a tokens file. Zero: none.
	Token string
	// TLSConfig turns TLS on. Its ServerName defaults to Addr's host (a certificate may name 127.0.0.1).
	// Zero (nil): plain TCP.
	TLSConfig *tls.Config
	// ConnectTimeout bounds one connection attempt: TCP, TLS handshake and Hello. Zero: 1 s.
	ConnectTimeout time.Duration
	// ConnectAttempts is how many times Connect tries before it fails with CONNECTION_CLOSED. Zero: 5.
	ConnectAttempts int
	// MinRetryBackoff is the wait after the first failed attempt; it doubles up to MaxRetryBackoff, for
	// Connect and for the background reconnect. Zero: 50 ms.
	MinRetryBackoff time.Duration
	// MaxRetryBackoff caps the wait between attempts. Zero: 2 s.
	MaxRetryBackoff time.Duration
	// RequestTimeout is a call's deadline when its context has none earlier. Zero: 5 s.
	RequestTimeout time.Duration
	// MaxPending bounds the calls sent (or waiting for a connection) and not yet answered, including those
	// whose caller stopped waiting; past it a call fails at once with OVERLOADED. Zero: 10000.
	MaxPending int
	// MaxFrameBytes is the largest reply body accepted; a larger length closes the connection before a byte
	// of it is buffered. Zero: 64 MiB.
	MaxFrameBytes int
}

// DefaultOptions holds every default, the values the zero fields stand for.
var DefaultOptions = Options{
	Addr:            "127.0.0.1:9190",
	ConnectTimeout:  time.Second,
	ConnectAttempts: 5,
	MinRetryBackoff: 50 * time.Millisecond,
	MaxRetryBackoff: 2 * time.Second,
	RequestTimeout:  5 * time.Second,
	MaxPending:      10000,
	MaxFrameBytes:   64 << 20,
}

// withDefaults checks o and fills its zero fields; a negative value is an error.
func (o *Options) withDefaults() (Options, error) {
	var r Options
	if o != nil {
		r = *o
	}
	d := DefaultOptions
	if r.Addr == "" {
		r.Addr = d.Addr
	}
	if _, _, err := net.SplitHostPort(r.Addr); err != nil {
		return r, fmt.Errorf("rivven: Options.Addr %q: %w", r.Addr, err)
	}
	durations := []struct {
		v    *time.Duration
		def  time.Duration
		name string
	}{
		{&r.ConnectTimeout, d.ConnectTimeout, "ConnectTimeout"},
		{&r.MinRetryBackoff, d.MinRetryBackoff, "MinRetryBackoff"},
		{&r.MaxRetryBackoff, d.MaxRetryBackoff, "MaxRetryBackoff"},
		{&r.RequestTimeout, d.RequestTimeout, "RequestTimeout"},
	}
	for _, f := range durations {
		if *f.v < 0 {
			return r, fmt.Errorf("rivven: Options.%s must not be negative", f.name)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	ints := []struct {
		v    *int
		def  int
		name string
	}{
		{&r.ConnectAttempts, d.ConnectAttempts, "ConnectAttempts"},
		{&r.MaxPending, d.MaxPending, "MaxPending"},
		{&r.MaxFrameBytes, d.MaxFrameBytes, "MaxFrameBytes"},
	}
	for _, f := range ints {
		if *f.v < 0 {
			return r, fmt.Errorf("rivven: Options.%s must not be negative", f.name)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if r.TLSConfig != nil {
		r.TLSConfig = r.TLSConfig.Clone()
		if r.TLSConfig.ServerName == "" {
			host, _, _ := net.SplitHostPort(r.Addr)
			r.TLSConfig.ServerName = host
		}
	}
	return r, nil
}
