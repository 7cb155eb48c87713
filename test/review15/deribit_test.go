package review15

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue/deribit"
)

// feed is one Deribit book the peer publishes: each subscribe answered
// starts it again from a snapshot (unless snap says no), and step writes
// the next change on the connection that subscribed it last.
type feed struct {
	mu   sync.Mutex
	ch   string
	cur  uint64
	live *vconn
	// snap decides whether the k-th subscribe gets its snapshot (nil: yes).
	snap func(k int64) bool
}

func newFeed(s *vsrv, ch string) *feed {
	f := &feed{ch: ch}
	prev := s.afterSub
	s.afterSub = func(c *vconn, got string, k int64) {
		if prev != nil {
			prev(c, got, k)
		}
		if got != ch {
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.cur = uint64(k) * 1_000_000
		f.live = c
		if f.snap == nil || f.snap(k) {
			_ = c.write(dSnap(ch, f.cur))
		}
	}
	return f
}

// step writes the next change; skip > 0 loses that many changes first.
func (f *feed) step(skip uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.live == nil || !f.live.subscribed(f.ch) {
		return false
	}
	f.cur += skip
	next := f.cur + 1
	if f.live.write(dChange(f.ch, next, f.cur)) != nil {
		return false
	}
	f.cur = next
	return true
}

// run steps the feed every d until stop closes (skipEvery > 0: every
// skipEvery-th step loses a change).
func (f *feed) run(s *vsrv, d time.Duration, skipEvery int, stop <-chan struct{}) {
	s.goRun(func() {
		tk := time.NewTicker(d)
		defer tk.Stop()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			case <-s.stopped():
				return
			case <-tk.C:
			}
			var skip uint64
			if skipEvery > 0 && i%skipEvery == 0 {
				skip = 1
			}
			f.step(skip)
		}
	})
}

func deribitClient(t *testing.T, s *vsrv, in *inbox, opts ...actors.Option) *actors.Client {
	return connect(t, s.url(), append(deribitBase(in.handler), opts...)...)
}

func deribitVenue() deribit.Venue { return deribit.Venue{} }

func deribitBase(h func(actors.Inbound)) []actors.Option {
	return []actors.Option{actors.WithVenue(deribit.Venue{}), actors.WithHandler(h), actors.WithHeartbeat(actors.HeartbeatDisabled, 0)}
}

const book = "book.BTC-PERPETUAL.100ms"

// Baseline: a lost change gives one KindGap, the book is subscribed again
// alone, and the next message of it is the snapshot.
func TestDeribitGapThenSnapshot(t *testing.T) {
	s := newVenue(t)
	f := newFeed(s, book)
	other := newFeed(s, "book.ETH-PERPETUAL.100ms")
	in := &inbox{}
	c := deribitClient(t, s, in)
	subscribeBook(t, c, in, book, other.ch)
	for i := 0; i < 20; i++ {
		f.step(0)
		other.step(0)
	}
	f.step(1)
	waitFor(t, 5*time.Second, "a snapshot after the gap", c, in, func() bool {
		f.step(0)
		other.step(0)
		return in.count(isGap(book)) == 1 && in.count(isSnap(book)) == 2
	})
	time.Sleep(50 * time.Millisecond)
	msgs := in.snapshot()
	if bad := checkBook(msgs); len(bad) > 0 {
		t.Fatalf("violations:\n%s\n%s", strings.Join(bad, "\n"), dump(msgs, 80))
	}
	if n := s.subsFor(other.ch); n != 1 {
		t.Fatalf("the other book was subscribed %d times: a resync must be alone", n)
	}
	h := c.Health()
	if h.SequenceGaps != 1 || h.Resyncs != 1 {
		t.Fatalf("health: gaps %d resyncs %d, want 1 and 1", h.SequenceGaps, h.Resyncs)
	}
	var g *actors.Gap
	for _, m := range msgs {
		if m.Kind == actors.KindGap {
			g = m.Gap
		}
	}
	if g.Reason != actors.GapSequence || g.Expected != 1_000_021 || g.Got != 1_000_022 || g.Generation != 1 {
		t.Fatalf("gap %+v: want GapSequence expected 1000021 got 1000022 gen 1", *g)
	}
}

// A venue that breaks the sequence on every second change for 2 s: the
// resubscribes stay bounded (backoff up to MaxBackoff 200 ms: about 10 a
// second at most) and no change that does not follow is ever delivered.
func TestDeribitResyncStormBounded(t *testing.T) {
	s := newVenue(t)
	f := newFeed(s, book)
	in := &inbox{}
	c := deribitClient(t, s, in)
	subscribeBook(t, c, in, book)
	stop := make(chan struct{})
	f.run(s, 200*time.Microsecond, 2, stop)
	time.Sleep(2 * time.Second)
	close(stop)
	subs := s.subsFor(book)
	time.Sleep(100 * time.Millisecond)
	msgs := in.snapshot()
	if bad := checkBook(msgs); len(bad) > 0 {
		t.Fatalf("violations:\n%s", strings.Join(bad, "\n"))
	}
	if subs > 40 {
		t.Fatalf("%d subscribes of the book in 2 s: a resync storm (MaxBackoff 200 ms)", subs)
	}
	if subs < 3 {
		t.Fatalf("only %d subscribes: the book was not resynced", subs)
	}
	h := c.Health()
	if gaps := uint64(in.count(isGap(book))); gaps != h.SequenceGaps {
		t.Fatalf("%d KindGap delivered, Health.SequenceGaps %d", gaps, h.SequenceGaps)
	}
	t.Logf("subscribes %d, gaps %d, resyncs %d, dropped %d", subs, h.SequenceGaps, h.Resyncs, h.SequenceDropped)
}

// A venue that never sends the snapshot after a resubscribe (only
// changes): nothing of the book is delivered after the gap, the channel
// stays Resyncing (the client Degraded) and the resync is started again,
// with backoff, not in a storm.
func TestDeribitNoSnapshotAfterResubscribe(t *testing.T) {
	s := newVenue(t)
	f := newFeed(s, book)
	f.snap = func(k int64) bool { return k == 1 }
	in := &inbox{}
	c := deribitClient(t, s, in, actors.WithRequestTimeout(200*time.Millisecond))
	subscribeBook(t, c, in, book)
	for i := 0; i < 5; i++ {
		f.step(0)
	}
	f.step(1)
	stop := make(chan struct{})
	f.run(s, time.Millisecond, 0, stop)
	waitFor(t, 5*time.Second, "the resync started again", c, in, func() bool { return s.subsFor(book) >= 3 })
	if st := chanState(c, book); st != actors.ChannelResyncing {
		t.Errorf("channel state %v, want resyncing", st)
	}
	if !c.Health().Degraded {
		t.Errorf("client not degraded while its book is out of sync")
	}
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	msgs := in.snapshot()
	if bad := checkBook(msgs); len(bad) > 0 {
		t.Fatalf("violations:\n%s", strings.Join(bad, "\n"))
	}
	if n := s.subsFor(book); n > 15 {
		t.Fatalf("%d subscribes in ~2 s: a storm", n)
	}
	if g := in.count(isGap(book)); g < 1 {
		t.Fatalf("no gap notice")
	}
}

// The venue sends the snapshot before its answer to the subscribe (a venue
// may well do so: the answer and the first notification race). The book
// must come back in sync.
func TestDeribitSnapshotBeforeAnswer(t *testing.T) {
	s := newVenue(t)
	f := &feed{ch: book}
	s.onReq = func(c *vconn, r req) bool {
		if !r.isSub() || len(r.Channels) != 1 || r.Channels[0] != book || s.subsFor(book) == 0 {
			return false
		}
		v, _ := s.subsOf.Load(book)
		_ = v
		f.mu.Lock()
		f.cur += 1_000_000
		c.mu.Lock()
		c.sub[book] = true
		c.mu.Unlock()
		f.live = c
		_ = c.write(dSnap(book, f.cur)) // before the answer
		c.answer(r)
		f.mu.Unlock()
		return true
	}
	s.afterSub = func(c *vconn, ch string, k int64) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.cur = 1_000_000
		f.live = c
		_ = c.write(dSnap(ch, f.cur))
	}
	in := &inbox{}
	c := deribitClient(t, s, in, actors.WithRequestTimeout(300*time.Millisecond))
	subscribeBook(t, c, in, book)
	for i := 0; i < 5; i++ {
		f.step(0)
	}
	f.step(1)
	stop := make(chan struct{})
	defer close(stop)
	f.run(s, time.Millisecond, 0, stop)
	waitFor(t, 4*time.Second, "the book in sync again (a snapshot after the gap)", c, in, func() bool {
		return in.count(isSnap(book)) >= 2 && chanState(c, book) == actors.ChannelActive
	})
	if bad := checkBook(in.snapshot()); len(bad) > 0 {
		t.Fatalf("violations:\n%s", strings.Join(bad, "\n"))
	}
}

// The venue refuses the resubscribes twice, then accepts: the book is
// never delivered out of sync and comes back.
func TestDeribitResubscribeRefused(t *testing.T) {
	s := newVenue(t)
	f := newFeed(s, book)
	var n int
	s.onReq = func(c *vconn, r req) bool {
		if r.isSub() && len(r.Channels) == 1 && r.Channels[0] == book && s.subsFor(book) >= 1 && n < 2 {
			n++
			c.refuse(r)
			return true
		}
		return false
	}
	in := &inbox{}
	c := deribitClient(t, s, in)
	subscribeBook(t, c, in, book)
	f.step(0)
	f.step(1)
	stop := make(chan struct{})
	defer close(stop)
	f.run(s, time.Millisecond, 0, stop)
	waitFor(t, 5*time.Second, "the book back in sync", c, in, func() bool {
		return in.count(isSnap(book)) >= 2 && chanState(c, book) == actors.ChannelActive
	})
	if bad := checkBook(in.snapshot()); len(bad) > 0 {
		t.Fatalf("violations:\n%s", strings.Join(bad, "\n"))
	}
}

// The venue answers the unsubscribe but never the resubscribe (its
// connection keeps streaming the book anyway): the book is never
// delivered out of sync, and a later resubscribe that is answered brings
// it back.
func TestDeribitResubscribeNeverAnswered(t *testing.T) {
	s := newVenue(t)
	f := newFeed(s, book)
	var n int
	s.onReq = func(c *vconn, r req) bool {
		if r.isSub() && len(r.Channels) == 1 && r.Channels[0] == book && s.subsFor(book) >= 1 && n < 1 {
			n++
			return true // swallowed
		}
		if r.isUnsub() {
			c.answer(r) // answered, but the connection keeps the book
			return true
		}
		return false
	}
	in := &inbox{}
	c := deribitClient(t, s, in, actors.WithRequestTimeout(300*time.Millisecond))
	subscribeBook(t, c, in, book)
	f.step(0)
	f.step(1)
	stop := make(chan struct{})
	defer close(stop)
	f.run(s, time.Millisecond, 0, stop)
	waitFor(t, 5*time.Second, "the book back in sync", c, in, func() bool {
		return in.count(isSnap(book)) >= 2 && chanState(c, book) == actors.ChannelActive
	})
	if bad := checkBook(in.snapshot()); len(bad) > 0 {
		t.Fatalf("violations:\n%s", strings.Join(bad, "\n"))
	}
}

// Duplicates, a replayed range and change_ids going backwards: none is
// delivered twice, none that does not follow, and the book goes on.
func TestDeribitDuplicatesAndBackwards(t *testing.T) {
	s := newVenue(t)
	s.afterSub = func(c *vconn, ch string, k int64) { _ = c.write(dSnap(ch, 100)) }
	in := &inbox{}
	c := deribitClient(t, s, in)
	subscribeBook(t, c, in, book)
	w := s.last()
	for i := uint64(101); i <= 110; i++ {
		_ = w.write(dChange(book, i, i-1))
	}
	_ = w.write(dChange(book, 105, 104))  // duplicate
	_ = w.write(dChange(book, 110, 109))  // duplicate of the last
	for i := uint64(103); i <= 108; i++ { // a replayed range
		_ = w.write(dChange(book, i, i-1))
	}
	_ = w.write(dChange(book, 50, 49)) // backwards
	_ = w.write(dChange(book, 111, 110))
	waitFor(t, 3*time.Second, "change 111", c, in, func() bool {
		return in.count(isNote(book)) >= 12 || in.count(isGap(book)) > 0
	})
	time.Sleep(50 * time.Millisecond)
	msgs := in.snapshot()
	if bad := checkBook(msgs); len(bad) > 0 {
		t.Fatalf("violations:\n%s\n%s", strings.Join(bad, "\n"), dump(msgs, 40))
	}
	if n := in.count(isNote(book)); n != 12 {
		t.Fatalf("%d notifications, want 12 (snapshot, 101..111)\n%s", n, dump(msgs, 40))
	}
	if d := c.Health().SequenceDropped; d != 9 {
		t.Fatalf("SequenceDropped %d, want 9 (2 duplicates, 6 replayed, 1 backwards)", d)
	}
}

// The venue restarts its book numbering (a matching engine restart): a
// fresh snapshot whose change_id is below the last one, then changes from
// it. venue.Seq says a snapshot "starts the sequence again, whatever came
// before": the consumer must get that snapshot and the changes after it,
// and must never be handed a change meant for the new book on top of the
// old one without a snapshot in between.
func TestDeribitSnapshotWithLowerChangeIDRestarts(t *testing.T) {
	s := newVenue(t)
	s.afterSub = func(c *vconn, ch string, k int64) { _ = c.write(dSnap(ch, 100)) }
	in := &inbox{}
	c := deribitClient(t, s, in)
	subscribeBook(t, c, in, book)
	w := s.last()
	for i := uint64(101); i <= 110; i++ {
		_ = w.write(dChange(book, i, i-1))
	}
	_ = w.write(dSnap(book, 5)) // the restarted book
	for i := uint64(6); i <= 120; i++ {
		_ = w.write(dChange(book, i, i-1))
	}
	time.Sleep(300 * time.Millisecond)
	msgs := in.snapshot()
	if n := in.count(isSnap(book)); n != 2 {
		t.Errorf("%d snapshots delivered, want 2: the restarted book's snapshot (change_id 5) was dropped (SequenceDropped %d)", n, c.Health().SequenceDropped)
	}
	// What the consumer's book became: every change it was given after the
	// restart must have been built on the snapshot it was given.
	var lastSnap uint64
	for _, m := range msgs {
		var bm bookMsg
		if m.Kind != actors.KindNotification || json.Unmarshal(m.Data, &bm) != nil || bm.Params.Data.Change == nil {
			continue
		}
		id := *bm.Params.Data.Change
		if bm.Params.Data.Type == "snapshot" {
			lastSnap = id
			continue
		}
		if lastSnap == 100 && id > 110 {
			t.Fatalf("change %d of the restarted book delivered on top of the old book (snapshot 100): the consumer's book is silently wrong\n%s", id, dump(msgs[len(msgs)-5:], 5))
		}
	}
}

// A dropped connection: a GapReconnect notice comes before the first
// message of the book on the new connection, and that message is its
// snapshot.
func TestDeribitReconnectGapBeforeSnapshot(t *testing.T) {
	s := newVenue(t)
	f := newFeed(s, book)
	in := &inbox{}
	c := deribitClient(t, s, in)
	subscribeBook(t, c, in, book)
	for i := 0; i < 10; i++ {
		f.step(0)
	}
	waitFor(t, 2*time.Second, "10 changes", c, in, func() bool { return in.count(isNote(book)) == 11 })
	s.dropAll()
	waitFor(t, 5*time.Second, "reconnected, resubscribed", c, in, func() bool { return s.subsFor(book) >= 2 })
	for i := 0; i < 10; i++ {
		f.step(0)
	}
	waitFor(t, 3*time.Second, "the new snapshot", c, in, func() bool { return in.count(isSnap(book)) >= 2 })
	msgs := in.snapshot()
	if bad := checkBook(msgs); len(bad) > 0 {
		t.Fatalf("violations:\n%s\n%s", strings.Join(bad, "\n"), dump(msgs, 40))
	}
	var gap *actors.Gap
	for i, m := range msgs {
		if m.Kind == actors.KindGap {
			gap = m.Gap
			if i+1 >= len(msgs) || !msgs[i+1].Snapshot || msgs[i+1].Generation != 2 {
				t.Fatalf("after the gap: %s", dump(msgs[i:], 3))
			}
		}
	}
	if gap == nil || gap.Reason != actors.GapReconnect || gap.Generation != 2 {
		t.Fatalf("gap %+v: want GapReconnect on generation 2", gap)
	}
}
