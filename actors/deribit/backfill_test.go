package deribit_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/deribit"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

const (
	instrChannel    = "user.trades.BTC-PERPETUAL.raw"
	currencyChannel = "user.trades.future.BTC.raw"
)

// stream collects what the handler is given.
type stream struct {
	mu  sync.Mutex
	all []actors.Inbound
}

func (s *stream) handle(in actors.Inbound) {
	s.mu.Lock()
	s.all = append(s.all, in)
	s.mu.Unlock()
}

func (s *stream) get() []actors.Inbound {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.all)
}

// tradeIDs are the trade ids of a user.trades notification.
func tradeIDs(t *testing.T, data []byte) []string {
	t.Helper()
	var n struct {
		Params struct {
			Data []struct {
				ID string `json:"trade_id"`
			} `json:"data"`
		} `json:"params"`
	}
	if err := json.Unmarshal(data, &n); err != nil {
		t.Fatalf("notification %s: %v", data, err)
	}
	var ids []string
	for _, tr := range n.Params.Data {
		ids = append(ids, tr.ID)
	}
	return ids
}

// down keeps the client away while fn runs: handshakes refused, the
// connection dropped; then lets it back and waits for the reconnect.
func down(t *testing.T, srv *wstest.Server, c *actors.Client, fn func()) {
	t.Helper()
	gen := c.Health().Generation
	srv.RefuseHandshakes(503)
	srv.DropAll()
	testutil.Eventually(t, 10*time.Second, "disconnected", func() bool { return c.State() != actors.StateConnected })
	fn()
	srv.RefuseHandshakes(0)
	testutil.Eventually(t, 10*time.Second, "reconnected", func() bool {
		return c.Health().Generation > gen && c.State() == actors.StateConnected
	})
}

// trader is a second client whose orders stay open when it drops
// (cancel-on-disconnect off), so that they can fill while the first is
// away.
func trader(t *testing.T, srv *wstest.Server, n int) []string {
	t.Helper()
	_, _, ids := openTrader(t, srv, n)
	return ids
}

// openTrader is trader, with its client and session.
func openTrader(t *testing.T, srv *wstest.Server, n int) (*actors.Client, *deribit.Session, []string) {
	t.Helper()
	conf := cfg(deribit.ClientCredentials)
	conf.DisableCancelOnDisconnect = true
	c, s := connect(t, srv.URL(), conf)
	var ids []string
	for range n {
		res, err := s.Buy(testutil.Context(t, 5*time.Second), order)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, orderID(t, res))
	}
	return c, s, ids
}

func fill(t *testing.T, srv *wstest.Server, id string, amount float64) string {
	t.Helper()
	tr, err := srv.FillOrder(id, amount)
	if err != nil {
		t.Fatal(err)
	}
	return tr.TradeID
}

func TestBackfillAfterReconnect(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribitCredentials(clientID, secret))
	defer srv.Close()
	in := &stream{}
	c, s := connect(t, srv.URL(), cfg(deribit.ClientSignature), actors.WithRetryCount(1000), actors.WithHandler(in.handle))
	ctx := testutil.Context(t, 10*time.Second)
	if err := c.Subscribe(ctx, instrChannel, currencyChannel); err != nil {
		t.Fatal(err)
	}
	orders := trader(t, srv, 2)
	seen := fill(t, srv, orders[0], 1) // delivered live, on both channels
	testutil.Eventually(t, 5*time.Second, "the live trade", func() bool { return len(in.get()) >= 2 })

	// A rotation misses nothing: no backfill.
	if err := c.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	var missed []string
	down(t, srv, c, func() {
		missed = append(missed, fill(t, srv, orders[0], 2), fill(t, srv, orders[1], 3), fill(t, srv, orders[0], 0))
	})
	gen := c.Health().Generation
	testutil.Eventually(t, 5*time.Second, "the backfill's end", func() bool {
		got := in.get()
		return len(got) > 0 && got[len(got)-1].Channel == deribit.BackfillChannel
	})
	byChannel := map[string][]string{}
	var order []string
	var rep deribit.BackfillReport
	for _, m := range in.get() {
		if !m.Backfill {
			if m.Generation == gen {
				t.Fatalf("a live message before the backfill ended: %s", m.Data)
			}
			continue
		}
		if m.Generation != gen || m.Kind != actors.KindNotification {
			t.Fatalf("backfill on generation %d (want only %d, the reconnect): %+v", m.Generation, gen, m)
		}
		order = append(order, m.Channel)
		switch m.Channel {
		case instrChannel, currencyChannel:
			byChannel[m.Channel] = append(byChannel[m.Channel], tradeIDs(t, m.Data)...)
		case deribit.OpenOrdersChannel:
			var n struct {
				Params struct{ Data []map[string]any } `json:"params"`
			}
			if err := json.Unmarshal(m.Data, &n); err != nil || len(n.Params.Data) != 1 || n.Params.Data[0]["order_id"] != orders[1] {
				t.Fatalf("open orders %s", m.Data)
			}
		case deribit.BackfillChannel:
			var n struct {
				Params struct{ Data deribit.BackfillReport } `json:"params"`
			}
			if err := json.Unmarshal(m.Data, &n); err != nil {
				t.Fatal(err)
			}
			rep = n.Params.Data
		}
	}
	for _, ch := range []string{instrChannel, currencyChannel} {
		if !slices.Equal(byChannel[ch], missed) {
			t.Fatalf("%s backfilled %v, want %v (not %s, seen live)", ch, byChannel[ch], missed, seen)
		}
	}
	if !slices.Equal(order[len(order)-2:], []string{deribit.OpenOrdersChannel, deribit.BackfillChannel}) {
		t.Fatalf("backfill order %v: trades, then open orders, then its end", order)
	}
	if !rep.Complete || rep.Trades != 6 || rep.Orders != 1 || rep.Generation != gen {
		t.Fatalf("report %+v", rep)
	}
	if st := s.Stats(); st.Backfills != 1 || st.BackfilledTrades != 6 || st.BackfillErrors != 0 {
		t.Fatalf("stats %+v: one backfill, for the reconnect only", st)
	}
	// The restored channels deliver live again, after the backfill.
	testutil.Eventually(t, 5*time.Second, "restored", func() bool {
		return slices.ContainsFunc(srv.Conns(), func(c *wstest.Conn) bool { return c.Subscribed(instrChannel) })
	})
	live := fill(t, srv, orders[1], 0)
	testutil.Eventually(t, 5*time.Second, "the live trade after the backfill", func() bool {
		got := in.get()
		last := got[len(got)-1]
		return !last.Backfill && last.Generation == gen && slices.Contains(tradeIDs(t, last.Data), live)
	})

	// Another reconnect with nothing missed: trades none, orders none.
	down(t, srv, c, func() {})
	testutil.Eventually(t, 5*time.Second, "the second backfill", func() bool { return s.Stats().Backfills == 2 })
	if r := s.LastBackfill(); !r.Complete || r.Trades != 0 || r.Orders != 0 {
		t.Fatalf("a reconnect with nothing missed: %+v", r)
	}
}

func TestBackfillPaginationBounded(t *testing.T) {
	srv := wstest.NewServer(wstest.WithDeribitCredentials(clientID, secret))
	defer srv.Close()
	in := &stream{}
	conf := cfg(deribit.ClientCredentials)
	conf.BackfillPageSize, conf.BackfillPages = 1, 2
	c, s := connect(t, srv.URL(), conf, actors.WithRetryCount(1000), actors.WithHandler(in.handle))
	if err := c.Subscribe(testutil.Context(t, 5*time.Second), instrChannel); err != nil {
		t.Fatal(err)
	}
	orders := trader(t, srv, 1)
	var missed []string
	down(t, srv, c, func() {
		for range 3 {
			missed = append(missed, fill(t, srv, orders[0], 1))
		}
	})
	// Counted once queued: the end's delivery says the handler has the rest.
	testutil.Eventually(t, 5*time.Second, "the backfill", func() bool {
		got := in.get()
		return s.Stats().Backfills == 1 && len(got) > 0 && got[len(got)-1].Channel == deribit.BackfillChannel
	})
	r := s.LastBackfill()
	var be *deribit.BackfillError
	if r.Complete || !errors.As(r.Err, &be) || be.Reason != deribit.BackfillTooManyPages || be.Channel != instrChannel || r.Trades != 2 {
		t.Fatalf("report %+v (%v)", r, r.Err)
	}
	var got []string
	for _, m := range in.get() {
		if m.Backfill && m.Channel == instrChannel {
			got = append(got, tradeIDs(t, m.Data)...)
		}
	}
	if !slices.Equal(got, missed[:2]) {
		t.Fatalf("delivered %v, want the first two of %v", got, missed)
	}
	if c.State() != actors.StateConnected {
		t.Fatal("a backfill stopped short ended the connection")
	}
}

// A hostile answer to the trade history is bounded and typed; the
// connection stays.
func TestBackfillHostileAnswers(t *testing.T) {
	trade := func(id, seq int, ts int64) string {
		return fmt.Sprintf(`{"trade_id":"%d","trade_seq":%d,"timestamp":%d,"instrument_name":"BTC-PERPETUAL"}`, id, seq, ts)
	}
	now := time.Now().UnixMilli() + 60_000
	for _, tc := range []struct {
		name   string
		answer func(call int) string
		reason deribit.BackfillReason
	}{
		{"malformed", func(int) string { return `{"trades":"no","has_more":false}` }, deribit.BackfillMalformed},
		{"no has_more", func(int) string { return `{"trades":[]}` }, deribit.BackfillMalformed},
		{"a trade without ids", func(int) string { return `{"trades":[{"price":1}],"has_more":false}` }, deribit.BackfillMalformed},
		{"huge", func(int) string {
			return `{"trades":[` + strings.Repeat(trade(1, 1, now)+",", 5) + trade(2, 2, now) + `],"has_more":false}`
		}, deribit.BackfillTooLarge},
		{"over 4 MiB", func(int) string {
			return `{"trades":[],"has_more":false,"pad":"` + strings.Repeat("x", 5<<20) + `"}`
		}, deribit.BackfillTooLarge},
		{"has_more forever", func(call int) string {
			return `{"trades":[` + trade(call, call, now) + `],"has_more":true}`
		}, deribit.BackfillTooManyPages},
		{"backwards", func(int) string {
			return `{"trades":[` + trade(10, 5, now) + `,` + trade(9, 4, now) + `],"has_more":false}`
		}, deribit.BackfillBackwards},
		{"refused", func(int) string { return "" }, deribit.BackfillRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := wstest.NewServer(wstest.WithDeribitCredentials(clientID, secret),
				wstest.WithResponder("private/get_user_trades_by_instrument", func(*wstest.Conn, json.RawMessage) (any, *wstest.RPCError) {
					a := tc.answer(int(calls.Add(1)))
					if a == "" {
						return nil, &wstest.RPCError{Code: 10000, Message: "no"}
					}
					return json.RawMessage(a), nil
				}))
			defer srv.Close()
			conf := cfg(deribit.ClientCredentials)
			conf.BackfillPageSize, conf.BackfillPages = 5, 3
			conf.Heartbeat = 2 * time.Second // a 5 MiB answer takes a while under -race
			c, s := connect(t, srv.URL(), conf, actors.WithRetryCount(1000))
			if err := c.Subscribe(testutil.Context(t, 5*time.Second), instrChannel); err != nil {
				t.Fatal(err)
			}
			down(t, srv, c, func() {})
			testutil.Eventually(t, 5*time.Second, "the backfill", func() bool { return s.Stats().Backfills == 1 })
			r := s.LastBackfill()
			var be *deribit.BackfillError
			if r.Complete || !errors.As(r.Err, &be) || be.Reason != tc.reason || s.Stats().BackfillErrors != 1 {
				t.Fatalf("report %+v (%v), want reason %v", r, r.Err, tc.reason)
			}
			if n := calls.Load(); n > 3 {
				t.Fatalf("%d calls for a bound of 3 pages", n)
			}
			if c.State() != actors.StateConnected || c.Health().Generation != 2 {
				t.Fatalf("state %v generation %d: the connection must stay", c.State(), c.Health().Generation)
			}
		})
	}
}
