package review15

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
)

// 100,000 channels: past the 65,536 a client may want, refused as a whole
// (the guard's state stays bounded); 65,536 are taken.
func TestHundredThousandChannels(t *testing.T) {
	s := newVenue(t)
	in := &inbox{}
	c := deribitClient(t, s, in, actors.WithFreshness("book.*", time.Minute))
	var chs []string
	for i := 0; i < 100_000; i++ {
		chs = append(chs, fmt.Sprintf("book.I%d.100ms", i))
	}
	err := c.Subscribe(ctx(t), chs...)
	if !errors.Is(err, actors.ErrInvalidRequest) {
		t.Fatalf("100,000 channels: %v, want ErrInvalidRequest", err)
	}
	if n := len(c.Subscriptions()); n > 65536 {
		t.Fatalf("%d channels wanted", n)
	}
}

// Binance: a snapshot far behind the stream (its held updates cannot
// continue it) is fetched again; one far ahead drops the updates it
// includes; nil Data does not crash. Never an update that does not follow.
func TestBinanceSnapshotSeqExtremes(t *testing.T) {
	for name, mk := range map[string]func(n int64, pos uint64) actors.Snapshot{
		"far behind once": func(n int64, pos uint64) actors.Snapshot {
			if n == 1 {
				return snapOf(1)
			}
			return snapOf(pos)
		},
		"far ahead once": func(n int64, pos uint64) actors.Snapshot {
			if n == 1 {
				return snapOf(pos + 1<<40)
			}
			return snapOf(pos)
		},
		"nil data once": func(n int64, pos uint64) actors.Snapshot {
			if n == 1 {
				return actors.Snapshot{Seq: pos}
			}
			return snapOf(pos)
		},
		"max uint64": func(n int64, pos uint64) actors.Snapshot { return snapOf(^uint64(0)) },
	} {
		t.Run(name, func(t *testing.T) {
			s := newVenue(t)
			f := newBFeed(s, depth)
			in := &inbox{}
			var calls atomic.Int64
			c := binanceClient(t, s, in, func(ctx context.Context, ch string) (actors.Snapshot, error) {
				return mk(calls.Add(1), f.pos()), nil
			})
			stop := make(chan struct{})
			f.run(time.Millisecond, stop)
			if err := c.Subscribe(ctx(t), depth); err != nil {
				t.Fatal(err)
			}
			time.Sleep(600 * time.Millisecond)
			close(stop)
			time.Sleep(50 * time.Millisecond)
			msgs := in.snapshot()
			for _, m := range msgs {
				if m.Snapshot && len(m.Data) == 0 {
					t.Fatalf("a snapshot with no data delivered (Snapshot true, Data nil): the fetch returned no image and the updates after it are given as in sync (fetches %d)", calls.Load())
				}
			}
			bad := checkBook(msgs)
			if len(bad) > 0 {
				t.Fatalf("violations (fetches %d):\n%s\n%s", calls.Load(), strings.Join(bad, "\n"), dump(msgs, 6))
			}
			t.Logf("fetches %d, delivered %d, state %v, dropped %d", calls.Load(), in.count(isNote(depth)), chanState(c, depth), c.Health().SequenceDropped)
		})
	}
}

// Binance futures: pu names the update before; a pu that does not match
// is a gap, even when U..u would cover the next number.
func TestBinanceFuturesPu(t *testing.T) {
	s := newVenue(t)
	in := &inbox{}
	var pos atomic.Uint64
	pos.Store(100)
	c := binanceClient(t, s, in, func(ctx context.Context, ch string) (actors.Snapshot, error) {
		return snapOf(pos.Load()), nil
	})
	fut := func(U, u, pu uint64) string {
		return fmt.Sprintf(`{"stream":%q,"data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":%d,"u":%d,"pu":%d,"b":[],"a":[]}}`, depth, U, u, pu)
	}
	if err := c.Subscribe(ctx(t), depth); err != nil {
		t.Fatal(err)
	}
	w := s.last()
	_ = w.write(fut(95, 105, 94)) // starts the fetch; includes 101
	waitFor(t, 3*time.Second, "the snapshot", c, in, func() bool { return in.count(isSnap(depth)) == 1 })
	_ = w.write(fut(106, 110, 105))
	_ = w.write(fut(111, 120, 999)) // pu does not match: a gap
	waitFor(t, 3*time.Second, "a gap for the bad pu", c, in, func() bool { return in.count(isGap(depth)) == 1 })
}

// A reconnect of a Binance diff depth stream: a GapReconnect, then a new
// fetch, and the first message on the new connection is its snapshot.
func TestBinanceReconnectRefetches(t *testing.T) {
	s := newVenue(t)
	f := newBFeed(s, depth)
	in := &inbox{}
	var calls atomic.Int64
	c := binanceClient(t, s, in, func(ctx context.Context, ch string) (actors.Snapshot, error) {
		calls.Add(1)
		return snapOf(f.pos()), nil
	})
	stop := make(chan struct{})
	defer close(stop)
	f.run(time.Millisecond, stop)
	if err := c.Subscribe(ctx(t), depth); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "in sync", c, in, func() bool { return in.count(isNote(depth)) > 5 })
	s.dropAll()
	waitFor(t, 5*time.Second, "in sync on generation 2", c, in, func() bool {
		msgs := in.snapshot()
		return calls.Load() >= 2 && len(msgs) > 0 && msgs[len(msgs)-1].Generation == 2 && in.count(isSnap(depth)) >= 2
	})
	msgs := in.snapshot()
	if bad := checkBook(msgs); len(bad) > 0 {
		t.Fatalf("violations:\n%s\n%s", strings.Join(bad, "\n"), dump(msgs, 10))
	}
	for i, m := range msgs {
		if m.Kind == actors.KindGap {
			if m.Gap.Reason != actors.GapReconnect {
				t.Fatalf("gap %+v", *m.Gap)
			}
			for _, n := range msgs[i+1:] {
				if n.Kind == actors.KindNotification {
					if !n.Snapshot || n.Generation != 2 {
						t.Fatalf("first after the reconnect gap: %s", dump([]actors.Inbound{n}, 1))
					}
					break
				}
			}
		}
	}
}

// Freshness clocks do not run while there is no connection: a venue down
// for 600 ms (handshakes refused) with a 100 ms rule gives no GapStale and
// no stale resubscribe once back, as long as the channel speaks on the new
// connection.
func TestFreshnessNotCountedWhileDown(t *testing.T) {
	s := newVenue(t)
	in := &inbox{}
	s.afterSub = func(c *vconn, ch string, k int64) {
		s.goRun(func() {
			for i := 0; i < 100; i++ {
				select {
				case <-s.stopped():
					return
				case <-time.After(20 * time.Millisecond):
				}
				if c.write(`{"jsonrpc":"2.0","method":"subscription","params":{"channel":"`+ch+`","data":{"p":1}}}`) != nil {
					return
				}
			}
		})
	}
	c := deribitClient(t, s, in, actors.WithFreshness("ticker.*", 100*time.Millisecond))
	if err := c.Subscribe(ctx(t), ticker); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	s.refuse.Store(true)
	s.dropAll()
	time.Sleep(600 * time.Millisecond)
	s.refuse.Store(false)
	waitFor(t, 5*time.Second, "back and active", c, in, func() bool {
		return c.Health().Generation == 2 && chanState(c, ticker) == actors.ChannelActive
	})
	time.Sleep(300 * time.Millisecond)
	h := c.Health()
	if h.StaleResubscribes != 0 || h.Stalls != 0 {
		t.Fatalf("stale %d stalls %d: the silence of the outage counted against the channel", h.StaleResubscribes, h.Stalls)
	}
}
