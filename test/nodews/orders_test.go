package nodews

import (
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/deribit"
	"github.com/zenws/zenws/internal/testutil"
)

// ordersVenue is deribit_orders.js: a minimal Deribit with
// cancel-on-disconnect, open orders and the user's trade history, written
// from Deribit's docs. It returns the session's client, its session, a
// control client (no session) and the stream the session's handler got.
type ordersVenue struct {
	c, ctl *actors.Client
	s      *deribit.Session
	mu     sync.Mutex
	got    []actors.Inbound
}

func newOrdersVenue(t *testing.T) *ordersVenue {
	t.Helper()
	url := nodeVenue(t, "deribit_orders.js")
	v := &ordersVenue{}
	s, err := deribit.NewSession(deribit.Config{ClientID: "zenws-node", ClientSecret: "node-secret",
		Heartbeat: 200 * time.Millisecond, AllowShortHeartbeat: true, MinRefresh: deribit.MinMinRefresh})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	v.s = s
	v.c, _ = connect(t, url, append(s.Options(), actors.WithRetryCount(1000), actors.WithHandler(func(in actors.Inbound) {
		v.mu.Lock()
		v.got = append(v.got, in)
		v.mu.Unlock()
	}))...)
	v.ctl, _ = connect(t, url)
	return v
}

func (v *ordersVenue) stream() []actors.Inbound {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.got)
}

type ordersState struct {
	Connections, Arms int
	Orders            []map[string]any
	Trades            []struct {
		TradeID string `json:"trade_id"`
	}
}

func (v *ordersVenue) state(t *testing.T) ordersState {
	t.Helper()
	var st ordersState
	v.call(t, "test/state", nil, &st)
	return st
}

func (v *ordersVenue) call(t *testing.T, method string, params, out any) {
	t.Helper()
	res, err := v.ctl.Call(ctx(t), method, params)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	if out != nil {
		if err := json.Unmarshal(res, out); err != nil {
			t.Fatalf("%s: %s: %v", method, res, err)
		}
	}
}

func (v *ordersVenue) fill(t *testing.T, id string) string {
	t.Helper()
	var tr struct {
		TradeID string `json:"trade_id"`
	}
	v.call(t, "test/fill", map[string]any{"order_id": id, "amount": 1}, &tr)
	return tr.TradeID
}

// down takes the session's connection away (the venue refuses new ones)
// while fn runs, then lets the client back.
func (v *ordersVenue) down(t *testing.T, fn func()) {
	t.Helper()
	gen := v.c.Health().Generation
	v.call(t, "test/down", nil, nil)
	testutil.Eventually(t, 10*time.Second, "down", func() bool { return v.c.State() != actors.StateConnected })
	fn()
	v.call(t, "test/up", nil, nil)
	testutil.Eventually(t, 10*time.Second, "reconnected", func() bool {
		return v.c.Health().Generation > gen && v.c.State() == actors.StateConnected
	})
}

func orderState(st ordersState, id string) map[string]any {
	for _, o := range st.Orders {
		if o["order_id"] == id {
			return o
		}
	}
	return nil
}

// Cancel-on-disconnect armed on every connection of a peer we did not
// shape: a lost connection cancels its orders there, the reconnect arms
// again, and an order is refused while the client has no connection.
func TestCancelOnDisconnectWithNodeWS(t *testing.T) {
	v := newOrdersVenue(t)
	if st := v.state(t); st.Arms != 1 || v.s.Stats().Arms != 1 {
		t.Fatalf("arms %d (session %d), want 1 for the first connection", st.Arms, v.s.Stats().Arms)
	}
	res, err := v.s.Buy(ctx(t), map[string]any{"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 50000})
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Order struct {
			OrderID string `json:"order_id"`
		}
	}
	if err := json.Unmarshal(res, &r); err != nil || r.Order.OrderID == "" {
		t.Fatalf("buy: %s %v", res, err)
	}
	var other map[string]any
	v.call(t, "test/place", map[string]any{"instrument_name": "BTC-PERPETUAL", "amount": 1}, &other)

	v.down(t, func() {
		if _, err := v.s.Buy(ctx(t), map[string]any{"instrument_name": "BTC-PERPETUAL", "amount": 1}); !errors.Is(err, deribit.ErrNotArmed) {
			t.Errorf("Buy with no connection: %v", err)
		}
	})
	st := v.state(t)
	if o := orderState(st, r.Order.OrderID); o["order_state"] != "cancelled" || o["cancel_reason"] != "cancel_on_disconnect" {
		t.Fatalf("the lost connection's order: %v", o)
	}
	if o := orderState(st, other["order_id"].(string)); o["order_state"] != "open" {
		t.Fatalf("another session's order: %v", o)
	}
	if st.Arms != 2 || len(st.Orders) != 2 || !v.s.Armed() {
		t.Fatalf("after the reconnect: arms %d, orders %d, armed %v", st.Arms, len(st.Orders), v.s.Armed())
	}
}

// The backfill after a reconnect against that peer: the trades made while
// down, in order and marked, then the open orders, then the report.
func TestBackfillWithNodeWS(t *testing.T) {
	v := newOrdersVenue(t)
	const ch = "user.trades.BTC-PERPETUAL.raw"
	if err := v.c.Subscribe(ctx(t), ch); err != nil {
		t.Fatal(err)
	}
	var o map[string]any
	v.call(t, "test/place", map[string]any{"instrument_name": "BTC-PERPETUAL", "amount": 5, "price": 40000}, &o)
	id := o["order_id"].(string)
	seen := v.fill(t, id)
	testutil.Eventually(t, 5*time.Second, "the live trade", func() bool { return len(v.stream()) >= 1 })
	var missed []string
	v.down(t, func() { missed = append(missed, v.fill(t, id), v.fill(t, id)) })
	testutil.Eventually(t, 5*time.Second, "the backfill's end", func() bool {
		got := v.stream()
		return got[len(got)-1].Channel == deribit.BackfillChannel
	})
	var trades, channels []string
	for _, m := range v.stream() {
		if !m.Backfill {
			continue
		}
		channels = append(channels, m.Channel)
		if m.Channel == ch {
			trades = append(trades, notifiedTrades(t, m.Data)...)
		}
	}
	if !slices.Equal(trades, missed) {
		t.Fatalf("backfilled %v, want %v (not %s, seen live)", trades, missed, seen)
	}
	if !slices.Equal(channels, []string{ch, deribit.OpenOrdersChannel, deribit.BackfillChannel}) {
		t.Fatalf("backfill messages %v", channels)
	}
	if r := v.s.LastBackfill(); !r.Complete || r.Trades != 2 || r.Orders != 1 {
		t.Fatalf("report %+v", r)
	}
}

// Trades made at every moment of a reconnect, on a peer we did not shape
// and with its own timing (before the drop, while down, right after each
// step of the new connection's setup, once live): each given once, in the
// venue's order, on both user.trades channels.
func TestBackfillEveryMomentWithNodeWS(t *testing.T) {
	v := newOrdersVenue(t)
	chs := []string{"user.trades.BTC-PERPETUAL.raw", "user.trades.future.BTC.raw", "user.orders.BTC-PERPETUAL.raw"}
	if err := v.c.Subscribe(ctx(t), chs...); err != nil {
		t.Fatal(err)
	}
	var o map[string]any
	v.call(t, "test/place", map[string]any{"instrument_name": "BTC-PERPETUAL", "amount": 50, "price": 40000}, &o)
	id := o["order_id"].(string)
	given := func() map[string][]string {
		out := map[string][]string{}
		for _, m := range v.stream() {
			if m.Kind != actors.KindNotification || (m.Channel != chs[0] && m.Channel != chs[1]) {
				continue
			}
			out[m.Channel] = append(out[m.Channel], notifiedTrades(t, m.Data)...)
		}
		return out
	}
	lastIs := func(tid string) func() bool {
		return func() bool {
			g := given()
			return len(g[chs[0]]) > 0 && g[chs[0]][len(g[chs[0]])-1] == tid && len(g[chs[1]]) > 0 && g[chs[1]][len(g[chs[1]])-1] == tid
		}
	}
	testutil.Eventually(t, 5*time.Second, "the live trade", lastIs(v.fill(t, id)))
	steps := []string{"public/auth", "private/enable_cancel_on_disconnect", "public/set_heartbeat", "private/subscribe",
		"private/get_user_trades_by_instrument", "private/get_user_trades_by_currency", "private/get_open_orders"}
	for _, m := range steps {
		v.call(t, "test/after", map[string]any{"method": m, "order_id": id, "amount": 1}, nil)
	}
	v.down(t, func() { v.fill(t, id); v.fill(t, id) })
	testutil.Eventually(t, 5*time.Second, "the trade made once live", lastIs(v.fill(t, id)))
	var want []string
	for _, tr := range v.state(t).Trades {
		want = append(want, tr.TradeID)
	}
	if len(want) != 1+2+len(steps)+1 {
		t.Fatalf("%d trades made (%v): a step's trade was not made", len(want), want)
	}
	g := given()
	for _, ch := range chs[:2] {
		if !slices.Equal(g[ch], want) {
			t.Fatalf("%s was given %v, want each of %v once, in order", ch, g[ch], want)
		}
	}
	if r := v.s.LastBackfill(); !r.Complete || r.Deduplicated < 1 {
		t.Fatalf("report %+v", r)
	}
}

// notifiedTrades are the trade ids of a user.trades notification.
func notifiedTrades(t *testing.T, data []byte) []string {
	t.Helper()
	var n struct {
		Params struct {
			Data []struct {
				TradeID string `json:"trade_id"`
			}
		}
	}
	if err := json.Unmarshal(data, &n); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tr := range n.Params.Data {
		ids = append(ids, tr.TradeID)
	}
	return ids
}
