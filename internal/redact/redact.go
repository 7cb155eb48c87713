// Package redact hides secrets before values reach logs or recordings:
// header values and URL query values.
package redact

import (
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
