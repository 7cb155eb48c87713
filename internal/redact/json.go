package redact

import (
	"bytes"
	"sort"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting Frame verifies; a deeper frame is
// replaced by a placeholder.
const MaxDepth = 1000

// MaxFrame is the longest frame Frame verifies (32 MiB); a longer one is
// replaced by a placeholder.
const MaxFrame = 32 << 20

// Why a frame was replaced by a placeholder.
const (
	ReasonNotJSON     = "not json"       // looks like JSON ({, [ or ") but does not parse
	ReasonTooDeep     = "too deep"       // nested deeper than MaxDepth
	ReasonTooLarge    = "too large"      // longer than MaxFrame
	ReasonSecretStays = "secret remains" // a known secret survived masking (it spans tokens)
)

// Placeholder is what replaces a frame the redactor cannot prove clean:
// a JSON object naming the reason and the frame's length, e.g.
// {"redacted":"unverifiable","reason":"too deep","len":200000}.
func Placeholder(reason string, n int) []byte {
	return []byte(`{"redacted":"unverifiable","reason":"` + reason + `","len":` + strconv.Itoa(n) + `}`)
}

// ReasonBinarySecret: a binary frame holds a known secret verbatim.
const ReasonBinarySecret = "binary frame holds a secret"

// ReasonOpaqueBinary: an outbound binary frame that is not UTF-8 text, so
// that no rule can prove it clean.
const ReasonOpaqueBinary = "opaque binary frame"

// HoldsSecret reports whether b holds one of the known secrets verbatim
// (for frames that cannot be redacted in place, such as binary ones).
func (s *Scrubber) HoldsSecret(b []byte) bool { return containsAny(b, s.knownBytes()) }

// JSON is Frame without known secret values: (*Scrubber)(nil).Frame(data).
func JSON(data []byte) []byte { return (*Scrubber)(nil).Frame(data) }

// Frame redacts one text frame for a recording. A frame that is JSON (one
// value, or several separated by white space) keeps its bytes except the
// masked values, each replaced by "REDACTED": the value of every
// secret-named member (SecretName, compared after unescaping, any depth);
// every string inside the "args" (or the "params" when it is an array) of
// a top-level object whose "op", "event", "action" or "method" contains
// auth, login, logon or signin in any case (Bybit's positional
// {"op":"auth","args":[key, expires, signature]}, OKX's login, BitMEX's
// authKeyExpires, Phemex's {"method":"user.auth","params":[...]}); every
// string whose content is itself JSON (MaxNested levels) holding something
// to mask or unverifiable, whole; and every string, number or member name
// holding a known secret. White space and byte order marks before the JSON
// are kept. A frame that looks like JSON but does not parse, is nested
// deeper than MaxDepth or is longer than MaxFrame, or in which a known
// secret survives, is replaced by a Placeholder: it is never returned raw.
// Any other frame is plain text and gets Text.
func (s *Scrubber) Frame(data []byte) []byte {
	if len(data) > MaxFrame {
		return Placeholder(ReasonTooLarge, len(data))
	}
	// A byte order mark (after white space or not) hides JSON from the
	// scanner; the JSON after it is redacted as JSON and the prefix kept.
	if p := bomPrefix(data); p > 0 {
		out := s.Frame(data[p:])
		if bytes.HasPrefix(out, []byte(`{"redacted":"unverifiable"`)) && !bytes.Equal(out, data[p:]) {
			return Placeholder(reasonOf(out), len(data))
		}
		return append(append(make([]byte, 0, p+len(out)), data[:p]...), out...)
	}
	known := s.knownBytes()
	sc := scanner{data: data, names: s.extraNames()}
	// Strings need checking one by one only when the frame holds a secret
	// verbatim or has escapes (a secret may hide behind them): one pass
	// over the frame spares one per string in the common case.
	byValue := len(known) > 0 && (containsAny(data, known) || bytes.IndexByte(data, '\\') >= 0)
	if byValue {
		sc.known = known
	}
	reason := sc.run()
	if reason == "" {
		out := sc.apply()
		if byValue && containsAny(out, known) {
			return Placeholder(ReasonSecretStays, len(data))
		}
		return out
	}
	i := skipWS(data, 0)
	if i == len(data) {
		return data // empty or white space
	}
	if reason == ReasonTooDeep || data[i] == '{' || data[i] == '[' || data[i] == '"' {
		return Placeholder(reason, len(data))
	}
	out := []byte(s.Text(string(data)))
	if containsAny(out, known) {
		return Placeholder(ReasonSecretStays, len(data))
	}
	return out
}

// bom is U+FEFF in UTF-8.
var bom = []byte("\xef\xbb\xbf")

// bomPrefix returns the length of the white space and byte order marks
// that start data when they hold at least one mark (else 0).
func bomPrefix(data []byte) int {
	i, marks := 0, 0
	for {
		i = skipWS(data, i)
		if !bytes.HasPrefix(data[i:], bom) {
			break
		}
		i += len(bom)
		marks++
	}
	if marks == 0 {
		return 0
	}
	return i
}

// reasonOf reads the reason back from a Placeholder.
func reasonOf(p []byte) string {
	const key = `"reason":"`
	i := bytes.Index(p, []byte(key))
	if i < 0 {
		return ReasonNotJSON
	}
	rest := p[i+len(key):]
	if j := bytes.IndexByte(rest, '"'); j >= 0 {
		return string(rest[:j])
	}
	return ReasonNotJSON
}

// MaxNested bounds how many levels of JSON held in JSON strings
// ({"payload":"{\"k\":\"v\"}"}) Frame verifies; a string nested deeper
// that looks like JSON is masked.
const MaxNested = 4

type span struct{ start, end int }

type container struct {
	obj       bool
	maskStart int // >= 0: this container is a secret member's value, masked whole
}

// scanner validates JSON (RFC 8259, as strict as encoding/json) without
// recursion and collects the spans to mask.
type scanner struct {
	data  []byte
	known [][]byte
	names []string // the scrubber's own secret names (AddNames)
	masks []span
	stack []container

	// The top-level object being scanned: positional auth args.
	argsMember bool   // the current depth-1 member is "args", or "params" holding an array
	opMember   bool   // the current depth-1 member is "op", "event", "action" or "method"
	authOp     bool   // its value says auth or login
	cands      []span // strings inside args, masked if authOp

	paramsMember bool // the current depth-1 member is "params" (positional only when an array)
	nested       int  // levels of JSON-in-a-string above this scanner
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// run scans every top-level value; "" means valid JSON.
func (sc *scanner) run() string {
	i, values := 0, 0
	prevScalar := false
	for {
		j := skipWS(sc.data, i)
		if j == len(sc.data) {
			if values == 0 {
				return ReasonNotJSON
			}
			return ""
		}
		if values > 0 && j == i && prevScalar {
			return ReasonNotJSON // "1true": no separator between scalars
		}
		c := sc.data[j]
		prevScalar = c != '{' && c != '[' && c != '"'
		end, reason := sc.value(j)
		if reason != "" {
			return reason
		}
		values++
		i = end
	}
}

// value scans one top-level value from i and returns where it ends.
func (sc *scanner) value(i int) (int, string) {
	const (
		expValue = iota
		expValueOrClose
		expKeyOrClose
		expKey
		expColon
		expCommaOrClose
	)
	data, n := sc.data, len(sc.data)
	sc.stack = sc.stack[:0]
	sc.argsMember, sc.opMember, sc.authOp, sc.cands = false, false, false, sc.cands[:0]
	sc.paramsMember = false
	state := expValue
	maskNext := false // the next value is a secret member's
	for {
		i = skipWS(data, i)
		if i >= n {
			return 0, ReasonNotJSON
		}
		c := data[i]
		switch state {
		case expValue, expValueOrClose:
			if state == expValueOrClose && c == ']' {
				i++
				if done, end := sc.pop(i); done {
					return end, ""
				}
				state = expCommaOrClose
				continue
			}
			start := i
			switch {
			case c == '{' || c == '[':
				if len(sc.stack) >= MaxDepth {
					return 0, ReasonTooDeep
				}
				ms := -1
				if maskNext {
					ms = start
				}
				if sc.paramsMember && len(sc.stack) == 1 && c == '[' {
					sc.argsMember = true // positional params: {"method":"user.auth","params":[...]}
				}
				sc.stack = append(sc.stack, container{obj: c == '{', maskStart: ms})
				maskNext = false
				i++
				if c == '{' {
					state = expKeyOrClose
				} else {
					state = expValueOrClose
				}
				continue
			case c == '"':
				end, esc, ok := scanString(data, i)
				if !ok {
					return 0, ReasonNotJSON
				}
				content := data[i+1 : end-1]
				switch {
				case maskNext || sc.holdsSecret(content, esc) || sc.nestedSecret(content, esc):
					sc.masks = append(sc.masks, span{start, end})
				case sc.argsMember:
					sc.cands = append(sc.cands, span{start, end})
				}
				if sc.opMember && len(sc.stack) == 1 && authValue(unescape(content, esc)) {
					sc.authOp = true
				}
				i = end
			case c == '-' || c >= '0' && c <= '9':
				end, ok := scanNumber(data, i)
				if !ok {
					return 0, ReasonNotJSON
				}
				if maskNext || containsAny(data[start:end], sc.known) {
					sc.masks = append(sc.masks, span{start, end})
				}
				i = end
			default:
				var lit string
				switch c {
				case 't':
					lit = "true"
				case 'f':
					lit = "false"
				case 'n':
					lit = "null"
				default:
					return 0, ReasonNotJSON
				}
				if !bytes.HasPrefix(data[i:], []byte(lit)) {
					return 0, ReasonNotJSON
				}
				i += len(lit)
				if maskNext {
					sc.masks = append(sc.masks, span{start, i})
				}
			}
			maskNext = false
			if len(sc.stack) == 0 {
				return i, ""
			}
			state = expCommaOrClose
		case expKeyOrClose, expKey:
			if state == expKeyOrClose && c == '}' {
				i++
				if done, end := sc.pop(i); done {
					return end, ""
				}
				state = expCommaOrClose
				continue
			}
			if c != '"' {
				return 0, ReasonNotJSON
			}
			end, esc, ok := scanString(data, i)
			if !ok {
				return 0, ReasonNotJSON
			}
			content := data[i+1 : end-1]
			name := unescape(content, esc)
			maskNext = secretName(name, sc.names...)
			if sc.holdsSecret(content, esc) {
				sc.masks = append(sc.masks, span{i, end})
			}
			if len(sc.stack) == 1 {
				var buf [16]byte
				nn := string(appendNorm(buf[:0], name))
				sc.argsMember = nn == "args"
				sc.paramsMember = nn == "params"
				sc.opMember = nn == "op" || nn == "event" || nn == "action" || nn == "method"
			}
			i = end
			state = expColon
		case expColon:
			if c != ':' {
				return 0, ReasonNotJSON
			}
			i++
			state = expValue
		case expCommaOrClose:
			top := sc.stack[len(sc.stack)-1]
			switch {
			case c == ',':
				i++
				if top.obj {
					state = expKey
				} else {
					state = expValue
				}
			case top.obj && c == '}' || !top.obj && c == ']':
				i++
				if done, end := sc.pop(i); done {
					return end, ""
				}
			default:
				return 0, ReasonNotJSON
			}
		}
	}
}

// pop closes the innermost container, which ends before i; done when it
// was the top-level value.
func (sc *scanner) pop(i int) (bool, int) {
	top := sc.stack[len(sc.stack)-1]
	sc.stack = sc.stack[:len(sc.stack)-1]
	if top.maskStart >= 0 {
		sc.masks = append(sc.masks, span{top.maskStart, i})
	}
	if len(sc.stack) == 0 {
		if top.obj && sc.authOp {
			sc.masks = append(sc.masks, sc.cands...)
		}
		return true, i
	}
	return false, 0
}

// holdsSecret reports whether a JSON string's raw content, or its unescaped
// text, holds a known secret.
func (sc *scanner) holdsSecret(content []byte, esc bool) bool {
	if len(sc.known) == 0 {
		return false
	}
	if containsAny(content, sc.known) {
		return true
	}
	return esc && containsAny(unescape(content, esc), sc.known)
}

// authValue reports whether an op/event/action/method value names an
// authentication: it contains auth, login, logon or signin in any case
// (auth, authKeyExpires, user.auth, public/auth, login, signIn).
func authValue(v []byte) bool {
	if len(v) > 64 {
		return false
	}
	var buf [64]byte
	n := appendNorm(buf[:0], v)
	for _, w := range [...]string{"auth", "login", "logon", "signin"} {
		if bytes.Contains(n, []byte(w)) {
			return true
		}
	}
	return false
}

// nestedSecret reports whether a JSON string's content is itself JSON
// (after white space, starting with '{' or '[') that holds something to
// mask, or cannot be verified: a venue or a program may wrap a frame in a
// string. Content that looks like JSON but does not parse is checked as
// plain text (Text) instead.
func (sc *scanner) nestedSecret(content []byte, esc bool) bool {
	i := skipWS(content, 0)
	if i == len(content) {
		return false
	}
	if c := content[i]; c != '{' && c != '[' && !(esc && c == '\\') {
		return false
	}
	text := unescape(content, esc)
	i = skipWS(text, 0)
	if i == len(text) || text[i] != '{' && text[i] != '[' {
		return false
	}
	if sc.nested >= MaxNested {
		return true
	}
	inner := scanner{data: text, known: sc.known, names: sc.names, nested: sc.nested + 1}
	switch reason := inner.run(); reason {
	case "":
		return len(inner.masks) > 0
	case ReasonNotJSON:
		return (*Scrubber)(nil).Text(string(text)) != string(text)
	default:
		return true
	}
}

// apply returns the data with every masked span replaced by "REDACTED"
// (spans inside another masked span are dropped).
func (sc *scanner) apply() []byte {
	if len(sc.masks) == 0 {
		return sc.data
	}
	sort.Slice(sc.masks, func(i, j int) bool { return sc.masks[i].start < sc.masks[j].start })
	out := make([]byte, 0, len(sc.data))
	last := 0
	for _, m := range sc.masks {
		if m.start < last {
			continue
		}
		out = append(out, sc.data[last:m.start]...)
		out = append(out, `"`+Mask+`"`...)
		last = m.end
	}
	return append(out, sc.data[last:]...)
}

// scanString scans the JSON string starting at b[i] == '"' and returns the
// index after its closing quote and whether it holds escapes.
func scanString(b []byte, i int) (end int, esc, ok bool) {
	for j := i + 1; j < len(b); {
		switch c := b[j]; {
		case c == '"':
			return j + 1, esc, true
		case c == '\\':
			esc = true
			if j+1 >= len(b) {
				return 0, false, false
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(b) || !isHex4(b[j+2:j+6]) {
					return 0, false, false
				}
				j += 6
			default:
				return 0, false, false
			}
		case c < 0x20:
			return 0, false, false
		default:
			j++
		}
	}
	return 0, false, false
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// scanNumber scans a JSON number from b[i].
func scanNumber(b []byte, i int) (int, bool) {
	digits := func(j int) int {
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j
	}
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(i)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

// unescape decodes a valid JSON string's content (scanString checked it).
func unescape(content []byte, esc bool) []byte {
	if !esc {
		return content
	}
	out := make([]byte, 0, len(content))
	for i := 0; i < len(content); {
		c := content[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		switch content[i+1] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := rune(hex4(content[i+2 : i+6]))
			i += 6
			if utf16.IsSurrogate(r) && i+6 <= len(content) && content[i] == '\\' && content[i+1] == 'u' {
				if r2 := utf16.DecodeRune(r, rune(hex4(content[i+2:i+6]))); r2 != utf8.RuneError {
					r = r2
					i += 6
				}
			}
			out = utf8.AppendRune(out, r)
			continue
		default: // " \ /
			out = append(out, content[i+1])
		}
		i += 2
	}
	return out
}

func hex4(b []byte) int {
	v := 0
	for _, c := range b {
		v <<= 4
		switch {
		case c >= '0' && c <= '9':
			v |= int(c - '0')
		case c >= 'a' && c <= 'f':
			v |= int(c-'a') + 10
		default:
			v |= int(c-'A') + 10
		}
	}
	return v
}
