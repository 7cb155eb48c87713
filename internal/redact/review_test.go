package redact

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Cases of the second outside review (issue 12, findings F1, F4, F6, F7,
// F8), adapted from its test/adversary2.

// F1: a cookie value or an Authorization parameter echoed alone.
func TestScrubberCookieAndAuthParams(t *testing.T) {
	sess, sig := "sessA1b2C3d4E5f6G7h8", "sigZ9y8X7w6V5u4T3s2R1q0P9o8N7m6L5"
	h := http.Header{}
	h.Set("Cookie", `theme=dark; session="`+sess+`"`)
	h.Set("Authorization", "HMAC-SHA256 Credential=AKIDEXAMPLE/20260101, SignedHeaders=host, Signature="+sig)
	s := NewScrubber()
	s.AddHeaders(h)
	for _, secret := range []string{sess, sig} {
		if out := s.String("venue says: unknown " + secret + " (401)"); strings.Contains(out, secret) {
			t.Errorf("String kept a header parameter: %q", out)
		}
	}
	if out := s.String("theme dark host"); out != "theme dark host" {
		t.Errorf("short parameter values must not be registered: %q", out)
	}
}

// F8: a secret echoed with lower-case percent-escapes.
func TestScrubberLowerCaseEscapes(t *testing.T) {
	sig := "ab+cd/EFgh0123456789xyz=="
	s := NewScrubber()
	s.Add(sig)
	lower := strings.NewReplacer("%2B", "%2b", "%2F", "%2f", "%3D", "%3d").Replace(url.QueryEscape(sig))
	if out := s.String("bad signature " + lower); strings.Contains(out, lower) {
		t.Errorf("lower-case escaped form kept: %q", out)
	}
}

// F4, F6: frames of real venues and encoding tricks whose secrets are not
// registered; each must lose them.
func TestFrameHidesReviewCases(t *testing.T) {
	K, G, P := "KEYa1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8", "SIGz9y8x7w6v5u4t3s2r1q0p9o8n7m6l5k4j3i2h1g0f9e8d7c6b5a4", "Pass phr4se!"
	Q := "x+abcdefghij/=" // not secret-looking: hidden only by its place
	cases := map[string]string{
		"bitmex-authKeyExpires":  `{"op":"authKeyExpires","args":["` + K + `",1662350400,"` + G + `"]}`,
		"phemex-user.auth":       `{"method":"user.auth","params":["API","` + K + `","` + G + `",1700000000],"id":1}`,
		"phemex-params-first":    `{"params":["API","` + K + `","` + G + `",1700000000],"id":1,"method":"user.auth"}`,
		"json-in-string":         `{"op":"request","payload":"{\"client_secret\":\"` + Q + `\"}"}`,
		"json-in-json-in-string": `{"p":"{\"q\":\"[{\\\"password\\\":\\\"` + Q + `\\\"}]\"}"}`,
		"bom-json-array":         "\ufeff" + `{"client_secret":["` + Q + `"]}`,
		"bom-json-object":        "\ufeff" + `{"password":{"v":"` + Q + `"}}`,
		"ws-bom-json":            " \ufeff" + `{"password":"` + Q + `"}`,
		"plain-quoted":           `passphrase="` + P + `" ok`,
		"plain-colon-line":       `login client_secret=` + Q + ` passphrase: ` + P,
		"plain-json-ish":         `error: "password": "` + P + `", retry`,
	}
	for name, in := range cases {
		out := string(JSON([]byte(in)))
		for _, secret := range []string{K, G, Q, "phr4se!"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s: %q kept %q", name, out, secret)
			}
		}
		if json.Valid([]byte(strings.TrimPrefix(strings.TrimLeft(in, " "), "\ufeff"))) && !json.Valid(bytes.TrimPrefix(bytes.TrimLeft([]byte(out), " "), []byte("\ufeff"))) {
			t.Errorf("%s: valid JSON in, invalid out: %q", name, out)
		}
	}
	// Kept: a BOM-prefixed clean frame, an ordinary method's params, a
	// string that only looks like JSON.
	for _, in := range []string{
		"\ufeff" + `{"a":1}`,
		`{"method":"public/subscribe","params":["book.BTC-PERPETUAL.100ms"]}`,
		`{"note":"[warn] slow","s":"{\"a\":1}"}`,
	} {
		if out := string(JSON([]byte(in))); out != in {
			t.Errorf("rewritten: %q -> %q", in, out)
		}
	}
}

// F7: plain text of many secret names is redacted in one pass (the
// named-value rule is hand-written: no regexp per match). No timed
// assertion (machines are noisy): the figures are logged, and a quadratic
// pass would not finish 4.4 MB within the test's time.
func TestNamedValuesLinear(t *testing.T) {
	s := NewScrubber()
	s.Add("KNOWNa1b2c3d4e5f6g7h8i9")
	for _, n := range []int{100000, 400000} {
		frame := []byte(strings.Repeat("password=x ", n))
		start := time.Now()
		out := s.Frame(frame)
		t.Logf("%d bytes of password=x: %v", len(frame), time.Since(start))
		if bytes.Contains(out, []byte("=x ")) || bytes.Count(out, []byte(Mask)) != n {
			t.Fatalf("values kept: %.60q", out)
		}
	}
}
