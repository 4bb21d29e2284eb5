package rivven

// The wire (docs/protocol.md): length u32 BE | correlation_id u32 BE | one msgpack map; length counts the
// correlation id and the body. Record requests are written by hand, byte for byte as the conformance vectors
// marked exact: a fixmap with keys in the order type, user, client_id, consumer_group (RecordConsume only),
// bytes or count, admit (only when true); absent names are left out; strings as fixstr/str8/str16; the
// smallest uint. Every other request goes through msgpack (any valid encoding is read by the server).

import (
	"bytes"
	"encoding/binary"
	"math"

	"github.com/vmihailenco/msgpack/v5"
)

const (
	headerBytes = 8
	maxInt      = 1<<53 - 1
)

// Kind is what a record call reports.
type Kind uint8

const (
	// Produce is RecordProduce: bytes produced.
	Produce Kind = iota + 1
	// Consume is RecordConsume: bytes fetched, held against the consumer group's quota too.
	Consume
	// Request is RecordRequest: requests made (request_rate).
	Request
	// Resource is RecordUsage: units of a named resource (Usage.Resource), for <resource>_rate.
	Resource
)

var recordTypes = [...]string{Produce: "RecordProduce", Consume: "RecordConsume", Request: "RecordRequest", Resource: "RecordUsage"}

// okBody is the Ok reply's body, always these 29 bytes: matched without decoding.
var okBody = []byte("\xde\x00\x02\xa4type\xa2Ok\xb0throttle_time_ms\x00")

func isOk(b []byte) bool { return bytes.Equal(b, okBody) }

// Usage is one record call's content. Empty names are absent ("no user", "no consumer group").
type Usage struct {
	Kind          Kind
	User          string
	ClientID      string
	ConsumerGroup string // Consume only
	// Resource names the resource (Resource only): declared in the sidecar's quotas.resources.
	Resource string
	// Amount is bytes (Produce, Consume), the request count (Request: 0 means 1) or the resource's units
	// (Resource: 0 means 1).
	Amount int64
	// Admit asks for admit mode: the call is recorded only if it fits, else Throttled with recorded false.
	Admit bool
}

// appendRecord appends the frame of a record call to b.
func appendRecord(b []byte, id uint32, u *Usage) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(b[start+4:], id)
	n := 2 // type, and bytes|count|amount
	if u.User != "" {
		n++
	}
	if u.ClientID != "" {
		n++
	}
	group := u.Kind == Consume && u.ConsumerGroup != ""
	if group {
		n++
	}
	amount := u.Amount
	if (u.Kind == Request || u.Kind == Resource) && amount == 0 {
		amount = 1
	}
	if u.Kind == Resource {
		// RecordUsage as the Node client writes it: resource after type, amount left out when 1 (the default).
		n++
		if amount == 1 {
			n-- // no amount
		}
	}
	if u.Admit {
		n++
	}
	b = append(b, 0x80|byte(n))
	b = appendStr(b, "type")
	b = appendStr(b, recordTypes[u.Kind])
	if u.Kind == Resource {
		b = appendStr(b, "resource")
		b = appendStr(b, u.Resource)
	}
	if u.User != "" {
		b = appendStr(b, "user")
		b = appendStr(b, u.User)
	}
	if u.ClientID != "" {
		b = appendStr(b, "client_id")
		b = appendStr(b, u.ClientID)
	}
	if group {
		b = appendStr(b, "consumer_group")
		b = appendStr(b, u.ConsumerGroup)
	}
	switch u.Kind {
	case Resource:
		if amount != 1 {
			b = appendStr(b, "amount")
			b = appendUint(b, uint64(amount))
		}
	case Request:
		b = appendStr(b, "count")
		b = appendUint(b, uint64(amount))
	default:
		b = appendStr(b, "bytes")
		b = appendUint(b, uint64(u.Amount))
	}
	if u.Admit {
		b = appendStr(b, "admit")
		b = append(b, 0xc3)
	}
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

func appendStr(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = append(b, 0xda, byte(n>>8), byte(n))
	default:
		b = append(b, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, s...)
}

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v < 128:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return append(b, 0xcd, byte(v>>8), byte(v))
	case v <= math.MaxUint32:
		return append(b, 0xce, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
	}
}

// field is one entry of a request body; bodies keep their order (type first).
type field struct {
	k string
	v any
}

// appendFrame appends the frame of a generic request body to b.
func appendFrame(b []byte, id uint32, body []field) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	if err := enc.EncodeMapLen(len(body)); err != nil {
		return b, err
	}
	for _, f := range body {
		if err := enc.EncodeString(f.k); err != nil {
			return b, err
		}
		if err := enc.Encode(f.v); err != nil {
			return b, err
		}
	}
	b = binary.BigEndian.AppendUint32(b, uint32(buf.Len()+4))
	b = binary.BigEndian.AppendUint32(b, id)
	return append(b, buf.Bytes()...), nil
}

// decodeBody decodes a reply body: a map with string keys; integers come back as int64 or uint64, floats as
// float64.
func decodeBody(b []byte) (map[string]any, error) {
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	dec.UseLooseInterfaceDecoding(true)
	v, err := dec.DecodeInterfaceLoose()
	if err != nil {
		return nil, newError(CodeUnexpectedReply, "the reply is not msgpack: %v", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, newError(CodeUnexpectedReply, "the reply is not a map")
	}
	return m, nil
}

// DecodeBody decodes a msgpack body the way the client reads replies (for tests and tools).
func DecodeBody(b []byte) (map[string]any, error) { return decodeBody(b) }

// EncodeRecord returns the frame a record call writes with correlation id id (for tests and tools).
func EncodeRecord(id uint32, u Usage) []byte { return appendRecord(nil, id, &u) }
