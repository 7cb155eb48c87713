package review15

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/ratelimit"
	"github.com/zenws/zenws/actors/venue/deribit"
	"github.com/zenws/zenws/internal/testutil"
)

// 50 books on one connection, each broken on every second change, with
// Deribit's own credit limiter (the venue's, as a real client has it):
// the resyncs are paced by it, and a user's call still gets through (it
// must not wait behind a queue of resubscribes until its timeout).
func TestResyncStormDoesNotStarveCalls(t *testing.T) {
	s := newVenue(t)
	var feeds []*feed
	var chs []string
	for i := 0; i < 50; i++ {
		ch := fmt.Sprintf("book.I%d.100ms", i)
		feeds = append(feeds, newFeed(s, ch))
		chs = append(chs, ch)
	}
	var mu sync.Mutex
	var log []string
	s.onReq = func(c *vconn, r req) bool {
		mu.Lock()
		log = append(log, fmt.Sprintf("%s %s(%d) %s", time.Now().Format("05.000"), r.Method, len(r.Channels), r.ID))
		mu.Unlock()
		return false
	}
	in := &inbox{}
	lim := ratelimit.Deribit(ratelimit.DeribitTier1)
	c, err := actors.Connect(testutil.Context(t, 10*time.Second), testutil.NewSystem(t), s.url(),
		actors.WithVenue(deribit.Venue{Limiter: lim}), actors.WithHandler(in.handler),
		actors.WithHeartbeat(actors.HeartbeatDisabled, 0), actors.WithRetryDelay(20*time.Millisecond),
		actors.WithMaxBackoff(200*time.Millisecond), actors.WithRequestTimeout(3*time.Second),
		actors.Option(func(c *actors.Config) { c.HostDialRate = 0; c.StableAfter = 100 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Subscribe(ctx(t), chs...); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	for _, f := range feeds {
		f.run(s, 20*time.Millisecond, 2, stop)
	}
	time.Sleep(time.Second)
	req0 := s.reqs.Load()
	t0 := time.Now()
	_, err = c.Call(testutil.Context(t, 3*time.Second), "public/test", map[string]any{})
	took := time.Since(t0)
	time.Sleep(time.Second)
	close(stop)
	h := c.Health()
	states := map[actors.ChannelState]int{}
	for _, st := range h.Channels {
		states[st.State]++
	}
	t.Logf("channel states %v, subscribes %d unsubscribes %d", states, s.subs.Load(), s.unsubs.Load())
	t.Logf("call %v in %v; requests in the last ~2 s %d; gaps %d resyncs %d; limiter %+v", err, took, s.reqs.Load()-req0, h.SequenceGaps, h.Resyncs, lim.Stats())
	if err != nil {
		mu.Lock()
		t.Logf("venue saw: %v (call started %s)", log, t0.Format("05.000"))
		mu.Unlock()
		t.Fatalf("a user call during a resync storm of 50 books: %v after %v", err, took)
	}
}

// Book frames for 5,000 channels nobody subscribed: the guard keeps no
// state for them (it is bounded to wanted channels); the heap does not
// grow with them.
func TestUnwantedChannelsKeepNoState(t *testing.T) {
	s := newVenue(t)
	in := &inbox{}
	c := deribitClient(t, s, in)
	if err := c.Subscribe(ctx(t), book); err != nil {
		t.Fatal(err)
	}
	w := s.last()
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for i := 0; i < 5_000; i++ {
		_ = w.write(dChange(fmt.Sprintf("book.STRAY%d.100ms", i), uint64(i)+2, uint64(i)+1))
	}
	waitFor(t, 20*time.Second, "all read", c, in, func() bool { return c.Health().MessagesIn >= 5_001 && c.Health().InboundQueued == 0 })
	in.mu.Lock()
	in.all = nil
	in.mu.Unlock()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	if grow := int64(m1.HeapAlloc) - int64(m0.HeapAlloc); grow > 64<<20 {
		t.Fatalf("heap grew %d MiB over 5,000 unwanted channels", grow>>20)
	}
	if g := c.Health().SequenceGaps; g != 0 {
		t.Fatalf("%d gaps counted on channels nobody wants", g)
	}
}
