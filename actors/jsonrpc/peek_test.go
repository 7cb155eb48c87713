package jsonrpc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

func TestPeek(t *testing.T) {
	cases := []struct {
		in                         string
		ok                         bool
		id, method, params, result string
		hasError                   bool
	}{
		{in: `{"jsonrpc":"2.0","id":7,"result":{"a":[1,2,{"b":"}"}]}}`, ok: true, id: `7`, result: `{"a":[1,2,{"b":"}"}]}`},
		{in: ` {"id":"abc","error":{"code":-1,"message":"x"}} `, ok: true, id: `"abc"`, hasError: true},
		{in: `{"method":"heartbeat","params":{"type":"test_request"}}`, ok: true, method: `"heartbeat"`, params: `{"type":"test_request"}`},
		{in: `{"method":"a\"b","id":null}`, ok: true, method: `"a\"b"`, id: `null`},
		{in: `{}`, ok: true},
		{in: `[1,2]`, ok: false},
		{in: `hello`, ok: false},
		{in: `{"id":1`, ok: false},
		{in: `{"id":1}x`, ok: false},
		{in: `{"id":}`, ok: false},
		{in: `{"a":"unterminated}`, ok: false},
		{in: ``, ok: false},
	}
	for _, c := range cases {
		env, ok := Peek([]byte(c.in))
		if ok != c.ok {
			t.Errorf("Peek(%q) ok = %v, want %v", c.in, ok, c.ok)
			continue
		}
		if !ok {
			continue
		}
		if string(env.ID) != c.id || string(env.Method) != c.method || string(env.Params) != c.params || string(env.Result) != c.result || (env.Error != nil) != c.hasError {
			t.Errorf("Peek(%q) = id %q method %q params %q result %q error %q", c.in, env.ID, env.Method, env.Params, env.Result, env.Error)
		}
	}
}

func TestFieldStringUint(t *testing.T) {
	params := []byte(`{"channel":"book.BTC-PERPETUAL.raw","data":{"x":1}}`)
	ch, ok := String(Field(params, "channel"))
	if !ok || ch != "book.BTC-PERPETUAL.raw" {
		t.Fatalf("channel = %q, %v", ch, ok)
	}
	if Field(params, "missing") != nil || Field([]byte(`[1]`), "x") != nil {
		t.Fatal("Field found a member that is not there")
	}
	if s, ok := String([]byte(`"a\u0041"`)); !ok || s != "aA" {
		t.Fatalf("String with escape = %q, %v", s, ok)
	}
	if _, ok := String([]byte(`12`)); ok {
		t.Fatal("String accepted a number")
	}
	if n, ok := Uint([]byte(`42`)); !ok || n != 42 {
		t.Fatalf("Uint = %d, %v", n, ok)
	}
	for _, bad := range []string{`-1`, `"1"`, `1.5`, ``} {
		if _, ok := Uint([]byte(bad)); ok {
			t.Errorf("Uint(%q) accepted", bad)
		}
	}
}

// FuzzPeek checks that Peek never panics and never accepts what
// encoding/json rejects as an object.
func FuzzPeek(f *testing.F) {
	for _, s := range []string{`{"id":1,"result":true}`, `{"method":"subscription","params":{"channel":"c","data":[1]}}`, `{"id":"x","error":{"code":1}}`, `[]`, `{"a":{"b":{"c":[[[]]]}}}`, "{\"a\":\"\\\"\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		env, ok := Peek(data)
		if !ok {
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil {
			// Peek does not validate every byte inside strings or numbers
			// (e.g. "1.2.3"); what it must never do is panic.
			return
		}
		if env.ID != nil && string(env.ID) != string(m["id"]) {
			t.Fatalf("id %q != %q", env.ID, m["id"])
		}
	})
}

func TestBuildAndKey(t *testing.T) {
	b, err := Build(42, "public/get_time", nil)
	if err != nil || string(b) != `{"jsonrpc":"2.0","id":42,"method":"public/get_time","params":{}}` {
		t.Fatalf("Build = %s, %v", b, err)
	}
	b, err = Build(1, `a"b`, map[string]any{"channels": []string{"x"}})
	if err != nil || !json.Valid(b) {
		t.Fatalf("Build with escaping = %s, %v", b, err)
	}
	if _, err := Build(1, "", nil); err == nil {
		t.Fatal("Build accepted an empty method")
	}
	if _, err := Build(1, "m", json.RawMessage(`{bad`)); err == nil {
		t.Fatal("Build accepted invalid raw params")
	}
	if _, err := Build(1, "m", func() {}); err == nil {
		t.Fatal("Build accepted unmarshalable params")
	}
	for _, c := range []struct {
		raw string
		key string
		ok  bool
	}{
		{`7`, "n7", true}, {`-3`, "n-3", true}, {`"7"`, "s7", true}, {`"a\u0041"`, "saA", true},
		{`18446744073709551615`, "n18446744073709551615", true},
		{`1.0`, "", false}, {`1e3`, "", false}, {`null`, "", false}, {`{}`, "", false}, {`[1]`, "", false},
		{`true`, "", false}, {`99999999999999999999999`, "", false}, {``, "", false}, {`"unterminated`, "", false},
	} {
		k, ok := Key([]byte(c.raw))
		if k != c.key || ok != c.ok {
			t.Errorf("Key(%s) = %q, %v; want %q, %v", c.raw, k, ok, c.key, c.ok)
		}
	}
}

func FuzzKey(f *testing.F) {
	for _, s := range []string{`1`, `"x"`, `-0`, `1e9`, `"\ud800"`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		k, ok := Key(raw)
		if ok && k == "" {
			t.Fatal("an empty key")
		}
	})
}

// Fields reads what Field reads, member by member, in one walk: the last of
// a repeated key, nothing of a broken or non-object input.
func TestFieldsMatchesField(t *testing.T) {
	keys := []string{"a", "b", "c", "missing"}
	for _, in := range []string{
		`{"a":1,"b":"x","c":[1,{"a":2}]}`,
		`{"a":1,"a":2,"b":null}`,
		`{}`, `[]`, `"a"`, ``, `{"a":1,`, `{"a":1}trailing`, `{"a" 1}`,
		` { "c" : { "d" : [ ] } , "b" : true } `,
	} {
		out := make([][]byte, len(keys))
		Fields([]byte(in), out, keys...)
		for i, k := range keys {
			if want := Field([]byte(in), k); string(out[i]) != string(want) || (out[i] == nil) != (want == nil) {
				t.Errorf("%q: Fields[%s] = %q, Field = %q", in, k, out[i], want)
			}
		}
	}
}

func TestFieldsValues(t *testing.T) {
	out := make([][]byte, 3)
	Fields([]byte(`{"a":1,"a":2,"b":null,"x":{"c":3}}`), out, "a", "b", "c")
	if string(out[0]) != "2" || string(out[1]) != "null" || out[2] != nil {
		t.Fatalf("%q", out)
	}
	Fields([]byte(`{"a":1,"b":`), out, "a", "b", "c")
	if out[0] != nil || out[1] != nil || out[2] != nil {
		t.Fatalf("broken input: %q", out)
	}
}

// A Deribit book change with 100 levels: the three members the sequence
// guard reads, in one walk (Fields) against one walk each (Field). Report
// the ratio of the two in the same run.
func BenchmarkFields(b *testing.B) {
	var lv bytes.Buffer
	for i := range 100 {
		if i > 0 {
			lv.WriteByte(',')
		}
		fmt.Fprintf(&lv, `["change",%d.5,%d]`, 60000+i, i+1)
	}
	data := []byte(`{"type":"change","timestamp":1733000000000,"prev_change_id":41,"instrument_name":"BTC-PERPETUAL","change_id":42,"bids":[` + lv.String() + `],"asks":[` + lv.String() + `]}`)
	keys := []string{"change_id", "type", "prev_change_id"}
	b.Run("Fields", func(b *testing.B) {
		out := make([][]byte, 3)
		for b.Loop() {
			Fields(data, out, keys...)
		}
	})
	b.Run("Field x3", func(b *testing.B) {
		for b.Loop() {
			for _, k := range keys {
				_ = Field(data, k)
			}
		}
	})
}

// A key spelled with escapes is the key it spells, for Peek and Fields as
// for any decoder; Members counts what a decoder could take for a key,
// escaped or in another case (review of failover, finding 6: an order
// spelled "\u006dethod" after a public "method" was retried as public).
func TestEscapedKeysAndMembers(t *testing.T) {
	msg := []byte(`{"jsonrpc":"2.0","id":9,"method":"public/get_time","\u006dethod":"private/buy"}`)
	env, ok := Peek(msg)
	if m, _ := String(env.Method); !ok || m != "private/buy" {
		t.Fatalf("Peek: method %q (ok %v), want the last, escaped one: private/buy", m, ok)
	}
	var dec struct {
		Method string `json:"method"`
	}
	if err := json.Unmarshal(msg, &dec); err != nil || dec.Method != "private/buy" {
		t.Fatalf("encoding/json reads %q (%v)", dec.Method, err)
	}
	if f := Field(msg, "method"); string(f) != `"private/buy"` {
		t.Fatalf("Field: %s", f)
	}
	for _, tc := range []struct {
		msg  string
		want int
	}{
		{`{"method":"a"}`, 1},
		{`{"method":"a","\u006dethod":"b"}`, 2},
		{`{"method":"a","Method":"b"}`, 2},
		{`{"METHOD":"a"}`, 1},
		{`{"id":1,"params":{"method":"x"}}`, 0},
		{`{"method":"a",}`, 0},
		{`[{"method":"a"}]`, 0},
		{`{}`, 0},
		{``, 0},
		{`{"\u006d":"a","methods":"b"}`, 0},
		{`{"bad\x":"a"}`, 0},
	} {
		if got := Members([]byte(tc.msg), "method"); got != tc.want {
			t.Errorf("Members(%s) = %d, want %d", tc.msg, got, tc.want)
		}
	}
}
