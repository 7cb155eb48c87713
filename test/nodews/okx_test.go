package nodews

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue/okx"
	"github.com/zenws/zenws/internal/testutil"
)

// The zenws client with the OKX venue against okx.js, an OKX written
// independently of the simulator and of the venue (issue 13).

func okxClient(t *testing.T, url, secret string, opts ...actors.Option) (*actors.Client, inbox, error) {
	t.Helper()
	v, err := okx.New(okx.Config{APIKey: okxJSKey, SecretKey: secret, Passphrase: okxJSPass})
	if err != nil {
		t.Fatal(err)
	}
	in := make(inbox, 256)
	opts = append([]actors.Option{
		actors.WithVenue(v), actors.WithHandler(in.handler),
		actors.WithRetryDelay(20 * time.Millisecond), actors.WithMaxBackoff(200 * time.Millisecond), actors.WithTimeout(2 * time.Second),
	}, opts...)
	c, err := actors.Connect(ctx(t), testutil.NewSystem(t), url, opts...)
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, in, err
}

func TestOKXVenueWithNodeWS(t *testing.T) {
	url := nodeVenue(t, "okx.js", "apiKey="+okxJSKey, "secretKey="+okxJSSecret, "passphrase="+okxJSPass, "idle=1000")
	c, in, err := okxClient(t, url, okxJSSecret, actors.WithHeartbeat(actors.HeartbeatText, 200*time.Millisecond))
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	err = c.Subscribe(ctx(t), "books5:BTC-USDT", "account", "candle7m:BTC-USDT")
	var pe *actors.PartialError
	if !errors.As(err, &pe) || !slices.Equal(pe.Applied, []string{"books5:BTC-USDT", "account"}) || !slices.Equal(pe.NotApplied, []string{"candle7m:BTC-USDT"}) {
		t.Fatalf("Subscribe = %v", err)
	}
	m := in.next(t, func(m actors.Inbound) bool { return m.Kind == actors.KindNotification })
	if m.Channel != "books5:BTC-USDT" && m.Channel != "account" {
		t.Fatalf("push channel %q: %s", m.Channel, m.Data)
	}
	// Past okx.js's idle limit (1 s) on the text heartbeat alone.
	time.Sleep(1500 * time.Millisecond)
	res, err := c.Request(ctx(t), []byte(`{"id":"st1","op":"stats"}`))
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	var st struct{ Pings, IdleCloses, Logins int }
	if err := json.Unmarshal(res, &st); err != nil {
		t.Fatal(err)
	}
	if st.Pings < 3 || st.IdleCloses != 0 || st.Logins != 1 || c.Health().Generation != 1 {
		t.Fatalf("venue stats %+v, generation %d", st, c.Health().Generation)
	}
	if cs := c.Health().Channels; len(cs) != 3 || c.Health().Heartbeat != actors.HeartbeatText {
		t.Fatalf("channels %+v, heartbeat %v", cs, c.Health().Heartbeat)
	}
}

func TestOKXWrongSecretWithNodeWS(t *testing.T) {
	url := nodeVenue(t, "okx.js", "apiKey="+okxJSKey, "secretKey="+okxJSSecret, "passphrase="+okxJSPass)
	_, _, err := okxClient(t, url, "not-the-secret")
	var fe *actors.FatalError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "60009") {
		t.Fatalf("Connect = %v, want a FatalError with 60009", err)
	}
}

// A refused login answered by an error event without an id (loginErrorId=0)
// still stops the client at once with the venue's 60009, well before the
// request timeout (before: the login waited for its timeout, and was
// retried as a transient failure).
func TestOKXWrongSecretWithoutIDWithNodeWS(t *testing.T) {
	url := nodeVenue(t, "okx.js", "apiKey="+okxJSKey, "secretKey="+okxJSSecret, "passphrase="+okxJSPass, "loginErrorId=0")
	_, _, err := okxClient(t, url, "not-the-secret", actors.WithRequestTimeout(time.Minute))
	var fe *actors.FatalError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "60009") {
		t.Fatalf("Connect = %v, want a FatalError with 60009", err)
	}
}
