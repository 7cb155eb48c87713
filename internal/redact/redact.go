// Package redact hides secrets before values reach logs, errors, events,
// Health or recordings.
//
// Two defences work together. Structural: a URL keeps its scheme, host and
// non-secret path but loses its user info, every query value, its fragment
// and every secret-looking path segment (URL); a header keeps its name but
// not its value (Headers); a JSON frame keeps its bytes but loses the values
// of secret-named members and of positional auth args (Scrubber.Frame).
// By value: a Scrubber knows the secrets of one client (its header values,
// URL user info, secret query values and path segments, values the user or
// an adapter registered) and replaces them wherever they appear, whatever
// library produced the text: it assumes that every string a library below
// zenws returns may carry the URL with its query.
package redact

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// Mask replaces every secret value.
const Mask = "REDACTED"

// URL returns raw with its user info, every query value, its fragment and
// every secret-looking path segment (see SecretLooking: a Binance listen key
// in /ws/<listenKey>) replaced by Mask. Query names are kept (in order), a
// query word without "=" is masked when it looks secret. A URL that does not
// parse is replaced whole: it may hold a secret we cannot locate.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable url>"
	}
	if u.User != nil {
		u.User = url.User(Mask)
	}
	if u.Opaque != "" && SecretLooking(u.Opaque) {
		u.Opaque = Mask
	}
	if p := u.EscapedPath(); p != "" {
		segs := strings.Split(p, "/")
		changed := false
		for i, s := range segs {
			dec, err := url.PathUnescape(s)
			if err != nil || SecretLooking(dec) {
				segs[i], changed = Mask, true
			}
		}
		if changed {
			esc := strings.Join(segs, "/")
			u.RawPath = esc
			u.Path, _ = url.PathUnescape(esc)
		}
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, part := range parts {
			k, v, eq := strings.Cut(part, "=")
			switch {
			case eq && v != "":
				if dk, err := url.QueryUnescape(k); err != nil || SecretLooking(dk) {
					k = Mask
				}
				parts[i] = k + "=" + Mask
			case !eq:
				if dk, err := url.QueryUnescape(k); err != nil || SecretLooking(dk) {
					parts[i] = Mask
				}
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	u.ForceQuery = false
	if u.Fragment != "" || u.RawFragment != "" {
		u.Fragment, u.RawFragment = Mask, ""
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

// SecretRun is the shortest run of ASCII letters and digits, with at least
// one of each, that makes a word look secret (see SecretLooking).
const SecretRun = 20

// SecretLooking reports whether s looks like an opaque token: it contains a
// run of at least SecretRun (20) ASCII letters and digits holding both
// letters and digits. A Binance listen key (60), hex or base64 API keys,
// JWTs and Deribit tokens match; words, channel names
// ("book.BTC-PERPETUAL.100ms", "btcusdt@depth20@100ms"), versions and short
// ids do not. Anything else secret is hidden by registering it
// (Scrubber.Add, actors.WithSecrets).
func SecretLooking(s string) bool {
	run, letters, digits := 0, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			run++
			digits = true
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			run++
			letters = true
		default:
			run, letters, digits = 0, false, false
			continue
		}
		if run >= SecretRun && letters && digits {
			return true
		}
	}
	return false
}

// SecretName reports whether a JSON member, query or form name names a
// secret. The name is compared case-insensitively with '_', '-', '.' and
// spaces removed (so client_secret, clientSecret and client\u005fsecret
// are one name): exact names apikey, key, secret, sign, sig, signature,
// authsig, auth, authorization, password, passwd, passphrase, token, jwt,
// listenkey, accesskey, cookie, otp, totp, credential(s); and every name
// ending in secret, token, password, passphrase, signature, apikey,
// secretkey or privatekey (api_secret, access_token, refresh_token,
// x-api-key, ...).
func SecretName(name string) bool { return secretName(name) }

// secretName is SecretName for a member name as string or bytes (the JSON
// scanner's), without copying the bytes; extra are more exact names,
// normalized (a venue's own, Scrubber.AddNames).
func secretName[T string | []byte](name T, extra ...string) bool {
	var buf [64]byte
	n := appendNorm(buf[:0], name)
	if _, ok := secretExact[string(n)]; ok {
		return true
	}
	for _, e := range extra { // a handful: a venue's own names
		if e == string(n) {
			return true
		}
	}
	for _, suf := range secretSuffixes {
		if len(n) >= len(suf) && string(n[len(n)-len(suf):]) == suf {
			return true
		}
	}
	return false
}

// appendNorm appends name lowercased, without '_', '-', '.' and spaces.
func appendNorm[T string | []byte](b []byte, name T) []byte {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_' || c == '-' || c == '.' || c == ' ':
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

var secretExact = map[string]struct{}{
	"apikey": {}, "key": {}, "secret": {}, "sign": {}, "sig": {}, "signature": {}, "authsig": {},
	"auth": {}, "authorization": {}, "password": {}, "passwd": {}, "passphrase": {}, "token": {},
	"jwt": {}, "listenkey": {}, "accesskey": {}, "cookie": {}, "otp": {}, "totp": {},
	"credential": {}, "credentials": {},
}

var secretSuffixes = []string{"secret", "token", "password", "passphrase", "signature", "apikey", "secretkey", "privatekey"}
