package review13b

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue/okx"
	"github.com/zenws/zenws/internal/testutil"
)

const (
	apiKey     = "ak-0123456789abcdefKEY"
	secretKey  = "SECRETsecret0123456789XYZ"
	passphrase = "Passphrase#Hunter2!"
)

func creds(t *testing.T) *okx.Venue {
	v, err := okx.New(okx.Config{APIKey: apiKey, SecretKey: secretKey, Passphrase: passphrase,
		Now: func() time.Time { return time.Unix(1700000000, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func public(t *testing.T) *okx.Venue {
	v, err := okx.New(okx.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

type inbox struct {
	mu  sync.Mutex
	in  []actors.Inbound
	cnt atomic.Int64
}

func (b *inbox) add(in actors.Inbound) {
	b.cnt.Add(1)
	b.mu.Lock()
	if len(b.in) < 10000 {
		b.in = append(b.in, in)
	}
	b.mu.Unlock()
}
func (b *inbox) all() []actors.Inbound {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]actors.Inbound(nil), b.in...)
}

func connect(t *testing.T, url string, opts ...actors.Option) (*actors.Client, error) {
	sys := testutil.NewSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := actors.Connect(ctx, sys, url, opts...)
	if c != nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

// Baseline: the documented happy path against our own peer.
func TestBaselineLoginSubscribePush(t *testing.T) {
	pe := newPeer(t, nil)
	var box inbox
	c, err := connect(t, pe.URL, actors.WithVenue(creds(t)), actors.WithHandler(box.add))
	if err != nil {
		t.Fatal(err)
	}
	if pe.logins.Load() != 1 {
		t.Fatalf("logins %d", pe.logins.Load())
	}
	ctx := testutil.Context(t, 5*time.Second)
	if err := c.Subscribe(ctx, "tickers:BTC-USDT", "account"); err != nil {
		t.Fatal(err)
	}
	t.Logf("frames: %q", pe.snapshot())
}

// A login that is never answered: Connect must end within its ctx.
func TestLoginNeverAnswered(t *testing.T) {
	pe := newPeer(t, func(p *pconn, raw []byte, r req) bool { return r.Op == "login" })
	sys := testutil.NewSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	c, err := actors.Connect(ctx, sys, pe.URL, actors.WithVenue(creds(t)), actors.WithRequestTimeout(500*time.Millisecond))
	if c != nil {
		defer c.Close()
	}
	el := time.Since(start)
	t.Logf("err=%v after %v logins=%d", err, el, pe.logins.Load())
	if err == nil {
		t.Fatal("connected without a login answer")
	}
	if el > 3*time.Second {
		t.Fatalf("Connect took %v with a 2s ctx", el)
	}
}

// Login refusals: wrong credentials fatal; and no retry storm either way.
func TestLoginRefusedCodes(t *testing.T) {
	for _, code := range []string{`"60009"`, `"60005"`, `"60024"`, `"60006"`, `"50011"`, `"abc"`, `60009`, `""`, `"0"`} {
		code := code
		t.Run(code, func(t *testing.T) {
			pe := newPeer(t, func(p *pconn, raw []byte, r req) bool {
				if r.Op != "login" {
					return false
				}
				ev := "error"
				if code == `"0"` {
					ev = "login" // claims success with an error event elsewhere: code 0 is success
				}
				_ = p.write(`{` + idField(r) + `"event":"` + ev + `","code":` + code + `,"msg":"Login failed. sign=` + okx.Sign(secretKey, "1700000000.000") + `","connId":"x"}`)
				return true
			})
			obs, logs := observer.New(zap.DebugLevel)
			sys := testutil.NewSystem(t)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			c, err := actors.Connect(ctx, sys, pe.URL, actors.WithVenue(creds(t)), actors.WithLogger(zap.New(obs)),
				actors.WithRetryDelay(10*time.Millisecond), actors.WithMaxBackoff(20*time.Millisecond))
			if c != nil {
				defer c.Close()
			}
			var fe *actors.FatalError
			t.Logf("code %s: err=%v fatal=%v logins=%d conns=%d", code, err, errors.As(err, &fe), pe.logins.Load(), pe.conns.Load())
			if pe.logins.Load() > 200 {
				t.Errorf("retry storm: %d logins in 3s", pe.logins.Load())
			}
			all := fmt.Sprint(err)
			for _, e := range logs.All() {
				all += e.Message + fmt.Sprint(e.ContextMap())
			}
			if c != nil {
				all += fmt.Sprintf("%+v", c.Health())
			}
			for _, s := range []string{secretKey, passphrase, apiKey, okx.Sign(secretKey, "1700000000.000")} {
				if strings.Contains(all, s) {
					t.Errorf("secret %q leaked", s)
				}
			}
		})
	}
}
