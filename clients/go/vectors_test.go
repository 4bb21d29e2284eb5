package rivven_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	rivven "github.com/rivven/rivven-quota/clients/go"
)

// The conformance vectors (conformance/vectors/*.json): what this client writes and how it reads every reply.

func ctx10s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// invoke makes the call a request vector describes.
func invoke(ctx context.Context, c *rivven.QuotaClient, method string, a map[string]any) error {
	n := func(k string) int64 { return num(a[k]) }
	admit, _ := a["admit"].(bool)
	var err error
	switch method {
	case "hello":
		_, err = c.Hello(ctx)
	case "ping":
		err = c.Ping(ctx)
	case "recordProduce":
		_, err = c.Record(ctx, rivven.Usage{Kind: rivven.Produce, User: s(a, "user"), ClientID: s(a, "client_id"), Amount: n("bytes"), Admit: admit})
	case "recordConsume":
		_, err = c.Record(ctx, rivven.Usage{Kind: rivven.Consume, User: s(a, "user"), ClientID: s(a, "client_id"), ConsumerGroup: s(a, "consumer_group"), Amount: n("bytes"), Admit: admit})
	case "recordRequest":
		_, err = c.Record(ctx, rivven.Usage{Kind: rivven.Request, User: s(a, "user"), ClientID: s(a, "client_id"), Amount: n("count"), Admit: admit})
	case "recordUsage":
		_, err = c.Record(ctx, rivven.Usage{Kind: rivven.Resource, User: s(a, "user"), ClientID: s(a, "client_id"), Resource: s(a, "resource"), Amount: n("amount"), Admit: admit})
	case "describeQuotas":
		_, err = c.DescribeQuotas(ctx, entity(a["entities"])...)
	case "alterQuotas":
		validate, _ := a["validate_only"].(bool)
		_, err = c.AlterQuotas(ctx, alterations(a["alterations"]), validate)
	case "describeUsage":
		_, err = c.DescribeUsage(ctx, rivven.UsageQuery{Entities: entity(a["entities"]), Top: int(n("top")), SortBy: s(a, "sort_by")})
	case "resetUsage":
		_, err = c.ResetUsage(ctx, entity(a["entities"])...)
	case "acquireLease":
		_, err = c.AcquireLease(ctx, s(a, "user"), s(a, "client_id"), time.Duration(n("ttl_ms"))*time.Millisecond)
	case "releaseLease":
		err = c.ReleaseLease(ctx, s(a, "lease_id"))
	case "describeViolations":
		var types []string
		for _, t := range arr(a["types"]) {
			types = append(types, t.(string))
		}
		_, err = c.DescribeViolations(ctx, rivven.ViolationQuery{SinceMs: n("since_ms"), Entities: entity(a["entities"]), Types: types, Limit: int(n("limit"))})
	case "describeFleet":
		_, err = c.DescribeFleet(ctx)
	default:
		return errors.New("unknown method " + method)
	}
	return err
}

var errorReply = mustFrame(0, "\x83\xa4type\xa5Error\xa4code\xaeINTERNAL_ERROR\xa7message\xa8captured")

func TestRequestVectors(t *testing.T) {
	for _, v := range arr(readJSON(t, "conformance", "vectors", "requests.json")["vectors"]) {
		v := obj(v)
		t.Run(s(v, "name"), func(t *testing.T) {
			call := obj(v["call"])
			args := obj(call["args"])
			f := newFakeServer(t, func(id uint32, _ []byte) []byte { return withID(errorReply, id) })
			o := f.options()
			o.ClientName, o.Token = s(args, "client_name"), s(args, "token")
			c, err := rivven.Connect(ctx10s(t), o)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := invoke(ctx10s(t), c, s(call, "method"), args); !errors.Is(err, rivven.CodeInternalError) {
				t.Fatalf("the captured call fails with the fake's INTERNAL_ERROR, got %v", err)
			}
			frames := f.captured()
			if len(frames) != 1 {
				t.Fatalf("%d frames captured", len(frames))
			}
			sent := frames[0]
			want := unhex(t, s(v, "frame"))
			if got := binary.BigEndian.Uint32(sent); int(got) != len(sent)-4 {
				t.Fatalf("the length %d counts correlation id and body (%d)", got, len(sent)-4)
			}
			body, err := rivven.DecodeBody(sent[8:])
			if err != nil {
				t.Fatal(err)
			}
			if !same(v["object"], body) {
				t.Fatalf("body %v is not the vector's object %v", body, v["object"])
			}
			if v["exact"] == true && !bytes.Equal(sent[8:], want[8:]) {
				t.Fatalf("not the exact bytes the Node client writes:\n got %x\nwant %x", sent[8:], want[8:])
			}
		})
	}
}

// callFor makes a call of the type a reply vector answers; it returns the typed value.
func callFor(ctx context.Context, c *rivven.QuotaClient, typ string) (any, error) {
	switch typ {
	case "RecordProduce":
		return c.RecordProduce(ctx, "alice", "app-1", 1)
	case "RecordConsume":
		return c.RecordConsume(ctx, "bob", "", "etl", 1)
	case "RecordRequest":
		return c.RecordRequest(ctx, "carol", "")
	case "RecordUsage":
		return c.RecordUsage(ctx, "alice", "app-1", "orders", 1)
	case "Hello":
		return c.Hello(ctx)
	case "DescribeQuotas":
		return c.DescribeQuotas(ctx)
	case "AlterQuotas":
		return c.AlterQuotas(ctx, []rivven.QuotaAlteration{rivven.Set([]rivven.Component{rivven.User("a")}, "request_rate", 1)}, false)
	case "DescribeUsage":
		return c.DescribeUsage(ctx, rivven.UsageQuery{})
	case "ResetUsage":
		return c.ResetUsage(ctx, rivven.User(""))
	case "AcquireLease":
		return c.AcquireLease(ctx, "alice", "", 0)
	case "ReleaseLease":
		return nil, c.ReleaseLease(ctx, "l")
	case "DescribeViolations":
		return c.DescribeViolations(ctx, rivven.ViolationQuery{})
	case "DescribeFleet":
		return c.DescribeFleet(ctx)
	default:
		return nil, c.Ping(ctx)
	}
}

func TestReplyVectors(t *testing.T) {
	vectors := append(arr(readJSON(t, "conformance", "vectors", "replies.json")["vectors"]),
		arr(readJSON(t, "conformance", "vectors", "errors.json")["vectors"])...)
	for _, v := range vectors {
		v := obj(v)
		t.Run(s(v, "name"), func(t *testing.T) {
			frame := unhex(t, s(v, "frame"))
			connectionLevel := num(v["correlation_id"]) == 0
			answer := func(id uint32, _ []byte) []byte {
				if connectionLevel {
					return frame
				}
				return withID(frame, id)
			}
			body, err := rivven.DecodeBody(frame[8:])
			if err != nil || !same(v["object"], body) {
				t.Fatalf("the frame decodes to %v (%v), not its object %v", body, err, v["object"])
			}
			expect := obj(v["expect"])
			c, err := rivven.Connect(ctx10s(t), newFakeServer(t, answer).options())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			value, err := callFor(ctx10s(t), c, s(v, "for"))
			if want := obj(expect["error"]); want != nil {
				var e *rivven.Error
				if !errors.As(err, &e) {
					t.Fatalf("expected an error %v, got %v (%v)", want, value, err)
				}
				if string(e.Code) != s(want, "code") || e.Retriable() != want["retriable"] {
					t.Fatalf("got %s retriable %v, want %v", e.Code, e.Retriable(), want)
				}
				if !errors.Is(err, rivven.Code(s(want, "code"))) {
					t.Fatalf("errors.Is(err, %s) is false", s(want, "code"))
				}
				if idx, ok := want["index"]; ok && int64(e.Index) != num(idx) {
					t.Fatalf("index %d, want %v", e.Index, idx)
				}
			} else if err != nil {
				t.Fatalf("the call failed: %v", err)
			}
			if want := obj(expect["record"]); want != nil {
				checkRecord(t, want, value.(rivven.RecordResult))
			}
			if want := obj(expect["lease"]); want != nil {
				l := value.(rivven.LeaseResult)
				if l.Granted != want["granted"] || l.ThrottleTimeMs != num(want["throttle_time_ms"]) || l.Entity != s(want, "entity") {
					t.Fatalf("lease %+v, want %v", l, want)
				}
			}
			if b, ok := expect["broker"]; ok {
				c2, err := rivven.Connect(ctx10s(t), newFakeServer(t, answer).options())
				if err != nil {
					t.Fatal(err)
				}
				defer c2.Close()
				bq := rivven.NewBrokerQuotas(c2, &rivven.BrokerOptions{RecordDeadline: 5 * time.Second})
				var got int64
				switch s(v, "for") {
				case "RecordConsume":
					got = bq.Fetch(context.Background(), "bob", "", "etl", 1)
				case "RecordRequest":
					got = bq.Request(context.Background(), "carol", "")
				case "RecordUsage":
					got = bq.Usage(context.Background(), "alice", "app-1", "orders", 1)
				default:
					got = bq.Produce(context.Background(), "alice", "app-1", 1)
				}
				if got != num(b) {
					t.Fatalf("the broker's answer %d, want %v", got, b)
				}
				wantFailures := int64(0)
				if expect["error"] != nil {
					wantFailures = 1
				}
				if bq.Failures() != wantFailures {
					t.Fatalf("%d failures counted, want %d", bq.Failures(), wantFailures)
				}
			}
			if !connectionLevel && s(v, "type") != "Error" {
				// The generic call hands back the body as the object.
				c3, err := rivven.Connect(ctx10s(t), newFakeServer(t, answer).options())
				if err != nil {
					t.Fatal(err)
				}
				defer c3.Close()
				got, err := c3.Do(ctx10s(t), map[string]any{"type": "Ping"})
				if err != nil || !same(v["object"], got) {
					t.Fatalf("the generic call's body %v (%v), want %v", got, err, v["object"])
				}
			}
		})
	}
}

func checkRecord(t *testing.T, want map[string]any, got rivven.RecordResult) {
	t.Helper()
	if d := obj(want["denied"]); d != nil {
		if !got.IsDenied() || got.Entity != s(d, "entity") || got.DeniedReason != s(d, "reason") {
			t.Fatalf("record %+v, want denied %v", got, d)
		}
		return
	}
	if got.IsDenied() || got.ThrottleTimeMs != num(want["throttle_time_ms"]) {
		t.Fatalf("record %+v, want %v", got, want)
	}
	if _, ok := want["quota_type"]; ok {
		if got.QuotaType != s(want, "quota_type") || got.Entity != s(want, "entity") || got.Recorded != want["recorded"] ||
			string(got.Period) != s(want, "period") {
			t.Fatalf("record %+v, want %v", got, want)
		}
	}
}

func TestErrorTableIsTheServersTable(t *testing.T) {
	codes := arr(readJSON(t, "conformance", "vectors", "error-codes.json")["codes"])
	if len(codes) == 0 || len(codes) != len(rivven.Codes) {
		t.Fatalf("%d codes in the table, %d in the client", len(codes), len(rivven.Codes))
	}
	for i, c := range codes {
		m := obj(c)
		code := rivven.Code(s(m, "code"))
		if rivven.Codes[i] != code {
			t.Fatalf("code %d is %s, the table says %s", i, rivven.Codes[i], code)
		}
		if code.Retriable() != m["retriable"] {
			t.Fatalf("%s retriable %v, the table says %v", code, code.Retriable(), m["retriable"])
		}
	}
}
