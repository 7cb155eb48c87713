package review15

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/actors/venue/deribit"
)

// The venue answers the resync's subscribe with an empty list (it
// confirms nothing) but keeps streaming the book: the book stays out of
// sync for the consumer (no change delivered after the gap without a
// snapshot), and it comes back once a subscribe is confirmed.
func TestResubscribeConfirmsNothing(t *testing.T) {
	s := newVenue(t)
	f := newFeed(s, book)
	var n int
	s.onReq = func(c *vconn, r req) bool {
		if r.isSub() && s.subsFor(book) >= 1 && n < 2 {
			n++
			c.mu.Lock()
			c.sub[book] = true
			c.mu.Unlock()
			_ = c.write(`{"jsonrpc":"2.0","id":` + string(r.ID) + `,"result":[]}`)
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
	waitFor(t, 8*time.Second, "the book back in sync", c, in, func() bool {
		return in.count(isSnap(book)) >= 2 && chanState(c, book) == actors.ChannelActive
	})
	if bad := checkBook(in.snapshot()); len(bad) > 0 {
		t.Fatalf("violations:\n%s", strings.Join(bad, "\n"))
	}
}

// Without subscription restore, a reconnect leaves the channel wanted but
// not active: its freshness clock must not run, so no stale resubscribe
// and no stall rotation for it.
func TestFreshnessWithoutRestore(t *testing.T) {
	s := newVenue(t)
	in := &inbox{}
	c := deribitClient(t, s, in, actors.WithFreshness("ticker.*", 50*time.Millisecond), actors.WithRestoreSubscriptions(false),
		actors.WithMaxBackoff(2*time.Second))
	if err := c.Subscribe(ctx(t), ticker); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "a stale resubscribe on the first connection", c, in, func() bool { return c.Health().StaleResubscribes >= 1 })
	waitFor(t, 3*time.Second, "the stall rotation", c, in, func() bool { return c.Health().Rotations >= 1 })
	h0 := c.Health()
	gen := h0.Generation
	s.dropAll()
	waitFor(t, 3*time.Second, "reconnected", c, in, func() bool { return c.Health().Generation > gen && c.State() == actors.StateConnected })
	time.Sleep(30 * time.Millisecond)
	h1 := c.Health()
	subs := s.subsFor(ticker)
	time.Sleep(500 * time.Millisecond)
	h2 := c.Health()
	if h2.StaleResubscribes != h1.StaleResubscribes || h2.Stalls != h1.Stalls || s.subsFor(ticker) != subs {
		t.Fatalf("without restore, the unrestored channel was resubscribed or rotated for: stale %d->%d, stalls %d->%d, subscribes %d->%d",
			h1.StaleResubscribes, h2.StaleResubscribes, h1.Stalls, h2.Stalls, subs, s.subsFor(ticker))
	}
}

// A reconnect's gap on a book that never delivered anything says
// Expected 0 (Gap's doc).
func TestReconnectGapExpectedZero(t *testing.T) {
	s := newVenue(t)
	in := &inbox{}
	c := deribitClient(t, s, in) // the venue sends no snapshot: nothing delivered
	if err := c.Subscribe(ctx(t), book); err != nil {
		t.Fatal(err)
	}
	s.dropAll()
	waitFor(t, 3*time.Second, "reconnected", c, in, func() bool { return c.Health().Generation == 2 && s.subsFor(book) == 2 })
	time.Sleep(50 * time.Millisecond)
	for _, m := range in.snapshot() {
		if m.Kind == actors.KindGap {
			b, _ := json.Marshal(m.Gap)
			if m.Gap.Expected != 0 {
				t.Fatalf("gap %s: Expected must be 0 when nothing was delivered", b)
			}
		}
	}
}

// A nil entry in venue.Sequencers (a rule left unset in a list) must not
// switch off the rules after it: the Deribit rule still marks the
// snapshot and still announces a gap.
func TestNilInSequencersKeepsTheOthers(t *testing.T) {
	s := newVenue(t)
	f := newFeed(s, book)
	in := &inbox{}
	c := deribitClient(t, s, in, actors.WithSequencer(venue.Sequencers{nil, deribit.Venue{}}))
	if err := c.Subscribe(ctx(t), book); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "the first message", c, in, func() bool { return in.count(isNote(book)) >= 1 })
	f.step(0)
	f.step(1)
	f.step(0)
	time.Sleep(200 * time.Millisecond)
	if in.count(isSnap(book)) == 0 || in.count(isGap(book)) == 0 {
		t.Fatalf("with Sequencers{nil, deribit.Venue{}}: %d snapshots marked, %d gaps: the nil entry panics and switches the whole guard off for every frame",
			in.count(isSnap(book)), in.count(isGap(book)))
	}
}

// A planned rotation while a book is being resynced (its resubscribe's
// answer slow on the old connection): the book ends in sync and the
// consumer never gets a change that does not follow, nor one twice.
func TestRotateDuringResync(t *testing.T) {
	s := newVenue(t)
	b := newSharedBook(s, book)
	var slow atomic.Bool
	s.onReq = func(c *vconn, r req) bool {
		if r.isSub() && slow.Load() && c.n == 1 {
			time.Sleep(400 * time.Millisecond)
		}
		return false
	}
	in := &inbox{}
	c := deribitClient(t, s, in)
	subscribeBook(t, c, in, book)
	stop := make(chan struct{})
	s.goRun(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-s.stopped():
				return
			case <-time.After(time.Millisecond):
			}
			if i == 50 {
				slow.Store(true)
				b.mu.Lock()
				b.cur++ // a change lost on every connection
				b.mu.Unlock()
			}
			b.step()
		}
	})
	waitFor(t, 3*time.Second, "the gap", c, in, func() bool { return in.count(isGap(book)) >= 1 })
	if err := c.Rotate(ctx(t)); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	waitFor(t, 5*time.Second, "in sync after the rotation", c, in, func() bool {
		msgs := in.snapshot()
		return c.Health().Rotations == 1 && chanState(c, book) == actors.ChannelActive && len(msgs) > 0 && !msgs[len(msgs)-1].Snapshot && msgs[len(msgs)-1].Kind == actors.KindNotification
	})
	time.Sleep(300 * time.Millisecond)
	close(stop)
	time.Sleep(50 * time.Millisecond)
	if bad := checkBook(in.snapshot()); len(bad) > 0 {
		t.Fatalf("violations:\n%s", strings.Join(bad, "\n"))
	}
}
