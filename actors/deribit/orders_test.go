package deribit_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/deribit"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

var order = map[string]any{"instrument_name": "BTC-PERPETUAL", "amount": 10, "type": "limit", "price": 50000}

// orderID is the order_id of a private/buy result.
func orderID(t *testing.T, res json.RawMessage) string {
	t.Helper()
	var r struct {
		Order struct {
			ID string `json:"order_id"`
		} `json:"order"`
	}
	if err := json.Unmarshal(res, &r); err != nil || r.Order.ID == "" {
		t.Fatalf("buy result %s: %v", res, err)
	}
	return r.Order.ID
}

func TestCancelOnDisconnectArmedOnEveryConnection(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribitCredentials(clientID, secret))
	defer srv.Close()
	c, s := connect(t, srv.URL(), cfg(deribit.ClientCredentials), actors.WithRetryCount(50))
	ctx := testutil.Context(t, 10*time.Second)
	conns, err := srv.WaitConns(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Armed before the client reported itself connected.
	if !conns[0].CancelOnDisconnectArmed() || srv.CancelOnDisconnectArms() != 1 || s.Stats().Arms != 1 || !s.Armed() {
		t.Fatalf("first connection: armed %v, arms %d / %d", conns[0].CancelOnDisconnectArmed(), srv.CancelOnDisconnectArms(), s.Stats().Arms)
	}
	res, err := s.Buy(ctx, order)
	if err != nil {
		t.Fatal(err)
	}
	id := orderID(t, res)

	// A killed connection cancels its orders in the simulator; the
	// reconnect arms again.
	conns[0].Drop()
	if err := srv.WaitOrderState(ctx, id, "cancelled"); err != nil {
		t.Fatal(err)
	}
	if o, _ := srv.Order(id); o["cancel_reason"] != "cancel_on_disconnect" {
		t.Fatalf("order after the drop: %v", o)
	}
	for gen := uint64(2); gen <= 3; gen++ {
		testutil.Eventually(t, 10*time.Second, "reconnected", func() bool {
			return c.Health().Generation == gen && c.State() == actors.StateConnected
		})
		if got := s.Stats().Arms; got != gen || srv.CancelOnDisconnectArms() != int(gen) {
			t.Fatalf("generation %d: %d arms (server %d), want one per connection", gen, got, srv.CancelOnDisconnectArms())
		}
		conns, _ = srv.WaitConns(ctx, 1)
		if !conns[0].CancelOnDisconnectArmed() {
			t.Fatalf("generation %d not armed", gen)
		}
		srv.DropAll()
	}
}

// Arming refused: the attempt fails and is retried; meanwhile an order is
// refused with ErrNotArmed and nothing reaches the venue.
func TestArmingRefusedRetriesAndOrdersAreRefused(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribitCredentials(clientID, secret))
	defer srv.Close()
	c, s := connect(t, srv.URL(), cfg(deribit.ClientCredentials), actors.WithRetryCount(1000))
	ctx := testutil.Context(t, 10*time.Second)
	srv.RefuseCancelOnDisconnect(1 << 30)
	srv.DropAll()
	testutil.Eventually(t, 10*time.Second, "several refused attempts", func() bool { return c.Health().Generation >= 4 })
	if c.State() == actors.StateConnected {
		t.Fatal("connected with cancel-on-disconnect refused")
	}
	_, err := s.Buy(ctx, order)
	var nae *deribit.NotArmedError
	if !errors.Is(err, deribit.ErrNotArmed) || !errors.As(err, &nae) || nae.Method != "private/buy" {
		t.Fatalf("Buy while unarmed: %v", err)
	}
	if s.Armed() || srv.Orders() != 0 {
		t.Fatalf("armed %v, orders %d", s.Armed(), srv.Orders())
	}
	srv.RefuseCancelOnDisconnect(0)
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "armed", s.Armed)
	if _, err := s.Sell(ctx, order); err != nil {
		t.Fatal(err)
	}
	if srv.Orders() != 1 {
		t.Fatalf("orders %d", srv.Orders())
	}
}

// Turned off: nothing is armed, orders go on the connection as they are,
// and stay open when it drops.
func TestCancelOnDisconnectOff(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribitCredentials(clientID, secret))
	defer srv.Close()
	conf := cfg(deribit.ClientCredentials)
	conf.DisableCancelOnDisconnect = true
	c, s := connect(t, srv.URL(), conf)
	ctx := testutil.Context(t, 10*time.Second)
	res, err := s.Order(ctx, "private/buy", order)
	if err != nil {
		t.Fatal(err)
	}
	id := orderID(t, res)
	srv.DropAll()
	testutil.Eventually(t, 10*time.Second, "reconnected", func() bool {
		return c.Health().Generation == 2 && c.State() == actors.StateConnected
	})
	if o, _ := srv.Order(id); o["order_state"] != "open" || srv.CancelOnDisconnectArms() != 0 || s.Armed() {
		t.Fatalf("order %v, arms %d", o, srv.CancelOnDisconnectArms())
	}
}

// A planned rotation arms the new connection before the switch; the old
// one's close cancels its orders (the venue's rule), and orders go on the
// new one.
func TestRotationArmsTheNewConnection(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribitCredentials(clientID, secret))
	defer srv.Close()
	c, s := connect(t, srv.URL(), cfg(deribit.ClientCredentials))
	ctx := testutil.Context(t, 10*time.Second)
	res, err := s.Buy(ctx, order)
	if err != nil {
		t.Fatal(err)
	}
	before := orderID(t, res)
	if err := c.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if srv.CancelOnDisconnectArms() != 2 || s.Stats().Backfills != 0 {
		t.Fatalf("arms %d, backfills %d: want the new connection armed and no backfill", srv.CancelOnDisconnectArms(), s.Stats().Backfills)
	}
	if err := srv.WaitOrderState(ctx, before, "cancelled"); err != nil {
		t.Fatal(err)
	}
	res, err = s.Buy(ctx, order)
	if err != nil {
		t.Fatal(err)
	}
	after := orderID(t, res)
	if err := srv.WaitConnCount(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if o, _ := srv.Order(after); o["order_state"] != "open" {
		t.Fatalf("an order after the rotation: %v", o)
	}
}
