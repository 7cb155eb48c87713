package review15

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
)

// Freshness rules are validated: at least 10 ms, at most 64 rules.
func TestFreshnessRulesValidated(t *testing.T) {
	bad := map[string][]actors.Option{
		"zero":     {actors.WithFreshness("book.*", 0)},
		"negative": {actors.WithFreshness("book.*", -time.Second)},
		"9ms":      {actors.WithFreshness("book.*", 9*time.Millisecond)},
		"min int":  {actors.WithFreshness("book.*", math.MinInt64)},
	}
	var many []actors.Option
	for i := 0; i < 65; i++ {
		many = append(many, actors.WithFreshness(fmt.Sprintf("p%d.*", i), time.Second))
	}
	bad["65 rules"] = many
	for name, opts := range bad {
		_, err := actors.NewConfig("ws://127.0.0.1:1/", opts...)
		var ce *actors.ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s: err %v, want a *ConfigError", name, err)
		}
	}
	good := [][]actors.Option{
		{actors.WithFreshness("book.*", 10*time.Millisecond)},
		{actors.WithFreshness("book.*", math.MaxInt64)},
		{actors.WithFreshness("*", time.Second)},
		many[:64],
	}
	for i, opts := range good {
		if _, err := actors.NewConfig("ws://127.0.0.1:1/", opts...); err != nil {
			t.Errorf("good %d: %v", i, err)
		}
	}
	// An empty pattern: either refused or matching only "" (never every channel).
	if cfg, err := actors.NewConfig("ws://127.0.0.1:1/", actors.WithFreshness("", time.Second)); err == nil {
		t.Logf("empty pattern accepted: %+v", cfg.Freshness)
	}
}

const ticker = "ticker.BTC-PERPETUAL.100ms"

// A silent channel beside a busy book: resubscribed alone with a GapStale
// notice, then (still silent after the venue confirmed) its connection is
// replaced by a planned rotation; the busy book sees no gap and no
// update out of order across the rotation.
func TestStaleThenStallRotatesWithoutGap(t *testing.T) {
	s := newVenue(t)
	f := newFeed(s, book)
	in := &inbox{}
	c := deribitClient(t, s, in, actors.WithFreshness("ticker.*", 100*time.Millisecond), actors.WithMaxBackoff(2*time.Second))
	subscribeBook(t, c, in, book)
	if err := c.Subscribe(ctx(t), ticker); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	f.run(s, time.Millisecond, 0, stop)
	waitFor(t, 5*time.Second, "a stall rotation", c, in, func() bool { return c.Health().Stalls >= 1 && s.accepts.Load() >= 2 })
	waitFor(t, 3*time.Second, "rotation done", c, in, func() bool { return c.Health().Rotations >= 1 })
	time.Sleep(100 * time.Millisecond)
	msgs := in.snapshot()
	if bad := checkBook(msgs); len(bad) > 0 {
		t.Fatalf("violations:\n%s", strings.Join(bad, "\n"))
	}
	if g := in.count(isGap(book)); g != 0 {
		t.Fatalf("the busy book got %d gap notices from its neighbour's stall", g)
	}
	if in.count(func(m actors.Inbound) bool {
		return m.Kind == actors.KindGap && m.Gap.Channel == ticker && m.Gap.Reason == actors.GapStale
	}) == 0 {
		t.Fatalf("no GapStale notice for the silent ticker")
	}
	h := c.Health()
	if h.StaleResubscribes == 0 || h.Stalls == 0 {
		t.Fatalf("health: stale %d stalls %d", h.StaleResubscribes, h.Stalls)
	}
	if n := s.subsFor(book); n > 2 {
		t.Fatalf("the busy book was subscribed %d times (want 1, and 1 by the rotation's connection): resubscribed for its neighbour", n)
	}
}

// The venue is silent on every channel of every connection, with 10 ms
// rules on 5,000 channels: no resubscribe storm, no rotation storm, the
// client still answers calls, and Close is prompt.
func TestSilentEverywhereNoStorm(t *testing.T) {
	s := newVenue(t)
	in := &inbox{}
	var chs []string
	for i := 0; i < 5000; i++ {
		chs = append(chs, fmt.Sprintf("trades.I%d.raw", i))
	}
	c := deribitClient(t, s, in, actors.WithFreshness("trades.*", 10*time.Millisecond),
		actors.WithRetryDelay(100*time.Millisecond), actors.WithMaxBackoff(time.Second))
	if err := c.Subscribe(testutil.Context(t, 10*time.Second), chs...); err != nil {
		t.Fatal(err)
	}
	subs0 := s.reqs.Load()
	time.Sleep(3 * time.Second)
	reqs := s.reqs.Load() - subs0
	conns := s.accepts.Load()
	if _, err := c.Call(ctx(t), "public/test", map[string]any{}); err != nil {
		t.Errorf("a call during the silence: %v", err)
	}
	h := c.Health()
	t.Logf("3 s of silence: %d requests, %d connections, stale %d, stalls %d, gaps delivered %d", reqs, conns, h.StaleResubscribes, h.Stalls,
		in.count(func(m actors.Inbound) bool { return m.Kind == actors.KindGap }))
	if conns > 5 {
		t.Errorf("%d connections in 3 s: a rotation storm", conns)
	}
	if reqs > 5000*20 {
		t.Errorf("%d requests in 3 s for 5,000 channels: a resubscribe storm", reqs)
	}
	t0 := time.Now()
	_ = c.Close()
	if d := time.Since(t0); d > 3*time.Second {
		t.Fatalf("Close took %v", d)
	}
}

// A channel that comes back right after its stale resubscribe: no stall,
// no rotation, the channel active.
func TestStaleChannelComesBack(t *testing.T) {
	s := newVenue(t)
	in := &inbox{}
	s.afterSub = func(c *vconn, ch string, k int64) {
		if ch == ticker && k >= 2 {
			_ = c.write(`{"jsonrpc":"2.0","method":"subscription","params":{"channel":"` + ticker + `","data":{"last_price":1}}}`)
		}
	}
	c := deribitClient(t, s, in, actors.WithFreshness("ticker.*", 200*time.Millisecond))
	if err := c.Subscribe(ctx(t), ticker); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "a stale resubscribe", c, in, func() bool { return c.Health().StaleResubscribes >= 1 })
	// It now streams every 20 ms.
	stop := make(chan struct{})
	s.goRun(func() {
		for {
			select {
			case <-stop:
				return
			case <-s.stopped():
				return
			case <-time.After(20 * time.Millisecond):
			}
			if l := s.last(); l != nil && l.subscribed(ticker) {
				_ = l.write(`{"jsonrpc":"2.0","method":"subscription","params":{"channel":"` + ticker + `","data":{"last_price":2}}}`)
			}
		}
	})
	time.Sleep(800 * time.Millisecond)
	close(stop)
	h := c.Health()
	if h.Stalls != 0 || s.accepts.Load() != 1 {
		t.Fatalf("stalls %d, connections %d: a channel that came back was taken as stalled", h.Stalls, s.accepts.Load())
	}
	if st := chanState(c, ticker); st != actors.ChannelActive {
		t.Fatalf("ticker %v", st)
	}
}

// Unsubscribe while the channel is stale (its resubscribe on its way or
// done): the client stops resubscribing it and does not rotate for it.
func TestUnsubscribeWhileStale(t *testing.T) {
	s := newVenue(t)
	in := &inbox{}
	c := deribitClient(t, s, in, actors.WithFreshness("ticker.*", 50*time.Millisecond), actors.WithMaxBackoff(2*time.Second))
	if err := c.Subscribe(ctx(t), ticker); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "a stale resubscribe", c, in, func() bool { return c.Health().StaleResubscribes >= 1 })
	if err := c.Unsubscribe(ctx(t), ticker); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	n, conns, stale := s.subsFor(ticker), s.accepts.Load(), c.Health().StaleResubscribes
	time.Sleep(600 * time.Millisecond)
	if m := s.subsFor(ticker); m != n {
		t.Errorf("%d subscribes of the ticker after its Unsubscribe", m-n)
	}
	if a := s.accepts.Load(); a != conns {
		t.Errorf("%d connections after the Unsubscribe: rotated for an unwanted channel", a-conns)
	}
	if st := c.Health().StaleResubscribes; st != stale {
		t.Errorf("StaleResubscribes went on: %d -> %d", stale, st)
	}
	if chs := c.Health().Channels; len(chs) != 0 {
		t.Errorf("channels after Unsubscribe: %+v", chs)
	}
}

// A silent Deribit book: its stale resubscribe is a resubscribe, so the
// next message of it must be the snapshot; a late change of the old
// subscription arriving in between is not delivered.
func TestStaleBookNextIsSnapshot(t *testing.T) {
	s := newVenue(t)
	f := newFeed(s, book)

	s.onReq = func(c *vconn, r req) bool {
		if r.isUnsub() && len(r.Channels) == 1 && r.Channels[0] == book {

			f.mu.Lock()
			// a change of the old stream, after the unsubscribe was sent
			_ = c.write(dChange(book, f.cur+1, f.cur))
			f.cur++
			f.mu.Unlock()
		}
		return false
	}
	in := &inbox{}
	c := deribitClient(t, s, in, actors.WithFreshness("book.*", 100*time.Millisecond), actors.WithMaxBackoff(2*time.Second))
	subscribeBook(t, c, in, book)
	for i := 0; i < 5; i++ {
		f.step(0)
	}
	waitFor(t, 3*time.Second, "a stale resubscribe of the book", c, in, func() bool { return c.Health().StaleResubscribes >= 1 && s.subsFor(book) >= 2 })
	for i := 0; i < 20; i++ {
		f.step(0)
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	msgs := in.snapshot()
	if bad := checkBook(msgs); len(bad) > 0 {
		t.Fatalf("violations:\n%s\n%s", strings.Join(bad, "\n"), dump(msgs, 20))
	}
	if in.count(func(m actors.Inbound) bool { return m.Kind == actors.KindGap && m.Gap.Reason == actors.GapStale }) == 0 {
		t.Fatal("no GapStale")
	}
}

// Close while a stall rotation is under way: prompt, no leak.
func TestCloseDuringStallRotation(t *testing.T) {
	s := newVenue(t)
	in := &inbox{}
	s.onReq = func(c *vconn, r req) bool {
		// the rotation's new connection answers its subscribe slowly
		if r.isSub() && c.n >= 2 {
			time.Sleep(300 * time.Millisecond)
		}
		return false
	}
	c := deribitClient(t, s, in, actors.WithFreshness("ticker.*", 30*time.Millisecond))
	if err := c.Subscribe(ctx(t), ticker); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the rotation's connection", c, in, func() bool { return s.accepts.Load() >= 2 })
	t0 := time.Now()
	_ = c.Close()
	if d := time.Since(t0); d > 3*time.Second {
		t.Fatalf("Close took %v during a stall rotation", d)
	}
}
