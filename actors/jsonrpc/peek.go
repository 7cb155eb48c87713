// Package jsonrpc reads the envelope of a JSON-RPC 2.0 message without
// decoding it: the client looks at every inbound frame, and a full
// encoding/json decode of each would cost more than the rest of the receive
// path. Peek walks the top-level object once and keeps the raw bytes of the
// members routing needs.
package jsonrpc

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// Envelope holds the raw top-level members of a JSON object that routing
// needs. Slices alias the input. A member that is absent is nil.
type Envelope struct {
	ID     []byte // raw JSON: a number, a string (with its quotes) or null
	Method []byte // raw JSON string, with quotes
	Params []byte
	Result []byte
	Error  []byte
}

// Peek reports whether data is a single JSON object and, if so, returns its
// envelope. It checks the object's syntax as far as it walks; it does not
// validate string contents beyond escapes. Duplicate keys: the last wins, as
// in encoding/json; a key spelled with escapes ("\u006dethod") is the key
// it spells, as for any JSON decoder.
func Peek(data []byte) (Envelope, bool) {
	var env Envelope
	s := scanner{b: data}
	s.space()
	if !s.consume('{') {
		return env, false
	}
	s.space()
	if s.consume('}') {
		s.space()
		return env, s.i == len(s.b)
	}
	for {
		s.space()
		keyStart := s.i
		if !s.str() {
			return env, false
		}
		key := keyOf(s.b[keyStart:s.i])
		s.space()
		if !s.consume(':') {
			return env, false
		}
		s.space()
		valStart := s.i
		if !s.value(0) {
			return env, false
		}
		val := s.b[valStart:s.i]
		switch string(key) {
		case "id":
			env.ID = val
		case "method":
			env.Method = val
		case "params":
			env.Params = val
		case "result":
			env.Result = val
		case "error":
			env.Error = val
		}
		s.space()
		if s.consume(',') {
			continue
		}
		if !s.consume('}') {
			return env, false
		}
		s.space()
		return env, s.i == len(s.b)
	}
}

// Field returns the raw value of a top-level member key of the JSON object
// obj, or nil when obj is not an object or has no such member.
func Field(obj []byte, key string) []byte {
	var out [1][]byte
	Fields(obj, out[:], key)
	return out[0]
}

// Fields reads several top-level members of the JSON object obj in one
// walk: out[i] is the raw value of keys[i] (the last one when a key is
// repeated, as in Field), or nil. When obj is not an object, or its syntax
// breaks before the end, every out[i] is nil. len(out) must be len(keys).
func Fields(obj []byte, out [][]byte, keys ...string) {
	clear(out)
	if !fields(obj, out, keys) {
		clear(out)
	}
}

func fields(obj []byte, out [][]byte, keys []string) bool {
	return members(obj, func(k, v []byte) {
		for i, key := range keys {
			if string(k) == key {
				out[i] = v
			}
		}
	})
}

// members calls visit with the key (unescaped, see keyOf) and raw value of
// each top-level member of the JSON object obj, in order, and reports
// whether obj is an object whose syntax holds to its end.
func members(obj []byte, visit func(key, val []byte)) bool {
	s := scanner{b: obj}
	s.space()
	if !s.consume('{') {
		return false
	}
	s.space()
	if s.consume('}') {
		return true
	}
	for {
		s.space()
		keyStart := s.i
		if !s.str() {
			return false
		}
		k := keyOf(s.b[keyStart:s.i])
		s.space()
		if !s.consume(':') {
			return false
		}
		s.space()
		valStart := s.i
		if !s.value(0) {
			return false
		}
		visit(k, s.b[valStart:s.i])
		s.space()
		if s.consume(',') {
			continue
		}
		return s.consume('}')
	}
}

// keyOf is the key a raw JSON string (quotes included, its syntax
// checked) spells: its bytes as they are, unless it holds an escape.
func keyOf(raw []byte) []byte {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner
	}
	k, ok := String(raw)
	if !ok {
		return inner // not valid: matches no key of ours
	}
	return []byte(k)
}

// Members counts the top-level members of the JSON object obj that a
// decoder could take for key: equal to it once unescaped, ignoring case
// (encoding/json matches a struct's fields so). 0 when obj is not an
// object or its syntax breaks. More than one means decoders may disagree
// on its value: Peek and JavaScript take the last exact match, Go's
// encoding/json the last match of any case.
func Members(obj []byte, key string) int {
	n, k := 0, []byte(key)
	if !members(obj, func(name, _ []byte) {
		if bytes.EqualFold(name, k) {
			n++
		}
	}) {
		return 0
	}
	return n
}

// String returns the Go string of a raw JSON string value (quotes
// included), and false when raw is not a JSON string.
func String(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), true
	}
	var out string
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", false
	}
	return out, true
}

// Uint parses a raw JSON id that is a non-negative integer.
func Uint(raw []byte) (uint64, bool) {
	if len(raw) == 0 || raw[0] < '0' || raw[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(raw), 10, 64)
	return n, err == nil
}

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 512

type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) consume(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str skips a JSON string starting at s.i.
func (s *scanner) str() bool {
	if !s.consume('"') {
		return false
	}
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return true
		case c == '\\':
			s.i += 2
		case c < 0x20:
			return false
		default:
			s.i++
		}
	}
	return false
}

func (s *scanner) value(depth int) bool {
	if depth > maxDepth || s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.str()
	case c == '{':
		return s.compound('}', depth, true)
	case c == '[':
		return s.compound(']', depth, false)
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	}
	return false
}

func (s *scanner) compound(end byte, depth int, object bool) bool {
	s.i++
	s.space()
	if s.consume(end) {
		return true
	}
	for {
		s.space()
		if object {
			if !s.str() {
				return false
			}
			s.space()
			if !s.consume(':') {
				return false
			}
			s.space()
		}
		if !s.value(depth + 1) {
			return false
		}
		s.space()
		if s.consume(',') {
			continue
		}
		return s.consume(end)
	}
}

func (s *scanner) literal(lit string) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

func (s *scanner) number() bool {
	start := s.i
	s.consume('-')
	digits := 0
	for s.i < len(s.b) {
		c := s.b[s.i]
		if (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-' {
			s.i++
			digits++
			continue
		}
		break
	}
	return digits > 0 && s.i > start
}
