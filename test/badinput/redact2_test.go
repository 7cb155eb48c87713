package badinput

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/record"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

// refusing is a server that refuses every handshake with status and body.
func refusing(t *testing.T, status int, body string) string {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(hs.Close)
	return "ws" + strings.TrimPrefix(hs.URL, "http")
}

// connectErr connects a client expected to fail and returns its error.
func connectErr(t *testing.T, url string, opts ...actors.Option) error {
	t.Helper()
	c, err := actors.Connect(ctx(t), testutil.NewSystem(t), url, fast(append(opts, actors.WithRetryCount(0))...)...)
	if err == nil {
		_ = c.Close()
		t.Fatal("Connect succeeded")
	}
	return err
}

// recordOut sends frames (binary when bin) through a recording client and
// returns the recording.
func recordOut(t *testing.T, bin bool, frames ...string) string {
	t.Helper()
	srv := wstest.NewServer()
	defer srv.Close()
	var rec testutil.SyncBuffer
	c := connect(t, srv.URL(), actors.WithRecorder(&rec))
	for _, f := range frames {
		send := c.Send
		if bin {
			send = c.SendBinary
		}
		if err := send(ctx(t), []byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return rec.String()
}

// Rows of the second review's findings on secrets (issue 12 items 2, 3, 15).
func TestHostileInputsRedact2(t *testing.T) {
	rows := []row{
		{"venue echoes one cookie value, or an Authorization parameter, in a 401 body", "the value is masked in the Connect error", func(t *testing.T) {
			for _, h := range []struct{ name, value, secret string }{
				{"Cookie", "theme=dark; session=sess-cookie-value", "sess-cookie-value"},
				{"Authorization", "HMAC-SHA256 Credential=AKID/2026, SignedHeaders=host, Signature=hmac-signature-value", "hmac-signature-value"},
			} {
				hdr := http.Header{}
				hdr.Set(h.name, h.value)
				err := connectErr(t, refusing(t, http.StatusUnauthorized, "unknown "+h.secret), actors.WithHeaders(hdr))
				if text := fmt.Sprintf("%v %+v", err, err); strings.Contains(text, h.secret) || !strings.Contains(text, "401") {
					t.Fatalf("%s: %s", h.name, text)
				}
			}
		}},
		{"venue echoes a header secret with lower-case percent-escapes", "masked", func(t *testing.T) {
			hdr := http.Header{}
			hdr.Set("X-Signature", "ab+cd/efghijkl==")
			err := connectErr(t, refusing(t, http.StatusUnauthorized, "bad ab%2bcd%2fefghijkl%3d%3d"), actors.WithHeaders(hdr))
			if strings.Contains(err.Error(), "efghijkl") {
				t.Fatal(err)
			}
		}},
		{"venue's error message names client_secret=x", "Error() and %#v mask it, Message keeps it", func(t *testing.T) {
			srv := wstest.NewServer()
			defer srv.Close()
			srv.Handle("public/auth", func(_ *wstest.Conn, _ json.RawMessage) (any, *wstest.RPCError) {
				return nil, &wstest.RPCError{Code: -32602, Message: "bad request: client_secret=msg-echo-value"}
			})
			c := connect(t, srv.URL())
			_, err := c.Call(ctx(t), "public/auth", map[string]string{"grant_type": "client_credentials"})
			var rpc *actors.RPCError
			if !errors.As(err, &rpc) || !strings.Contains(rpc.Message, "msg-echo-value") {
				t.Fatalf("got %v", err)
			}
			if text := fmt.Sprintf("%v %+v %#v %#v", err, err, err, rpc); strings.Contains(text, "msg-echo-value") {
				t.Fatal(text)
			}
		}},
		{"recorded frames: BitMEX authKeyExpires, Phemex user.auth, JSON in a string, BOM JSON, quoted passphrase", "secrets masked", func(t *testing.T) {
			out := recordOut(t, false,
				`{"op":"authKeyExpires","args":["bitmex-key-1",1662350400,"bitmex-sig-1"]}`,
				`{"method":"user.auth","params":["API","phemex-key-1","phemex-sig-1",1700000000],"id":1}`,
				`{"op":"request","payload":"{\"client_secret\":\"nested-secret-1\"}"}`,
				"\ufeff"+`{"password":{"v":"bom-secret-1"}}`,
				`passphrase="two words-1" ok`,
			)
			for _, s := range []string{"bitmex-key-1", "bitmex-sig-1", "phemex-key-1", "phemex-sig-1", "nested-secret-1", "bom-secret-1", "words-1"} {
				if strings.Contains(out, s) {
					t.Fatalf("the recording holds %q:\n%s", s, out)
				}
			}
		}},
		{"binary frames: a Bybit auth frame, opaque bytes, sent with SendBinary", "the UTF-8 one redacted, the opaque one a placeholder", func(t *testing.T) {
			out := recordOut(t, true, `{"op":"auth","args":["bin-key-1",1,"bin-sig-1"]}`, "\xff\xfeopaque-secret-1")
			var outs []record.Record
			_ = record.Replay(strings.NewReader(out), func(r record.Record) error {
				if r.Dir == record.DirOut {
					outs = append(outs, r)
				}
				return nil
			})
			if len(outs) != 2 || !outs[0].Binary || outs[1].Binary || !strings.Contains(outs[1].Data, "opaque binary frame") {
				t.Fatalf("records: %+v", outs)
			}
			for _, s := range []string{"bin-key-1", "bin-sig-1", "opaque-secret-1", "YmluLWtleS0x"} {
				if strings.Contains(out, s) {
					t.Fatalf("the recording holds %q", s)
				}
			}
		}},
		{"an 11 MB plain-text frame of password=x, then a small one, recorded", "the small one is delivered at once: redaction runs on the recorder's writer", func(t *testing.T) {
			big := []byte(strings.Repeat("password=x ", 1000000))
			var rec testutil.SyncBuffer
			c, got := serverSends(t, func(ctx context.Context, c *websocket.Conn) error {
				if err := c.Write(ctx, websocket.MessageText, big); err != nil {
					return err
				}
				return c.Write(ctx, websocket.MessageText, []byte("next"))
			}, actors.WithRecorder(&rec), actors.WithReadLimit(32<<20))
			next(t, got)
			if in := next(t, got); string(in.Data) != "next" {
				t.Fatalf("got %.20q", in.Data)
			}
			// The writer records both, redacted (waited for: it outlives a
			// Close whose wait runs out, and goleak checks afterwards).
			testutil.Eventually(t, 20*time.Second, "both recorded", func() bool { return strings.Contains(rec.String(), `"data":"next"`) })
			if h := c.Health(); h.RecordsDropped != 0 || strings.Contains(rec.String(), "password=x") {
				t.Fatalf("dropped %d, or a value kept", h.RecordsDropped)
			}
		}},
	}
	runRows(t, rows)
}
