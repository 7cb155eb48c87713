package review15

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/venue/binance"
)

const depth = "btcusdt@depth@100ms"

// bfeed is a Binance diff depth stream: one position for the whole venue
// (as Binance's), written to every connection that subscribed it.
type bfeed struct {
	mu  sync.Mutex
	s   *vsrv
	ch  string
	cur uint64 // the last u written
}

func newBFeed(s *vsrv, ch string) *bfeed { return &bfeed{s: s, ch: ch, cur: 1000} }

// step writes one update of n ids (U = cur+1+skip, u = U+n-1).
func (f *bfeed) step(n, skip uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	first := f.cur + 1 + skip
	last := first + n - 1
	f.cur = last
	c := f.s.last()
	if c == nil || !c.subscribed(f.ch) {
		return
	}
	_ = c.write(bDepth(f.ch, first, last))
}

func (f *bfeed) pos() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur
}

func (f *bfeed) run(d time.Duration, stop <-chan struct{}) {
	f.s.goRun(func() {
		tk := time.NewTicker(d)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-f.s.stopped():
				return
			case <-tk.C:
			}
			f.step(2, 0)
		}
	})
}

func snapOf(seq uint64) actors.Snapshot {
	return actors.Snapshot{Data: []byte(fmt.Sprintf(`{"lastUpdateId":%d,"bids":[],"asks":[]}`, seq)), Seq: seq}
}

func binanceClient(t *testing.T, s *vsrv, in *inbox, fetch actors.SnapshotFunc, opts ...actors.Option) *actors.Client {
	base := []actors.Option{actors.WithVenue(binance.Venue{}), actors.WithHandler(in.handler),
		actors.WithHeartbeat(actors.HeartbeatDisabled, 0)}
	if fetch != nil {
		base = append(base, actors.WithSnapshot(fetch))
	}
	return connect(t, s.url(), append(base, opts...)...)
}

// The stream starts from the user's snapshot: the first message is it,
// then the held updates that follow it, in order.
func TestBinanceStartsFromSnapshot(t *testing.T) {
	s := newVenue(t)
	f := newBFeed(s, depth)
	in := &inbox{}
	c := binanceClient(t, s, in, func(ctx context.Context, ch string) (actors.Snapshot, error) {
		time.Sleep(100 * time.Millisecond)
		return snapOf(f.pos() - 7), nil
	})
	stop := make(chan struct{})
	defer close(stop)
	f.run(time.Millisecond, stop)
	if err := c.Subscribe(ctx(t), depth); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a snapshot and 50 updates", c, in, func() bool { return in.count(isNote(depth)) > 50 })
	msgs := in.snapshot()
	if bad := checkBook(msgs); len(bad) > 0 {
		t.Fatalf("violations:\n%s\n%s", strings.Join(bad, "\n"), dump(msgs, 10))
	}
	for _, m := range msgs {
		if m.Kind == actors.KindNotification {
			if !m.Snapshot {
				t.Fatalf("first message not the snapshot: %s", dump([]actors.Inbound{m}, 1))
			}
			break
		}
	}
}

// A snapshot fetch that is slow while 10,000 deltas arrive (past the 4,096 held), and whose
// image is as old as the fetch's start: the held updates past the bound
// are gone, so the image cannot be continued; the client must fetch
// again, never deliver an update that does not follow, and end in sync.
func TestBinanceSlowSnapshotUnderFlood(t *testing.T) {
	s := newVenue(t)
	f := newBFeed(s, depth)
	in := &inbox{}
	var calls atomic.Int64
	release := make(chan struct{})
	c := binanceClient(t, s, in, func(ctx context.Context, ch string) (actors.Snapshot, error) {
		n := calls.Add(1)
		at := f.pos()
		if n == 1 {
			select {
			case <-release:
			case <-ctx.Done():
				return actors.Snapshot{}, ctx.Err()
			}
		}
		return snapOf(at), nil
	}, actors.WithRequestTimeout(20*time.Second))
	if err := c.Subscribe(ctx(t), depth); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "the first fetch", c, in, func() bool { f.step(1, 0); return calls.Load() == 1 })
	for i := 0; i < 10_000; i++ {
		f.step(1, 0)
	}
	close(release)
	waitFor(t, 10*time.Second, "in sync again", c, in, func() bool {
		f.step(1, 0)
		return in.count(isSnap(depth)) >= 1 && chanState(c, depth) == actors.ChannelActive && in.count(isNote(depth)) > 10
	})
	msgs := in.snapshot()
	if bad := checkBook(msgs); len(bad) > 0 {
		t.Fatalf("violations:\n%s\n%s", strings.Join(bad, "\n"), dump(msgs, 10))
	}
	if h := c.Health(); h.InboundQueuedBytes > 64<<20 {
		t.Fatalf("queued %d bytes", h.InboundQueuedBytes)
	}
	t.Logf("fetches %d, dropped %d, delivered %d", calls.Load(), c.Health().SequenceDropped, len(msgs))
}

// A fetch that panics (and one that errors) every time: counted, retried
// with backoff (not a storm), and nothing of the stream is delivered
// without a snapshot before it.
func TestBinanceSnapshotFetchPanicsAndFails(t *testing.T) {
	for name, fail := range map[string]func() (actors.Snapshot, error){
		"panic": func() (actors.Snapshot, error) { panic("fetch exploded") },
		"error": func() (actors.Snapshot, error) { return actors.Snapshot{}, errors.New("418 I'm a teapot") },
		"panic nil": func() (actors.Snapshot, error) {
			var p *actors.Snapshot
			return *p, nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := newVenue(t)
			f := newBFeed(s, depth)
			in := &inbox{}
			var calls atomic.Int64
			c := binanceClient(t, s, in, func(ctx context.Context, ch string) (actors.Snapshot, error) {
				calls.Add(1)
				return fail()
			})
			stop := make(chan struct{})
			f.run(time.Millisecond, stop)
			if err := c.Subscribe(ctx(t), depth); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
			close(stop)
			h := c.Health()
			if n := calls.Load(); n > 20 || n < 2 {
				t.Errorf("%d fetches in 1 s (backoff 20 ms..200 ms): want a few, retried", n)
			}
			if h.SnapshotFailures != uint64(calls.Load()) && h.SnapshotFailures+1 != uint64(calls.Load()) {
				t.Errorf("SnapshotFailures %d, fetches %d", h.SnapshotFailures, calls.Load())
			}
			if n := in.count(isNote(depth)); n > 0 {
				t.Fatalf("%d updates delivered without a snapshot:\n%s", n, dump(in.snapshot(), 5))
			}
			if st := chanState(c, depth); st != actors.ChannelResyncing {
				t.Errorf("channel %v, want resyncing", st)
			}
		})
	}
}

// A fetch that blocks until its ctx ends: Close returns at once, the
// fetch sees its ctx cancelled, nothing leaks (TestMain's goleak).
func TestBinanceBlockedFetchAndClose(t *testing.T) {
	s := newVenue(t)
	f := newBFeed(s, depth)
	in := &inbox{}
	started := make(chan struct{}, 1)
	ended := make(chan error, 1)
	c := binanceClient(t, s, in, func(ctx context.Context, ch string) (actors.Snapshot, error) {
		select {
		case started <- struct{}{}:
		default:
		}
		<-ctx.Done()
		select {
		case ended <- ctx.Err():
		default:
		}
		return actors.Snapshot{}, ctx.Err()
	}, actors.WithRequestTimeout(time.Minute))
	stop := make(chan struct{})
	defer close(stop)
	f.run(time.Millisecond, stop)
	if err := c.Subscribe(ctx(t), depth); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(3 * time.Second):
		t.Fatal("no fetch")
	}
	t0 := time.Now()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Fatalf("Close took %v with a blocked fetch", d)
	}
	select {
	case <-ended:
	case <-time.After(3 * time.Second):
		t.Fatal("the fetch's ctx was not cancelled by Close")
	}
}

// A fetch that takes longer than the connection: the connection drops
// while it runs and its image is from the old connection. Whatever is
// delivered, the consumer's book never takes an update that does not
// follow, and the channel ends in sync on the new connection.
func TestBinanceFetchAcrossReconnect(t *testing.T) {
	s := newVenue(t)
	f := newBFeed(s, depth)
	in := &inbox{}
	var calls atomic.Int64
	c := binanceClient(t, s, in, func(ctx context.Context, ch string) (actors.Snapshot, error) {
		n := calls.Add(1)
		at := f.pos()
		if n == 1 {
			time.Sleep(400 * time.Millisecond)
		}
		return snapOf(at), nil
	})
	stop := make(chan struct{})
	defer close(stop)
	f.run(time.Millisecond, stop)
	if err := c.Subscribe(ctx(t), depth); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "the first fetch", c, in, func() bool { return calls.Load() == 1 })
	time.Sleep(100 * time.Millisecond)
	s.dropAll()
	waitFor(t, 5*time.Second, "in sync on generation 2", c, in, func() bool {
		msgs := in.snapshot()
		return len(msgs) > 20 && msgs[len(msgs)-1].Generation == 2 && chanState(c, depth) == actors.ChannelActive
	})
	msgs := in.snapshot()
	if bad := checkBook(msgs); len(bad) > 0 {
		t.Fatalf("violations:\n%s\n%s", strings.Join(bad, "\n"), dump(msgs, 12))
	}
}

// Hostile ranges after the book is in sync: u < U, a range that jumps
// back, a duplicate, the last uint64. None may be delivered as an update
// that continues the book without a KindGap before it.
func TestBinanceHostileRanges(t *testing.T) {
	for name, frames := range map[string]func(last uint64) []string{
		"u<U":        func(l uint64) []string { return []string{bDepth(depth, l+5, l+1)} },
		"u<U wide":   func(l uint64) []string { return []string{bDepth(depth, ^uint64(0), l+1)} },
		"duplicate":  func(l uint64) []string { return []string{bDepth(depth, l-1, l)} },
		"backwards":  func(l uint64) []string { return []string{bDepth(depth, 1, 2)} },
		"U negative": func(l uint64) []string { return []string{strings.Replace(bDepth(depth, 7, l+1), `"U":7`, `"U":-7`, 1)} },
		"u huge": func(l uint64) []string {
			return []string{strings.Replace(bDepth(depth, l+1, 7), `"u":7`, `"u":1e30`, 1)}
		},
		"U string": func(l uint64) []string {
			return []string{strings.Replace(bDepth(depth, 7, l+1), `"U":7`, `"U":"7"`, 1)}
		},
		"no U": func(l uint64) []string { return []string{strings.Replace(bDepth(depth, 7, l+3), `"U":7,`, ``, 1)} },
	} {
		t.Run(name, func(t *testing.T) {
			s := newVenue(t)
			f := newBFeed(s, depth)
			in := &inbox{}
			c := binanceClient(t, s, in, func(ctx context.Context, ch string) (actors.Snapshot, error) {
				return snapOf(f.pos()), nil
			})
			if err := c.Subscribe(ctx(t), depth); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 3*time.Second, "the snapshot and 5 updates", c, in, func() bool {
				f.step(2, 0)
				return in.count(isSnap(depth)) == 1 && in.count(isNote(depth)) >= 6
			})
			f.mu.Lock()
			for _, fr := range frames(f.cur) {
				_ = s.last().write(strings.Replace(fr, `"E":1`, `"E":1,"EVIL":1`, 1))
			}
			f.mu.Unlock()
			for i := 0; i < 5; i++ {
				f.step(2, 0)
			}
			time.Sleep(200 * time.Millisecond)
			msgs := in.snapshot()
			synced := true
			for _, m := range msgs {
				if m.Kind == actors.KindGap {
					synced = false
				}
				if m.Snapshot {
					synced = true
				}
				if m.Kind == actors.KindNotification && strings.Contains(string(m.Data), `"EVIL"`) && synced {
					t.Fatalf("a hostile update was delivered as part of the in-sync book: %s\n%s", m.Data, dump(msgs[len(msgs)-6:], 6))
				}
			}
			var bad []string
			for _, b := range checkBook(msgs) {
				if !strings.Contains(b, "undecodable") {
					bad = append(bad, b)
				}
			}
			if len(bad) > 0 {
				t.Fatalf("violations:\n%s", strings.Join(bad, "\n"))
			}
		})
	}
}

// Unsubscribe while the snapshot fetch is still running, then subscribe
// again at once: the first (old) fetch's image must not be delivered
// into the new subscription's stream.
func TestBinanceStaleFetchAfterResubscribe(t *testing.T) {
	s := newVenue(t)
	f := newBFeed(s, depth)
	in := &inbox{}
	var calls atomic.Int64
	release := make(chan struct{})
	c := binanceClient(t, s, in, func(ctx context.Context, ch string) (actors.Snapshot, error) {
		n := calls.Add(1)
		at := f.pos()
		if n == 1 {
			select {
			case <-release:
			case <-time.After(5 * time.Second):
			}
			return snapOf(at - 500), nil
		}
		return snapOf(at), nil
	})
	stop := make(chan struct{})
	defer close(stop)
	f.run(time.Millisecond, stop)
	if err := c.Subscribe(ctx(t), depth); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "the first fetch", c, in, func() bool { return calls.Load() == 1 })
	if err := c.Unsubscribe(ctx(t), depth); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctx(t), depth); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	close(release)
	time.Sleep(300 * time.Millisecond)
	msgs := in.snapshot()
	if bad := checkBook(msgs); len(bad) > 0 {
		t.Fatalf("violations (fetches %d):\n%s\n%s", calls.Load(), strings.Join(bad, "\n"), dump(msgs, 8))
	}
	if in.count(isNote(depth)) == 0 {
		t.Fatalf("nothing delivered after the resubscribe (fetches %d, state %v)", calls.Load(), chanState(c, depth))
	}
}

// Without a snapshot fetch, a diff depth gap is still announced.
func TestBinanceGapWithoutFetchAnnounced(t *testing.T) {
	s := newVenue(t)
	f := newBFeed(s, depth)
	in := &inbox{}
	c := binanceClient(t, s, in, nil)
	if err := c.Subscribe(ctx(t), depth); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		f.step(1, 0)
	}
	f.step(1, 3)
	f.step(1, 0)
	waitFor(t, 3*time.Second, "a gap notice", c, in, func() bool { return in.count(isGap(depth)) == 1 })
}
