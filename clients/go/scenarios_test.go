package rivven_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	rivven "github.com/rivven/rivven-quota/clients/go"
)

// The conformance scenarios (conformance/scenarios.json) against real sidecars and hostile servers the harness
// starts. Nothing here waits for time to pass: each wait is for a condition, bounded by the scenario's numbers.

func scenario(t *testing.T, name string) map[string]any {
	t.Helper()
	return obj(obj(readJSON(t, "conformance", "scenarios.json")["scenarios"])[name])
}

// sidecarOptions: a generous connect timeout, since a cold TLS handshake on a loaded machine can take a
// second; no scenario here is about connect timing (the hostile silent_hello case sets its own).
func sidecarOptions(sc map[string]any) *rivven.Options {
	return &rivven.Options{Addr: fmt.Sprintf("%s:%d", s(sc, "host"), num(sc["port"])), ClientName: "go-conformance", ConnectTimeout: 10 * time.Second}
}

func startSidecar(t *testing.T, h *harness, kv ...any) map[string]any {
	t.Helper()
	sc := h.ask(t, "start_sidecar", kv...)
	t.Cleanup(func() { h.ask(t, "stop", "sidecar", sc["sidecar"]) })
	return sc
}

func brokerCall(ctx context.Context, b *rivven.BrokerQuotas, step map[string]any) int64 {
	switch s(step, "call") {
	case "produce":
		return b.Produce(ctx, s(step, "user"), s(step, "client_id"), num(step["bytes"]))
	case "fetch":
		return b.Fetch(ctx, s(step, "user"), s(step, "client_id"), s(step, "consumer_group"), num(step["bytes"]))
	default:
		return b.Request(ctx, s(step, "user"), s(step, "client_id"))
	}
}

func nums(v any) []int64 {
	var out []int64
	for _, n := range arr(v) {
		out = append(out, num(n))
	}
	return out
}

func TestScenarioThrottles(t *testing.T) {
	h := getHarness(t)
	sc := scenario(t, "throttles")
	side := startSidecar(t, h, "clock", "manual")
	c, err := rivven.Connect(ctx10s(t), sidecarOptions(side))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n, err := c.AlterQuotas(ctx10s(t), alterations(sc["setup"]), false)
	if err != nil || n != int64(len(arr(sc["setup"]))) {
		t.Fatalf("setup: %d altered, %v", n, err)
	}
	b := rivven.NewBrokerQuotas(c, &rivven.BrokerOptions{RecordDeadline: time.Duration(num(obj(sc["broker"])["record_deadline_ms"])) * time.Millisecond})
	var answers, expected []int64
	for _, st := range arr(sc["steps"]) {
		step := obj(st)
		if ms, ok := step["advance_ms"]; ok {
			h.ask(t, "advance_clock", "sidecar", side["sidecar"], "ms", ms)
		}
		answers = append(answers, brokerCall(context.Background(), b, step))
		expected = append(expected, num(step["expect"]))
	}
	if b.Failures() != 0 {
		t.Fatalf("%d calls failed open", b.Failures())
	}
	if fmt.Sprint(answers) != fmt.Sprint(expected) {
		t.Fatalf("answers %v, scenarios.json expects %v", answers, expected)
	}
	if ref := nums(h.ask(t, "reference", "scenario", "throttles")["answers"]); fmt.Sprint(ref) != fmt.Sprint(answers) {
		t.Fatalf("answers %v, the Node client's now %v", answers, ref)
	}
}

func TestScenarioInFlight(t *testing.T) {
	h := getHarness(t)
	sc := scenario(t, "in_flight")
	co := obj(sc["client"])
	calls := int(num(sc["calls"]))
	timeout := time.Duration(num(co["request_timeout_ms"])) * time.Millisecond
	side := startSidecar(t, h, "clock", "manual")
	o := sidecarOptions(side)
	o.MaxPending, o.RequestTimeout = int(num(co["max_pending"])), timeout
	c, err := rivven.Connect(ctx10s(t), o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.AlterQuotas(ctx10s(t), alterations(sc["setup"]), false); err != nil {
		t.Fatal(err)
	}
	b := rivven.NewBrokerQuotas(c, &rivven.BrokerOptions{RecordDeadline: timeout})
	step := obj(sc["call"])
	answers := make([]int64, calls)
	var wg sync.WaitGroup
	deadline := time.Now().Add(60 * time.Second)
	for i := range calls {
		// Each call is issued (queued on the connection) before the next starts, none awaited: the positions
		// are the order the calls were made.
		before := c.Stats().Sent
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = brokerCall(context.Background(), b, step)
		}()
		for c.Stats().Sent == before {
			if time.Now().After(deadline) {
				t.Fatalf("call %d was never sent", i)
			}
			runtime.Gosched()
		}
	}
	wg.Wait()
	if b.Failures() != 0 {
		t.Fatalf("%d calls failed (refused by MaxPending, or late)", b.Failures())
	}
	ref := nums(h.ask(t, "reference", "scenario", "in_flight")["answers"])
	if len(ref) != calls {
		t.Fatalf("the reference has %d answers", len(ref))
	}
	for i := range ref {
		if answers[i] != ref[i] {
			t.Fatalf("call %d answered %d, the Node client's %d", i, answers[i], ref[i])
		}
	}
	if answers[calls-1] <= answers[0] {
		t.Fatalf("the answers do not rise with the position: %d .. %d", answers[0], answers[calls-1])
	}
}

func TestScenarioSidecarKilled(t *testing.T)  { outage(t, scenario(t, "sidecar_killed")) }
func TestScenarioSidecarStopped(t *testing.T) { outage(t, scenario(t, "sidecar_stopped")) }

func outage(t *testing.T, sc map[string]any) {
	h := getHarness(t)
	br := obj(sc["broker"])
	side := startSidecar(t, h, "clock", "real")
	name := side["sidecar"]
	within := time.Duration(num(sc["within_ms"])) * time.Millisecond
	c, err := rivven.Connect(ctx10s(t), sidecarOptions(side))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var mu sync.Mutex
	var errs []error
	b := rivven.NewBrokerQuotas(c, &rivven.BrokerOptions{
		RecordDeadline:   time.Duration(num(br["record_deadline_ms"])) * time.Millisecond,
		FailureThreshold: int(num(br["failure_threshold"])),
		ResetTimeout:     time.Duration(num(br["reset_timeout_ms"])) * time.Millisecond,
		OnError: func(err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		},
	})
	ctx := context.Background()
	// One call the sidecar answers within the 25 ms record deadline. A freshly started sidecar (its JIT cold) on a
	// loaded machine can miss it, and a late call answers 0 and counts a failure: wait for an answered one, then
	// count the outage's failures from here.
	answered(t, b, 10*time.Second, func() int64 { return b.Produce(ctx, "alice", "app-1", 100) })
	before := b.Failures()
	h.ask(t, "signal", "sidecar", name, "signal", sc["signal"])
	calls := num(sc["calls"])
	for i := range calls {
		start := time.Now()
		got := b.Produce(ctx, "alice", "app-1", 100)
		if took := time.Since(start); got != 0 || took > within {
			t.Fatalf("call %d answered %d after %v (must be 0 within %v)", i, got, took, within)
		}
	}
	if got := b.Failures() - before; got != calls {
		t.Fatalf("%d failures counted, want %d", got, calls)
	}
	if b.ShortCircuited() == 0 || b.Breaker().Opened() < 1 {
		t.Fatalf("the breaker did not open (short-circuited %d, opened %d)", b.ShortCircuited(), b.Breaker().Opened())
	}
	mu.Lock()
	for _, err := range errs {
		var e *rivven.Error
		if !errors.As(err, &e) || !e.Retriable() {
			t.Fatalf("OnError saw %v, not a retriable rivven error", err)
		}
	}
	if len(errs) == 0 {
		t.Fatal("OnError saw nothing")
	}
	mu.Unlock()
	if s(sc, "signal") == "KILL" {
		again := h.ask(t, "restart", "sidecar", name)
		if num(again["port"]) != num(side["port"]) {
			t.Fatalf("restarted on port %v, not %v", again["port"], side["port"])
		}
	} else {
		h.ask(t, "signal", "sidecar", name, "signal", "CONT")
	}
	until := time.Now().Add(time.Duration(num(sc["recover_within_ms"])) * time.Millisecond)
	for b.Breaker().State() != rivven.BreakerClosed {
		if time.Now().After(until) {
			t.Fatal("the breaker did not close after the sidecar came back")
		}
		b.Produce(ctx, "alice", "app-1", 1)
		time.Sleep(10 * time.Millisecond)
	}
	// Calls are answered by the sidecar again (a restarted one is cold, as at the start: one may be late).
	answered(t, b, time.Until(until), func() int64 { return b.Request(ctx, "alice", "app-1") })
}

// answered makes call until one is answered by the sidecar (0, no failure counted) within the broker's record
// deadline, for at most `within`.
func answered(t *testing.T, b *rivven.BrokerQuotas, within time.Duration, call func() int64) {
	t.Helper()
	until := time.Now().Add(within)
	for {
		failures := b.Failures()
		got := call()
		if got == 0 && b.Failures() == failures {
			return
		}
		if got != 0 || time.Now().After(until) {
			t.Fatalf("no call answered by the sidecar: the last answered %d, failures %d -> %d", got, failures, b.Failures())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// attempt connects and makes call; it returns "ok" or the error code (from the connect or the call).
func attempt(o *rivven.Options, call string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := rivven.Connect(ctx, o)
	if err == nil {
		defer c.Close()
		switch call {
		case "produce":
			_, err = c.RecordProduce(ctx, "alice", "app-1", 10)
		case "describeQuotas":
			_, err = c.DescribeQuotas(ctx)
		case "alterQuotas":
			_, err = c.AlterQuotas(ctx, []rivven.QuotaAlteration{rivven.Set([]rivven.Component{rivven.User("x")}, "request_rate", 5)}, true)
		default:
			err = c.Ping(ctx)
		}
	}
	if err == nil {
		return "ok"
	}
	var e *rivven.Error
	if errors.As(err, &e) {
		return string(e.Code)
	}
	return err.Error()
}

func expected(k map[string]any) string {
	if _, ok := k["expect"]; ok {
		return "ok"
	}
	return s(k, "expect_error")
}

func TestScenarioAuth(t *testing.T) {
	h := getHarness(t)
	side := startSidecar(t, h, "clock", "real", "auth", true)
	tokens := obj(side["tokens"])
	for _, k := range arr(scenario(t, "auth")["cases"]) {
		k := obj(k)
		o := sidecarOptions(side)
		o.ConnectAttempts = 1
		if who, ok := k["token"].(string); ok {
			o.Token = "rvn_not_a_token"
			if tok, ok := tokens[who].(string); ok {
				o.Token = tok
			}
		}
		if got := attempt(o, s(k, "call")); got != expected(k) {
			t.Errorf("token %v, %s: got %s, want %s", k["token"], s(k, "call"), got, expected(k))
		}
	}
}

func tlsConfig(t *testing.T, ca, cert, key string) *tls.Config {
	t.Helper()
	cfg := &tls.Config{}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			t.Fatal(err)
		}
		cfg.RootCAs = x509.NewCertPool()
		cfg.RootCAs.AppendCertsFromPEM(pem)
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}

func TestScenarioTLS(t *testing.T) {
	h := getHarness(t)
	side := startSidecar(t, h, "clock", "real", "tls", "tls")
	files := obj(side["tls"])
	for _, k := range arr(scenario(t, "tls")["cases"]) {
		k := obj(k)
		o := sidecarOptions(side)
		o.ConnectAttempts = 1
		ca := ""
		if k["trust_ca"] == true {
			ca = s(files, "ca")
		}
		o.TLSConfig = tlsConfig(t, ca, "", "")
		o.TLSConfig.ServerName = s(files, "server_name")
		if got := attempt(o, "produce"); got != expected(k) {
			t.Errorf("trust_ca %v: got %s, want %s", k["trust_ca"], got, expected(k))
		}
	}
	// The certificate names 127.0.0.1 too: the host itself verifies without a server name.
	o := sidecarOptions(side)
	o.TLSConfig = tlsConfig(t, s(files, "ca"), "", "")
	if got := attempt(o, "ping"); got != "ok" {
		t.Errorf("by address: %s", got)
	}
}

func TestScenarioMutualTLS(t *testing.T) {
	h := getHarness(t)
	side := startSidecar(t, h, "clock", "real", "tls", "mtls", "auth", true)
	files := obj(side["tls"])
	tokens := obj(side["tokens"])
	for _, k := range arr(scenario(t, "mtls")["cases"]) {
		k := obj(k)
		cert, key := "", ""
		if name, ok := k["client_cert"].(string); ok {
			cert, key = s(files, name+"_cert"), s(files, name+"_key")
		}
		o := sidecarOptions(side)
		o.ConnectAttempts = 1
		o.TLSConfig = tlsConfig(t, s(files, "ca"), cert, key)
		o.TLSConfig.ServerName = "localhost"
		if who, ok := k["token"].(string); ok {
			o.Token = s(tokens, who)
		}
		if got := attempt(o, s(k, "call")); got != expected(k) {
			t.Errorf("client certificate %v, %s: got %s, want %s", k["client_cert"], s(k, "call"), got, expected(k))
		}
	}
}

func TestScenarioDenied(t *testing.T) {
	h := getHarness(t)
	sc := scenario(t, "denied")
	block := obj(sc["block"])
	side := startSidecar(t, h, "clock", "real")
	c, err := rivven.Connect(ctx10s(t), sidecarOptions(side))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var mu sync.Mutex
	var denied []string
	b := rivven.NewBrokerQuotas(c, &rivven.BrokerOptions{RecordDeadline: 5 * time.Second, OnDenied: func(e, r string) {
		mu.Lock()
		denied = append(denied, e+"|"+r)
		mu.Unlock()
	}})
	ent := entity(block["entity"])
	if _, err := c.AlterQuotas(ctx10s(t), []rivven.QuotaAlteration{rivven.Block(ent, s(block, "quota_value"))}, false); err != nil {
		t.Fatal(err)
	}
	user := ent[0].Name
	ctx := context.Background()
	if a, f, r := b.Produce(ctx, user, "app-1", 10), b.Fetch(ctx, user, "", "etl", 10), b.Request(ctx, user, ""); a != rivven.Denied || f != rivven.Denied || r != rivven.Denied {
		t.Fatalf("produce %d, fetch %d, request %d: want -1", a, f, r)
	}
	want := s(sc, "expect_entity") + "|" + s(sc, "expect_reason")
	if len(denied) != 3 || denied[0] != want {
		t.Fatalf("OnDenied saw %v, want 3 of %s", denied, want)
	}
	r, err := c.RecordRequest(ctx, user, "")
	if err != nil || !r.IsDenied() || r.DeniedReason != s(sc, "expect_reason") || r.Entity != s(sc, "expect_entity") {
		t.Fatalf("the typed result %+v, %v", r, err)
	}
	if b.Failures() != 0 {
		t.Fatalf("Denied is an answer, not a failure: %d", b.Failures())
	}
	if _, err := c.AlterQuotas(ctx10s(t), []rivven.QuotaAlteration{rivven.Unblock(ent)}, false); err != nil {
		t.Fatal(err)
	}
	if got := b.Produce(ctx, user, "app-1", 10); got != 0 {
		t.Fatalf("unblocked: %d", got)
	}
}

func TestScenarioHostile(t *testing.T) {
	h := getHarness(t)
	for _, m := range arr(scenario(t, "hostile")["modes"]) {
		m := obj(m)
		mode := s(m, "mode")
		t.Run(mode, func(t *testing.T) {
			hs := h.ask(t, "start_hostile", "mode", mode)
			defer h.ask(t, "stop", "hostile", hs["hostile"])
			within := time.Duration(num(m["within_ms"])) * time.Millisecond
			o := &rivven.Options{Addr: fmt.Sprintf("%s:%d", s(hs, "host"), num(hs["port"])), ConnectAttempts: 1, MaxFrameBytes: 1 << 20, ConnectTimeout: 10 * time.Second}
			oneOf := func(codes any, got string) bool {
				for _, c := range arr(codes) {
					if c == got {
						return true
					}
				}
				return false
			}
			if codes, ok := m["connect_codes"]; ok {
				o.ConnectTimeout = time.Duration(num(m["connect_timeout_ms"])) * time.Millisecond
				start := time.Now()
				if got := attempt(o, "ping"); !oneOf(codes, got) {
					t.Fatalf("the connect failed with %s, want one of %v", got, codes)
				}
				if took := time.Since(start); took > within {
					t.Fatalf("the connect took %v, more than %v", took, within)
				}
				return
			}
			if ms, ok := m["request_timeout_ms"]; ok {
				o.RequestTimeout = time.Duration(num(ms)) * time.Millisecond
			}
			c, err := rivven.Connect(ctx10s(t), o)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			_, err = c.RecordProduce(context.Background(), "alice", "app-1", 1)
			var e *rivven.Error
			if !errors.As(err, &e) || !oneOf(m["codes"], string(e.Code)) || time.Since(start) > within {
				t.Fatalf("the record call ended with %v after %v; want one of %v within %v", err, time.Since(start), m["codes"], within)
			}
			if mode == "garbage" && e.Code != rivven.CodeUnexpectedReply {
				t.Fatalf("this client names garbage for what it is: %v", err)
			}
			b := rivven.NewBrokerQuotas(c, &rivven.BrokerOptions{RecordDeadline: 25 * time.Millisecond})
			start = time.Now()
			if got := b.Produce(context.Background(), "alice", "app-1", 1); got != 0 || time.Since(start) > within {
				t.Fatalf("the broker's answer %d after %v fails open", got, time.Since(start))
			}
			if maxBytes, ok := m["max_bytes_accepted"]; ok {
				until := time.Now().Add(within)
				stats := h.ask(t, "hostile_stats", "hostile", hs["hostile"])
				for stats["closed_by_peer"] != true && time.Now().Before(until) {
					time.Sleep(10 * time.Millisecond)
					stats = h.ask(t, "hostile_stats", "hostile", hs["hostile"])
				}
				if stats["closed_by_peer"] != true {
					t.Fatal("the client did not close the connection")
				}
				if num(stats["bytes_sent"]) > num(maxBytes) {
					t.Fatalf("the client took %v bytes before closing", stats["bytes_sent"])
				}
			}
		})
	}
}

func TestHarnessAnswersADocumentedCommand(t *testing.T) {
	h := getHarness(t)
	side := startSidecar(t, h, "clock", "real")
	reply := obj(h.ask(t, "request", "sidecar", side["sidecar"], "body", map[string]any{"type": "Ping"})["reply"])
	if s(reply, "type") != "Pong" || side["pid"] == nil {
		t.Fatalf("reply %v, pid %v", reply, side["pid"])
	}
}
