package review15

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/internal/testutil"
)

// Unsubscribe while a Deribit book is being resynced (its resubscribe's
// answer slow): once Unsubscribe has returned, the resync must not
// subscribe the channel again (a zombie subscription on the venue), and
// nothing of it is delivered.
func TestUnsubscribeDuringResync(t *testing.T) {
	s := newVenue(t)
	f := newFeed(s, book)
	var slow atomic.Bool
	s.onReq = func(c *vconn, r req) bool {
		if r.isSub() && slow.Load() {
			time.Sleep(300 * time.Millisecond)
		}
		return false
	}
	in := &inbox{}
	c := deribitClient(t, s, in)
	subscribeBook(t, c, in, book)
	f.step(0)
	slow.Store(true)
	f.step(1)
	waitFor(t, 3*time.Second, "the gap", c, in, func() bool { return in.count(isGap(book)) == 1 })
	time.Sleep(50 * time.Millisecond) // the resubscribe is on its way
	if err := c.Unsubscribe(ctx(t), book); err != nil {
		t.Logf("Unsubscribe: %v", err)
	}
	time.Sleep(100 * time.Millisecond) // what was received before the answer may still be on its way to the handler
	n := in.count(isNote(book))
	time.Sleep(700 * time.Millisecond)
	for i := 0; i < 5; i++ {
		f.step(0)
	}
	time.Sleep(100 * time.Millisecond)
	if l := s.last(); l.subscribed(book) {
		t.Errorf("the venue still has the book subscribed after Unsubscribe returned (subscribes %d, unsubscribes %d): a zombie", s.subsFor(book), s.unsubs.Load())
	}
	if m := in.count(isNote(book)); m != n {
		t.Errorf("%d notifications of the book delivered after its Unsubscribe", m-n)
	}
	if chs := c.Health().Channels; len(chs) != 0 {
		t.Errorf("channels %+v", chs)
	}
}

// A Binance diff depth stream that goes silent past its freshness rule
// and then resumes after the resubscribe, numbers continuing: the GapStale
// notice promises that the next notification of the channel is a snapshot
// (KindGap's doc), so a fetch must come before the stream resumes.
func TestBinanceStaleNextIsSnapshot(t *testing.T) {
	s := newVenue(t)
	f := newBFeed(s, depth)
	in := &inbox{}
	var calls atomic.Int64
	c := binanceClient(t, s, in, func(ctx context.Context, ch string) (actors.Snapshot, error) {
		calls.Add(1)
		return snapOf(f.pos()), nil
	}, actors.WithFreshness("*@depth*", 100*time.Millisecond), actors.WithMaxBackoff(2*time.Second))
	if err := c.Subscribe(ctx(t), depth); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "in sync", c, in, func() bool { f.step(1, 0); return in.count(isNote(depth)) > 5 })
	waitFor(t, 3*time.Second, "a stale resubscribe", c, in, func() bool { return c.Health().StaleResubscribes >= 1 })
	for i := 0; i < 20; i++ {
		f.step(1, 0)
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	msgs := in.snapshot()
	if bad := checkBook(msgs); len(bad) > 0 {
		t.Fatalf("violations (fetches %d):\n%s\n%s", calls.Load(), strings.Join(bad, "\n"), dump(msgs, 12))
	}
	for i, m := range msgs {
		if m.Kind == actors.KindGap && m.Gap.Reason == actors.GapStale {
			for _, n := range msgs[i+1:] {
				if n.Kind == actors.KindNotification && n.Channel == depth {
					if !n.Snapshot {
						t.Fatalf("after GapStale, the next notification is not a snapshot (fetches %d): %s", calls.Load(), dump([]actors.Inbound{n}, 1))
					}
					break
				}
			}
		}
	}
}

// Gap notices reach a subscriber actor too, in order, as *Inbound.
func TestGapNoticeToSubscriberActor(t *testing.T) {
	s := newVenue(t)
	f := newFeed(s, book)
	in := &inbox{}
	sys := testutil.NewSystem(t)
	pid := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *actors.Inbound:
			in.handler(*m)
		case actors.Inbound:
			in.handler(m)
		}
	}))
	t.Cleanup(func() { _ = sys.Root.StopFuture(pid).Wait() })
	c, err := actors.Connect(ctx(t), sys, s.url(), actors.WithVenue(deribitVenue()), actors.WithSubscriber(pid),
		actors.WithHeartbeat(actors.HeartbeatDisabled, 0), actors.WithRetryDelay(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	subscribeBook(t, c, in, book)
	f.step(0)
	f.step(1)
	waitFor(t, 3*time.Second, "gap then snapshot", c, in, func() bool {
		f.step(0)
		return in.count(isGap(book)) == 1 && in.count(isSnap(book)) == 2
	})
	if bad := checkBook(in.snapshot()); len(bad) > 0 {
		t.Fatalf("violations:\n%s", strings.Join(bad, "\n"))
	}
}
