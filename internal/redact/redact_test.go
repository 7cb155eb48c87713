package redact

import (
	"net/http"
	"strings"
	"testing"
)

func TestURLHidesQueryAndUserInfo(t *testing.T) {
	got := URL("wss://user:pass@stream.example.com/ws/abc?listenKey=s3cret&x=1")
	for _, secret := range []string{"s3cret", "pass", "user:"} {
		if strings.Contains(got, secret) {
			t.Fatalf("URL(...) = %q still contains %q", got, secret)
		}
	}
	if !strings.Contains(got, "listenKey=REDACTED") || !strings.Contains(got, "stream.example.com/ws/abc") {
		t.Fatalf("URL(...) = %q lost the non-secret parts", got)
	}
	if got := URL("ws://127.0.0.1:1/x"); got != "ws://127.0.0.1:1/x" {
		t.Fatalf("URL without secrets changed: %q", got)
	}
	if got := URL("ws://%zz"); strings.Contains(got, "%zz") {
		t.Fatalf("unparsable URL leaked: %q", got)
	}
}

func TestHeadersHidesValues(t *testing.T) {
	h := http.Header{"Authorization": {"Bearer tok"}, "x-api-key": {"k"}}
	got := strings.Join(Headers(h), ",")
	if strings.Contains(got, "tok") || strings.Contains(got, "=k") {
		t.Fatalf("Headers leaked a value: %q", got)
	}
	if got != "Authorization=REDACTED,X-Api-Key=REDACTED" {
		t.Fatalf("Headers = %q", got)
	}
}

func TestJSONHidesSecretMembers(t *testing.T) {
	in := []byte(`{"jsonrpc":"2.0","id":1,"method":"public/auth","params":{"grant_type":"client_credentials","client_id":"id","client_secret":"S3CRET","nested":[{"Access_Token":"T0K"}]}}`)
	out := string(JSON(in))
	if strings.Contains(out, "S3CRET") || strings.Contains(out, "T0K") || !strings.Contains(out, `"client_id":"id"`) {
		t.Fatalf("JSON(...) = %s", out)
	}
	plain := []byte(`{"method":"subscription","params":{"channel":"x"}}`)
	if got := JSON(plain); string(got) != string(plain) {
		t.Fatalf("a frame without secrets changed: %s", got)
	}
	if got := JSON([]byte(`not json "token"`)); string(got) != `not json "token"` {
		t.Fatalf("non-JSON changed: %s", got)
	}
}

// AddNames: a scrubber's own secret names mask JSON members (nested, in
// any spelling) and "name=value" in text, for that scrubber only.
func TestScrubberAddNames(t *testing.T) {
	s := NewScrubber()
	s.AddNames("hmac_blob", "")
	other := NewScrubber()
	frame := []byte(`{"a":{"HMAC-BLOB":"v1"},"hmacBlob":"v2","keep":"v3"}`)
	if got := string(s.Frame(frame)); got != `{"a":{"HMAC-BLOB":"REDACTED"},"hmacBlob":"REDACTED","keep":"v3"}` {
		t.Fatalf("Frame: %s", got)
	}
	if got := string(other.Frame(frame)); got != string(frame) {
		t.Fatalf("another scrubber: %s", got)
	}
	if got := s.Text("refused: hmacBlob=abc next"); got != "refused: hmacBlob="+Mask+" next" {
		t.Fatalf("Text: %q", got)
	}
	if !s.SecretName("HmacBlob") || other.SecretName("HmacBlob") || !s.SecretName("token") {
		t.Fatal("SecretName")
	}
	var nilS *Scrubber
	if nilS.SecretName("hmacBlob") || !nilS.SecretName("secret") {
		t.Fatal("nil scrubber")
	}
}

// String masks the value after a secret name in error and log text, but
// not after the short generic names error texts use for other things,
// unless the scrubber was given the name.
func TestStringMasksNamedValues(t *testing.T) {
	s := NewScrubber()
	s.AddNames("SessionCookie", "sign")
	for in, want := range map[string]string{
		"hook: SessionCookie=abc123; retry":   "hook: SessionCookie=" + Mask + "; retry",
		"closed: client_secret: hunter2":      "closed: client_secret: " + Mask,
		"zenws/deribit: public/auth: timeout": "zenws/deribit: public/auth: timeout",
		"invalid key: BTC-PERP":               "invalid key: BTC-PERP",
		"bad sign=xyz":                        "bad sign=" + Mask,
		"no secret names here, just a: b":     "no secret names here, just a: b",
	} {
		if got := s.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}
