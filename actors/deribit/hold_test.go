package deribit_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/deribit"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

const ordersChannel = "user.orders.BTC-PERPETUAL.raw"

// orders places n open orders from a client that then closes: with
// cancel-on-disconnect off they stay open, and its own connections are
// gone before the reconnect under test (the simulator's step hooks fire
// on the client under test alone).
func orders(t *testing.T, srv *wstest.Server, n int) []string {
	t.Helper()
	c, s, ids := openTrader(t, srv, n)
	s.Close()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "the trader gone", func() bool { return len(srv.Conns()) == 0 })
	return ids
}

// filler makes one trade at each step it is armed on, once.
type filler struct {
	t   *testing.T
	srv *wstest.Server

	mu     sync.Mutex
	orders []string
	next   int
	at     map[string]string // step -> trade id
}

func (f *filler) fill(step string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	tr, err := f.srv.FillOrder(f.orders[f.next/5], 1)
	if err != nil {
		f.t.Error(err)
		return ""
	}
	f.next++
	f.at[step] = tr.TradeID
	return tr.TradeID
}

// steps are the trades made, by step.
func (f *filler) steps() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.at)
}

// arm fills once right after the server answered method.
func (f *filler) arm(method string) {
	var once sync.Once
	f.srv.AfterAnswer(method, func(*wstest.Conn) { once.Do(func() { f.fill(method) }) })
}

// trades follows the trade ids each channel is given, and whether each
// came backfilled.
type trades struct {
	mu     sync.Mutex
	ids    map[string][]string
	filled map[string]bool // trade id -> backfilled (on the instrument channel)
	last   map[string]string
	report []deribit.BackfillReport
	view   map[string]float64 // order id -> filled amount, as the stream says
	back   []string           // order updates that took the view back
}

// order applies one order state to the view.
func (tr *trades) order(o map[string]any) {
	id, _ := o["order_id"].(string)
	filled, _ := o["filled_amount"].(float64)
	if had, ok := tr.view[id]; ok && filled < had {
		tr.back = append(tr.back, fmt.Sprintf("%s: %v after %v", id, filled, had))
	}
	tr.view[id] = filled
}

func (tr *trades) handle(t *testing.T) func(actors.Inbound) {
	return func(in actors.Inbound) {
		if in.Kind != actors.KindNotification {
			return
		}
		tr.mu.Lock()
		defer tr.mu.Unlock()
		switch {
		case in.Channel == deribit.BackfillChannel:
			var n struct {
				Params struct{ Data deribit.BackfillReport } `json:"params"`
			}
			if err := json.Unmarshal(in.Data, &n); err != nil {
				t.Error(err)
			}
			tr.report = append(tr.report, n.Params.Data)
		case in.Channel == deribit.OpenOrdersChannel || in.Channel == ordersChannel:
			var n struct {
				Params struct{ Data json.RawMessage } `json:"params"`
			}
			var list []map[string]any
			err := json.Unmarshal(in.Data, &n)
			switch {
			case err != nil:
			case len(n.Params.Data) > 0 && n.Params.Data[0] == '{': // user.orders.*.raw: one order
				list = make([]map[string]any, 1)
				err = json.Unmarshal(n.Params.Data, &list[0])
			default:
				err = json.Unmarshal(n.Params.Data, &list)
			}
			if err != nil {
				t.Error(err)
			}
			for _, o := range list {
				tr.order(o)
			}
		case strings.HasPrefix(in.Channel, "user.trades."):
			for _, id := range tradeIDs(t, in.Data) {
				tr.ids[in.Channel] = append(tr.ids[in.Channel], id)
				tr.last[in.Channel] = id
				if in.Channel == instrChannel {
					tr.filled[id] = in.Backfill
				}
			}
		}
	}
}

func (tr *trades) lastIs(id string) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.last[instrChannel] == id && tr.last[currencyChannel] == id
}

// Trades made at every moment around a reconnect (before the drop, while
// down, after each step of the new connection's setup: authentication,
// cancel-on-disconnect, heartbeat, the private subscribe, each backfill
// fetch; and once live) are each given once, in the venue's order, on
// both user.trades channels: backfilled when made before the fetch that
// found them, live after.
func TestBackfillEveryMomentOfAReconnect(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribitCredentials(clientID, secret))
	defer srv.Close()
	f := &filler{t: t, srv: srv, orders: orders(t, srv, 3), at: map[string]string{}}
	tr := &trades{ids: map[string][]string{}, filled: map[string]bool{}, last: map[string]string{}, view: map[string]float64{}}
	c, s := connect(t, srv.URL(), cfg(deribit.ClientSignature), actors.WithRetryCount(1000), actors.WithHandler(tr.handle(t)))
	ctx := testutil.Context(t, 10*time.Second)
	if err := c.Subscribe(ctx, instrChannel, currencyChannel, ordersChannel); err != nil {
		t.Fatal(err)
	}
	before := f.fill("before the drop")
	testutil.Eventually(t, 5*time.Second, "the live trade", func() bool { return tr.lastIs(before) })
	steps := []string{"public/auth", "private/enable_cancel_on_disconnect", "public/set_heartbeat", "private/subscribe",
		"private/get_user_trades_by_instrument", "private/get_user_trades_by_currency", "private/get_open_orders"}
	for _, m := range steps {
		f.arm(m)
	}
	down(t, srv, c, func() { f.fill("while down 1"); f.fill("while down 2") })
	after := f.fill("live")
	testutil.Eventually(t, 5*time.Second, "the trade made once live", func() bool { return tr.lastIs(after) })
	at := f.steps()

	var want []string
	for _, trd := range srv.Trades() {
		want = append(want, trd.TradeID)
	}
	if len(want) != 2+len(steps)+2 {
		t.Fatalf("%d trades made: %v (steps %v)", len(want), want, at)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, ch := range []string{instrChannel, currencyChannel} {
		if !slices.Equal(tr.ids[ch], want) {
			t.Fatalf("%s was given %v, want each of %v once, in order (steps %v)", ch, tr.ids[ch], want, at)
		}
	}
	// Made before the instrument channel's fetch: backfilled; after: live.
	for step, backfilled := range map[string]bool{
		"before the drop": false, "while down 1": true, "while down 2": true, "public/auth": true,
		"private/enable_cancel_on_disconnect": true, "public/set_heartbeat": true, "private/subscribe": true,
		"private/get_user_trades_by_instrument": false, "private/get_user_trades_by_currency": false,
		"private/get_open_orders": false, "live": false,
	} {
		if got := tr.filled[at[step]]; got != backfilled {
			t.Errorf("trade %s made at %q: backfilled %v, want %v", at[step], step, got, backfilled)
		}
	}
	// The trade made after the private subscribe came live too (held, and
	// left out), as did the one after the instrument fetch on the currency
	// channel, and the order updates shown by the open orders list.
	if len(tr.report) != 1 || !tr.report[0].Complete || tr.report[0].Deduplicated < 2 {
		t.Fatalf("reports %+v", tr.report)
	}
	if st := s.Stats(); st.Backfills != 1 || st.BackfillErrors != 0 {
		t.Fatalf("stats %+v", st)
	}
	// The view of the orders never went back (no stale update after the
	// open orders list), and ends where the venue's is.
	if len(tr.back) > 0 {
		t.Fatalf("order updates that took the view back: %v", tr.back)
	}
	for _, id := range f.orders {
		o, _ := srv.Order(id)
		if got, want := tr.view[id], o["filled_amount"]; got != want {
			t.Errorf("order %s: the stream says filled %v, the venue %v", id, got, want)
		}
	}
}

// More live notifications during the backfill than the hold keeps: the
// report says the backfill is incomplete, what was held and fetched is
// delivered once.
func TestBackfillHoldOverflowIncomplete(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribitCredentials(clientID, secret))
	defer srv.Close()
	f := &filler{t: t, srv: srv, orders: orders(t, srv, 1), at: map[string]string{}}
	tr := &trades{ids: map[string][]string{}, filled: map[string]bool{}, last: map[string]string{}, view: map[string]float64{}}
	conf := cfg(deribit.ClientSignature)
	conf.BackfillHold = 1
	c, s := connect(t, srv.URL(), conf, actors.WithRetryCount(1000), actors.WithHandler(tr.handle(t)))
	if err := c.Subscribe(testutil.Context(t, 5*time.Second), instrChannel, currencyChannel); err != nil {
		t.Fatal(err)
	}
	before := f.fill("before")
	testutil.Eventually(t, 5*time.Second, "the live trade", func() bool { return tr.lastIs(before) })
	var once sync.Once
	srv.AfterAnswer("private/subscribe", func(*wstest.Conn) {
		once.Do(func() { f.fill("a"); f.fill("b") }) // 2 or 4 notifications (the channels in one subscribe or two), 1 held
	})
	down(t, srv, c, func() {})
	after := f.fill("live")
	testutil.Eventually(t, 5*time.Second, "the trade made once live", func() bool { return tr.lastIs(after) })
	tr.mu.Lock()
	defer tr.mu.Unlock()
	at := f.steps()
	want := []string{before, at["a"], at["b"], after}
	for _, ch := range []string{instrChannel, currencyChannel} {
		if !slices.Equal(tr.ids[ch], want) {
			t.Fatalf("%s was given %v, want %v", ch, tr.ids[ch], want)
		}
	}
	if len(tr.report) != 1 || tr.report[0].Complete || !strings.Contains(tr.report[0].Error, "hold") {
		t.Fatalf("reports %+v", tr.report)
	}
	if st := s.Stats(); st.BackfillErrors != 1 {
		t.Fatalf("stats %+v", st)
	}
	if rep := s.LastBackfill(); rep.Complete || rep.Err == nil {
		t.Fatalf("last backfill %+v", rep)
	}
}
