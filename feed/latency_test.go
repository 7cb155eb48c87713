package feed_test

import (
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	vderibit "github.com/zenws/zenws/actors/venue/deribit"
	"github.com/zenws/zenws/feed"
	"github.com/zenws/zenws/internal/testutil"
	"github.com/zenws/zenws/transport/wstest"
)

// A redundant feed over a fast path and a path slowed by 20 ms delivers at
// the fast path's latency: measured beside a single subscription on each
// path (logged, not asserted: the machine is shared).
func TestRedundantFeedKeepsTheFastPathsLatency(t *testing.T) {
	const slow = 20 * time.Millisecond
	sys := testutil.NewSystem(t)
	srv := wstest.NewServer(wstest.WithDeribit())
	t.Cleanup(srv.Close)
	b := newBook(srv, bookChannel)
	proxy := newSlowProxy(t, srv.Addr(), slow)

	pooled := &checker{}
	r := &roster{}
	p, err := feed.New(sys, feed.WithDiscovery(r.list), feed.WithCopies(2), feed.WithVenue(vderibit.Venue{}), feed.WithHandler(pooled.handle))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop() })
	connectAll(t, sys, p, r, []string{srv.URL(), proxy.URL()}, actors.WithVenue(vderibit.Venue{}))
	if err := p.Subscribe(testutil.Context(t, 5*time.Second), bookChannel); err != nil {
		t.Fatal(err)
	}
	single := func(url string) *checker {
		chk := &checker{}
		c, err := actors.Connect(testutil.Context(t, 5*time.Second), sys, url, actors.WithVenue(vderibit.Venue{}),
			actors.WithHeartbeat(actors.HeartbeatDisabled, 0), actors.WithHandler(chk.handle))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if err := c.Subscribe(testutil.Context(t, 5*time.Second), bookChannel); err != nil {
			t.Fatal(err)
		}
		return chk
	}
	fast, slowed := single(srv.URL()), single(proxy.URL())
	testutil.Eventually(t, 5*time.Second, "both copies active", func() bool { return settled(t, p, bookChannel, 2) })
	time.Sleep(2 * slow) // the slow path's snapshot is in
	for _, c := range []*checker{pooled, fast, slowed} {
		c.mu.Lock()
		c.lat = c.lat[:0]
		c.mu.Unlock()
	}
	var last uint64
	for range 2000 {
		last = b.change()
		time.Sleep(time.Millisecond)
	}
	for _, c := range []*checker{pooled, fast, slowed} {
		testutil.Eventually(t, 10*time.Second, "every change in", func() bool { return c.lastID() == last })
	}
	for _, x := range []struct {
		name string
		c    *checker
	}{{"redundant feed (fast + slowed path)", pooled}, {"single subscription, fast path", fast}, {"single subscription, slowed path", slowed}} {
		p50, p99 := x.c.percentiles()
		x.c.mu.Lock()
		n, gaps, dups := len(x.c.lat), x.c.gaps, x.c.duplicates
		x.c.mu.Unlock()
		t.Logf("%-38s p50 %8v  p99 %8v  (%d changes, %d gaps, %d duplicates)", x.name, p50.Round(time.Microsecond), p99.Round(time.Microsecond), n, gaps, dups)
		if gaps != 0 || dups != 0 {
			t.Fatalf("%s: %d gaps, %d duplicates", x.name, gaps, dups)
		}
	}
}
