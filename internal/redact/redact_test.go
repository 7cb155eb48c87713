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
