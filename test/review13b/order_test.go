package review13b

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
)

// Login goes first on every connection, before the restore.
func TestLoginBeforeRestoreEveryConnection(t *testing.T) {
	pe := newPeer(t, nil)
	var perConn [][]string
	pe.handle = nil
	c, err := connect(t, pe.URL, actors.WithVenue(creds(t)), actors.WithRetryDelay(10*time.Millisecond), actors.WithMaxBackoff(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(testutil.Context(t, 3*time.Second), "tickers:A", "tickers:B", "account"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := c.Reconnect(testutil.Context(t, 3*time.Second)); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 5*time.Second, "reconnected", func() bool { return pe.conns.Load() >= int64(i+2) && c.State() == actors.StateConnected })
	}
	time.Sleep(100 * time.Millisecond)
	_ = perConn
	// split the frame log by login frames: each login must be followed by
	// the three subscribes before the next login
	var ops []string
	for _, f := range pe.snapshot() {
		if f == "ping" {
			continue
		}
		var r req
		_ = json.Unmarshal([]byte(f), &r)
		ops = append(ops, r.Op)
	}
	joined := strings.Join(ops, ",")
	t.Logf("ops: %s", joined)
	want := "login,subscribe,subscribe,subscribe"
	if strings.Count(joined, want) != 4 || !strings.HasPrefix(joined, "login") {
		t.Errorf("want 4 times %q, got %s", want, joined)
	}
	h := c.Health()
	for _, ch := range h.Channels {
		if ch.State != actors.ChannelActive {
			t.Errorf("channel %+v", ch)
		}
	}
}

// An unsubscribe of A confirmed for B (also wanted) removes nothing.
func TestUnsubscribeConfirmedForAnother(t *testing.T) {
	pe := newPeer(t, func(p *pconn, raw []byte, r req) bool {
		if r.Op == "unsubscribe" {
			_ = p.write(`{` + idField(r) + `"event":"unsubscribe","arg":{"channel":"tickers","instId":"B"}}`)
			return true
		}
		return false
	})
	c, err := connect(t, pe.URL, actors.WithVenue(public(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(testutil.Context(t, 3*time.Second), "tickers:A", "tickers:B"); err != nil {
		t.Fatal(err)
	}
	uerr := c.Unsubscribe(testutil.Context(t, 2*time.Second), "tickers:A")
	h := c.Health()
	t.Logf("unsubscribe: %v; channels %+v; ignored %d", uerr, h.Channels, h.ConfirmationsIgnored)
	found := false
	for _, ch := range h.Channels {
		if ch.Channel == "tickers:B" {
			found = ch.Wanted && ch.State == actors.ChannelActive
		}
	}
	if !found {
		t.Errorf("tickers:B lost by an unsubscribe confirmed for it")
	}
	if h.ConfirmationsIgnored == 0 {
		t.Errorf("ConfirmationsIgnored 0")
	}
}
