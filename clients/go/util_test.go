package rivven_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	rivven "github.com/rivven/rivven-quota/clients/go"
)

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func readJSON(t *testing.T, parts ...string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{repoRoot()}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return jsonObj(t, b)
}

func arr(v any) []any                     { a, _ := v.([]any); return a }
func obj(v any) map[string]any            { m, _ := v.(map[string]any); return m }
func s(m map[string]any, k string) string { v, _ := m[k].(string); return v }

func num(v any) int64 {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		if err != nil {
			f, _ := n.Float64()
			return int64(f)
		}
		return i
	case float64:
		return int64(n)
	case int:
		return int64(n)
	case int64:
		return n
	}
	return 0
}

func unhex(t *testing.T, h string) []byte {
	t.Helper()
	b, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// same compares a JSON value (numbers as json.Number) with a decoded msgpack value: maps as objects, numbers
// by value (an integer may travel as a float64), nil as null.
func same(want, got any) bool {
	switch w := want.(type) {
	case nil:
		return got == nil
	case bool, string:
		return w == got
	case json.Number:
		ws := string(w)
		if strings.ContainsAny(ws, ".eE") {
			f, _ := w.Float64()
			g, ok := got.(float64)
			return ok && g == f
		}
		wi, err := strconv.ParseInt(ws, 10, 64)
		if err != nil {
			return false
		}
		switch g := got.(type) {
		case int64:
			return g == wi
		case uint64:
			return g <= math.MaxInt64 && int64(g) == wi
		case float64:
			return g == math.Trunc(g) && int64(g) == wi
		}
		return false
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !same(w[i], g[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k, v := range w {
			gv, present := g[k]
			if !present || !same(v, gv) {
				return false
			}
		}
		return true
	}
	return false
}

func entity(v any) []rivven.Component {
	var out []rivven.Component
	for _, c := range arr(v) {
		pair := arr(c)
		name, _ := pair[1].(string)
		out = append(out, rivven.Component{Type: pair[0].(string), Name: name})
	}
	return out
}

func alterations(v any) []rivven.QuotaAlteration {
	var out []rivven.QuotaAlteration
	for _, a := range arr(v) {
		m := obj(a)
		var value any
		switch q := m["quota_value"].(type) {
		case json.Number:
			value = num(q)
		default:
			value = q
		}
		shadow, _ := m["shadow"].(bool)
		out = append(out, rivven.QuotaAlteration{Entity: entity(m["entity"]), QuotaKey: s(m, "quota_key"), Value: value, Shadow: shadow})
	}
	return out
}
