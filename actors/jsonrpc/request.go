package jsonrpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Build returns a JSON-RPC 2.0 request with a numeric id. params may be
// nil (sent as {}), a json.RawMessage (sent as is) or any value
// encoding/json can marshal.
func Build(id uint64, method string, params any) ([]byte, error) {
	if method == "" {
		return nil, errors.New("jsonrpc: empty method")
	}
	var p []byte
	switch v := params.(type) {
	case nil:
	case json.RawMessage:
		if !json.Valid(v) || !utf8.Valid(v) {
			return nil, errors.New("jsonrpc: params: invalid JSON")
		}
		p = v
	default:
		var err error
		if p, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("jsonrpc: params: %w", err)
		}
	}
	b := make([]byte, 0, 72+len(method)+len(p)) // the envelope, a 20-digit id, quotes and "{}"
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, `,"method":`...)
	b, err := appendQuoted(b, method)
	if err != nil {
		return nil, fmt.Errorf("jsonrpc: method: %w", err)
	}
	b = append(b, `,"params":`...)
	if p == nil {
		b = append(b, "{}"...)
	} else {
		b = append(b, p...)
	}
	b = append(b, '}')
	return b, nil
}

// Key returns a key under which a raw JSON id matches exactly the ids that
// mean the same to JSON-RPC: an integer (by its decimal value, so 7 and 7
// match) or a string (by its decoded text; a string "7" never matches the
// number 7). Other ids (null, fractions, objects, arrays, booleans,
// integers beyond 64 bits) have no key and match nothing.
func Key(raw []byte) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	switch c := raw[0]; {
	case c == '"':
		s, ok := String(raw)
		if !ok {
			return "", false
		}
		return "s" + s, true
	case c == '-' || (c >= '0' && c <= '9'):
		if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			return "n" + strconv.FormatInt(n, 10), true
		}
		if n, err := strconv.ParseUint(string(raw), 10, 64); err == nil {
			return "n" + strconv.FormatUint(n, 10), true
		}
	}
	return "", false
}

// appendQuoted appends method as a JSON string, without encoding/json for
// the usual plain ASCII names ("public/get_order_book").
func appendQuoted(b []byte, method string) ([]byte, error) {
	for i := 0; i < len(method); i++ {
		if c := method[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			m, err := json.Marshal(method)
			if err != nil {
				return nil, err
			}
			return append(b, m...), nil
		}
	}
	b = append(b, '"')
	b = append(b, method...)
	return append(b, '"'), nil
}
