package review15b

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/deribit"
	"github.com/zenws/zenws/internal/testutil"
)

const tradesCh = "user.trades.BTC-PERPETUAL.raw"
const ordersCh = "user.orders.BTC-PERPETUAL.raw"

type trade struct {
	ID   string `json:"trade_id"`
	Seq  int64  `json:"trade_seq"`
	TS   int64  `json:"timestamp"`
	Inst string `json:"instrument_name"`
	Amt  int    `json:"amount"`
}

// tradeVenue keeps a trade history and pushes each new trade on every
// connection subscribed to tradesCh; it answers the backfill's fetch from
// the history. Hooks let a test bend the answer.
type tradeVenue struct {
	p       *peer
	mu      sync.Mutex
	hist    []trade
	fetches atomic.Int64
	// pushDelay: the time between a trade entering the history and its
	// notification being sent (a notification in flight).
	pushDelay time.Duration
	// page, when set, answers a fetch instead (start_seq, count); ok false:
	// the default.
	page func(c *pconn, r rq, startSeq int64, count int) (string, bool)
}

func newTradeVenue(t *testing.T) *tradeVenue {
	v := &tradeVenue{p: newPeer(t)}
	v.p.onReq = v.onReq
	return v
}

func (v *tradeVenue) onReq(c *pconn, r rq) bool {
	if r.Method != "private/get_user_trades_by_instrument" {
		return false
	}
	v.fetches.Add(1)
	var pr struct {
		StartSeq *int64 `json:"start_seq"`
		StartTS  *int64 `json:"start_timestamp"`
		Count    int    `json:"count"`
	}
	_ = json.Unmarshal(r.Params, &pr)
	start := int64(1)
	if pr.StartSeq != nil {
		start = *pr.StartSeq
	}
	if v.page != nil {
		if res, ok := v.page(c, r, start, pr.Count); ok {
			if res != "" {
				c.result(r, res)
			}
			return true
		}
	}
	v.mu.Lock()
	out := []trade{}
	more := false
	for _, tr := range v.hist {
		if pr.StartSeq == nil && pr.StartTS != nil && tr.TS < *pr.StartTS {
			continue
		}
		if tr.Seq >= start {
			if len(out) == pr.Count {
				more = true
				break
			}
			out = append(out, tr)
		}
	}
	v.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"trades": out, "has_more": more})
	c.result(r, string(b))
	return true
}

// trade makes the next trade and pushes it where subscribed.
func (v *tradeVenue) trade() {
	v.mu.Lock()
	n := int64(len(v.hist) + 1)
	tr := trade{ID: fmt.Sprintf("T%d", n), Seq: n, TS: time.Now().UnixMilli(), Inst: "BTC-PERPETUAL", Amt: 1}
	v.hist = append(v.hist, tr)
	v.mu.Unlock()
	if v.pushDelay > 0 {
		time.Sleep(v.pushDelay)
	}
	b, _ := json.Marshal([]trade{tr})
	for _, c := range v.p.all() {
		if c.subscribed(tradesCh) {
			_ = c.note(tradesCh, string(b))
		}
	}
}

func (v *tradeVenue) total() int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return int64(len(v.hist))
}

func bfCfg() deribit.Config {
	c := creds()
	c.DisableBackfill = false
	return c
}

// seqs reads the trade_seqs the handler was given on tradesCh, in order, and
// the backfill end reports.
func seqs(msgs []actors.Inbound) (out []int64, reports []deribit.BackfillReport) {
	for _, m := range msgs {
		if m.Kind != actors.KindNotification {
			continue
		}
		var n struct {
			Params struct {
				Data json.RawMessage `json:"data"`
			} `json:"params"`
		}
		_ = json.Unmarshal(m.Data, &n)
		switch m.Channel {
		case tradesCh:
			var ts []trade
			_ = json.Unmarshal(n.Params.Data, &ts)
			for _, tr := range ts {
				out = append(out, tr.Seq)
			}
		case deribit.BackfillChannel:
			var r deribit.BackfillReport
			_ = json.Unmarshal(n.Params.Data, &r)
			reports = append(reports, r)
		}
	}
	return
}

// checkOnce: 1..n, each once, in order.
func checkOnce(t *testing.T, got []int64, n int64) {
	t.Helper()
	seen := map[int64]int{}
	var bad []string
	prev := int64(0)
	for i, s := range got {
		seen[s]++
		if s <= prev && len(bad) < 10 {
			bad = append(bad, fmt.Sprintf("#%d: seq %d after %d", i, s, prev))
		}
		if s > prev {
			prev = s
		}
	}
	var missing, dup []int64
	for s := int64(1); s <= n; s++ {
		switch {
		case seen[s] == 0:
			missing = append(missing, s)
		case seen[s] > 1:
			dup = append(dup, s)
		}
	}
	if len(missing)+len(dup)+len(bad) > 0 {
		if len(missing) > 10 {
			missing = missing[:10]
		}
		if len(dup) > 10 {
			dup = dup[:10]
		}
		t.Errorf("of %d trades: missing %v, twice %v, out of order %v", n, missing, dup, bad)
	}
}

func startTrades(t *testing.T, v *tradeVenue, opts ...actors.Option) (*actors.Client, *deribit.Session, *inbox) {
	t.Helper()
	in := &inbox{}
	cl, s := spawnSession(t, v.p, bfCfg(), append([]actors.Option{actors.WithHandler(in.handler)}, opts...)...)
	if err := cl.WaitConnected(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := cl.Subscribe(ctx(t), tradesCh); err != nil {
		t.Fatal(err)
	}
	return cl, s, in
}

// A trade every millisecond or two, the connection dropped 10 times: on the
// consumer's side every trade exactly once, in order.
func TestBackfillEveryTradeOnceThroughDrops(t *testing.T) {
	v := newTradeVenue(t)
	v.pushDelay = 2 * time.Millisecond
	cl, s, in := startTrades(t, v)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			v.trade()
			time.Sleep(time.Millisecond)
		}
	}()
	for i := 0; i < 20; i++ {
		time.Sleep(150 * time.Millisecond)
		v.p.dropAll()
	}
	time.Sleep(150 * time.Millisecond)
	close(stop)
	wg.Wait()
	_ = cl.WaitConnected(ctx(t))
	// One last reconnect picks up anything the last drop cut.
	v.p.dropAll()
	n := v.total()
	testutil.Eventually(t, 5*time.Second, "all trades", func() bool {
		got, _ := seqs(in.snapshot())
		return len(got) > 0 && got[len(got)-1] >= n
	})
	time.Sleep(100 * time.Millisecond)
	got, reps := seqs(in.snapshot())
	checkOnce(t, got, n)
	if t.Failed() {
		dumpDups(t, in.snapshot())
	}
	for _, r := range reps {
		if !r.Complete {
			t.Errorf("report incomplete: %+v", r)
		}
	}
	t.Logf("%d trades, %d backfills (%d backfilled), fetches %d", n, s.Stats().Backfills, s.Stats().BackfilledTrades, v.fetches.Load())
}

// has_more true forever: stopped at the page bound, reported, connected.
func TestBackfillHasMoreForever(t *testing.T) {
	v := newTradeVenue(t)
	var pages atomic.Int64
	v.page = func(c *pconn, r rq, start int64, count int) (string, bool) {
		if c.n == 1 {
			return "", false
		}
		pages.Add(1)
		var out []trade
		for i := 0; i < count; i++ {
			sq := start + int64(i)
			out = append(out, trade{ID: fmt.Sprintf("X%d", sq), Seq: sq, TS: time.Now().UnixMilli() + sq, Inst: "BTC-PERPETUAL"})
		}
		b, _ := json.Marshal(map[string]any{"trades": out, "has_more": true})
		return string(b), true
	}
	cl, s, _ := startTrades(t, v)
	v.trade()
	testutil.Eventually(t, 2*time.Second, "first trade", func() bool { return len(v.hist) == 1 })
	time.Sleep(50 * time.Millisecond)
	v.p.dropAll()
	testutil.Eventually(t, 5*time.Second, "a backfill", func() bool { return s.Stats().Backfills >= 1 })
	if err := cl.WaitConnected(ctx(t)); err != nil {
		t.Fatal(err)
	}
	r := s.LastBackfill()
	if r.Complete || pages.Load() > int64(deribit.DefaultBackfillPages)+1 {
		t.Fatalf("has_more forever: report %+v after %d pages", r, pages.Load())
	}
	t.Logf("report %+v, pages %d", r, pages.Load())
}

// Pages whose trade_seq goes back, and pages that repeat a trade: the
// consumer must not be given a trade twice.
func TestBackfillBadPages(t *testing.T) {
	now := time.Now().UnixMilli() + 10000
	cases := map[string]func(start int64) []trade{
		"backwards": func(start int64) []trade {
			return []trade{{ID: "B3", Seq: start + 1, TS: now}, {ID: "B2", Seq: start, TS: now}}
		},
		"duplicate in page": func(start int64) []trade {
			return []trade{{ID: "D", Seq: start, TS: now}, {ID: "D", Seq: start, TS: now}}
		},
		"already seen": func(start int64) []trade {
			return []trade{{ID: "T1", Seq: 1, TS: now}, {ID: "N", Seq: start, TS: now}}
		},
		"more than asked": func(start int64) []trade {
			var out []trade
			for i := 0; i < 500; i++ {
				out = append(out, trade{ID: fmt.Sprintf("M%d", i), Seq: start + int64(i), TS: now})
			}
			return out
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			v := newTradeVenue(t)
			v.page = func(c *pconn, r rq, start int64, count int) (string, bool) {
				if c.n == 1 {
					return "", false
				}
				ts := mk(start)
				for i := range ts {
					ts[i].Inst = "BTC-PERPETUAL"
				}
				b, _ := json.Marshal(map[string]any{"trades": ts, "has_more": false})
				return string(b), true
			}
			cl, s, in := startTrades(t, v)
			v.trade()
			testutil.Eventually(t, 2*time.Second, "trade seen", func() bool { g, _ := seqs(in.snapshot()); return len(g) == 1 })
			v.p.dropAll()
			testutil.Eventually(t, 5*time.Second, "a backfill", func() bool { return s.Stats().Backfills >= 1 })
			if err := cl.WaitConnected(ctx(t)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			got, _ := seqs(in.snapshot())
			ids := map[int64]int{}
			for _, g := range got {
				ids[g]++
			}
			for sq, k := range ids {
				if k > 1 {
					t.Errorf("trade_seq %d given %d times (report %+v)", sq, k, s.LastBackfill())
				}
			}
			for i := 1; i < len(got); i++ {
				if got[i] <= got[i-1] {
					t.Errorf("out of order: %v (report %+v)", got, s.LastBackfill())
					break
				}
			}
			t.Logf("given %v; report %+v", got, s.LastBackfill())
		})
	}
}

// Close while a backfill's fetch hangs: Close returns, nothing leaks.
func TestBackfillCloseDuringFetch(t *testing.T) {
	v := newTradeVenue(t)
	hung := make(chan struct{}, 1)
	v.page = func(c *pconn, r rq, start int64, count int) (string, bool) {
		if c.n == 1 {
			return "", false
		}
		select {
		case hung <- struct{}{}:
		default:
		}
		return "", true // never answered
	}
	cl, _, _ := startTrades(t, v)
	v.trade()
	time.Sleep(50 * time.Millisecond)
	v.p.dropAll()
	select {
	case <-hung:
	case <-time.After(5 * time.Second):
		t.Fatal("no fetch")
	}
	done := make(chan struct{})
	go func() { _ = cl.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close hangs during a backfill")
	}
}

// A reconnect during the backfill (the fetch's connection dropped), trades
// made at every step: every trade once once it settles.
func TestBackfillReconnectDuringFetch(t *testing.T) {
	v := newTradeVenue(t)
	var k atomic.Int64
	v.page = func(c *pconn, r rq, start int64, count int) (string, bool) {
		v.trade() // a trade made as the fetch is asked
		if c.n == 2 && k.Add(1) == 1 {
			go func() { _ = c.ws.CloseNow() }()
			return "", true
		}
		return "", false
	}
	cl, _, in := startTrades(t, v)
	for i := 0; i < 5; i++ {
		v.trade()
	}
	time.Sleep(50 * time.Millisecond)
	v.p.dropAll()
	for i := 0; i < 5; i++ {
		v.trade()
	}
	testutil.Eventually(t, 5*time.Second, "third connection", func() bool { return v.p.accepts.Load() >= 3 })
	if err := cl.WaitConnected(ctx(t)); err != nil {
		t.Fatal(err)
	}
	v.trade()
	n := v.total()
	testutil.Eventually(t, 3*time.Second, "all", func() bool { g, _ := seqs(in.snapshot()); return len(g) > 0 && g[len(g)-1] >= n })
	time.Sleep(100 * time.Millisecond)
	got, _ := seqs(in.snapshot())
	checkOnce(t, got, n)
}

// A hold that overflows: BackfillHold 5 while 50 live trades come during a
// slow fetch: reported incomplete; what was given still has no duplicate.
func TestBackfillHoldOverflow(t *testing.T) {
	v := newTradeVenue(t)
	v.page = func(c *pconn, r rq, start int64, count int) (string, bool) {
		if c.n == 1 {
			return "", false
		}
		for i := 0; i < 50; i++ {
			v.trade()
		}
		time.Sleep(100 * time.Millisecond)
		return "", false
	}
	in := &inbox{}
	cfg := bfCfg()
	cfg.BackfillHold = 5
	cl, s := spawnSession(t, v.p, cfg, actors.WithHandler(in.handler))
	if err := cl.WaitConnected(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := cl.Subscribe(ctx(t), tradesCh); err != nil {
		t.Fatal(err)
	}
	v.trade()
	time.Sleep(50 * time.Millisecond)
	v.p.dropAll()
	testutil.Eventually(t, 5*time.Second, "a backfill", func() bool { return s.Stats().Backfills >= 1 })
	_ = cl.WaitConnected(ctx(t))
	time.Sleep(100 * time.Millisecond)
	r := s.LastBackfill()
	got, _ := seqs(in.snapshot())
	ids := map[int64]int{}
	for _, g := range got {
		ids[g]++
		if ids[g] > 1 {
			t.Errorf("trade %d twice", g)
		}
	}
	t.Logf("report %+v; %d given", r, len(got))
	if int64(len(got)) < v.total() && r.Complete {
		t.Errorf("trades lost (%d of %d given) but the report says complete", len(got), v.total())
	}
}

// An order update held during the backfill that is older than the open
// orders list: dropped; a newer one: delivered.
func TestBackfillOlderOrderUpdateDropped(t *testing.T) {
	p := newPeer(t)
	p.onReq = func(c *pconn, r rq) bool {
		if c.n == 1 {
			return false
		}
		switch r.Method {
		case "private/get_open_orders":
			// live updates come while the list is fetched: one older, one newer
			_ = c.note(ordersCh, `{"order_id":"o1","order_state":"open","last_update_timestamp":100,"filled_amount":1,"amount":10,"instrument_name":"BTC-PERPETUAL"}`)
			_ = c.note(ordersCh, `{"order_id":"o1","order_state":"open","last_update_timestamp":300,"filled_amount":3,"amount":10,"instrument_name":"BTC-PERPETUAL"}`)
			c.result(r, `[{"order_id":"o1","order_state":"open","last_update_timestamp":200,"filled_amount":2,"amount":10,"instrument_name":"BTC-PERPETUAL"}]`)
			return true
		}
		return false
	}
	in := &inbox{}
	cl, s := spawnSession(t, p, bfCfg(), actors.WithHandler(in.handler))
	if err := cl.WaitConnected(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := cl.Subscribe(ctx(t), ordersCh); err != nil {
		t.Fatal(err)
	}
	p.dropAll()
	testutil.Eventually(t, 5*time.Second, "a backfill", func() bool { return s.Stats().Backfills >= 1 })
	_ = cl.WaitConnected(ctx(t))
	time.Sleep(100 * time.Millisecond)
	var ts []string
	for _, m := range in.snapshot() {
		if m.Kind == actors.KindNotification && strings.HasPrefix(m.Channel, "user.orders") {
			ts = append(ts, fmt.Sprintf("%s bf=%v %s", m.Channel, m.Backfill, string(m.Data)))
		}
	}
	var old, newer bool
	for _, x := range ts {
		if strings.Contains(x, `"last_update_timestamp":100`) && !strings.Contains(x, "bf=true") {
			old = true
		}
		if strings.Contains(x, `"last_update_timestamp":300`) {
			newer = true
		}
	}
	if old || !newer {
		t.Errorf("older update delivered %v, newer delivered %v:\n%s", old, newer, strings.Join(ts, "\n"))
	}
}

// A handler slower than the 2 s drain wait while the connection drops:
// a trade may come twice, never not at all.
func TestBackfillSlowHandlerNoHole(t *testing.T) {
	v := newTradeVenue(t)
	in := &inbox{}
	var first atomic.Bool
	h := func(m actors.Inbound) {
		if m.Channel == tradesCh && first.CompareAndSwap(false, true) {
			time.Sleep(2500 * time.Millisecond)
		}
		in.handler(m)
	}
	cl, s := spawnSession(t, v.p, bfCfg(), actors.WithHandler(h))
	if err := cl.WaitConnected(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := cl.Subscribe(ctx(t), tradesCh); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		v.trade()
	}
	time.Sleep(50 * time.Millisecond)
	v.p.dropAll()
	for i := 0; i < 20; i++ {
		v.trade()
	}
	testutil.Eventually(t, 8*time.Second, "a backfill", func() bool { return s.Stats().Backfills >= 1 })
	_ = cl.WaitConnected(ctx(t))
	v.trade()
	n := v.total()
	testutil.Eventually(t, 5*time.Second, "all", func() bool { g, _ := seqs(in.snapshot()); return len(g) > 0 && g[len(g)-1] >= n })
	got, _ := seqs(in.snapshot())
	seen := map[int64]bool{}
	for _, g := range got {
		seen[g] = true
	}
	for sq := int64(1); sq <= n; sq++ {
		if !seen[sq] {
			t.Errorf("trade %d never given (report %+v)", sq, s.LastBackfill())
		}
	}
	t.Logf("%d given for %d trades", len(got), n)
}

// 10,000 trades missed (10 pages of 1,000): every one given once, in order
// (100,000 holds too, in 26 s under -race: too slow for this suite).
func TestBackfillTenThousand(t *testing.T) {
	v := newTradeVenue(t)
	in := &inbox{}
	cfg := bfCfg()
	cfg.BackfillPages, cfg.BackfillPageSize = 10, 1000
	cl, s := spawnSession(t, v.p, cfg, actors.WithHandler(in.handler), actors.WithRequestTimeout(10*time.Second))
	if err := cl.WaitConnected(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := cl.Subscribe(ctx(t), tradesCh); err != nil {
		t.Fatal(err)
	}
	v.trade()
	testutil.Eventually(t, 2*time.Second, "first", func() bool { g, _ := seqs(in.snapshot()); return len(g) == 1 })
	v.p.refuse.Store(true)
	v.p.dropAll()
	v.mu.Lock()
	ts := time.Now().UnixMilli()
	for i := 2; i <= 10000; i++ {
		v.hist = append(v.hist, trade{ID: fmt.Sprintf("T%d", i), Seq: int64(i), TS: ts + int64(i/100), Inst: "BTC-PERPETUAL", Amt: 1})
	}
	v.mu.Unlock()
	v.p.refuse.Store(false)
	testutil.Eventually(t, 40*time.Second, "a backfill", func() bool { return s.Stats().Backfills >= 1 })
	time.Sleep(200 * time.Millisecond)
	got, _ := seqs(in.snapshot())
	checkOnce(t, got, v.total())
	if r := s.LastBackfill(); !r.Complete {
		t.Errorf("report %+v", r)
	}
}

// dumpDups logs each message carrying a trade given more than once.
func dumpDups(t *testing.T, msgs []actors.Inbound) {
	count := map[int64]int{}
	for _, m := range msgs {
		got, _ := seqs([]actors.Inbound{m})
		for _, g := range got {
			count[g]++
		}
	}
	for i, m := range msgs {
		got, _ := seqs([]actors.Inbound{m})
		for _, g := range got {
			if count[g] > 1 {
				t.Logf("#%d seq %d: backfill=%v generation=%d Seq=%d", i, g, m.Backfill, m.Generation, m.Seq)
			}
		}
		if m.Channel == deribit.BackfillChannel && i > 0 && i < len(msgs) {
			_, r := seqs([]actors.Inbound{m})
			if len(r) == 1 && r[0].Trades+r[0].Deduplicated > 0 {
				t.Logf("#%d report %+v", i, r[0])
			}
		}
	}
}

// By currency the backfill goes by timestamp: a trade seen live at
// millisecond T, and another of the same millisecond made while the
// connection was down: the second is given (once), the first not again.
func TestBackfillByCurrencySameMillisecond(t *testing.T) {
	const ch = "user.trades.future.BTC.raw"
	p := newPeer(t)
	T := time.Now().UnixMilli()
	hist := []trade{
		{ID: "A", Seq: 1, TS: T, Inst: "BTC-PERPETUAL", Amt: 1},
		{ID: "B", Seq: 2, TS: T, Inst: "BTC-PERPETUAL", Amt: 1},
		{ID: "C", Seq: 3, TS: T + 1, Inst: "BTC-PERPETUAL", Amt: 1},
	}
	var asked atomic.Value
	p.onReq = func(c *pconn, r rq) bool {
		if r.Method != "private/get_user_trades_by_currency" {
			return false
		}
		asked.Store(string(r.Params))
		var pr struct {
			StartTS int64 `json:"start_timestamp"`
		}
		_ = json.Unmarshal(r.Params, &pr)
		out := []trade{}
		for _, tr := range hist {
			if tr.TS >= pr.StartTS {
				out = append(out, tr)
			}
		}
		b, _ := json.Marshal(map[string]any{"trades": out, "has_more": false})
		c.result(r, string(b))
		return true
	}
	in := &inbox{}
	cl, s := spawnSession(t, p, bfCfg(), actors.WithHandler(in.handler))
	if err := cl.WaitConnected(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := cl.Subscribe(ctx(t), ch); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal([]trade{hist[0]})
	_ = p.last().note(ch, string(a))
	testutil.Eventually(t, 2*time.Second, "A", func() bool {
		return in.count(func(m actors.Inbound) bool { return m.Channel == ch }) == 1
	})
	p.dropAll()
	testutil.Eventually(t, 5*time.Second, "a backfill", func() bool { return s.Stats().Backfills >= 1 })
	_ = cl.WaitConnected(ctx(t))
	time.Sleep(100 * time.Millisecond)
	ids := map[string]int{}
	for _, m := range in.snapshot() {
		if m.Channel != ch {
			continue
		}
		var n struct {
			Params struct {
				Data []trade `json:"data"`
			} `json:"params"`
		}
		_ = json.Unmarshal(m.Data, &n)
		for _, tr := range n.Params.Data {
			ids[tr.ID]++
		}
	}
	if ids["A"] != 1 || ids["B"] != 1 || ids["C"] != 1 {
		t.Errorf("given %v, want A, B, C once each (asked %v; report %+v)", ids, asked.Load(), s.LastBackfill())
	}
}

// A rotation whose new connection's arm is refused: the rotation fails, and
// orders keep going on the old, armed connection only.
func TestRotationArmRefused(t *testing.T) {
	p := newPeer(t)
	var bad, buys atomic.Int64
	p.onReq = func(c *pconn, r rq) bool {
		switch r.Method {
		case "private/enable_cancel_on_disconnect":
			if c.n > 1 {
				c.refuse(r, 11050)
				return true
			}
		case "private/buy":
			buys.Add(1)
			if !c.armed.Load() {
				bad.Add(1)
			}
		}
		return false
	}
	cl, s := spawnSession(t, p, creds())
	if err := cl.WaitConnected(ctx(t)); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var fails atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := s.Buy(ctx(t), map[string]any{"instrument_name": "BTC-PERPETUAL", "amount": 1}); err != nil {
				fails.Add(1)
				time.Sleep(time.Millisecond)
			}
		}
	}()
	err := cl.Rotate(testutil.Context(t, 5*time.Second))
	time.Sleep(100 * time.Millisecond)
	close(done)
	wg.Wait()
	t.Logf("Rotate: %v; buys %d, failed %d, state %v", err, buys.Load(), fails.Load(), cl.State())
	if bad.Load() != 0 {
		t.Errorf("%d orders on the unarmed new connection", bad.Load())
	}
	if cl.State() != actors.StateConnected || !s.Armed() {
		t.Errorf("after a failed rotation: state %v, armed %v", cl.State(), s.Armed())
	}
}
