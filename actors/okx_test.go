package actors_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue/okx"
	"github.com/zenws/zenws/transport/wstest"
)

// OKX as a third venue, written against package venue alone (issue 13):
// the client logs in before it restores, correlates OKX's events, speaks
// the text heartbeat, delivers pushes as notifications, and keeps the
// credentials out of its logs.

const (
	okxKey    = "okx-api-key-0001"
	okxSecret = "okx-secret-key-Zx81Lq"
	okxPass   = "okx-passphrase-77"
)

func okxVenue(t *testing.T, secret string) *okx.Venue {
	t.Helper()
	v, err := okx.New(okx.Config{APIKey: okxKey, SecretKey: secret, Passphrase: okxPass})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestOKXVenueAgainstTheSimulator(t *testing.T) {
	srv := wstest.NewServer(wstest.WithOKXCredentials(okxKey, okxSecret, okxPass), wstest.WithOKXIdle(time.Second))
	defer srv.Close()
	core, logs := observer.New(zapcore.DebugLevel)
	box := newInbox()
	c := connect(t, newSystem(t), srv.URL(), fast(actors.WithVenue(okxVenue(t, okxSecret)),
		actors.WithHeartbeat(actors.HeartbeatText, 200*time.Millisecond),
		actors.WithLogger(zap.New(core)), actors.WithHandler(box.handle))...)
	conns, err := srv.WaitConns(ctxT(t, 2*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	if !conns[0].OKXLoggedIn() {
		t.Fatal("connected without logging in")
	}
	// A private channel needs the login; a mistyped one is refused.
	err = c.Subscribe(ctxT(t, 2*time.Second), "tickers:BTC-USDT", "orders", "tickrs:ETH-USDT")
	var pe *actors.PartialError
	if !errors.As(err, &pe) || !slices.Equal(pe.Applied, []string{"tickers:BTC-USDT", "orders"}) || !slices.Equal(pe.NotApplied, []string{"tickrs:ETH-USDT"}) {
		t.Fatalf("Subscribe = %v", err)
	}
	var rpcErr *actors.RPCError
	if !errors.As(err, &rpcErr) || rpcErr.Code != 60018 {
		t.Fatalf("the refusal is %v, want OKX's 60018", err)
	}
	if n := srv.PublishOKX("tickers", "BTC-USDT", map[string]string{"last": "1"}); n != 1 {
		t.Fatalf("published to %d connections", n)
	}
	in := box.next(t)
	if in.Kind != actors.KindNotification || in.Channel != "tickers:BTC-USDT" {
		t.Fatalf("push delivered as %v %q: %s", in.Kind, in.Channel, in.Data)
	}
	// The text heartbeat keeps the connection past OKX's idle limit (1 s
	// here), and its pongs are consumed.
	time.Sleep(1500 * time.Millisecond)
	if h := c.Health(); h.Generation != 1 || h.HeartbeatFailures != 0 || conns[0].OKXPings() < 3 || conns[0].OKXIdleClosed() {
		t.Fatalf("generation %d, failures %d, pings %d, idle closed %v", h.Generation, h.HeartbeatFailures, conns[0].OKXPings(), conns[0].OKXIdleClosed())
	}
	for _, m := range box.all() {
		if string(m.Data) == "pong" {
			t.Fatal("a pong reached the handler")
		}
	}
	// A reconnect logs in again before the restore: the private channel
	// comes back.
	srv.DropAll()
	eventually(t, 5*time.Second, "reconnected with its channels", func() bool {
		cs := srv.Conns()
		return c.Health().Generation == 2 && len(cs) == 1 && cs[0].OKXLoggedIn() && cs[0].OKXSubscribed("orders", "") && cs[0].OKXSubscribed("tickers", "BTC-USDT")
	})
	for _, e := range logs.All() {
		line := e.Message
		for _, f := range e.Context {
			line += " " + f.String + " " + f.Key
			if err, ok := f.Interface.(error); ok {
				line += err.Error()
			}
		}
		for _, secret := range []string{okxSecret, okxPass, okxKey} {
			if strings.Contains(line, secret) {
				t.Fatalf("a log line shows a credential: %s", line)
			}
		}
	}
}

// Wrong credentials do not get better by retrying: the client stops.
func TestOKXWrongCredentialsAreFatal(t *testing.T) {
	srv := wstest.NewServer(wstest.WithOKXCredentials(okxKey, okxSecret, okxPass))
	defer srv.Close()
	_, err := actors.Connect(ctxT(t, 5*time.Second), newSystem(t), srv.URL(), fast(actors.WithVenue(okxVenue(t, "wrong-secret")))...)
	var fe *actors.FatalError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "60009") {
		t.Fatalf("Connect with a wrong secret = %v, want a FatalError with OKX's 60009", err)
	}
	if srv.TotalConns() != 1 {
		t.Fatalf("%d connections: a fatal login must not be retried", srv.TotalConns())
	}
}

// A venue's text heartbeat is the client's unless WithHeartbeat says
// otherwise; HeartbeatText without such a venue is a config error.
func TestVenueHeartbeatIsTheDefault(t *testing.T) {
	cfg, err := actors.NewConfig("ws://127.0.0.1:1/", actors.WithVenue(okxVenue(t, okxSecret)))
	if err != nil || cfg.Heartbeat != actors.HeartbeatText || cfg.HeartbeatInterval != okx.PingEvery {
		t.Fatalf("heartbeat %v every %v, %v; want text every %v", cfg.Heartbeat, cfg.HeartbeatInterval, err, okx.PingEvery)
	}
	cfg, err = actors.NewConfig("ws://127.0.0.1:1/", actors.WithVenue(okxVenue(t, okxSecret)), actors.WithHeartbeat(actors.HeartbeatPingPong, time.Second))
	if err != nil || cfg.Heartbeat != actors.HeartbeatPingPong {
		t.Fatalf("WithHeartbeat did not win: %v, %v", cfg.Heartbeat, err)
	}
	_, err = actors.NewConfig("ws://127.0.0.1:1/", actors.WithHeartbeat(actors.HeartbeatText, time.Second))
	var ce *actors.ConfigError
	if !errors.As(err, &ce) || ce.Field != "Heartbeat" {
		t.Fatalf("HeartbeatText without a venue: %v", err)
	}
}
