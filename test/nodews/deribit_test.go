package nodews

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/deribit"
	"github.com/zenws/zenws/actors/record"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport"
)

// deribitVenue connects a client with a deribit.Session to deribit.js
// (authentication per connection, test_request heartbeats; it has no
// cancel-on-disconnect nor order history: deribit_orders.js has them, see
// orders_test.go).
func deribitVenue(t *testing.T, opts ...actors.Option) (*actors.Client, *deribit.Session) {
	t.Helper()
	s, err := deribit.NewSession(deribit.Config{ClientID: "zenws-node", ClientSecret: "node-secret",
		Heartbeat: 200 * time.Millisecond, AllowShortHeartbeat: true, MinRefresh: deribit.MinMinRefresh,
		DisableCancelOnDisconnect: true, DisableBackfill: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	c, _ := connect(t, nodeVenue(t, "deribit.js"), append(append(s.Options(), actors.WithRetryCount(100)), opts...)...)
	return c, s
}

type deribitStats struct {
	Connections, Auths int
	Orders             []struct {
		OrderID    string `json:"order_id"`
		Connection uint64
	}
}

func deribitStatsOf(t *testing.T, c *actors.Client) deribitStats {
	t.Helper()
	res, err := c.Call(ctx(t), "stats", nil)
	if err != nil {
		t.Fatal(err)
	}
	var st deribitStats
	if err := json.Unmarshal(res, &st); err != nil {
		t.Fatalf("stats %s: %v", res, err)
	}
	return st
}

// While the venue refuses new connections after dropping the client's,
// the session is not authenticated (before: authenticated, with a 15-minute
// token); on the new connection it is again, with a new token.
func TestDeribitAuthEndsWithTheConnectionWithNodeWS(t *testing.T) {
	c, s := deribitVenue(t)
	if !s.Authenticated() || time.Until(s.Expires()) < 10*time.Minute {
		t.Fatalf("authenticated %v, expires in %v", s.Authenticated(), time.Until(s.Expires()))
	}
	if _, err := c.Call(ctx(t), "private/get_account_summary", nil); err != nil {
		t.Fatalf("a private call after auth: %v", err)
	}
	_, _ = c.Call(testutil.Context(t, time.Second), "refuse", map[string]int{"ms": 1500})
	testutil.Eventually(t, 5*time.Second, "the connection lost", func() bool { return c.State() != actors.StateConnected })
	if s.Authenticated() || !s.Expires().IsZero() {
		t.Fatalf("authenticated %v (expires %v) with no connection", s.Authenticated(), s.Expires())
	}
	testutil.Eventually(t, 10*time.Second, "reconnected and authenticated", func() bool {
		return c.State() == actors.StateConnected && s.Authenticated()
	})
	if st := deribitStatsOf(t, c); st.Auths != 2 || st.Connections != 2 {
		t.Fatalf("venue stats %+v: want one auth on each of 2 connections", st)
	}
}

// A recording says on which connection each order left, and the venue
// agrees (it numbers its connections as the client's generations go).
func TestRecordedOrdersCarryTheirConnectionWithNodeWS(t *testing.T) {
	path := filepath.Join(t.TempDir(), "orders.jsonl")
	c, _ := deribitVenue(t, actors.WithRecordFile(path))
	buy := func() {
		if _, err := c.Call(ctx(t), "private/buy", map[string]any{"instrument_name": "BTC-PERPETUAL", "amount": 10}); err != nil {
			t.Fatal(err)
		}
	}
	buy()
	_, _ = c.Call(testutil.Context(t, time.Second), "refuse", map[string]int{"ms": 200})
	testutil.Eventually(t, 10*time.Second, "reconnected", func() bool {
		return c.Health().Generation == 2 && c.State() == actors.StateConnected
	})
	buy()
	st := deribitStatsOf(t, c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var gens []uint64
	if err := record.Replay(f, func(r record.Record) error {
		if r.Dir == record.DirOut && strings.Contains(r.Data, `"private/buy"`) {
			gens = append(gens, r.Generation)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(st.Orders) != 2 || len(gens) != 2 {
		t.Fatalf("venue orders %+v, recorded on %v", st.Orders, gens)
	}
	for i, o := range st.Orders {
		if gens[i] != o.Connection {
			t.Fatalf("order %s left on connection %d (venue), recorded on %d", o.OrderID, o.Connection, gens[i])
		}
	}
}

// A cancelled ctx is context.Canceled, not a timeout; a deadline is both
// ErrTimeout and context.DeadlineExceeded (before: a cancel read "no
// response after 50ms ... timeout" and matched ErrTimeout).
func TestCancelAndDeadlineErrorsWithNodeWS(t *testing.T) {
	c, _ := deribitVenue(t)
	cctx, cancel := context.WithCancel(ctx(t))
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := c.Call(cctx, "silence", nil)
	if !errors.Is(err, context.Canceled) || errors.Is(err, actors.ErrTimeout) || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("cancelled: %v", err)
	}
	_, err = c.Call(testutil.Context(t, 50*time.Millisecond), "silence", nil)
	if !errors.Is(err, actors.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
}

// A venue that refuses every handshake: a first connect with RetryCount 2
// makes 3 dials and says so (before: "gave up after 3 reconnect attempts").
func TestFirstConnectGiveUpTextWithNodeWS(t *testing.T) {
	url := nodeVenue(t, "deribit.js", "refuse")
	_, err := actors.Connect(ctx(t), testutil.NewSystem(t), url,
		actors.WithRetryCount(2), actors.WithRetryDelay(20*time.Millisecond), actors.WithMaxBackoff(100*time.Millisecond))
	var gu *actors.GiveUpError
	if !errors.As(err, &gu) || gu.Attempts != 3 || !gu.FirstConnect ||
		!strings.Contains(err.Error(), "gave up connecting after 3 dial attempts (the first and 2 retries)") || strings.Contains(err.Error(), "reconnect") {
		t.Fatalf("Connect = %v", err)
	}
	var he *transport.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != 503 {
		t.Fatalf("last error %v, want the venue's 503", gu.Last)
	}
}
