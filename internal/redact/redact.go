// Package redact hides secrets before values reach logs or recordings:
// header values, URL query values and secret-named JSON members.
package redact

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// Mask replaces every secret value.
const Mask = "REDACTED"

// URL returns raw with user info and every query value replaced by Mask.
// A URL that does not parse is replaced whole: it may hold a secret we cannot
// locate.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable url>"
	}
	if u.User != nil {
		u.User = url.User(Mask)
	}
	if u.RawQuery != "" {
		q := u.Query()
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for i, k := range keys {
			if i > 0 {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(k))
			b.WriteByte('=')
			b.WriteString(Mask)
		}
		u.RawQuery = b.String()
	}
	return u.String()
}

// Headers returns the header names with every value replaced by Mask, sorted,
// as "Name=REDACTED" strings: enough to see which headers were sent.
func Headers(h http.Header) []string {
	out := make([]string, 0, len(h))
	for k := range h {
		out = append(out, http.CanonicalHeaderKey(k)+"="+Mask)
	}
	sort.Strings(out)
	return out
}

// secretKeys are JSON member names whose values are secrets.
var secretKeys = []string{"client_secret", "access_token", "refresh_token", "signature", "password", "api_key", "apikey", "secret", "listenkey", "token"}

// JSON returns data with the value of every member named like a secret
// (client_secret, access_token, refresh_token, signature, password,
// api_key, secret, listenKey, token; any case, any depth) replaced by Mask.
// Data without such a name, or that is not JSON, comes back unchanged.
func JSON(data []byte) []byte {
	lower := bytes.ToLower(data)
	found := false
	for _, k := range secretKeys {
		if bytes.Contains(lower, []byte(`"`+k+`"`)) {
			found = true
			break
		}
	}
	if !found {
		return data
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return data
	}
	out, err := json.Marshal(scrub(v))
	if err != nil {
		return data
	}
	return out
}

func scrub(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if isSecret(k) {
				x[k] = Mask
			} else {
				x[k] = scrub(val)
			}
		}
	case []any:
		for i := range x {
			x[i] = scrub(x[i])
		}
	}
	return v
}

func isSecret(k string) bool {
	k = strings.ToLower(k)
	for _, s := range secretKeys {
		if k == s {
			return true
		}
	}
	return false
}
