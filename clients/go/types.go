package rivven

import (
	"fmt"
	"math"

	"github.com/vmihailenco/msgpack/v5"
)

// Denied is BrokerQuotas' answer for a blocked principal: reject the request, do not delay it.
const Denied int64 = -1

// Component is one part of an entity: Type "user", "client-id", "consumer-group", "default" or "tier";
// Name "" is the <default> entity of that type (sent as null).
type Component struct {
	Type string
	Name string
}

// User, ClientID, ConsumerGroup, Tier and Default make components.
func User(name string) Component          { return Component{"user", name} }
func ClientID(name string) Component      { return Component{"client-id", name} }
func ConsumerGroup(name string) Component { return Component{"consumer-group", name} }
func Tier(name string) Component          { return Component{"tier", name} }
func Default() Component                  { return Component{"default", ""} }

// EncodeMsgpack writes [type, name|null].
func (c Component) EncodeMsgpack(e *msgpack.Encoder) error {
	if err := e.EncodeArrayLen(2); err != nil {
		return err
	}
	if err := e.EncodeString(c.Type); err != nil {
		return err
	}
	if c.Name == "" {
		return e.EncodeNil()
	}
	return e.EncodeString(c.Name)
}

// Unlimited is the quota value "unlimited".
const Unlimited = "unlimited"

// QuotaAlteration is one change of AlterQuotas: Value is an int64 (a rate, burst or count), Unlimited, a
// string (a tier name, a block reason) or nil (remove the value). Shadow sets a measured, unenforced value.
type QuotaAlteration struct {
	Entity   []Component
	QuotaKey string
	Value    any
	Shadow   bool
}

// Set, Remove, Block and Unblock make alterations.
func Set(entity []Component, key string, value int64) QuotaAlteration {
	return QuotaAlteration{Entity: entity, QuotaKey: key, Value: value}
}
func Remove(entity []Component, key string) QuotaAlteration {
	return QuotaAlteration{Entity: entity, QuotaKey: key}
}
func Block(entity []Component, reason string) QuotaAlteration {
	return QuotaAlteration{Entity: entity, QuotaKey: "blocked", Value: reason}
}
func Unblock(entity []Component) QuotaAlteration {
	return QuotaAlteration{Entity: entity, QuotaKey: "blocked"}
}

// EncodeMsgpack writes {entity, quota_key, quota_value, shadow?}.
func (a QuotaAlteration) EncodeMsgpack(e *msgpack.Encoder) error {
	n := 3
	if a.Shadow {
		n++
	}
	if err := e.EncodeMapLen(n); err != nil {
		return err
	}
	for _, step := range []func() error{
		func() error { return e.EncodeString("entity") },
		func() error { return e.Encode(a.Entity) },
		func() error { return e.EncodeString("quota_key") },
		func() error { return e.EncodeString(a.QuotaKey) },
		func() error { return e.EncodeString("quota_value") },
		func() error { return e.Encode(a.Value) },
	} {
		if err := step(); err != nil {
			return err
		}
	}
	if a.Shadow {
		if err := e.EncodeString("shadow"); err != nil {
			return err
		}
		return e.EncodeBool(true)
	}
	return nil
}

// RecordResult is a record call's answer: Ok (ThrottleTimeMs 0), Throttled (delay the client by
// ThrottleTimeMs; in admit mode a refusal, Recorded false), or Denied (the principal is blocked).
type RecordResult struct {
	ThrottleTimeMs int64
	// QuotaType is the quota that needs the longest wait (Throttled), else "".
	QuotaType string
	// Entity is that bucket (Throttled) or the blocked entity (Denied), else "".
	Entity string
	// Recorded is whether the usage was recorded (false for a refused admit call, and for Denied).
	Recorded bool
	// DeniedReason is the operator's reason when the principal is blocked, else "".
	DeniedReason string
	// Period is the period of the rate that needs the longest wait (Throttled: PeriodSecond when the reply
	// names none), else "".
	Period Period
	denied bool
}

// Period is the period of a rate: a key may carry several (100/s and 10000/d), one bucket per period, and a
// Throttled reply names the one that binds. The values are the wire's units.
type Period string

const (
	// PeriodSecond is a per-second rate: the wire leaves period out.
	PeriodSecond Period = "s"
	PeriodMinute Period = "min"
	PeriodHour   Period = "h"
	PeriodDay    Period = "d"
)

func parsePeriod(m map[string]any) (Period, error) {
	v, ok := m["period"]
	if !ok {
		return PeriodSecond, nil
	}
	s, _ := v.(string)
	switch p := Period(s); p {
	case PeriodSecond, PeriodMinute, PeriodHour, PeriodDay:
		return p, nil
	}
	return "", unexpected("unknown period %q", trunc(fmt.Sprint(v)))
}

// IsDenied reports whether the principal is blocked: the broker rejects the request.
func (r RecordResult) IsDenied() bool { return r.denied }

var okResult = RecordResult{Recorded: true}

// HelloOk is Hello's answer.
type HelloOk struct {
	ProtocolVersion int64
	ServerVersion   string
}

// QuotaEntry is one configured entity and its values (DescribeQuotas): each value an int64, "unlimited", a
// tier name or a block reason. Shadow lists the keys whose values are measured, not enforced.
type QuotaEntry struct {
	Entity []Component
	Quotas map[string]any
	Shadow []string
}

// BucketUsage is one live bucket (DescribeUsage); names are "" where the bucket has none.
type BucketUsage struct {
	Entity         string
	User           string
	ClientID       string
	ConsumerGroup  string
	QuotaType      string
	Rate           float64
	Limit          float64
	Utilization    float64
	ThrottledTotal int64
	LastSeenMs     int64
}

// LeaseResult is AcquireLease's answer: granted with an id and ttl, or refused with the wait until a lease of
// the group ends.
type LeaseResult struct {
	Granted        bool
	LeaseID        string
	TTLMs          int64
	ThrottleTimeMs int64
	Entity         string
}

// Violations is DescribeViolations' answer: the events, oldest first (each as docs/protocol.md's
// ViolationEvent), and a summary of every match.
type Violations struct {
	Events      []map[string]any
	Total       int64
	ByType      map[string]any
	TopEntities []map[string]any
}

func unexpected(format string, args ...any) *Error {
	return newError(CodeUnexpectedReply, format, args...)
}

func trunc(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

func str(m map[string]any, k string) (string, error) {
	s, ok := m[k].(string)
	if !ok {
		return "", unexpected("the reply's %s is not a string", k)
	}
	return s, nil
}

func optStr(m map[string]any, k string) (string, error) {
	if m[k] == nil {
		return "", nil
	}
	return str(m, k)
}

// integer reads a msgpack int, or a float64 holding one (msgpackr writes integers past 2^32 that way).
func integer(m map[string]any, k string) (int64, error) {
	switch v := m[k].(type) {
	case int64:
		return v, nil
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v), nil
		}
	case float64:
		if v == math.Trunc(v) && math.Abs(v) <= maxInt {
			return int64(v), nil
		}
	}
	return 0, unexpected("the reply's %s is not an integer", k)
}

func number(m map[string]any, k string) (float64, error) {
	switch v := m[k].(type) {
	case int64:
		return float64(v), nil
	case uint64:
		return float64(v), nil
	case float64:
		return v, nil
	}
	return 0, unexpected("the reply's %s is not a number", k)
}

func list(m map[string]any, k string) ([]any, error) {
	l, ok := m[k].([]any)
	if !ok {
		return nil, unexpected("the reply's %s is not a list", k)
	}
	return l, nil
}

func asMap(v any, what string) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, unexpected("%s is not a map", what)
	}
	return m, nil
}

func expectType(m map[string]any, t string) error {
	if got, _ := m["type"].(string); got != t {
		return unexpected("expected a %s reply, got %q", t, trunc(got))
	}
	return nil
}

var quotaKeys = map[string]bool{"produce_bytes_rate": true, "consume_bytes_rate": true, "request_rate": true}

// parseRecord reads a record reply to u's call: a Throttled names one of the three built-in keys, or
// <resource>_rate for a Resource call.
func parseRecord(m map[string]any, u *Usage) (RecordResult, error) {
	switch t, _ := m["type"].(string); t {
	case "Ok":
		return okResult, nil
	case "Denied":
		entity, err := str(m, "entity")
		if err != nil {
			return RecordResult{}, err
		}
		reason, err := str(m, "reason")
		if err != nil {
			return RecordResult{}, err
		}
		return RecordResult{Entity: entity, DeniedReason: reason, denied: true}, nil
	case "Throttled":
		qt, err := str(m, "quota_type")
		if err != nil {
			return RecordResult{}, err
		}
		if u.Kind == Resource && qt != u.Resource+"_rate" || u.Kind != Resource && !quotaKeys[qt] {
			return RecordResult{}, unexpected("unknown quota_type %q", trunc(qt))
		}
		period, err := parsePeriod(m)
		if err != nil {
			return RecordResult{}, err
		}
		ms, err := integer(m, "throttle_time_ms")
		if err != nil {
			return RecordResult{}, err
		}
		entity, err := str(m, "entity")
		if err != nil {
			return RecordResult{}, err
		}
		recorded, _ := m["recorded"].(bool)
		return RecordResult{ThrottleTimeMs: ms, QuotaType: qt, Entity: entity, Recorded: recorded, Period: period}, nil
	default:
		return RecordResult{}, unexpected("expected Ok, Throttled or Denied, got %q", trunc(t))
	}
}

func parseEntity(v any) ([]Component, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, unexpected("an entity is not a list")
	}
	out := make([]Component, 0, len(l))
	for _, c := range l {
		pair, ok := c.([]any)
		if !ok || len(pair) != 2 {
			return nil, unexpected("an entity component is not [type, name]")
		}
		t, ok := pair[0].(string)
		if !ok {
			return nil, unexpected("an entity type is not a string")
		}
		name, ok := pair[1].(string)
		if !ok && pair[1] != nil {
			return nil, unexpected("an entity name is not a string")
		}
		out = append(out, Component{t, name})
	}
	return out, nil
}

// errorOf turns an Error reply into an *Error (an unknown code is INTERNAL_ERROR).
func errorOf(m map[string]any) *Error {
	code, _ := m["code"].(string)
	msg, ok := m["message"].(string)
	if !ok {
		msg = code
	}
	if len(msg) > 4096 {
		msg = msg[:4096]
	}
	e := &Error{Code: codeFromWire(code), Message: msg, Index: -1}
	if i, err := integer(m, "index"); err == nil && i >= 0 && i <= math.MaxInt32 {
		e.Index = int(i)
	}
	return e
}

func parseHello(m map[string]any) (HelloOk, error) {
	if err := expectType(m, "HelloOk"); err != nil {
		return HelloOk{}, err
	}
	v, err := integer(m, "protocol_version")
	if err != nil {
		return HelloOk{}, err
	}
	s, err := str(m, "server_version")
	if err != nil {
		return HelloOk{}, err
	}
	return HelloOk{ProtocolVersion: v, ServerVersion: s}, nil
}

func parseQuotas(m map[string]any) ([]QuotaEntry, error) {
	if err := expectType(m, "QuotasDescribed"); err != nil {
		return nil, err
	}
	entries, err := list(m, "entries")
	if err != nil {
		return nil, err
	}
	out := make([]QuotaEntry, 0, len(entries))
	for _, item := range entries {
		e, err := asMap(item, "an entry")
		if err != nil {
			return nil, err
		}
		entity, err := parseEntity(e["entity"])
		if err != nil {
			return nil, err
		}
		quotas, err := asMap(e["quotas"], "quotas")
		if err != nil {
			return nil, err
		}
		for k, v := range quotas {
			if u, ok := v.(uint64); ok && u <= maxInt {
				quotas[k] = int64(u)
			} else if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) <= maxInt {
				quotas[k] = int64(f)
			}
		}
		var shadow []string
		if e["shadow"] != nil {
			l, err := list(e, "shadow")
			if err != nil {
				return nil, err
			}
			for _, k := range l {
				s, ok := k.(string)
				if !ok {
					return nil, unexpected("a shadow key is not a string")
				}
				shadow = append(shadow, s)
			}
		}
		out = append(out, QuotaEntry{Entity: entity, Quotas: quotas, Shadow: shadow})
	}
	return out, nil
}

func parseUsage(m map[string]any) ([]BucketUsage, error) {
	if err := expectType(m, "UsageDescribed"); err != nil {
		return nil, err
	}
	buckets, err := list(m, "buckets")
	if err != nil {
		return nil, err
	}
	out := make([]BucketUsage, 0, len(buckets))
	for _, item := range buckets {
		b, err := asMap(item, "a bucket")
		if err != nil {
			return nil, err
		}
		var u BucketUsage
		for _, f := range []struct {
			p   *string
			k   string
			opt bool
		}{{&u.Entity, "entity", false}, {&u.User, "user", true}, {&u.ClientID, "client_id", true},
			{&u.ConsumerGroup, "consumer_group", true}, {&u.QuotaType, "quota_type", false}} {
			if f.opt {
				*f.p, err = optStr(b, f.k)
			} else {
				*f.p, err = str(b, f.k)
			}
			if err != nil {
				return nil, err
			}
		}
		for _, f := range []struct {
			p *float64
			k string
		}{{&u.Rate, "rate"}, {&u.Limit, "limit"}, {&u.Utilization, "utilization"}} {
			if *f.p, err = number(b, f.k); err != nil {
				return nil, err
			}
		}
		if u.ThrottledTotal, err = integer(b, "throttled_total"); err != nil {
			return nil, err
		}
		if u.LastSeenMs, err = integer(b, "last_seen_ms"); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

func parseLease(m map[string]any) (LeaseResult, error) {
	if t, _ := m["type"].(string); t == "Throttled" {
		ms, err := integer(m, "throttle_time_ms")
		if err != nil {
			return LeaseResult{}, err
		}
		entity, err := str(m, "entity")
		if err != nil {
			return LeaseResult{}, err
		}
		return LeaseResult{ThrottleTimeMs: ms, Entity: entity}, nil
	}
	if err := expectType(m, "LeaseGranted"); err != nil {
		return LeaseResult{}, err
	}
	id, err := str(m, "lease_id")
	if err != nil {
		return LeaseResult{}, err
	}
	ttl, err := integer(m, "ttl_ms")
	if err != nil {
		return LeaseResult{}, err
	}
	return LeaseResult{Granted: true, LeaseID: id, TTLMs: ttl}, nil
}

func maps(l []any, what string) ([]map[string]any, error) {
	out := make([]map[string]any, 0, len(l))
	for _, v := range l {
		m, err := asMap(v, what)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func parseViolations(m map[string]any) (Violations, error) {
	if err := expectType(m, "ViolationsDescribed"); err != nil {
		return Violations{}, err
	}
	l, err := list(m, "events")
	if err != nil {
		return Violations{}, err
	}
	events, err := maps(l, "an event")
	if err != nil {
		return Violations{}, err
	}
	summary, err := asMap(m["summary"], "summary")
	if err != nil {
		return Violations{}, err
	}
	total, err := integer(summary, "total")
	if err != nil {
		return Violations{}, err
	}
	byType, err := asMap(summary["by_type"], "by_type")
	if err != nil {
		return Violations{}, err
	}
	l, err = list(summary, "top_entities")
	if err != nil {
		return Violations{}, err
	}
	top, err := maps(l, "a top entity")
	if err != nil {
		return Violations{}, err
	}
	return Violations{Events: events, Total: total, ByType: byType, TopEntities: top}, nil
}
