package chaos

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/asynkron/protoactor-go/actor"

	"github.com/zenws/zenws/actors"
	"github.com/zenws/zenws/actors/jsonrpc"
	zvenue "github.com/zenws/zenws/actors/venue"
	"github.com/zenws/zenws/actors/venue/deribit"
	zfeed "github.com/zenws/zenws/feed"
	"github.com/zenws/zenws/transport/wstest"
)

// Market data under chaos (issue 15, docs/reliability.md): one order book,
// Deribit's way (wstest.Book: a snapshot after each subscribe, then changes
// naming the change before), published to every connection, and clients
// that build the book from what zenws delivers while their connections are
// killed or their channel goes silent.

// bookServer is a Deribit-like venue serving one wstest.Book.
type bookServer struct {
	srv  *wstest.Server
	book *wstest.Book
}

func newBookServer(t *testing.T, channel string, every time.Duration) *bookServer {
	b := &bookServer{book: wstest.NewBook(channel, every)}
	b.srv = wstest.NewServer(wstest.WithDeribit(), wstest.WithCaptureLimit(1), wstest.WithBook(b.book))
	t.Cleanup(func() {
		b.book.Close()
		b.srv.Close()
	})
	return b
}

// mute stalls the book on every connection open now (the connections
// themselves keep answering).
func (b *bookServer) mute() {
	for _, c := range b.srv.Conns() {
		b.book.Mute(c, true)
	}
}

// bookWatcher is a consumer: it builds the book's sequence from what it is
// delivered and counts what a consumer would suffer.
type bookWatcher struct {
	mu         sync.Mutex
	ch         string
	have       bool
	last       uint64
	seen       map[uint64]bool // change ids delivered
	gaps       map[actors.GapReason]int
	changes    int
	snapshots  int
	duplicates int      // a change delivered twice
	violations []string // a change that does not follow, with no notice before it
	latency    []time.Duration
	lastAt     time.Time // when the last change was delivered
}

func newBookWatcher(ch string) *bookWatcher {
	return &bookWatcher{ch: ch, seen: map[uint64]bool{}, gaps: map[actors.GapReason]int{}}
}

func (w *bookWatcher) handle(in actors.Inbound) {
	if in.Channel != w.ch {
		return
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if in.Kind == actors.KindGap {
		w.gaps[in.Gap.Reason]++
		w.have = false
		return
	}
	d := zvenue.Path(in.Data, "params", "data")
	id, _ := jsonrpc.Uint(jsonrpc.Field(d, "change_id"))
	prev, _ := jsonrpc.Uint(jsonrpc.Field(d, "prev_change_id"))
	if ts, ok := jsonrpc.Uint(jsonrpc.Field(d, "ts")); ok {
		w.latency = append(w.latency, now.Sub(time.Unix(0, int64(ts))))
	}
	switch {
	case in.Snapshot:
		w.have, w.last = true, id
		w.snapshots++
		return
	case w.seen[id]:
		w.duplicates++
	case !w.have || prev != w.last:
		if len(w.violations) < 10 {
			w.violations = append(w.violations, fmt.Sprintf("change %d<-%d with the book at %d (in sync %v)", id, prev, w.last, w.have))
		}
	}
	w.seen[id] = true
	w.last = id
	w.changes++
	w.lastAt = now
}

func (w *bookWatcher) gapCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gapCountLocked()
}

func (w *bookWatcher) gapCountLocked() int {
	n := 0
	for _, c := range w.gaps {
		n += c
	}
	return n
}

func (w *bookWatcher) lastChange() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastAt
}

// proxyTo puts a Toxiproxy proxy in front of addr and returns it as a
// venue (for addToxic, removeToxic).
func (n *network) proxyTo(t *testing.T, name, addr string) *venue {
	v := &venue{net: n, name: name}
	v.proxy = toxiproxy.NewProxy(n.api, name, "127.0.0.1:0", addr)
	if err := n.api.Collection.Add(v.proxy, true); err != nil {
		t.Fatal(err)
	}
	v.proxy.Lock()
	v.addr = v.proxy.Listen
	v.proxy.Unlock()
	return v
}

// clientOpts are the market-data clients' options: Deribit, fast redials.
func clientOpts(opts ...actors.Option) []actors.Option {
	return append([]actors.Option{
		actors.WithVenue(deribit.Venue{}),
		actors.WithHeartbeat(actors.HeartbeatPingPong, 500*time.Millisecond),
		actors.WithRetryDelay(10 * time.Millisecond), actors.WithMaxBackoff(50 * time.Millisecond),
		actors.WithRetryCount(actors.RetryForever),
		func(c *actors.Config) { c.HostDialRate, c.HostDialBurst = 0, 0 }, // the test kills faster than a venue's dial pacing allows
	}, opts...)
}

func bookClient(t *testing.T, sys *actor.ActorSystem, url string, w *bookWatcher, opts ...actors.Option) *actors.Client {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := actors.Connect(ctx, sys, url, clientOpts(append([]actors.Option{actors.WithHandler(w.handle)}, opts...)...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Subscribe(ctx, w.ch); err != nil {
		t.Fatal(err)
	}
	return c
}

// A single subscription whose connection is killed again and again: every
// kill costs a hole, and every hole is announced (a gap notice before the
// restored snapshot); the book built from the stream never applies a change
// that does not follow, and no change is delivered twice.
func TestMarketDataKills(t *testing.T) {
	kills, pause := 100, 100*time.Millisecond
	if testing.Short() {
		kills, pause = 15, 50*time.Millisecond
	}
	const ch = "book.BTC-PERPETUAL.100ms"
	book := newBookServer(t, ch, 2*time.Millisecond)
	n := newNetwork()
	t.Cleanup(func() { _ = n.close() })
	p := n.proxyTo(t, "book-single", book.srv.Addr())
	sys := actor.NewActorSystem()
	t.Cleanup(sys.Shutdown)
	w := newBookWatcher(ch)
	c := bookClient(t, sys, "ws://"+p.addr+"/ws/api/v2", w)

	start := time.Now()
	for i := 0; i < kills; i++ {
		h0 := c.Health()
		if err := p.addToxic(toxic{"reset", "reset_peer", "downstream", map[string]any{"timeout": 0}}); err != nil {
			t.Fatal(err)
		}
		if !eventually(5*time.Second, func() bool { return c.Health().Reconnects > h0.Reconnects }) {
			t.Fatalf("kill %d: the client did not notice", i+1)
		}
		if err := p.removeToxic("reset"); err != nil {
			t.Fatal(err)
		}
		if !eventually(10*time.Second, func() bool { h := c.Health(); return h.State == actors.StateConnected && !h.Degraded }) {
			t.Fatalf("kill %d: not back in sync: %+v", i+1, c.Health())
		}
		hold(context.Background(), pause)
	}
	took := time.Since(start)
	h := c.Health()
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("single subscription, %d kills in %v: %d gap notices (%v), %d snapshots, %d changes, %d duplicates, %d not following; Health: %d gaps, %d resyncs, %d dropped",
		kills, took.Round(time.Millisecond), h.SequenceGaps, w.gaps, w.snapshots, w.changes, w.duplicates, len(w.violations), h.SequenceGaps, h.Resyncs, h.SequenceDropped)
	if len(w.violations) > 0 || w.duplicates > 0 {
		t.Fatalf("the consumer's book broke: %d duplicates, %v", w.duplicates, w.violations)
	}
	if w.gaps[actors.GapReconnect] < kills {
		t.Fatalf("%d kills announced by %d reconnect gap notices", kills, w.gaps[actors.GapReconnect])
	}
}

// A feed that stalls on its connection (no data, the connection answers
// its heartbeats) is subscribed again, then its connection replaced: the
// time from the stall to data flowing again is measured.
func TestMarketDataStall(t *testing.T) {
	rounds, silence := 3, 200*time.Millisecond
	if testing.Short() {
		rounds = 1
	}
	const ch = "book.ETH-PERPETUAL.100ms"
	book := newBookServer(t, ch, 5*time.Millisecond)
	sys := actor.NewActorSystem()
	t.Cleanup(sys.Shutdown)
	w := newBookWatcher(ch)
	c := bookClient(t, sys, book.srv.URL(), w, actors.WithFreshness("book.*", silence))
	var took []time.Duration
	for i := 0; i < rounds; i++ {
		if !eventually(10*time.Second, func() bool { return !c.Health().Degraded && time.Since(w.lastChange()) < 50*time.Millisecond }) {
			t.Fatalf("round %d: the book is not flowing", i+1)
		}
		h0 := c.Health()
		stalled := time.Now()
		book.mute()
		if !eventually(30*time.Second, func() bool { return w.lastChange().After(stalled.Add(silence)) }) {
			t.Fatalf("round %d: no data within 30 s of the stall: %+v", i+1, c.Health())
		}
		took = append(took, w.lastChange().Sub(stalled))
		h := c.Health()
		if h.StaleResubscribes <= h0.StaleResubscribes || h.Stalls <= h0.Stalls || h.Rotations <= h0.Rotations {
			t.Fatalf("round %d: stale resubscribes %d -> %d, stalls %d -> %d, rotations %d -> %d",
				i+1, h0.StaleResubscribes, h.StaleResubscribes, h0.Stalls, h.Stalls, h0.Rotations, h.Rotations)
		}
		hold(context.Background(), 2*time.Second) // the stall gap ladder: a calm period between rounds
	}
	slices.Sort(took)
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("stalled channel to data flowing again (MaxSilence %v), %d rounds: median %v, max %v; %d duplicates, %d not following",
		silence, rounds, took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), w.duplicates, len(w.violations))
	if len(w.violations) > 0 || w.duplicates > 0 {
		t.Fatalf("the consumer's book broke: %d duplicates, %v", w.duplicates, w.violations)
	}
}

// feedRig is a redundant feed (package feed) over two clients, each on its
// own proxy to the same venue, and a single subscription on a third.
type feedRig struct {
	book    *bookServer
	proxies []*venue // the feed's two paths
	single  *venue
	pool    *zfeed.Pool
	clients []*actors.Client
	singleC *actors.Client
	fw, sw  *bookWatcher
	channel string
	sys     *actor.ActorSystem
}

func newFeedRig(t *testing.T, ch string, every time.Duration) *feedRig {
	r := &feedRig{channel: ch, book: newBookServer(t, ch, every), fw: newBookWatcher(ch), sw: newBookWatcher(ch)}
	n := newNetwork()
	t.Cleanup(func() { _ = n.close() })
	for i := range 2 {
		r.proxies = append(r.proxies, n.proxyTo(t, fmt.Sprintf("feed-%d", i), r.book.srv.Addr()))
	}
	r.single = n.proxyTo(t, "single", r.book.srv.Addr())
	r.sys = actor.NewActorSystem()
	t.Cleanup(r.sys.Shutdown)
	var mu sync.Mutex
	var pids []*actor.PID
	pool, err := zfeed.New(r.sys, zfeed.WithCopies(2), zfeed.WithVenue(deribit.Venue{}), zfeed.WithHandler(r.fw.handle),
		zfeed.WithDiscovery(func() []*actor.PID { mu.Lock(); defer mu.Unlock(); return slices.Clone(pids) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Stop() })
	r.pool = pool
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, p := range r.proxies {
		c, err := actors.Connect(ctx, r.sys, "ws://"+p.addr+"/ws/api/v2", clientOpts(actors.WithSubscriber(pool.PID()))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		r.clients = append(r.clients, c)
		mu.Lock()
		pids = append(pids, c.PID())
		mu.Unlock()
	}
	if err := pool.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pool.Subscribe(ctx, ch); err != nil {
		t.Fatal(err)
	}
	r.singleC = bookClient(t, r.sys, "ws://"+r.single.addr+"/ws/api/v2", r.sw)
	if !eventually(10*time.Second, r.feedWhole) {
		t.Fatal("the feed's two copies are not active")
	}
	return r
}

// feedWhole reports whether both copies of the feed are active.
func (r *feedRig) feedWhole() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := r.pool.Status(ctx)
	if err != nil {
		return false
	}
	cs, ok := st.Channel(r.channel)
	return ok && cs.Active == 2
}

// kill resets the connections through p and waits until c has noticed,
// then lets it reconnect.
func kill(t *testing.T, p *venue, c *actors.Client) {
	h0 := c.Health()
	if err := p.addToxic(toxic{"reset", "reset_peer", "downstream", map[string]any{"timeout": 0}}); err != nil {
		t.Fatal(err)
	}
	if !eventually(5*time.Second, func() bool { return c.Health().Reconnects > h0.Reconnects }) {
		t.Fatal("the client did not notice the kill")
	}
	if err := p.removeToxic("reset"); err != nil {
		t.Fatal(err)
	}
}

// A redundant feed over two connections beside a single subscription,
// both killed again and again (the feed's two paths in turn, never both at
// once): the single subscription announces a hole for every kill; the
// redundant feed has none, and no duplicate.
func TestMarketDataRedundantFeedKills(t *testing.T) {
	kills, pause := 100, 50*time.Millisecond
	if testing.Short() {
		kills, pause = 15, 20*time.Millisecond
	}
	const ch = "book.BTC-PERPETUAL.raw"
	r := newFeedRig(t, ch, 2*time.Millisecond)
	start := time.Now()
	for i := 0; i < kills; i++ {
		kill(t, r.single, r.singleC)
		kill(t, r.proxies[i%2], r.clients[i%2])
		if !eventually(10*time.Second, r.feedWhole) {
			t.Fatalf("kill %d: the feed's copies did not come back", i+1)
		}
		if !eventually(10*time.Second, func() bool { h := r.singleC.Health(); return h.State == actors.StateConnected && !h.Degraded }) {
			t.Fatalf("kill %d: the single subscription is not back in sync", i+1)
		}
		hold(context.Background(), pause)
	}
	took := time.Since(start)
	hold(context.Background(), 100*time.Millisecond)
	st, _ := r.pool.Status(context.Background())
	cs, _ := st.Channel(ch)
	r.fw.mu.Lock()
	defer r.fw.mu.Unlock()
	r.sw.mu.Lock()
	defer r.sw.mu.Unlock()
	t.Logf("%d kills of each in %v: single subscription %d gap notices (%v), %d changes, %d duplicates, %d not following; "+
		"redundant feed %d gap notices, %d changes, %d duplicates delivered, %d not following (the pool dropped %d copies' duplicates)",
		kills, took.Round(time.Millisecond), r.sw.gapCountLocked(), r.sw.gaps, r.sw.changes, r.sw.duplicates, len(r.sw.violations),
		r.fw.gapCountLocked(), r.fw.changes, r.fw.duplicates, len(r.fw.violations), cs.Duplicates)
	if n := r.fw.gapCountLocked(); n != 0 || r.fw.duplicates != 0 || len(r.fw.violations) != 0 {
		t.Fatalf("the redundant feed: %d gap notices, %d duplicates, %v", n, r.fw.duplicates, r.fw.violations)
	}
	if len(r.sw.violations) != 0 || r.sw.duplicates != 0 || r.sw.gaps[actors.GapReconnect] < kills {
		t.Fatalf("the single subscription: %d reconnect notices for %d kills, %d duplicates, %v", r.sw.gaps[actors.GapReconnect], kills, r.sw.duplicates, r.sw.violations)
	}
}

// A redundant feed with 20 ms of added latency on one of its two paths,
// beside a single subscription on a fast path: the feed delivers at the
// fast path's pace (each update the first time it arrives).
func TestMarketDataRedundantFeedLatency(t *testing.T) {
	d := 5 * time.Second
	if testing.Short() {
		d = time.Second
	}
	const ch = "book.ETH-PERPETUAL.raw"
	r := newFeedRig(t, ch, 2*time.Millisecond)
	if err := r.proxies[1].addToxic(toxic{"latency", "latency", "downstream", map[string]any{"latency": 20, "jitter": 0}}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.proxies[1].removeToxic("latency") }()
	hold(context.Background(), 200*time.Millisecond) // the slowed path's backlog
	r.fw.mu.Lock()
	r.fw.latency = nil
	r.fw.mu.Unlock()
	r.sw.mu.Lock()
	r.sw.latency = nil
	r.sw.mu.Unlock()
	hold(context.Background(), d)
	q := func(w *bookWatcher) (p50, p99 time.Duration, n int) {
		w.mu.Lock()
		defer w.mu.Unlock()
		l := slices.Clone(w.latency)
		slices.Sort(l)
		if len(l) == 0 {
			return 0, 0, 0
		}
		return l[len(l)/2], l[len(l)*99/100], len(l)
	}
	f50, f99, fn := q(r.fw)
	s50, s99, sn := q(r.sw)
	if fn == 0 || sn == 0 {
		t.Fatalf("no updates measured: feed %d, single %d", fn, sn)
	}
	t.Logf("delivery latency over %v, one path +20 ms: redundant feed p50 %v p99 %v (%d updates); single subscription on the fast path p50 %v p99 %v (%d); ratio p50 %.2f, p99 %.2f",
		d, f50.Round(time.Microsecond), f99.Round(time.Microsecond), fn, s50.Round(time.Microsecond), s99.Round(time.Microsecond), sn,
		float64(f50)/float64(s50), float64(f99)/float64(s99))
	if f50 > 10*time.Millisecond {
		t.Fatalf("the redundant feed's p50 is %v: it waits for the slow path", f50)
	}
}
