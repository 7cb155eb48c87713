package redact

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// MinSecretLen is the shortest value a Scrubber replaces by value: shorter
// values ("1", "true", "100ms") would mangle unrelated text. They are still
// hidden wherever their place is known (a URL's query, a header, a JSON
// member).
const MinSecretLen = 6

// Scrubber replaces one client's known secrets wherever they appear. The
// zero value is not usable; a nil *Scrubber knows no values but still
// applies the structural rules. It is safe for concurrent use: adapters
// register tokens while other goroutines scrub.
type Scrubber struct {
	mu     sync.Mutex                // serialises Add
	values atomic.Pointer[secretSet] // replaced, never changed
	seen   map[string]struct{}
	names  atomic.Pointer[[]string] // more secret member names (AddNames), normalized; replaced, never changed

	order     []string // forms in the order they were added
	permanent int      // the first permanent forms are never forgotten (Seal)
}

// MaxRecent bounds the forms registered after Seal (tokens an adapter
// receives on every refresh): past it the oldest are forgotten, so a
// long-lived client's scrubber stays small. A value takes up to 5 forms.
const MaxRecent = 256

// AddNames adds member, query and form names whose values are secret, for
// this scrubber only, to the ones every scrubber knows (SecretName): a
// venue's own field names (venue.Redactor). They are compared the same way
// (any case; '_', '-', '.' and spaces ignored). Safe for concurrent use;
// a frame scrubbed meanwhile sees the names before or after the call.
func (s *Scrubber) AddNames(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []string
	if old := s.names.Load(); old != nil {
		all = slices.Clone(*old)
	}
	for _, name := range names {
		if n := string(appendNorm(nil, name)); n != "" && !slices.Contains(all, n) {
			all = append(all, n)
		}
	}
	if len(all) > 0 {
		s.names.Store(&all)
	}
}

// SecretName is the package's SecretName with this scrubber's own names
// (AddNames).
func (s *Scrubber) SecretName(name string) bool { return secretName(name, s.extraNames()...) }

// extraNames are the names of AddNames; nil for a nil scrubber or none.
func (s *Scrubber) extraNames() []string {
	if s == nil {
		return nil
	}
	if m := s.names.Load(); m != nil {
		return *m
	}
	return nil
}

// Seal makes every value registered so far permanent (the configuration's
// secrets); values added later are kept up to MaxRecent forms, newest
// first.
func (s *Scrubber) Seal() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.permanent = len(s.order)
}

// secretSet is every form of every secret, longest first, as strings and
// as bytes.
type secretSet struct {
	strs []string
	bs   [][]byte
}

// NewScrubber returns a Scrubber that knows no secret yet.
func NewScrubber() *Scrubber { return &Scrubber{seen: map[string]struct{}{}} }

// Add registers secret values (MinSecretLen bytes or more; shorter ones are
// ignored), with the forms they take in URLs (upper- and lower-case
// percent-escapes), Go-quoted and JSON-escaped text. A value of the form
// "Scheme credentials" (an Authorization header) also registers its
// credentials, and a value holding "name=value" pairs separated by ';' or
// ',' (a Cookie header, "HMAC-SHA256 Credential=..., Signature=...",
// Digest parameters) also registers each value, trimmed and unquoted: a
// venue may echo one session cookie or one signature alone.
func (s *Scrubber) Add(values ...string) {
	if s == nil {
		return
	}
	var forms []string
	add := func(v string) {
		if len(v) < MinSecretLen {
			return
		}
		forms = append(forms, v, url.QueryEscape(v), url.PathEscape(v),
			lowerEscapes(url.QueryEscape(v)), lowerEscapes(url.PathEscape(v)))
		if q := strconv.Quote(v); len(q) > 2 {
			forms = append(forms, q[1:len(q)-1])
		}
		if j, err := json.Marshal(v); err == nil && len(j) > 2 {
			forms = append(forms, string(j[1:len(j)-1]))
		}
	}
	for _, v := range values {
		v = strings.TrimSpace(v)
		add(v)
		if _, cred, ok := strings.Cut(v, " "); ok {
			add(strings.TrimSpace(cred))
		}
		for _, pv := range pairValues(v) {
			add(pv)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	added := false
	for _, f := range forms {
		if len(f) < MinSecretLen {
			continue
		}
		if _, dup := s.seen[f]; !dup {
			s.seen[f] = struct{}{}
			s.order = append(s.order, f)
			added = true
		}
	}
	if extra := len(s.order) - s.permanent - MaxRecent; extra > 0 {
		for _, f := range s.order[s.permanent : s.permanent+extra] {
			delete(s.seen, f)
		}
		s.order = append(s.order[:s.permanent], s.order[s.permanent+extra:]...)
	}
	if added {
		next := append([]string(nil), s.order...)
		sort.SliceStable(next, func(i, j int) bool { return len(next[i]) > len(next[j]) })
		set := &secretSet{strs: next, bs: make([][]byte, len(next))}
		for i, v := range next {
			set.bs[i] = []byte(v)
		}
		s.values.Store(set)
	}
}

// pairValues returns the values of the "name=value" pairs in v, separated
// by ';' or ',' (nil when v holds no '=').
func pairValues(v string) []string {
	if !strings.Contains(v, "=") {
		return nil
	}
	var out []string
	for _, part := range strings.FieldsFunc(v, func(r rune) bool { return r == ';' || r == ',' }) {
		_, val, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		if len(val) >= 2 && (val[0] == '"' && val[len(val)-1] == '"' || val[0] == '\'' && val[len(val)-1] == '\'') {
			val = val[1 : len(val)-1]
		}
		out = append(out, val)
	}
	return out
}

// lowerEscapes returns s with the hex digits of its percent-escapes in
// lower case ("%2B" -> "%2b"): some stacks echo a value escaped so.
func lowerEscapes(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			for j := i + 1; j <= i+2; j++ {
				if b[j] >= 'A' && b[j] <= 'F' {
					b[j] += 'a' - 'A'
				}
			}
			i += 2
		}
	}
	return string(b)
}

// known returns the registered forms (nil for a nil Scrubber); the slice is
// never changed once published.
func (s *Scrubber) known() []string {
	if s == nil {
		return nil
	}
	if p := s.values.Load(); p != nil {
		return p.strs
	}
	return nil
}

// knownBytes is known as byte slices.
func (s *Scrubber) knownBytes() [][]byte {
	if s == nil {
		return nil
	}
	if p := s.values.Load(); p != nil {
		return p.bs
	}
	return nil
}

// AddURL registers the secrets of a URL: its user name and password, the
// values of query members that are secret-named or secret-looking, and its
// secret-looking path segments (SecretLooking). Other query values are not
// registered (a stream name would vanish from every log line) but are still
// masked wherever the URL is rendered (URL).
func (s *Scrubber) AddURL(raw string) {
	if s == nil {
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		return // never rendered but as "<unparsable url>"
	}
	if u.User != nil {
		s.Add(u.User.Username())
		if p, ok := u.User.Password(); ok {
			s.Add(p)
		}
	}
	for _, seg := range strings.Split(u.EscapedPath(), "/") {
		if dec, err := url.PathUnescape(seg); err == nil && SecretLooking(dec) {
			s.Add(dec, seg)
		}
	}
	for _, part := range strings.Split(u.RawQuery, "&") {
		k, v, _ := strings.Cut(part, "=")
		dk, _ := url.QueryUnescape(k)
		dv, _ := url.QueryUnescape(v)
		if SecretLooking(dk) {
			s.Add(dk, k)
		}
		if s.SecretName(dk) || SecretLooking(dv) {
			s.Add(dv, v)
		}
	}
	if u.Fragment != "" {
		s.Add(u.Fragment)
	}
}

// notSecretHeaders are request headers whose values are never credentials.
var notSecretHeaders = map[string]bool{
	"Accept": true, "Accept-Encoding": true, "Accept-Language": true, "User-Agent": true,
	"Origin": true, "Cache-Control": true, "Pragma": true, "Content-Type": true,
	"Sec-Websocket-Protocol": true, "Sec-Websocket-Extensions": true, "Sec-Websocket-Version": true,
}

// AddHeaders registers every header value but those of a few headers that
// never carry credentials (Accept*, User-Agent, Origin, Cache-Control,
// Pragma, Content-Type, Sec-WebSocket-Protocol/Extensions/Version).
func (s *Scrubber) AddHeaders(h http.Header) {
	var vals []string
	for k, vs := range h {
		if !notSecretHeaders[http.CanonicalHeaderKey(k)] {
			vals = append(vals, vs...)
		}
	}
	s.Add(vals...) // one Add: each rebuilds the set
}

// ForRequest returns a sealed Scrubber that knows the secrets of one
// handshake request: the URL's (AddURL), the header values (AddHeaders),
// the secret-looking subprotocols (a token carried as one) and secrets.
// The client and its transport build theirs with it, so both know the
// same values.
func ForRequest(rawURL string, h http.Header, subprotocols []string, secrets ...string) *Scrubber {
	s := NewScrubber()
	s.AddURL(rawURL)
	s.AddHeaders(h)
	for _, p := range subprotocols {
		if SecretLooking(p) {
			s.Add(p)
		}
	}
	s.Add(secrets...)
	s.Seal()
	return s
}

// Known reports whether any secret value is registered.
func (s *Scrubber) Known() bool { return len(s.known()) > 0 }

// String returns text with every URL in it redacted (URL), every known
// secret replaced by Mask, and the value after a secret name masked as Text
// does ("client_secret=x", "token: x", this scrubber's own names), except
// after the short names that error texts use for other things (auth, key,
// sign, sig, otp: "public/auth: timeout" keeps its cause). Errors and log
// lines go through it.
func (s *Scrubber) String(text string) string {
	text = s.urlsAndKnown(text)
	if strings.ContainsAny(text, "=:") {
		text = namedValues(text, s.extraNames(), false)
	}
	return text
}

// urlsAndKnown is text with its URLs redacted and its known secrets masked.
func (s *Scrubber) urlsAndKnown(text string) string {
	text = urlsIn(text)
	for _, v := range s.known() {
		if strings.Contains(text, v) {
			text = strings.ReplaceAll(text, v, Mask)
		}
	}
	return text
}

// containsAny reports whether b holds one of vals verbatim.
func containsAny(b []byte, vals [][]byte) bool {
	for _, v := range vals {
		if bytes.Contains(b, v) {
			return true
		}
	}
	return false
}

// urlsIn redacts every URL in text: a scheme followed by "://", up to the
// next space, quote or angle bracket.
func urlsIn(text string) string {
	if !strings.Contains(text, "://") {
		return text
	}
	var b strings.Builder
	rest := text
	for {
		i := strings.Index(rest, "://")
		if i < 0 {
			break
		}
		start := i
		for start > 0 && isSchemeByte(rest[start-1]) {
			start--
		}
		end := i + 3
		for end < len(rest) && !isURLEnd(rest[end]) {
			end++
		}
		if start == i { // no scheme: not a URL
			b.WriteString(rest[:end])
			rest = rest[end:]
			continue
		}
		b.WriteString(rest[:start])
		b.WriteString(URL(rest[start:end]))
		rest = rest[end:]
	}
	b.WriteString(rest)
	return b.String()
}

func isSchemeByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'
}

func isURLEnd(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '"', '\'', '`', '<', '>', '\\':
		return true
	}
	return false
}

// Error returns err unchanged when its text carries no secret, else an
// error whose Error() is the scrubbed text and whose Unwrap is err (so
// errors.Is and errors.As still see the cause).
func (s *Scrubber) Error(err error) error {
	if err == nil {
		return nil
	}
	if se, ok := err.(*scrubbedError); ok && se.s == s {
		return err
	}
	if text := err.Error(); s.String(text) == text {
		return err
	}
	return &scrubbedError{err: err, s: s}
}

type scrubbedError struct {
	err error
	s   *Scrubber
}

func (e *scrubbedError) Error() string { return e.s.String(e.err.Error()) }
func (e *scrubbedError) Unwrap() error { return e.err }

// bearer is an HTTP credential in plain text ("Bearer x", "Basic x").
var bearer = regexp.MustCompile(`(?i)\b(bearer|basic)([ \t]+)([^\s&,;"]+)`)

// Text redacts plain text (a frame that is not JSON): URLs (URL), known
// secrets, an HTTP credential ("Bearer x"), the value after a secret name
// (SecretName: "client_secret=x", "token: x", "\"password\": \"x\""; a
// quoted value is masked whole, and after "name: " the rest of the line,
// since such a value may hold spaces) and every secret-looking word
// (SecretLooking). It costs linear time in the text.
func (s *Scrubber) Text(text string) string {
	text = s.urlsAndKnown(text) // the named values below, with the short names too
	if hasFoldWord(text, "bearer") || hasFoldWord(text, "basic") {
		text = bearer.ReplaceAllString(text, "${1}${2}"+Mask)
	}
	text = namedValues(text, s.extraNames(), true)
	return maskWords(text)
}

// hasFoldWord reports whether text holds word in any case (word is lower
// case ASCII); it spares the case-insensitive regexp on most texts.
func hasFoldWord(text, word string) bool {
	for i := 0; i+len(word) <= len(text); i++ {
		if text[i]|0x20 != word[0] {
			continue
		}
		if strings.EqualFold(text[i:i+len(word)], word) {
			return true
		}
	}
	return false
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
}

// namedValues masks the value after every secret name followed by '=' or
// ':' (the name optionally quoted, blanks around the separator), in one
// pass: name[\"][ \t]*[=:][ \t]*value, where value is a quoted string
// (to its closing quote, or the end of the text), the rest of the line
// after "name: ", or a run up to white space, '&', ',', ';' or '"'.
func namedValues(text string, extra []string, short bool) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c != '=' && c != ':' || i < last {
			continue
		}
		// The name, backwards: past spaces (a no-break space too), a quote
		// (escaped too: a Go-quoted JSON body), name bytes and JSON escapes
		// ("pass\u0077ord").
		k := skipSpaceBack(text, i, last)
		if k > last && (text[k-1] == '"' || text[k-1] == '\'') {
			k--
			if k > last && text[k-1] == '\\' {
				k--
			}
		}
		nameEnd := k
		for k > last && (isNameByte(text[k-1]) || text[k-1] == '\\') {
			k--
		}
		if k == nameEnd || !secretNamed(text, k, nameEnd, last, extra, short) {
			continue
		}
		// The value, forwards: on this line, or alone on the next.
		v := skipSpace(text, i+1)
		if v < len(text) && (text[v] == '\n' || text[v] == '\r') && v+1 < len(text) {
			v = skipSpace(text, v+1)
			if v < len(text) && text[v] == '\n' {
				v = skipSpace(text, v+1)
			}
		}
		if v == len(text) {
			continue
		}
		end, open, closeQ := v, "", ""
		switch q := text[v]; {
		case q == '\\' && v+1 < len(text) && text[v+1] == '"': // \"value\" inside a quoted text
			open, closeQ = `\"`, `\"`
			if e := strings.Index(text[v+2:], `\"`); e >= 0 {
				end = v + 2 + e + 2
			} else {
				end = len(text)
			}
		case q == '"' || q == '\'':
			open, closeQ = string(q), string(q)
			end = closingQuote(text, v+1, q)
		case c == ':' && v > i+1:
			for end < len(text) && text[end] != '\n' && text[end] != '\r' {
				end++
			}
		default:
			for end < len(text) && !isValueEnd(text[end]) {
				end++
			}
		}
		val := text[v:end]
		if end == v || val == Mask || val == open+Mask+closeQ {
			continue
		}
		if b.Len() == 0 {
			b.Grow(len(text))
		}
		b.WriteString(text[last:v])
		if open != "" && end-v >= len(open)+len(closeQ) && strings.HasSuffix(val, closeQ) {
			b.WriteString(open + Mask + closeQ)
		} else {
			b.WriteString(Mask)
		}
		last = end
		i = end - 1
	}
	if last == 0 {
		return text
	}
	b.WriteString(text[last:])
	return b.String()
}

// secretNamed reports whether text[k:end] (JSON escapes decoded) names a
// secret; a short name ("key") counts when the word before it makes a
// secret name ("api key", "private key") or, in Text, on its own.
func secretNamed(text string, k, end, last int, extra []string, short bool) bool {
	nm := text[k:end]
	if strings.IndexByte(nm, '\\') >= 0 {
		if u, err := strconv.Unquote(`"` + nm + `"`); err == nil {
			nm = u
		}
	}
	if secretName(nm, extra...) && (short || !shortName(nm) || slices.Contains(extra, string(appendNorm(nil, nm)))) {
		return true
	}
	// The word before: "api key", "private key", "refresh token".
	j := k
	if j > last && text[j-1] == ' ' {
		j--
		w := j
		for w > last && isNameByte(text[w-1]) {
			w--
		}
		if w < j && secretName(text[w:j]+nm, extra...) && !shortName(text[w:j]+nm) {
			return true
		}
	}
	return false
}

// skipSpaceBack returns the index before the spaces, tabs and no-break
// spaces that end text[:i] (not before last).
func skipSpaceBack(text string, i, last int) int {
	for i > last {
		switch {
		case text[i-1] == ' ' || text[i-1] == '\t':
			i--
		case i-2 >= last && text[i-2] == 0xc2 && text[i-1] == 0xa0:
			i -= 2
		default:
			return i
		}
	}
	return i
}

// skipSpace returns the index after the spaces, tabs and no-break spaces
// at text[i:].
func skipSpace(text string, i int) int {
	for i < len(text) {
		switch {
		case text[i] == ' ' || text[i] == '\t':
			i++
		case i+1 < len(text) && text[i] == 0xc2 && text[i+1] == 0xa0:
			i += 2
		default:
			return i
		}
	}
	return i
}

// closingQuote returns the index after the quote q that closes a value
// opened at text[start-1], skipping escaped quotes; len(text) if none.
func closingQuote(text string, start int, q byte) int {
	for e := start; e < len(text); e++ {
		switch text[e] {
		case '\\':
			e++
		case q:
			return e + 1
		}
	}
	return len(text)
}

func isValueEnd(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '&', ',', ';', '"':
		return true
	}
	return false
}

// maskWords replaces every secret-looking word in one pass (a hostile
// frame of many such words must cost linear time).
func maskWords(text string) string {
	isSep := func(c byte) bool {
		switch c {
		case ' ', '\t', '\n', '\r', '"', ',', ';', '&', '=', ':':
			return true
		}
		return false
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(text); {
		if isSep(text[i]) {
			i++
			continue
		}
		j := i
		for j < len(text) && !isSep(text[j]) {
			j++
		}
		if SecretLooking(text[i:j]) {
			if b.Len() == 0 {
				b.Grow(len(text))
			}
			b.WriteString(text[last:i])
			b.WriteString(Mask)
			last = j
		}
		i = j
	}
	if last == 0 {
		return text
	}
	b.WriteString(text[last:])
	return b.String()
}

// shortName reports whether name is one of the short generic secret names
// that error texts also use for other things (String leaves the value after
// them unless the scrubber was given the name, AddNames; Text masks it).
func shortName(name string) bool {
	switch strings.ToLower(name) {
	case "auth", "key", "sign", "sig", "otp":
		return true
	}
	return false
}
