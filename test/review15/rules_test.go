package review15

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/actors/venue/deribit"
)

// sharedBook is one Deribit book numbered by the venue, written to every
// connection that subscribed it (as a real venue does): a new
// subscription starts with a snapshot of the current change_id.
type sharedBook struct {
	mu  sync.Mutex
	s   *vsrv
	ch  string
	cur uint64
}

func newSharedBook(s *vsrv, ch string) *sharedBook {
	b := &sharedBook{s: s, ch: ch, cur: 500}
	s.afterSub = func(c *vconn, got string, k int64) {
		if got != ch {
			return
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		_ = c.write(dSnap(ch, b.cur))
	}
	return b
}

func (b *sharedBook) step() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.s.mu.Lock()
	cs := append([]*vconn(nil), b.s.conns...)
	b.s.mu.Unlock()
	next := b.cur + 1
	for _, c := range cs {
		if c.subscribed(b.ch) {
			_ = c.write(dChange(b.ch, next, b.cur))
		}
	}
	b.cur = next
}

// A planned rotation (Rotate) under a busy book carried by both
// connections: no gap, nothing delivered twice, nothing out of order.
func TestRotationOverlapNoGapNoDuplicate(t *testing.T) {
	s := newVenue(t)
	b := newSharedBook(s, book)
	in := &inbox{}
	c := deribitClient(t, s, in)
	subscribeBook(t, c, in, book)
	stop := make(chan struct{})
	s.goRun(func() {
		for {
			select {
			case <-stop:
				return
			case <-s.stopped():
				return
			case <-time.After(500 * time.Microsecond):
			}
			b.step()
		}
	})
	for i := 0; i < 3; i++ {
		time.Sleep(100 * time.Millisecond)
		if err := c.Rotate(ctx(t)); err != nil {
			t.Fatalf("Rotate %d: %v", i, err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	time.Sleep(50 * time.Millisecond)
	msgs := in.snapshot()
	if bad := checkBook(msgs); len(bad) > 0 {
		t.Fatalf("violations:\n%s\n%s", strings.Join(bad, "\n"), dump(msgs, 10))
	}
	if g := in.count(isGap(book)); g != 0 {
		t.Fatalf("%d gap notices across planned rotations", g)
	}
	h := c.Health()
	if h.Rotations != 3 || h.SequenceGaps != 0 || h.Resyncs != 0 {
		t.Fatalf("rotations %d gaps %d resyncs %d", h.Rotations, h.SequenceGaps, h.Resyncs)
	}
}

// A venue that drops the connection right after every few changes: each
// reconnect gives exactly one GapReconnect before the new snapshot; the
// counters match what was delivered.
func TestFlappingVenueCountersTruthful(t *testing.T) {
	s := newVenue(t)
	f := newFeed(s, book)
	in := &inbox{}
	c := deribitClient(t, s, in)
	subscribeBook(t, c, in, book)
	for r := 0; r < 8; r++ {
		for i := 0; i < 5; i++ {
			f.step(0)
		}
		gen := c.Health().Generation
		s.dropAll()
		waitFor(t, 5*time.Second, "reconnected and resubscribed", c, in, func() bool {
			return c.Health().Generation > gen && chanState(c, book) == actors.ChannelActive && in.count(isSnap(book)) >= r+2
		})
	}
	time.Sleep(50 * time.Millisecond)
	msgs := in.snapshot()
	if bad := checkBook(msgs); len(bad) > 0 {
		t.Fatalf("violations:\n%s\n%s", strings.Join(bad, "\n"), dump(msgs, 10))
	}
	h := c.Health()
	gaps := in.count(func(m actors.Inbound) bool { return m.Kind == actors.KindGap })
	if uint64(gaps) != h.SequenceGaps {
		t.Errorf("%d KindGap delivered, SequenceGaps %d", gaps, h.SequenceGaps)
	}
	if gaps != 8 {
		t.Errorf("%d gap notices for 8 reconnects", gaps)
	}
	for i, m := range msgs {
		if m.Kind == actors.KindGap && (m.Gap.Reason != actors.GapReconnect || i+1 >= len(msgs) || !msgs[i+1].Snapshot || msgs[i+1].Generation != m.Gap.Generation) {
			t.Fatalf("gap %+v then %s", *m.Gap, dump(msgs[i+1:min(i+2, len(msgs))], 1))
		}
	}
}

type panicky struct{ every int }

var panickyN int

func (p panicky) Sequence(ch string, data []byte) (venue.Seq, bool) {
	panickyN++
	if panickyN%p.every == 0 {
		panic("sequencer exploded")
	}
	return deribit.Venue{}.Sequence(ch, data)
}

// User rules that panic, a nil rule in Sequencers, a SequenceField with an
// empty path: frames are delivered, nothing crashes, the client stays up.
func TestHostileUserSequencers(t *testing.T) {
	for name, seq := range map[string]venue.Sequencer{
		"nil in list":    venue.Sequencers{nil, deribit.Venue{}},
		"empty path":     venue.SequenceField{Pattern: "book.*"},
		"nil path elems": venue.SequenceField{Pattern: "*", Path: []string{"", "", ""}, Snapshot: []string{}},
		"deep path":      venue.SequenceField{Pattern: "*", Path: strings.Split(strings.Repeat("a,", 10000), ",")},
		"empty list":     venue.Sequencers{},
	} {
		t.Run(name, func(t *testing.T) {
			s := newVenue(t)
			f := newFeed(s, book)
			in := &inbox{}
			c := deribitClient(t, s, in, actors.WithSequencer(seq))
			if err := c.Subscribe(ctx(t), book); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 3*time.Second, "the first message", c, in, func() bool { return in.count(isNote(book)) >= 1 })
			for i := 0; i < 30; i++ {
				f.step(0)
			}
			waitFor(t, 3*time.Second, "30 changes", c, in, func() bool { return in.count(isNote(book)) >= 31 })
			if h := c.Health(); h.State != actors.StateConnected || h.Generation != 1 {
				t.Fatalf("client %v gen %d", h.State, h.Generation)
			}
		})
	}
}

// A user rule that panics on every 3rd frame: the documented behaviour is
// "ignored for that frame: delivered as it came". It must not open a hole
// in the KindGap guarantee: between a gap notice and the snapshot that
// ends the resync, no change of the channel is delivered (its state says
// "notifications are held or dropped until it is").
func TestPanickySequencerDuringResync(t *testing.T) {
	s := newVenue(t)
	f := newFeed(s, book)
	in := &inbox{}
	panickyN = 0
	c := deribitClient(t, s, in, actors.WithSequencer(panicky{every: 3}))
	if err := c.Subscribe(ctx(t), book); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "the first message", c, in, func() bool { return in.count(isNote(book)) >= 1 })
	for i := 0; i < 300; i++ {
		f.step(0)
		time.Sleep(200 * time.Microsecond)
	}
	time.Sleep(50 * time.Millisecond)
	msgs := in.snapshot()
	var bad []string
	all := checkBook(msgs)
	t.Logf("gaps %d, resyncs %d, all violations: %d %v", in.count(isGap(book)), c.Health().Resyncs, len(all), all)
	for _, b := range all {
		if !strings.Contains(b, "not marked Snapshot") {
			bad = append(bad, b)
		}
	}
	if len(bad) > 0 {
		t.Fatalf("%d gaps; changes delivered between a KindGap and its snapshot:\n%s", in.count(isGap(book)), strings.Join(bad, "\n"))
	}
}

// venue.Match on hostile patterns is bounded (its doc: at most the
// product of the lengths).
func TestMatchHostilePatterns(t *testing.T) {
	long := strings.Repeat("a", 4096)
	pat := strings.Repeat("*a", 2048) + "b"
	done := make(chan bool)
	go func() { done <- venue.Match(pat, long) }()
	select {
	case m := <-done:
		if m {
			t.Fatal("matched")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Match did not return in 5 s on *a*a...b")
	}
	for _, c := range []struct {
		p, s string
		want bool
	}{{"", "", true}, {"", "x", false}, {"*", "", true}, {"**", "x", true}, {"a*", "a", true}, {"*@depth*", "btcusdt@depth@100ms", true}, {"book.*", "book.", true}, {"book.*", "book", false}} {
		if got := venue.Match(c.p, c.s); got != c.want {
			t.Errorf("Match(%q, %q) = %v", c.p, c.s, got)
		}
	}
}

// SequenceField on its own numbers: a repeated number is a duplicate, a
// jump is a gap, a huge number and the last uint64 do not crash.
func TestSequenceFieldRule(t *testing.T) {
	r := venue.SequenceField{Pattern: "trades.*", Path: []string{"params", "data", "seq"}}
	mk := func(v string) []byte {
		return []byte(`{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.X","data":{"seq":` + v + `}}}`)
	}
	if sq, ok := r.Sequence("trades.X", mk("18446744073709551615")); !ok || sq.First != ^uint64(0) {
		t.Errorf("max uint64: %+v %v", sq, ok)
	}
	for _, v := range []string{"18446744073709551616", "-1", "1.5", `"7"`, "null", "[]", "{}", "1e3"} {
		if sq, ok := r.Sequence("trades.X", mk(v)); ok {
			t.Errorf("seq %s read as %+v", v, sq)
		}
	}
	if _, ok := r.Sequence("book.X", mk("5")); ok {
		t.Errorf("a channel outside the pattern read")
	}
	if _, ok := r.Sequence("trades.X", []byte(strings.Repeat("[", 100000))); ok {
		t.Errorf("garbage read")
	}
}
