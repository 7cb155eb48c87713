package review13c

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue/okx"
)

// An id-less login refusal with a code outside 60001-60009/60024 (OKX's
// 50101 "APIKey does not match current environment", a demo key on the
// live site) does not fail the login: Connect waits for the login's
// RequestTimeout (30 s) instead of failing at once.
func TestOKXIdlessRefusalOtherCode(t *testing.T) {
	for _, frame := range []string{
		`{"event":"error","code":"60009","msg":"Login failed."}`, // guard: fails at once
		`{"event":"error","code":"50101","msg":"APIKey does not match current environment."}`,
		`{"event":"error","code":"60032","msg":"API key doesn't exist."}`,
	} {
		t.Run(strings.Split(frame, `"`)[7], func(t *testing.T) {
			v, err := okx.New(okx.Config{APIKey: "ak-1234567", SecretKey: "sk-1234567", Passphrase: "pp-1234567"})
			if err != nil {
				t.Fatal(err)
			}
			pe := newRawPeer(t, func(rc *rawConn) {
				rc.serveJSONRPC(func(rc *rawConn, raw []byte, r rpcReq) bool {
					if strings.Contains(string(raw), `"op":"login"`) {
						_ = rc.text(frame)
						return true
					}
					return false
				})
			})
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
			defer cancel()
			c, err := actors.Connect(ctx, newSys(t), pe.URL, actors.WithVenue(v), actors.WithRetryCount(0),
				actors.WithRequestTimeout(30*time.Second), actors.Option(func(c *actors.Config) { c.HostDialRate = 0 }))
			if err == nil {
				_ = c.Close()
				t.Fatal("connected")
			}
			if ctx.Err() != nil {
				t.Errorf("the refusal %s did not fail the login: Connect waited out its 8 s ctx (%v)", frame, err)
			}
		})
	}
}
